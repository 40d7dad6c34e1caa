"""What every experiment shares: the result record, its config's settings, parameter budgets, progress bars,
what watches each training (``Fitting``), thread counts (tables and CSV: ``seqlab.runs.report``)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from seqlab.recurrent import CELLS
from seqlab.training import Callback

# gates per cell: G = NUM_GATES[cell] * H rows of the packed weights
NUM_GATES = {name: cls.num_gates for name, cls in CELLS.items()}
CELL_NAMES = tuple(CELLS)  # the choices of every experiment's ``cells``


@dataclass
class ExperimentResult:
    """``rows`` is the table (one dict per row); ``summary`` the headline numbers; ``curves`` what the
    figures need beyond the table (arrays, not printed by ``--json``); ``tables`` further tables by title
    (rows of dicts), printed after the main one."""

    name: str
    config: dict
    rows: list[dict]
    summary: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"experiment": self.name, "config": self.config, "summary": self.summary, "rows": self.rows}
        return {**out, "tables": self.tables} if self.tables else out


@dataclass(frozen=True)
class Setting:
    """One setting of an experiment's config: ``name`` (its option and its key in the result's config record),
    ``path`` (the attribute path, ``field`` or ``field.sub``), the dataclass ``field``, its ``value`` and the
    ``heading`` of the group it belongs to (the help of the field holding it, or "")."""

    name: str
    path: str
    field: dataclasses.Field
    value: object
    heading: str = ""


def config_settings(config) -> list[Setting]:
    """Every setting of the config dataclass instance ``config``, in field order. A field holding a dataclass (a
    task's budget) stands for its fields, each named ``PREFIX_NAME`` (``metadata["prefix"]``, else the field's
    name; ``""``: the field's own names)."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            prefix = f.metadata.get("prefix", f.name)
            heading = f.metadata.get("help", f.name)
            for sub in dataclasses.fields(value):
                name = f"{prefix}_{sub.name}" if prefix else sub.name
                out.append(Setting(name, f"{f.name}.{sub.name}", sub, getattr(value, sub.name), heading))
        else:
            out.append(Setting(f.name, f.name, f, value))
    return out


def settings(config) -> dict:
    """``config`` as the flat record an experiment's result carries: {setting name: value}."""
    return {s.name: s.value for s in config_settings(config)}


def with_settings(config, changes: dict):
    """``config`` with ``changes`` ({attribute path: value}, a nested field's as ``field.sub``) made."""
    nested: dict[str, dict] = {}
    top = {}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[path] = value
    top |= {head: dataclasses.replace(getattr(config, head), **sub) for head, sub in nested.items()}
    return dataclasses.replace(config, **top)


@dataclass(frozen=True)
class Variant:
    """One network kind of a table: a cell and the initialisation of the gate that keeps its memory: the
    LSTM's forget gate (``seqlab.cells.init_forget_gate``), the GRU's update gate (``init_update_gate``);
    ``"chrono"`` alone: T_MAX given by the experiment. Named ``lstm:1``, ``gru:chrono``; ``gru`` for torch's."""

    cell: str
    forget_init: str = "zero"

    @property
    def name(self) -> str:
        if self.cell == "lstm" or (self.cell == "gru" and self.forget_init != "zero"):
            return f"{self.cell}:{self.forget_init}"
        return self.cell

    def forget_spec(self, t_max: int) -> str:
        return f"chrono:{t_max}" if self.forget_init == "chrono" else self.forget_init


def cell_variants(
    cells: tuple[str, ...], forget_inits: tuple[str, ...], update_inits: tuple[str, ...] = ("zero",)
) -> list[Variant]:
    """Every cell of ``cells``: the LSTM once per forget-gate initialisation of ``forget_inits``, the GRU once
    per update-gate initialisation of ``update_inits``."""
    inits = {"lstm": forget_inits, "gru": update_inits}
    return [Variant(cell, f) for cell in cells for f in inits.get(cell, ("zero",))]


def cell_parameter_count(cell: str, input_size: int, hidden_size: int, num_layers: int = 1) -> int:
    """Parameters of a ``Recurrent`` stack: per layer ``G (D + H + 2)`` with ``G = gates * H``."""
    total, D = 0, input_size
    for _ in range(num_layers):
        total += NUM_GATES[cell] * hidden_size * (D + hidden_size + 2)
        D = hidden_size
    return total


def matched_hidden_size(cell: str, input_size: int, budget: int) -> int:
    """The hidden size whose one-layer ``cell`` has the parameter count closest to ``budget``.

    Solves ``G H^2 + G (D + 2) H = budget`` for H (G the number of gates), then picks the nearer integer."""
    g, b = NUM_GATES[cell], input_size + 2
    root = (-b + math.sqrt(b * b + 4 * budget / g)) / 2
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    return min(candidates, key=lambda h: (abs(cell_parameter_count(cell, input_size, h) - budget), h))


# What watches one training: a context manager per fit whose value is the Trainer callbacks to fit with (the
# application layer passes its progress bar and Ctrl-C handling: ``seqlab.runs.progress.fitting``).
Fitting = Callable[[], AbstractContextManager[Sequence[Callback]]]


def unwatched() -> AbstractContextManager[Sequence[Callback]]:
    """No callbacks: a fit nobody watches (what a library caller of ``run`` gets)."""
    return contextlib.nullcontext(())


def progress(total: int, description: str, enabled: bool) -> tqdm:
    """A progress bar on stderr (the tables go to stdout)."""
    return tqdm(total=total, desc=description, disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: leave as is); restores the previous number."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
