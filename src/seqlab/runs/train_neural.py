"""``train --model rnn | lstm | gru | latent_ar | neural_ar | transformer``: the neural families, trained by the
one ``Trainer`` on text, a CSV series or audio into a run directory, with checkpoints and resume.

A new run builds the model for the data's kind (a vocabulary, mu-law levels, vocoder frames, or a standardised
series with its transform: ``ElementsModel.for_dataset``), trains it and scores the best checkpoint on the
held-out part. A resumed run continues the checkpoint in ``out/last`` with its saved data and settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import torch

from seqlab import io
from seqlab.data.dataset import Dataset
from seqlab.data.spec import load_dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.models.elements import ElementsModel
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.transformer import CausalTransformer, CausalTransformerConfig
from seqlab.runs import checkpoints, progress, run_data, run_directory, sizing
from seqlab.runs.family import Family, FitContext, Fitted
from seqlab.runs.run_directory import RunDirectory
from seqlab.runs.train_spec import TrainSpec
from seqlab.training import Trainer, TrainerConfig, score_held_out

DEFAULT_CELL = "lstm"
DEFAULT_TIME_BUDGET = 240.0  # seconds: the README's main job finishes in under 5 minutes
RESUMABLE = ("steps", "time_budget")  # the only settings a resumed run may change
# defaults that differ by the kind of data (text takes the library's): a price series is short and noisy,
# audio is long and wants the GRU the streaming sampler is measured with. The model's fields are the latent AR
# model's (measured with it); the trainer's apply to every neural family.
KIND_DEFAULTS = {
    "text": {},
    "series": {"cell": "gru", "hidden_size": 64},  # the trainer's settings: sized by the data (models/sizing.py)
    "audio": {"cell": "gru", "hidden_size": 256, "batch_size": 32, "window": 128, "eval_every": 100},
    # vocoder frames (the default for audio; docs/audio.md has the measurements behind each choice)
    "vocoder": {
        "cell": "lstm",
        "hidden_size": 128,
        "head": "gaussian",
        "input_noise": 0.3,
        "batch_size": 16,
        "window": 64,
        "lr": 4e-3,
        "eval_every": 250,
        # a step count, so that every machine trains the same voice (docs/audio.md, "The same voice every time"),
        # with a ceiling for a slow or crowded machine (the cosine schedule then follows the clock)
        "steps": 10_000,
        "time_budget": 600.0,
    },
}
TRAINER_FIELDS = tuple(f.name for f in fields(TrainerConfig))


@dataclass
class NeuralSettings:
    model: LatentARConfig | NeuralARConfig | CausalTransformerConfig  # the family's config
    trainer: TrainerConfig


class NeuralFamily(Family):
    """A model trained by the ``Trainer``; ``fields`` maps the options it reads to its config's fields."""

    trains = True
    model_class: ClassVar[type[ElementsModel]]
    fields: ClassVar[dict[str, str]] = {}  # TrainSpec.model key -> config field
    kind_defaults: ClassVar[bool] = False  # whether KIND_DEFAULTS' model fields apply (measured for latent AR)

    @property
    def options(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.fields)

    # -- check, build -------------------------------------------------------------------------------------------
    def check(self, spec: TrainSpec, dataset: Dataset) -> NeuralSettings:
        defaults = kind_defaults(dataset)
        config_fields = {f.name for f in fields(self.model_class.config_class)}
        given = {self.fields[k]: v for k, v in spec.model.items()}
        chosen = {k: v for k, v in defaults.items() if k in config_fields} if self.kind_defaults else {}
        config = self.model_class.config_class(**(chosen | given))
        return NeuralSettings(config, trainer_config(spec, dataset, defaults))

    def build(self, dataset: Dataset, settings: NeuralSettings) -> ElementsModel:
        torch.manual_seed(settings.trainer.seed)
        return self.model_class.for_dataset(dataset, settings.model)

    # -- resume ------------------------------------------------------------------------------------------------
    def refuse_settings(self, spec: TrainSpec) -> None:
        """Options of other families only; a resumed run continues with the saved settings: only the budget may
        change."""
        self.refuse_others_options(spec)
        if not spec.resume:
            return
        data_fields = [k for k in (spec.data.to_json() if spec.data else {}) if k != "source"]
        fixed = [k for k in (*spec.model, *spec.trainer, *data_fields) if k not in (*RESUMABLE, "cell")]
        if fixed:
            slots = ", ".join(f"{{{i + 2}}}" for i in range(len(fixed)))
            raise OptionError(
                f"resume continues with the saved settings; only {{0}} and {{1}} can change (got {slots})",
                *RESUMABLE,
                *fixed,
            )

    def resumed(self, spec: TrainSpec, out: Path, model: ElementsModel) -> tuple[Dataset, NeuralSettings]:
        """The data and settings saved with the checkpoint ``model`` of ``out/last``."""
        meta, trainer_fields = checkpoints.resume_record(out)
        last = checkpoints.last_checkpoint(out)
        saved = model.data_spec or run_data.recorded_data(meta, model, last / run_directory.TRAINER_FILE)
        if spec.data is not None and spec.data.resolved().source != saved.resolved().source:
            raise SeqlabError(f"{out}: was trained on {saved.source}, cannot resume on {spec.data.source}")
        run_data.check_fingerprint(meta, saved, out)
        trainer_fields.update(spec.trainer)
        return load_dataset(saved), NeuralSettings(model.config, TrainerConfig(**trainer_fields))

    # -- fit, score --------------------------------------------------------------------------------------------
    def fit(
        self, model: ElementsModel, dataset: Dataset, settings: NeuralSettings, run: RunDirectory, context: FitContext
    ) -> Fitted:
        """Train into ``run`` (an overwritten run is replaced at its first checkpoint); the best checkpoint."""
        say, config, main = context.say, settings.trainer, context.main
        source = dataset.spec.source
        train_ids = model.encode(dataset.train, source=f"{source} (training part)")
        valid_ids = valid_elements(model, dataset)
        selection_ids = valid_ids  # what picks the best checkpoint
        if dataset.elements == "frames":  # the last checkpoint: held-out likelihood picks a worse voice (docs/audio.md)
            selection_ids = None
        if dataset.kind == "series":  # never the part the final scores are on: the tail of the training part
            train_ids, selection_ids = sizing.split_tail(train_ids)
            if (notice := sizing.short_series_notice(train_ids)) is not None:
                say(f"seqlab: {notice}")
        budget = f"{config.steps} steps" if config.steps else f"{config.time_budget:g} s"
        if config.steps and config.time_budget:
            budget += f" (at most {config.time_budget:g} s)"
        say(f"seqlab: {model.describe()}")
        what = dataset.elements
        if dataset.transform is not None:
            what = f"{what} ({', '.join(dataset.meta['series'])}; transform {dataset.spec.transform})"
        n_valid = 0 if valid_ids is None else len(valid_ids)
        tail = ""
        if dataset.kind == "series":
            n_tail = 0 if selection_ids is None else len(selection_ids)
            tail = f" (+{n_tail:,} held back from the end of the training part to pick the checkpoint)"
        say(
            f"seqlab: data {source}: {len(train_ids):,} training{tail}, {n_valid:,} validation {what}; "
            f"budget {budget}; writing {run.path}"
        )
        record = {**dataset.meta, **run_data.data_fingerprint(dataset.spec)}
        trainer = Trainer(model, config, checkpoints.RunCheckpoints(run, record))
        with progress.shown(trainer, dataset.elements, context.progress and main), progress.ctrl_c_stops(trainer, main):
            result = trainer.fit(train_ids, selection_ids, resume=context.resume)
        if result.stopped_because == "interrupted" or not main:
            return Fitted(model, result)
        return Fitted(io.load(run.path), result, score_limit=config.score_limit)

    def score(self, fitted: Fitted, dataset: Dataset) -> dict | None:
        """The best checkpoint's held-out scores with the training's numbers; None without a held-out part."""
        best, result = fitted.model, fitted.training
        valid_ids = valid_elements(best, dataset)
        if valid_ids is None:
            return None
        t0 = time.perf_counter()
        scores = score_held_out(best, valid_ids, dataset.elements, best.head.discrete, fitted.score_limit)
        final = {
            "steps": result.steps,
            "seconds": round(result.elapsed, 1),
            "train_elements_per_second": round(result.elements_per_second),
            "stopped_because": result.stopped_because,
            **{f"valid_{k}": v for k, v in scores.items()},
            "valid_seconds": round(time.perf_counter() - t0, 1),
        }
        if dataset.kind == "text":
            final["train_chars_per_second"] = final["train_elements_per_second"]  # the older key, kept for text
        return final


class LatentARFamily(NeuralFamily):
    name = kind = "latent_ar"
    model_class = LatentAR
    fields = {
        name: name
        for name in ("cell", "hidden_size", "num_layers", "embedding_dim", "dropout", "reset", "backend", "head")
    }
    fields |= {"components": "components", "forget_init": "forget_init"}
    kind_defaults = True

    def run_name(self, settings: NeuralSettings) -> str:
        return settings.model.cell

    def resume_name(self, spec: TrainSpec) -> str:
        return spec.model.get("cell", DEFAULT_CELL)

    def resumed(self, spec: TrainSpec, out: Path, model: ElementsModel) -> tuple[Dataset, NeuralSettings]:
        cell = spec.model.get("cell")
        if cell and cell != model.config.cell:
            raise OptionError(f"{out}: holds a {model.config.cell} model, but {{0}} {cell} was given", "cell")
        return super().resumed(spec, out, model)


class NeuralARFamily(NeuralFamily):
    name = kind = "neural_ar"
    model_class = NeuralAR
    fields = {"context": "window", "hidden_size": "hidden_size", "num_layers": "num_layers"}
    fields |= {"embedding_dim": "embedding_dim", "dropout": "dropout", "head": "head", "components": "components"}


class TransformerFamily(NeuralFamily):
    name = "transformer"
    kind = "causal_transformer"
    model_class = CausalTransformer
    fields = {"context": "context", "hidden_size": "d_model", "num_layers": "num_layers", "num_heads": "num_heads"}
    fields |= {"dropout": "dropout", "head": "head", "components": "components"}


def kind_defaults(dataset: Dataset) -> dict:
    return KIND_DEFAULTS["vocoder" if dataset.elements == "frames" else dataset.kind]


def trainer_config(spec: TrainSpec, dataset: Dataset, defaults: dict) -> TrainerConfig:
    """The trainer's settings: those given, else the data kind's defaults; a series is sized by its length (passes,
    a window that fits, early stopping: models/sizing.py); without a budget, ``DEFAULT_TIME_BUDGET``."""
    trainer_fields = {k: v for k, v in defaults.items() if k in TRAINER_FIELDS}
    if dataset.kind == "series":
        fit_part, _ = sizing.split_tail(dataset.train)
        trainer_fields = sizing.trainer_options(len(fit_part))
        if any(k in spec.trainer for k in RESUMABLE):
            trainer_fields.pop("steps")
    if any(k in spec.trainer for k in RESUMABLE):  # a budget given replaces the kind's default steps and ceiling
        trainer_fields.pop("time_budget", None)
        trainer_fields.pop("steps", None)
    trainer_fields.update(spec.trainer)
    if "steps" not in trainer_fields and "time_budget" not in trainer_fields:
        trainer_fields["time_budget"] = DEFAULT_TIME_BUDGET
    return TrainerConfig(**trainer_fields)


def valid_elements(model: ElementsModel, dataset: Dataset) -> torch.Tensor | None:
    """The held-out part as the model's elements (text: unseen characters mapped to the unknown symbol)."""
    if not len(dataset.valid):
        return None
    unknown = "map" if dataset.kind == "text" else "error"
    return model.encode(dataset.valid, unknown=unknown, source=f"{dataset.spec.source} (validation part)")
