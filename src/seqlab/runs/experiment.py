"""``experiment``: run one of the notes' measurements (``seqlab.experiments``) at a size, write its report."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.data.dataset import ELEMENT_NAMES
from seqlab.errors import OptionError
from seqlab.experiments import EXPERIMENTS, ExperimentResult
from seqlab.experiments.common import with_settings
from seqlab.experiments.figures import save_figures
from seqlab.runs.progress import fitting
from seqlab.runs.report import markdown_table, write_report

SIZES = ("quick", "default", "long")


def sizes(name: str) -> tuple[str, ...]:
    """The sizes experiment ``name`` offers: quick and default always, long where its config has ``long()``."""
    config_class = EXPERIMENTS[name][0]
    return tuple(s for s in SIZES if s == "default" or hasattr(config_class, s))


def make_config(name: str, size: str = "default", overrides: dict | None = None):
    """Experiment ``name``'s config at ``size`` (``Config.quick()``, ``Config()`` or ``Config.long()``) with
    ``overrides`` on top: {attribute path: value}, a field's name or, inside a task's budget, ``copy.steps``."""
    config_class = EXPERIMENTS[name][0]
    if size not in sizes(name):
        raise OptionError(f"{{0}}: {name} has no size {size!r}; choose from {', '.join(sizes(name))}", "size")
    config = config_class() if size == "default" else getattr(config_class, size)()
    return with_settings(config, overrides or {})


@dataclass
class ExperimentSpec:
    name: str
    config: object  # the experiment's config dataclass (make_config)
    size: str = "default"
    out: Path | None = None  # write the table (CSV, Markdown, JSON) and the figures here
    progress: bool = True


@dataclass
class ExperimentRun:
    result: ExperimentResult
    table: str  # Markdown
    summary: str  # the summary as indented JSON
    written: list[Path] = field(default_factory=list)


def run_experiment(spec: ExperimentSpec) -> ExperimentRun:
    run = EXPERIMENTS[spec.name][1]
    # every network an experiment trains with the Trainer: a bar (they all read text) and Ctrl-C
    watch = functools.partial(fitting, ELEMENT_NAMES["text"], spec.progress)
    result = run(spec.config, show_progress=spec.progress, fitting=watch)
    out = ExperimentRun(result, markdown_table(result.rows) + tables_text(result), summary_text(result))
    if spec.out is not None:
        out.written = write_outputs(result, Path(spec.out))
    return out


def summary_text(result: ExperimentResult) -> str:
    return json.dumps(result.summary, indent=1)


def tables_text(result: ExperimentResult) -> str:
    """The further tables, each under its title, after the main one."""
    return "".join(f"\n### {title}\n\n{markdown_table(rows)}" for title, rows in result.tables.items())


def write_outputs(result: ExperimentResult, out: Path) -> list[Path]:
    """``out/STEM.md`` (the tables and the summary), ``.csv`` (the main table), ``.json`` (the record) and the
    figures; STEM is the experiment's name with underscores."""
    footer = f"{tables_text(result)}\n```\n{summary_text(result)}\n```\n"
    written = write_report(out, result.name.replace("-", "_"), result.rows, result.to_json(), footer=footer)
    return written + save_figures(result, out)
