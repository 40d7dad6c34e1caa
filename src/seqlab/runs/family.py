"""What ``seqlab train`` asks of a model family: one object per family, each with the same steps.

    check(spec, dataset) -> settings          the options given, typed and checked against the data (before a run
                                              folder is claimed: a bad option leaves nothing behind)
    build(dataset, settings) -> model         a fresh model of the data's kind, recording the data (``trained_on``)
    fit(model, dataset, settings, run, ctx)   fitted and saved into the claimed run folder, committed -> ``Fitted``
    score(fitted, dataset) -> dict | None     the held-out scores, saved as training.json's ``final``

Two shapes share them: a family fitted in one go (counts, closed form, maximum likelihood: ``OneGoFamily``, whose
subclasses write only ``check``, ``build`` and ``fit_model``), and one trained step by step by the ``Trainer``
with checkpoints and resume (``runs/train_neural.py``). A subclass with a ``name`` registers itself in
``FAMILIES`` (what ``--model`` names), so adding a family is one class in one module that ``runs/train.py``
imports; the options it reads are keys of ``TrainSpec.model`` (the CLI spells them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from seqlab import io
from seqlab.base import SequenceModel
from seqlab.data.dataset import Dataset
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models.pool import member_view
from seqlab.runs.run_directory import RunDirectory
from seqlab.runs.train_spec import TrainSpec
from seqlab.training import SCORE_LIMIT, TrainingResult, score_held_out

FAMILIES: dict[str, Family] = {}  # --model name -> the family, in the order the modules define them
# what a family fitted in one go takes of the trainer's settings
TRAINER_SETTINGS_ALLOWED = ("seed", "score_limit")


@dataclass
class FitContext:
    say: Callable[[str], None]  # a line for the person watching
    progress: bool = True  # progress bars
    resume: bool = False  # continue the checkpoint in the run folder
    main: bool = True  # under torchrun: the process that writes and prints
    score_limit: int | None = SCORE_LIMIT  # the held-out elements scored whole (beyond: sampled blocks; None: all)


@dataclass
class Fitted:
    model: SequenceModel  # the model saved in the run folder (the neural families: the best checkpoint)
    training: TrainingResult | None = None  # the Trainer's record; None for a family fitted in one go
    record: dict = field(default_factory=dict)  # a one-go fit's record: the start of ``final``
    score_limit: int | None = SCORE_LIMIT  # how much of the held-out part the final score reads whole


class Family:
    """One model family as ``seqlab train`` fits it (the module docstring lists the steps)."""

    name: ClassVar[str] = ""  # what --model names (TrainSpec.family); registers the family in FAMILIES
    kind: ClassVar[str] = ""  # the kind its models are saved as (seqlab.io)
    options: ClassVar[tuple[str, ...]] = ()  # the TrainSpec.model keys it reads
    data_kinds: ClassVar[tuple[str, ...]] = ("text", "series", "audio")  # the kinds of data it models
    models_what: ClassVar[str] = ""  # "models text (give a text file)": said when the data are another kind
    trains: ClassVar[bool] = False  # trained by the Trainer: steps, checkpoints, resume

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            FAMILIES[cls.name] = cls()

    def refuse_settings(self, spec: TrainSpec) -> None:
        """Settings this family never takes (one fitted in one go: the trainer's; a resumed run: changed ones)."""

    def load(self, data: DataSpec, spec: TrainSpec, analysed: Callable[[float, float], None] | None) -> Dataset:
        """The data to fit, read once (``load_dataset``; a family of panels reads every series its own way)."""
        return load_dataset(data, analysed)

    def check(self, spec: TrainSpec, dataset: Dataset) -> Any:
        raise NotImplementedError

    def resumed(self, spec: TrainSpec, out: Path, model: SequenceModel) -> tuple[Dataset, Any]:
        """The data and settings a resumed run continues with (a family the Trainer trains)."""
        raise NotImplementedError

    def build(self, dataset: Dataset, settings: Any) -> SequenceModel:
        raise NotImplementedError

    def fit(
        self, model: SequenceModel, dataset: Dataset, settings: Any, run: RunDirectory, context: FitContext
    ) -> Fitted:
        raise NotImplementedError

    def score(self, fitted: Fitted, dataset: Dataset) -> dict | None:
        raise NotImplementedError

    def run_name(self, settings: Any) -> str:
        """The default run folder's name: runs/NAME for text, runs/DATA-NAME otherwise."""
        return self.name

    def resume_name(self, spec: TrainSpec) -> str:
        """The run folder a resumed run continues when no ``out`` is given."""
        return self.name

    def check_data_kind(self, dataset: Dataset) -> None:
        self.check_kind_of(dataset.kind, dataset.spec.source)

    def check_kind_of(self, kind: str, source: str) -> None:
        """Data of a kind this family does not model: one line, asked as soon as the kind is known (a file's name
        tells it before the file is read, so a WAV is refused before its vocoder analysis)."""
        if kind not in self.data_kinds:
            raise SeqlabError(f"{source}: {kind} data; {self.models_what}")

    def refuse_others_options(self, spec: TrainSpec) -> None:
        """Options of other families only: "--vol: options of --model garch only", grouped by their families."""
        foreign = [k for k in spec.model if k not in self.options]
        owners: dict[tuple[str, ...], list[str]] = {}
        for key in foreign:
            names = tuple(f.name for f in FAMILIES.values() if key in f.options)
            owners.setdefault(names, []).append(key)
        for names, keys in owners.items():
            if not names:
                raise OptionError("{all}: not an option of any model family", *keys)
            raise OptionError(f"{{all}}: options of --model {' or '.join(names)} only", *keys)


class OneGoFamily(Family):
    """A family fitted in one go: no trainer, no checkpoints; ``fit_model`` fits, then the model is saved into the
    run folder (committed: an old run it replaces goes only then) and scored one step ahead on the held-out part."""

    fitted_how: ClassVar[str] = ""  # "a pool is fitted in one go": why it has nothing to --resume
    refusal_note: ClassVar[str | None] = None  # after "--model X takes no ..." (None: the options it does take)
    seconds_digits: ClassVar[int] = 4  # of ``fit_seconds`` in the record

    def refuse_settings(self, spec: TrainSpec) -> None:
        """No resume, none of the trainer's settings but the seed, none of the neural models' options."""
        if spec.resume:
            raise OptionError(self.fitted_how + " and has nothing to {0}; use {1}", "resume", "overwrite")
        wrong = [k for k in spec.model if k not in self.options]
        wrong += [k for k in spec.trainer if k not in TRAINER_SETTINGS_ALLOWED]
        if not wrong:
            return
        wrong_slots = ", ".join(f"{{{i}}}" for i in range(1, len(wrong) + 1))
        if self.refusal_note is not None:
            raise OptionError(f"{{0}} {self.name} takes no {wrong_slots}{self.refusal_note}", "family", *wrong)
        slots = ", ".join(f"{{{i}}}" for i in range(len(wrong) + 1, len(wrong) + 1 + len(self.options)))
        takes = f" (it takes {slots})" if self.options else " (it takes no model options)"
        raise OptionError(f"{{0}} {self.name} takes no {wrong_slots}{takes}", "family", *wrong, *self.options)

    def fit_model(self, model: SequenceModel, dataset: Dataset, settings: Any, context: FitContext) -> dict:
        """Fit ``model`` on the training part; returns what the fit recorded (``train_values`` or the like first)."""
        raise NotImplementedError

    def fit(
        self, model: SequenceModel, dataset: Dataset, settings: Any, run: RunDirectory, context: FitContext
    ) -> Fitted:
        t0 = time.perf_counter()
        record = self.fit_model(model, dataset, settings, context)
        seconds = time.perf_counter() - t0
        model.trained_on(dataset)
        io.save(model, run.work)
        run.commit()
        record = {"fit_seconds": round(seconds, self.seconds_digits), **record}
        return Fitted(model, None, record, context.score_limit)

    def held_out(self, model: SequenceModel, dataset: Dataset) -> tuple[torch.Tensor, str] | None:
        """log P of each held-out value of a series given the training part before it (a filter's state, a lag)
        and what they are given, or None without a held-out part."""
        if not len(dataset.valid):
            return None
        train, valid = self.series_parts(model, dataset)
        return model.log_prob(np.concatenate([train, valid]))[len(train) :], "the training part before it"

    def series_parts(self, model: SequenceModel, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """The training and held-out parts as the model reads them: the values, or the rows with covariates."""
        train, valid = dataset.train.double().numpy(), dataset.valid.double().numpy()
        reads = model.num_covariates > 0
        return member_view(train, reads), member_view(valid, reads)

    def score(self, fitted: Fitted, dataset: Dataset) -> dict:
        final = dict(fitted.record)
        model = fitted.model
        if dataset.kind == "text" and len(dataset.valid):  # alone, as the neural models score it, in chunks
            source = f"{dataset.spec.source} (validation part)"
            ids = model.encode(dataset.valid, unknown="map", source=source)
            scores = score_held_out(model, ids, dataset.elements, model.head.discrete, fitted.score_limit)
            return final | {f"valid_{k}": v for k, v in scores.items()}
        held_out = self.held_out(fitted.model, dataset)
        if held_out is not None:
            log_probs, given = held_out
            scores = likelihood_scores(log_probs, dataset.elements, fitted.model.head.discrete)
            final |= {f"valid_{k}": v for k, v in scores.items()}
            if given:
                final["valid_given"] = given
        return final


def one_series(dataset: Dataset, name: str, covariates_read: int = 0) -> None:
    """A family that fits one series without covariates: several series, or covariates it would not read, are
    refused by name (the covariates' options named), before a folder is claimed."""
    dataset.check_one_series(name)
    covariates = dataset.train.shape[1] - 1 if dataset.train.dim() == 2 else 0
    if covariates != covariates_read:
        raise OptionError(
            f"{dataset.spec.source}: {name} reads no covariates (the data have {covariates}); "
            "leave out {0} and {1}",
            "covariates",
            "features",
        )
