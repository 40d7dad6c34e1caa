"""``train --model global-lstm | global-gru | global-rnn``: ONE recurrent network (``GlobalAR``, DeepAR) trained on
every series of a panel, saved into a run directory.

The panel is read once by the panel loader (``seqlab.data.panel.load_panel``: a long CSV with ``--id-column`` or
a wide one, values plus offsets); a series that is too short, constant or not finite is listed with its reason
and left out, never stopping the others, as ``backtest --holdout`` does. The season comes from the dates unless
``--season`` gives it, each series' position in the season from its start date (``season_phases``), the horizon
is the panel backtest's default unless ``--horizon`` gives it, and the training budget is ``GlobalARConfig``'s
unless ``--steps`` or ``--time-budget`` give one. ``GlobalAR.fit_panel`` cuts its validation window from the end
of every series; nothing else is held out, so ``final`` records the training, not a held-out score.

The model is saved as every model is (``seqlab.io``) with ``training.json``, whose data record (``meta``) holds
the panel: the ids in the order the network saw them (``forecast`` names its rows with them and, for a model with
a series embedding, refuses a panel of other series), the season, the horizon and the series left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from seqlab.data.bundled_data import resolve
from seqlab.data.dataset import Dataset
from seqlab.data.panel import Panel, load_panel
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, SeqlabError
from seqlab.models.global_ar import GlobalAR, GlobalARConfig
from seqlab.runs import checkpoints, progress, run_data
from seqlab.runs.family import Family, FitContext, Fitted
from seqlab.runs.panel import GLOBAL_MODELS, PanelSpec, season_phases
from seqlab.runs.run_directory import RunDirectory
from seqlab.runs.train_spec import TrainSpec
from seqlab.training import Progress, TrainingResult

# TrainSpec.model keys (what the CLI's options give) -> GlobalARConfig fields
MODEL_FIELDS = {"hidden_size": "hidden_size", "num_layers": "num_layers", "dropout": "dropout", "head": "head"}
MODEL_FIELDS |= {"components": "components", "season": "season", "horizon": "horizon"}
MODEL_FIELDS |= {"series_embedding": "series_embedding"}
# the trainer's settings (TrainSpec.trainer) a global model takes: GlobalARConfig has a field of each name
TRAINER_FIELDS = ("steps", "time_budget", "lr", "batch_size", "warmup_steps", "eval_every", "patience", "seed")
# the data options a panel reads (the others transform or split one series: a panel is read as given)
PANEL_DATA_FIELDS = ("column", "date_column", "id_column")
SHOWN_LEFT_OUT = 10  # series left out named in the output (training.json lists all)


@dataclass
class PanelDataset(Dataset):
    """A panel as ``train`` carries its data: the values of every series one after the other (``train``), no
    held-out part, and the ``Panel`` itself (values plus offsets, ids, starts, the series left out)."""

    panel: Panel | None = None


def default_horizon() -> int:
    """The panel backtest's default horizon (``PanelSpec``)."""
    return next(f.default for f in fields(PanelSpec) if f.name == "horizon")


def panel_record(panel: Panel, config: GlobalARConfig) -> dict:
    """What ``forecast`` and ``info`` read back of the panel a global model was trained on."""
    return {
        "series": len(panel),
        "ids": list(panel.ids),
        "season": config.season,
        "horizon": config.horizon,
        "left_out": dict(panel.left_out),
    }


class GlobalFamily(Family):
    """One ``GlobalAR`` on a whole panel, fitted in one call of ``fit_panel`` (its own Trainer, the best
    validation's weights kept in memory), then saved: no checkpoint to resume."""

    kind = "global_ar"
    cell: ClassVar[str] = ""
    options = tuple(MODEL_FIELDS)
    data_kinds = ("series",)

    @property
    def models_what(self) -> str:  # type: ignore[override]
        return f"{self.name} models a panel of series (give a CSV file: long with --id-column, or one per column)"

    def refuse_settings(self, spec: TrainSpec) -> None:
        """No resume, none of the other families' options, none of the trainer's settings that GlobalARConfig
        lacks, and of the data options only those that name the panel's columns."""
        if spec.resume:
            why = f"{self.name} is trained in one go and has nothing to {{0}}; use {{1}}"
            raise OptionError(why, "resume", "overwrite")
        self.refuse_others_options(spec)
        wrong = [k for k in spec.trainer if k not in TRAINER_FIELDS]
        given = spec.data.to_json() if spec.data is not None else {}
        wrong += [k for k in given if k != "source" and k not in PANEL_DATA_FIELDS]
        if wrong:
            slots = ", ".join(f"{{{i + 1}}}" for i in range(len(wrong)))
            raise OptionError(f"{{0}} {self.name} takes no {slots} (a panel is read as given)", "family", *wrong)

    def load(self, data: DataSpec, spec: TrainSpec, analysed: Callable[[float, float], None] | None) -> Dataset:
        """The panel of ``data`` through the panel loader, a series shorter than the horizon plus 2 left out (as
        the panel backtest leaves it out)."""
        horizon = spec.model.get("horizon", default_horizon())
        panel = load_panel(
            data.source, data.id_column, data.column, data.date_column, spec.model.get("season"), horizon + 2
        )
        path, bundled = resolve(data.source)
        recorded = {name: getattr(data, name) for name in PANEL_DATA_FIELDS}
        source = data.source if bundled else str(path.resolve())
        resolved = DataSpec(source, transform="none", **recorded)
        meta = {**resolved.to_json(), "values": len(panel.values)}
        values = torch.from_numpy(panel.values)
        return PanelDataset("series", "series", values, values[:0], meta, spec=resolved, panel=panel)

    def check(self, spec: TrainSpec, dataset: PanelDataset) -> GlobalARConfig:
        self.check_data_kind(dataset)
        panel = dataset.panel
        given = {MODEL_FIELDS[k]: v for k, v in spec.model.items()}
        given |= {k: v for k, v in spec.trainer.items() if k in TRAINER_FIELDS}
        if "time_budget" in given and "steps" not in given:
            given["steps"] = 0  # a time budget alone: no step count beside it
        given.setdefault("horizon", default_horizon())
        given["season"] = panel.season  # --season, given to the loader, or the dates'
        if given.get("series_embedding"):
            given["num_series"] = len(panel)
        try:
            config = GlobalARConfig(cell=self.cell, **given)
            config.validate()
        except SeqlabError as e:
            raise OptionError(f"{{all}}: {e}", *spec.model, *spec.trainer) from None
        return config

    def build(self, dataset: PanelDataset, settings: GlobalARConfig) -> GlobalAR:
        torch.manual_seed(settings.seed)  # the initial weights: the same whatever ran before in the process
        return GlobalAR(settings)

    def fit(
        self, model: GlobalAR, dataset: PanelDataset, settings: GlobalARConfig, run: RunDirectory, context: FitContext
    ) -> Fitted:
        say, panel = context.say, dataset.panel
        left = panel.left_out
        say(
            f"seqlab: panel {panel.source}: {len(panel):,} series, {len(panel.values):,} values (season "
            f"{panel.season}), {len(left)} left out"
        )
        for ident, why in list(left.items())[:SHOWN_LEFT_OUT]:
            say(f"seqlab: left out {ident}: {why}")
        if len(left) > SHOWN_LEFT_OUT:
            say(f"seqlab: and {len(left) - SHOWN_LEFT_OUT} more left out ({run.path}/training.json lists them)")
        c = settings
        budget = f"{c.steps} steps" if c.steps else f"{c.time_budget:g} s"
        if c.steps and c.time_budget:
            budget += f" (at most {c.time_budget:g} s)"
        say(f"seqlab: {model.describe()}; budget {budget}; writing {run.path}")
        phases = season_phases(panel.starts, panel.season)
        with progress.fitting(dataset.elements, context.progress and context.main) as callbacks:
            model.fit_panel(panel.values, panel.offsets, phases=phases, callbacks=callbacks)
        result = model.training_result
        model.trained_on(dataset)  # no transform: GlobalAR transforms and transforms back itself
        record = {**dataset.meta, "panel": panel_record(panel, model.config)}
        record |= run_data.data_fingerprint(dataset.spec)
        checkpoints.write_best(run.work, model, best_progress(result), model.config.trainer_config(), record)
        run.commit()
        return Fitted(model, result)

    def score(self, fitted: Fitted, dataset: PanelDataset) -> dict:
        """No held-out part: the training's record, and the validation score that picked the weights kept."""
        result, config = fitted.training, fitted.model.config
        return {
            "steps": result.steps,
            "seconds": round(result.elapsed, 1),
            "train_values_per_second": round(result.elements_per_second),
            "stopped_because": result.stopped_because,
            f"validation_{config.validation}": result.best_valid_nll,
            "series": len(dataset.panel),
            "left_out": len(dataset.panel.left_out),
        }


def best_progress(result: TrainingResult) -> Progress:
    """Where the training stood at the validation whose weights were kept (what ``RunCheckpoints.save_best``
    records), or at its end when no validation ran."""
    history = result.history
    best = next((k for k, r in enumerate(history) if r.get("valid_nll") == result.best_valid_nll), None)
    if best is None:
        return Progress(result.steps, result.elapsed, result.best_valid_nll, 0, history)
    kept = history[best]
    return Progress(kept["step"], kept["elapsed"], result.best_valid_nll, len(history) - best - 1, history)


def _register() -> None:
    """One family per cell, named as the panel backtest names the global models (``GLOBAL_MODELS``)."""
    for name, cell in GLOBAL_MODELS.items():
        type(f"Global{cell.upper()}Family", (GlobalFamily,), {"name": name, "cell": cell, "__module__": __name__})


_register()


__all__ = ["GlobalFamily", "PanelDataset", "default_horizon", "panel_record"]
