"""``train``: fit a latent AR model (RNN, LSTM, GRU) on text, a CSV series or audio into a run directory.

A new run reads ``TrainSpec.data``, builds the model for the data's kind (a vocabulary, mu-law levels, or a
standardised series with its transform), trains it with the one ``Trainer`` and scores the best model on the
held-out part. A resumed run continues the checkpoint in ``out/last`` with its saved data and settings.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

import torch

from seqlab import io
from seqlab.data.dataset import Dataset
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models import sizing
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.runs import progress, run_directory
from seqlab.runs.run_directory import RunCheckpoints, RunDirectory
from seqlab.runs.train_garch import GARCH_OPTIONS, train_garch
from seqlab.runs.train_pool import POOL_OPTIONS, pool_options, train_pool
from seqlab.training import Trainer, TrainerConfig, TrainingResult

CLI_MODELS = ("rnn", "lstm", "gru")  # what `seqlab train` builds: LatentAR with this cell
# the classical models `seqlab train` fits, by maximum likelihood (runs/train_garch.py; --vol picks gjr or egarch);
# LinearAR, RandomWalk and the n-gram family are fitted where they are compared (backtest, compare)
CLI_CLASSICAL_MODELS = ("garch",)
POOL_MODELS = ("pool",)  # a linear pool of forecasters (runs/train_pool.py)
DEFAULT_DATA = "shakespeare"
DEFAULT_CELL = "lstm"
DEFAULT_TIME_BUDGET = 240.0  # seconds: the README's main job finishes in under 5 minutes
RESUMABLE = ("steps", "time_budget")  # the only settings a resumed run may change
# defaults that differ by the kind of data (text takes the library's): a price series is short and noisy,
# audio is long and wants the GRU the streaming sampler is measured with
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
    },
}
MODEL_FIELDS = tuple(f.name for f in fields(LatentARConfig))
TRAINER_FIELDS = tuple(f.name for f in fields(TrainerConfig))


@dataclass
class TrainSpec:
    data: DataSpec | None = None  # None: the default data (a new run) or the saved data (resume)
    model: dict = field(default_factory=dict)  # the family's fields given (LatentARConfig's, cell included)
    trainer: dict = field(default_factory=dict)  # TrainerConfig fields given
    out: Path | None = None  # None: run_directory.default_run_dir
    resume: bool = False
    overwrite: bool = False
    family: str = "latent_ar"  # latent_ar (model: LatentARConfig fields), or garch (model: GARCH_OPTIONS)


@dataclass
class TrainResult:
    out: Path
    dataset: Dataset
    model: LatentAR  # the best model, as saved in out
    training: TrainingResult | None  # None: a model fitted in closed form / by maximum likelihood (GARCH)
    final: dict | None  # held-out scores of the best model (None without a held-out part)
    main_process: bool = True


def main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes and prints


def prepare(spec: TrainSpec) -> tuple[Path, Dataset, LatentAR, TrainerConfig, RunDirectory]:
    """(out, dataset, model, trainer config, the claimed run directory) for ``spec``."""
    if spec.resume:
        data_fields = [k for k in (spec.data.to_json() if spec.data else {}) if k != "source"]
        fixed = [k for k in (*spec.model, *spec.trainer, *data_fields) if k not in (*RESUMABLE, "cell", "progress")]
        if fixed:
            slots = ", ".join(f"{{{i + 2}}}" for i in range(len(fixed)))
            raise OptionError(
                f"resume continues with the saved settings; only {{0}} and {{1}} can change (got {slots})",
                *RESUMABLE,
                *fixed,
            )
        out = spec.out or Path("runs") / spec.model.get("cell", DEFAULT_CELL)
        run = run_directory.claim(out, resume=True, main=main_process())
        with run_directory.released_on_error(run):
            return (*resumed(spec, out), run)
    dataset = load_dataset(spec.data or DataSpec(DEFAULT_DATA))
    defaults = KIND_DEFAULTS["vocoder" if dataset.elements == "frames" else dataset.kind]
    model_fields = {k: v for k, v in defaults.items() if k in MODEL_FIELDS} | spec.model
    model_fields.setdefault("cell", DEFAULT_CELL)
    out = spec.out or run_directory.default_run_dir(dataset.spec, model_fields["cell"])
    run = run_directory.claim(out, overwrite=spec.overwrite, main=main_process())
    with run_directory.released_on_error(run):
        return (out, dataset, *new_run(spec, dataset, model_fields, defaults), run)


def resumed(spec: TrainSpec, out: Path) -> tuple[Path, Dataset, LatentAR, TrainerConfig]:
    """The checkpoint in ``out/last`` to continue, with its saved data and settings."""
    meta, trainer_fields = run_directory.resume_record(out)
    last = run_directory.last_checkpoint(out)
    model = io.load(last, expect=LatentAR.kind)
    cell = spec.model.get("cell")
    if cell and cell != model.config.cell:
        raise OptionError(f"{out}: holds a {model.config.cell} model, but {{0}} {cell} was given", "cell")
    saved = model.data_spec or run_directory.recorded_data(meta, model, last / run_directory.TRAINER_FILE)
    if spec.data is not None and spec.data.resolved().source != saved.resolved().source:
        raise SeqlabError(f"{out}: was trained on {saved.source}, cannot resume on {spec.data.source}")
    run_directory.check_fingerprint(meta, saved, out)
    trainer_fields.update(spec.trainer)
    return out, load_dataset(saved), model, TrainerConfig(**trainer_fields)


def new_run(spec: TrainSpec, dataset: Dataset, model_fields: dict, defaults: dict) -> tuple[LatentAR, TrainerConfig]:
    torch.manual_seed(spec.trainer.get("seed", 0))
    model = LatentAR.for_dataset(dataset, LatentARConfig(**model_fields))
    trainer_fields = {k: v for k, v in defaults.items() if k in TRAINER_FIELDS}
    if dataset.kind == "series":  # sized by the data: passes, a window that fits, early stopping (models/sizing.py)
        fit_part, _ = sizing.split_tail(model.encode(dataset.train, source=dataset.spec.source))
        trainer_fields = sizing.trainer_options(len(fit_part))
        if any(k in spec.trainer for k in RESUMABLE):
            trainer_fields.pop("steps")
    if any(k in spec.trainer for k in RESUMABLE):
        trainer_fields.pop("time_budget", None)
    trainer_fields.update(spec.trainer)
    if "steps" not in trainer_fields and "time_budget" not in trainer_fields:
        trainer_fields["time_budget"] = DEFAULT_TIME_BUDGET
    return model, TrainerConfig(**trainer_fields)


def train(spec: TrainSpec, say: Callable[[str], None] = print) -> TrainResult:
    if spec.family in CLI_CLASSICAL_MODELS:
        return fit_classical(spec, say)
    if spec.family in POOL_MODELS:
        return fit_pool(spec, say)
    if pool_only := [k for k in ("members", "pool_prior") if k in spec.model]:
        raise OptionError("{all}: options of --model pool only", *pool_only)
    if spec.family != "latent_ar":
        families = ", ".join((*CLI_CLASSICAL_MODELS, *POOL_MODELS))
        raise OptionError(f"unknown model family {spec.family!r}; choose latent_ar or {families}")
    garch_only = [k for k in GARCH_OPTIONS if k in spec.model]
    if garch_only:
        raise OptionError("{all}: options of --model garch only", *garch_only)
    out, dataset, model, config, run = prepare(spec)
    try:
        return fit_and_score(spec, out, dataset, model, config, run, say)
    finally:
        run.close()  # unlocks; a replacing run that failed before its first checkpoint leaves the old one


def fit_and_score(
    spec: TrainSpec, out: Path, dataset: Dataset, model: LatentAR, config: TrainerConfig, run: RunDirectory, say
) -> TrainResult:
    main = main_process()
    say = say if main else (lambda *a, **k: None)
    source = dataset.spec.source
    train_ids = model.encode(dataset.train, source=f"{source} (training part)")
    valid_ids = None
    if len(dataset.valid):
        unknown = "map" if dataset.kind == "text" else "error"
        valid_ids = model.encode(dataset.valid, unknown=unknown, source=f"{source} (validation part)")
    selection_ids = valid_ids  # what picks the best checkpoint
    if dataset.elements == "frames":  # the last checkpoint: held-out likelihood picks a worse voice (docs/audio.md)
        selection_ids = None
    if dataset.kind == "series":  # never the part the final scores are on: the tail of the training part
        train_ids, selection_ids = sizing.split_tail(train_ids)
        if (notice := sizing.short_series_notice(train_ids)) is not None:
            say(f"seqlab: {notice}")
    budget = f"{config.steps} steps" if config.steps else f"{config.time_budget:g} s"
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
        f"seqlab: data {source}: {len(train_ids):,} training{tail}, {n_valid:,} validation {what}; budget {budget}; "
        f"writing {out}"
    )
    record = {**dataset.meta, **run_directory.data_fingerprint(dataset.spec)}
    trainer = Trainer(model, config, RunCheckpoints(run, record))  # an overwritten run is replaced at its first
    with progress.shown(trainer, dataset.elements, config.progress and main), progress.ctrl_c_stops(trainer, main):
        result = trainer.fit(train_ids, selection_ids, resume=spec.resume)
    if result.stopped_because == "interrupted" or not main:
        return TrainResult(out, dataset, model, result, None, main)
    best = io.load(out)
    final = None
    if valid_ids is not None:
        t0 = time.perf_counter()
        scores = likelihood_scores(best.log_prob(valid_ids), dataset.elements, best.head.discrete)
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
        run_directory.write_final_scores(out, final)
    return TrainResult(out, dataset, best, result, final, main)


def fit_classical(spec: TrainSpec, say: Callable[[str], None]) -> TrainResult:
    """``--model garch``: no trainer; only the GARCH options and the seed may be given."""
    refuse_neural_settings(
        spec, "garch", GARCH_OPTIONS, "a GARCH fit takes milliseconds", " (options of the neural models)"
    )
    options = {k: v for k, v in spec.model.items() if k in GARCH_OPTIONS}
    return fit_in_one_go(
        spec, options.get("vol", "garch"), lambda dataset: partial(train_garch, dataset, options, say=say)
    )


def fit_pool(spec: TrainSpec, say: Callable[[str], None]) -> TrainResult:
    """``--model pool``: the members fitted and weighted (runs/train_pool.py); no resume, no trainer options."""
    refuse_neural_settings(spec, "pool", POOL_OPTIONS, "a pool is fitted in one go")

    def fitter(dataset: Dataset) -> Callable:
        options = pool_options(dataset, spec.model, spec.trainer)  # the members' settings, before a folder is claimed
        return partial(train_pool, dataset, options, say=say, progress=spec.trainer.get("progress", True))

    return fit_in_one_go(spec, "pool", fitter)


def refuse_neural_settings(spec: TrainSpec, family: str, allowed: tuple[str, ...], why: str, what: str = "") -> None:
    """A family fitted by likelihood in one go: no resume, and of the trainer's settings only the seed."""
    if spec.resume:
        raise OptionError(why + " and has nothing to {0}; use {1}", "resume", "overwrite")
    wrong = [k for k in spec.model if k not in allowed]
    wrong += [k for k in spec.trainer if k not in ("seed", "progress")]
    if wrong:
        raise OptionError(f"--model {family} takes no {{all}}{what}", *wrong)


def fit_in_one_go(spec: TrainSpec, name: str, fitter: Callable[[Dataset], Callable]) -> TrainResult:
    """Load the data, let ``fitter(dataset)`` check the settings against it, claim ``--out`` (or the default run
    directory for ``name``), and fit: ``fitter(dataset)(run) -> (model, final scores)``."""
    dataset = load_dataset(spec.data or DataSpec(DEFAULT_DATA))
    fit = fitter(dataset)
    out = spec.out or run_directory.default_run_dir(dataset.spec, name)
    run = run_directory.claim(out, overwrite=spec.overwrite)
    try:
        model, final = fit(run)
    finally:
        run.close()
    return TrainResult(out, dataset, model, None, final)
