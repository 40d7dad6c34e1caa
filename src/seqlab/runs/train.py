"""``train``: fit a model of any registered family on text, a CSV series or audio into a run directory.

    load    the data (``TrainSpec.data``, or the default data; a resumed run: the checkpoint's), as the family
            reads it (``Family.load``: one dataset, or a panel of series)
    check   the family's options, typed and checked against the data (``Family.check``), before anything is written
    claim   the run folder (marker, lock, safe overwrite: ``run_directory``)
    fit     the family's fit: the Trainer with checkpoints (neural families), or one go (counts, closed form,
            maximum likelihood); the model is saved into the folder and committed
    score   the saved model on the held-out part
    write   the scores as training.json's ``final``

Each family is one object (``runs/family.py``): ``runs/train_neural.py`` (latent AR with its cells, neural AR,
the transformer), ``runs/train_classical.py`` (n-gram, Markov chain, the naive model, linear AR, random walk, ETS),
``runs/train_garch.py``, ``runs/train_pool.py`` and ``runs/train_global.py`` (one network on a whole panel).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab import atomic, io
from seqlab.base import SequenceModel
from seqlab.data.dataset import Dataset, data_kind
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError
from seqlab.runs import (
    checkpoints,
    progress,
    run_directory,
    train_classical,
    train_garch,
    train_global,
    train_neural,
    train_pool,
)
from seqlab.runs.family import FAMILIES, Family, FitContext, OneGoFamily
from seqlab.runs.train_neural import DEFAULT_CELL, DEFAULT_TIME_BUDGET, KIND_DEFAULTS, RESUMABLE
from seqlab.runs.train_spec import TrainSpec
from seqlab.training import SCORE_LIMIT, TrainingResult

DEFAULT_DATA = "shakespeare"
DEFAULT_FAMILY = "latent_ar"
# the modules whose families register
REGISTERED = (train_classical, train_garch, train_neural, train_pool, train_global)
__all__ = ["DEFAULT_CELL", "DEFAULT_TIME_BUDGET", "KIND_DEFAULTS", "RESUMABLE", "TrainResult", "TrainSpec", "train"]


@dataclass
class TrainResult:
    out: Path
    dataset: Dataset
    model: SequenceModel  # the model saved in out (the neural families: the best checkpoint)
    training: TrainingResult | None  # the Trainer's record; None for a family fitted in one go (GARCH, n-gram ...)
    final: dict | None  # held-out scores of the saved model (None without a held-out part)
    main_process: bool = True


def main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes and prints


def family_named(name: str) -> Family:
    if name not in FAMILIES:
        raise OptionError(f"unknown model family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def train(spec: TrainSpec, say: Callable[[str], None] = print) -> TrainResult:
    family = family_named(spec.family or DEFAULT_FAMILY)
    main = main_process()
    family.refuse_settings(spec)
    if spec.resume:
        family, run, dataset, settings, model = resume(family, spec, main)
        out = run.path
    else:
        data = spec.data or DataSpec(DEFAULT_DATA)
        family.check_kind_of(data_kind(data.source), data.source)  # before reading (a WAV's analysis takes time)
        with progress.analysing(data.source, spec.progress and main) as analysed:
            dataset = family.load(data, spec, analysed)
        settings = family.check(spec, dataset)
        out = spec.out or run_directory.default_run_dir(dataset.spec, family.run_name(settings))
        run = run_directory.claim(out, overwrite=spec.overwrite, main=main)
        with run_directory.released_on_error(run):
            model = family.build(dataset, settings)
    say = say if main else (lambda *a, **k: None)
    score_limit = spec.trainer.get("score_limit", SCORE_LIMIT)
    context = FitContext(say, spec.progress, spec.resume, main, score_limit)
    try:
        fitted = family.fit(model, dataset, settings, run, context)
        interrupted = fitted.training is not None and fitted.training.stopped_because == "interrupted"
        if interrupted or not main:
            return TrainResult(out, dataset, fitted.model, fitted.training, None, main)
        final = family.score(fitted, dataset)
        if final is not None:
            checkpoints.write_final_scores(out, final)
    finally:
        run.close()  # unlocks; a replacing run that failed before its first checkpoint leaves the old one
    return TrainResult(out, dataset, fitted.model, fitted.training, final, main)


def resume(
    family: Family, spec: TrainSpec, main: bool
) -> tuple[Family, run_directory.RunDirectory, Dataset, Any, SequenceModel]:
    """(family, claimed run, dataset, settings, model) of the run to continue: the checkpoint in ``out/last``, with
    its saved data and settings; its family is the checkpoint's (a family given must match it)."""
    out = spec.out or Path("runs") / family.resume_name(spec)
    run = run_directory.claim(out, resume=True, main=main)
    with run_directory.released_on_error(run):
        refuse_a_one_go_run(out)
        model = io.load(checkpoints.last_checkpoint(out))
        saved = next((f for f in FAMILIES.values() if f.trains and f.kind == model.kind), None)
        if saved is None:
            raise OptionError(f"{out}: holds a {model.kind} model, which has nothing to {{0}}", "resume")
        if spec.family is not None and saved is not family:
            raise OptionError(f"{out}: holds a {saved.name} model, but {{0}} {spec.family} was given", "family")
        dataset, settings = saved.resumed(spec, out, model)
    return saved, run, dataset, settings, model


def refuse_a_one_go_run(out: Path) -> None:
    """A run of a family fitted in one go (no ``last/``) says so, rather than that a checkpoint is missing."""
    config = out / io.CONFIG_FILE
    if (out / run_directory.LAST_DIR).exists() or not config.is_file():
        return
    kind = atomic.read_json(config).get("model")
    family = next((f for f in FAMILIES.values() if isinstance(f, OneGoFamily) and f.kind == kind), None)
    if family is not None:
        why = f"{out}: holds a {family.name} model; {family.fitted_how} and has nothing to {{0}}; use {{1}}"
        raise OptionError(why, "resume", "overwrite")
