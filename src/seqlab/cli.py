"""``seqlab`` command line: train, sample, evaluate, info, compare, forecast, backtest, experiment."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from seqlab import atomic, io
from seqlab.data import load_text, resolve
from seqlab.data.audio import MuLaw
from seqlab.data.dataset import AUDIO_ENCODINGS, Dataset, data_kind, load_dataset
from seqlab.data.series import FILL_POLICIES
from seqlab.data.text import Vocabulary
from seqlab.distributions import CONTINUOUS_HEADS
from seqlab.errors import SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.training import LAST_DIR, Trainer, TrainerConfig, WindowStream

DEFAULT_DATA = "shakespeare"
DEFAULT_MODEL = "lstm"
DEFAULT_TIME_BUDGET = 240.0  # seconds: the README's main job finishes in under 5 minutes
DEFAULT_OUT = f"runs/{DEFAULT_MODEL}"
MODEL_DEFAULTS = LatentARConfig()
# command-line option -> LatentARConfig field
MODEL_OPTIONS = {
    "hidden": "hidden_size",
    "layers": "num_layers",
    "embedding": "embedding_dim",
    "dropout": "dropout",
    "gru_reset": "reset",
    "backend": "backend",
    "head": "head",
    "components": "components",
    "forget_init": "forget_init",  # TEMPORARY (longrange branch): the integrator adds the real option
}
TRAINER_DEFAULTS = TrainerConfig()
DEFAULT_BACKTEST_MODELS = "random_walk,linear_ar,neural_ar,gru,lstm"
# options that say how to read the data; saved with the model, so evaluate and --resume read it the same way
DATA_OPTIONS = ("valid_fraction", "column", "date_column", "id_column", "fill", "transform", "sample_rate")
DATA_OPTIONS += ("audio_encoding", "covariates")
# defaults that differ by the kind of data (text takes the ones above): a price series is short and noisy,
# audio is long and wants the GRU the streaming sampler is measured with
KIND_DEFAULTS = {
    "text": {},
    "series": {"model": "gru", "hidden": 64, "batch_size": 16, "window": 64, "eval_every": 100, "time_budget": 60.0},
    "audio": {"model": "gru", "hidden": 256, "batch_size": 32, "window": 128, "eval_every": 100},
}


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def number(convert, ok, expected: str):
    """An argparse type: ``convert`` the text, then insist on ``ok(value)``; errors say what was expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


positive_int = number(int, lambda v: v > 0, "a positive integer")
non_negative_int = number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
fraction = number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def int_list(minimum: int):
    """An argparse type: comma-separated integers, each >= ``minimum`` ("10,20,50" -> (10, 20, 50))."""
    expected = f"integers >= {minimum} separated by commas"

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return values

    return parse


def float_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated positive numbers ("3e-3,1e-2" -> (0.003, 0.01))."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text!r}") from None
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text}")
    return values


def name_list(choices: tuple[str, ...], what: str):
    """An argparse type: comma-separated names from ``choices`` ("rnn,gru" -> ("rnn", "gru"))."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(v.strip() for v in text.split(","))
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown[0]!r}; choose from {', '.join(choices)}")
        return tuple(dict.fromkeys(names))

    return parse


ALL_CELLS = ("rnn", "lstm", "gru")
# experiment -> {command-line option: config field}; the options themselves are declared in add_experiments
EXPERIMENT_OPTIONS = {
    "long-range": {
        "tasks": "tasks",
        "lengths": "lengths",
        "cells": "cells",
        "hidden": "lstm_hidden",
        "steps": "steps",
        "seeds": "seeds",
        "batch_size": "batch_size",
        "lrs": "lrs",
        "forget_inits": "forget_inits",  # TEMPORARY (longrange branch)
        "copy_lengths": "copy_lengths",  # TEMPORARY (longrange branch)
    },
    "gradients": {
        "cells": "cells",
        "length": "length",
        "hidden": "hidden_size",
        "embedding": "embedding_dim",
        "train_steps": "train_steps",
        "windows": "windows",
        "forget_inits": "forget_inits",  # TEMPORARY (longrange branch)
    },
    "cost": {
        "cells": "cells",
        "hidden": "hidden_size",
        "input_size": "input_size",
        "length": "length",
        "batch_size": "batch_size",
        "repeats": "repeats",
    },
    "gates": {
        "cells": "cells",
        "model": "models",
        "hidden": "hidden_size",
        "embedding": "embedding_dim",
        "train_steps": "train_steps",
        "chars": "chars",
    },
    "order": {
        "chars": "chars",
        "ngram_orders": "ngram_orders",
        "train_steps": "train_steps",
        "hidden": "latent_hidden",
    },
}


def add_experiments(sub) -> None:
    common = Parser(add_help=False)
    common.add_argument("--quick", action="store_true", help="the CI size: runs in under a minute")
    common.add_argument("--json", action="store_true", help="print the table and summary as JSON")
    common.add_argument("--out", help="write the table (CSV, Markdown, JSON) and PNG figures into this directory")
    common.add_argument("--seed", type=int, help="random seed (0)")
    common.add_argument(
        "--threads", type=positive_int, help="torch threads (1: reproducible, and fastest on a shared CPU)"
    )
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    common.add_argument("--size", choices=("quick", "default", "long"), help="TEMPORARY (longrange branch)")

    x = sub.add_parser("experiment", help="measure the notes' claims: long-range, gradients, cost, gates, order")
    xs = x.add_subparsers(dest="experiment", required=True, parser_class=Parser)
    cells = name_list(ALL_CELLS, "cell")

    e = xs.add_parser("long-range", parents=[common], help="adding problem and copy memory vs T, RNN/LSTM/GRU")
    e.add_argument("--tasks", type=name_list(("adding", "copy"), "task"), help="adding,copy (both)")
    e.add_argument("--lengths", type=int_list(2), help="sequence lengths T, e.g. 10,20,50,100,200")
    e.add_argument("--cells", type=cells, help="rnn,lstm,gru (all)")
    e.add_argument("--hidden", type=positive_int, help="LSTM hidden size that sets the parameter budget (64)")
    e.add_argument("--steps", type=positive_int, help="training steps per network (500)")
    e.add_argument("--seeds", type=positive_int, help="seeds per (task, T, cell) (3)")
    e.add_argument("--batch-size", type=positive_int, help="sequences per step (64)")
    e.add_argument(
        "--lrs",
        type=float_list,
        help="Adam learning rates, e.g. 3e-3,1e-2: each network trains at each, keeps the best on validation (1e-2)",
    )
    e.add_argument("--forget-inits", type=lambda v: tuple(v.split(",")), help="TEMPORARY (longrange branch)")
    e.add_argument("--copy-lengths", type=int_list(1), help="TEMPORARY (longrange branch)")

    e = xs.add_parser("gradients", parents=[common], help="gradient norm vs distance, at init and trained")
    e.add_argument("--cells", type=cells, help="rnn,lstm,gru (all)")
    e.add_argument("--length", type=number(int, lambda v: v >= 2, "an integer >= 2"), help="window T (100)")
    e.add_argument("--hidden", type=positive_int, help="hidden size (128)")
    e.add_argument("--embedding", type=positive_int, help="input embedding size (32)")
    e.add_argument("--train-steps", type=positive_int, help="training steps on text (400)")
    e.add_argument("--windows", type=positive_int, help="held-out windows averaged (4)")
    e.add_argument("--forget-inits", type=lambda v: tuple(v.split(",")), help="TEMPORARY (longrange branch)")

    e = xs.add_parser("cost", parents=[common], help="parameters, multiply-adds, time and memory per step")
    e.add_argument("--cells", type=cells, help="rnn,lstm,gru (all)")
    e.add_argument("--hidden", type=positive_int, help="hidden size; its LSTM sets the parameter budget (256)")
    e.add_argument("--input-size", type=positive_int, help="input size D (64)")
    e.add_argument("--length", type=positive_int, help="time steps T per run (100)")
    e.add_argument("--batch-size", type=positive_int, help="sequences B (32)")
    e.add_argument("--repeats", type=positive_int, help="timed runs; the median is reported (10)")

    e = xs.add_parser("gates", parents=[common], help="gate activations of an LSTM and a GRU on held-out text")
    e.add_argument("--cells", type=name_list(("lstm", "gru"), "gated cell"), help="lstm,gru (both)")
    e.add_argument(
        "--model", action="append", help="a trained LSTM or GRU model directory (repeatable); others are trained"
    )
    e.add_argument("--hidden", type=positive_int, help="hidden size of the models trained here (128)")
    e.add_argument("--embedding", type=positive_int, help="their input embedding size (32)")
    e.add_argument("--train-steps", type=positive_int, help="their training steps (600)")
    e.add_argument("--chars", type=positive_int, help="held-out characters read (3000)")

    e = xs.add_parser("order", parents=[common], help="NLL of held-out text vs the same text shuffled")
    e.add_argument("--chars", type=positive_int, help="held-out characters scored (20000)")
    e.add_argument("--ngram-orders", type=int_list(0), help="n-gram orders, 0 the unigram (0,2,4,6)")
    e.add_argument("--train-steps", type=positive_int, help="training steps of every neural model (400)")
    e.add_argument("--hidden", type=positive_int, help="hidden size of the latent AR models (256)")


def build_parser() -> Parser:
    parser = Parser(prog="seqlab", description="Probabilistic sequence models: train, sample, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a latent AR model (RNN, LSTM, GRU) on text, a CSV series or audio")
    t.add_argument(
        "--data",
        help=f"text, .csv or .wav file, or a bundled name: shakespeare, msft, speech (default: {DEFAULT_DATA})",
    )
    t.add_argument("--model", choices=["rnn", "lstm", "gru"], help="cell (lstm for text, gru for series and audio)")
    t.add_argument(
        "--out", help="output directory (default: runs/MODEL for text, runs/DATA-MODEL for a series or audio)"
    )
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    g = t.add_argument_group("model")
    g.add_argument("--hidden", type=positive_int, help=f"hidden units per layer ({MODEL_DEFAULTS.hidden_size})")
    g.add_argument("--layers", type=positive_int, help=f"recurrent layers ({MODEL_DEFAULTS.num_layers})")
    g.add_argument("--embedding", type=positive_int, help=f"input embedding size ({MODEL_DEFAULTS.embedding_dim})")
    g.add_argument("--dropout", type=fraction, help=f"dropout between layers ({MODEL_DEFAULTS.dropout})")
    g.add_argument(
        "--gru-reset",
        choices=["before", "after"],
        help="GRU only: reset gate before the recurrent product (the notes) or after (cuDNN; default)",
    )
    g.add_argument("--backend", choices=["auto", "reference", "torch", "triton"], help="recurrence backend (auto)")
    g.add_argument("--forget-init", help="TEMPORARY (longrange branch): LSTM forget-gate init, zero, 1 or chrono:T")
    g.add_argument("--head", choices=CONTINUOUS_HEADS, help="distribution of a continuous next value (gaussian)")
    g.add_argument("--components", type=positive_int, help="mixture head: components (3)")
    add_data_options(t)
    g = t.add_argument_group("budget")
    g.add_argument("--steps", type=positive_int, help="total optimizer steps")
    g.add_argument(
        "--time-budget",
        type=positive_float,
        help=f"seconds of training (default {DEFAULT_TIME_BUDGET:g} when --steps is not given)",
    )
    g = t.add_argument_group("optimiser")
    g.add_argument("--batch-size", type=positive_int, help=f"streams per batch ({TRAINER_DEFAULTS.batch_size})")
    g.add_argument("--window", type=positive_int, help=f"truncated-BPTT length ({TRAINER_DEFAULTS.window})")
    g.add_argument("--lr", type=positive_float, help=f"peak learning rate ({TRAINER_DEFAULTS.lr})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay ({TRAINER_DEFAULTS.weight_decay})")
    g.add_argument("--clip", type=float, help=f"max gradient norm, 0 for none ({TRAINER_DEFAULTS.clip})")
    g.add_argument("--warmup-steps", type=non_negative_int, help=f"({TRAINER_DEFAULTS.warmup_steps})")
    g.add_argument("--schedule", choices=["cosine", "constant"], help="learning-rate schedule (cosine)")
    g.add_argument("--eval-every", type=positive_int, help=f"steps between validations ({TRAINER_DEFAULTS.eval_every})")
    g.add_argument("--patience", type=non_negative_int, help="early stopping after N validations without gain")
    g.add_argument("--seed", type=int, help="random seed (0)")
    t.add_argument("--sample-length", type=non_negative_int, default=300, help="sample printed at the end (300)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="generate text or audio from a trained model")
    s.add_argument("dir", nargs="?", default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})")
    s.add_argument("--prompt", default="", help="text to continue")
    s.add_argument("--length", type=non_negative_int, default=500, help="characters to generate (500)")
    s.add_argument("--seconds", type=positive_float, default=2.0, help="audio: seconds to generate (2)")
    s.add_argument("--out", default="generated.wav", help="audio: WAV file to write (generated.wav)")
    s.add_argument("--prompt-audio", help="audio: a WAV file to continue")
    s.add_argument("--spectrogram", help="audio: also draw real against generated audio into this PNG")
    s.add_argument("--temperature", type=positive_float, default=1.0, help="softmax temperature (1.0)")
    s.add_argument("--top-k", type=positive_int, default=None, help="sample among the k most likely")
    s.add_argument("--seed", type=int, default=None, help="random seed")

    e = sub.add_parser("evaluate", help="score text: NLL per character, bits per character, perplexity")
    e.add_argument("dir", nargs="?", default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})")
    e.add_argument("--data", help="text file or bundled name (default: the model's held-out validation text)")
    e.add_argument(
        "--unknown",
        choices=["error", "map"],
        default="error",
        help="characters not in the vocabulary: refuse (default) or score as the unknown symbol",
    )
    e.add_argument("--json", action="store_true", help="print JSON")

    c = sub.add_parser("compare", help="fit every model family on one split and rank them by validation NLL")
    c.add_argument("--data", default=DEFAULT_DATA, help=f"text file or bundled name (default: {DEFAULT_DATA})")
    c.add_argument("--budget", type=positive_float, default=60.0, help="seconds of training per neural model (60)")
    c.add_argument("--out", default="runs/compare", help="where compare.md, .csv and .png go (runs/compare)")
    c.add_argument("--seed", type=int, default=0, help="random seed (0)")
    c.add_argument(
        "--valid-fraction",
        type=positive_float,
        default=0.1,
        help="held-out share of a text file without a marked validation part (0.1)",
    )
    c.add_argument("--json", action="store_true", help="print the results as JSON")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    f = sub.add_parser("forecast", help="probabilistic forecast of a series with a trained model: table and fan chart")
    f.add_argument("dir", help="model directory (trained with seqlab train --data FILE.csv)")
    f.add_argument("--data", help="CSV file or bundled name (default: the model's training data)")
    f.add_argument("--column", help="value column (default: the model's)")
    f.add_argument("--date-column", help="date column (default: the model's, or Date)")
    f.add_argument("--id-column", help="long form: the column naming each row's series")
    f.add_argument("--series", help="which series to forecast, with several (default: the first)")
    f.add_argument("--fill", choices=FILL_POLICIES, help="what to do with missing values (default: refuse)")
    f.add_argument("--horizon", type=positive_int, default=20, help="steps ahead (20)")
    f.add_argument("--quantiles", default="0.1,0.5,0.9", help="comma-separated, in (0, 1) (0.1,0.5,0.9)")
    f.add_argument("--samples", type=positive_int, default=1000, help="sample paths (1000)")
    f.add_argument("--context", type=positive_int, help="condition on only the last N values (default: all)")
    f.add_argument("--out", help="write the table to this CSV")
    f.add_argument("--plot", help="write a fan chart (history, median, 50%% and 80%% bands) to this PNG")
    f.add_argument("--seed", type=int, default=0, help="random seed (0)")

    b = sub.add_parser("backtest", help="rolling-origin backtest of forecasting models on a series")
    b.add_argument("--data", default="msft", help="CSV file or bundled name (msft)")
    add_data_options(b, series_only=True)
    b.add_argument("--series", help="which series, with several (default: the first)")
    b.add_argument("--models", default=DEFAULT_BACKTEST_MODELS, help=f"comma-separated ({DEFAULT_BACKTEST_MODELS})")
    b.add_argument("--horizon", type=positive_int, default=5, help="steps ahead per forecast (5)")
    b.add_argument("--folds", type=positive_int, default=50, help="forecast origins in the held-out part (50)")
    b.add_argument("--samples", type=positive_int, default=200, help="sample paths per forecast (200)")
    b.add_argument("--steps", type=positive_int, default=300, help="training steps per neural model (300)")
    b.add_argument("--head", choices=CONTINUOUS_HEADS, default="gaussian", help="neural models' head (gaussian)")
    b.add_argument("--hidden", type=positive_int, default=64, help="neural models' hidden units (64)")
    b.add_argument("--out", help="directory for backtest.md, backtest.csv, backtest.json and backtest.png")
    b.add_argument("--seed", type=int, default=0, help="random seed (0)")
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")

    i = sub.add_parser("info", help="describe a trained model")
    i.add_argument("dir", nargs="?", default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})")
    add_experiments(sub)
    return parser


def add_data_options(parser: argparse.ArgumentParser, series_only: bool = False) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--valid-fraction", type=fraction, help="held-out share (text 0.1, series 0.2, audio 0.1)")
    g.add_argument("--column", help="CSV: value column(s), comma-separated for several series (Close)")
    g.add_argument("--date-column", help="CSV: date column (Date, if present)")
    g.add_argument("--id-column", help="CSV in long form: the column naming each row's series")
    g.add_argument("--fill", choices=FILL_POLICIES, help="CSV: what to do with missing values (default: refuse)")
    g.add_argument("--transform", help="CSV: log, diff, log_return, standardize or none, comma-chained (log_return)")
    g.add_argument(
        "--covariates", help="CSV: past covariate column(s) as extra inputs of the neural models, e.g. Volume"
    )
    if not series_only:
        g.add_argument("--sample-rate", type=positive_int, help="audio: resample to this rate in Hz (the file's)")
        g.add_argument("--audio-encoding", choices=AUDIO_ENCODINGS, help="audio: mu_law levels or raw values (mu_law)")


def load_split(data: str, valid_fraction: float | None) -> tuple[str, str, dict]:
    """A text data set's (train, valid, meta); series and audio are refused with the command to use."""
    dataset = load_dataset({"data": data, "valid_fraction": valid_fraction})
    if dataset.kind != "text":
        raise SeqlabError(f"{data}: {dataset.kind} data; this command ranks text models (series: seqlab backtest)")
    return dataset.train, dataset.valid, dataset.meta


def training_meta(directory: str) -> dict:
    """The data options a model in ``directory`` was trained with (``training.json``), or {} without a record."""
    training = Path(directory) / "training.json"
    return atomic.read_json(training).get("meta", {}) if training.exists() else {}


def new_model(dataset: Dataset, config: LatentARConfig) -> LatentAR:
    """A fresh latent AR model for the kind of data: a vocabulary, mu-law levels, or a standardised series."""
    if dataset.kind == "text":
        return LatentAR(Vocabulary.from_text(dataset.train), config)
    if dataset.kind == "audio" and dataset.meta["audio_encoding"] == "mu_law":
        return LatentAR(MuLaw(dataset.rate), config)
    if dataset.meta.get("covariates"):
        config.covariates = dataset.train.shape[1] - 1
    model = LatentAR.for_series(dataset.train, config)
    model.transform = dataset.transform
    return model


def given(args, names) -> dict:
    return {k: v for k, v in ((n, getattr(args, n, None)) for n in names) if v is not None}


def cmd_train(args) -> int:
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes and prints
    say = print if main_process else (lambda *a, **k: None)
    trainer_options = [f.name for f in fields(TrainerConfig) if hasattr(args, f.name)]
    if args.resume:
        out = Path(args.out or f"runs/{args.model or DEFAULT_MODEL}")
        options = [*MODEL_OPTIONS, *trainer_options, *DATA_OPTIONS]
        fixed = [o for o in given(args, options) if o not in ("steps", "time_budget")]
        if fixed:
            options = ", ".join("--" + o.replace("_", "-") for o in fixed)
            raise SeqlabError(
                f"--resume continues with the saved settings; only --steps and --time-budget can change (got {options})"
            )
        if not (out / LAST_DIR).is_dir():
            raise SeqlabError(f"{out}: nothing to resume (no {LAST_DIR}/ checkpoint)")
        saved = atomic.read_json(out / LAST_DIR / "trainer.json")
        try:
            meta, trainer_fields = saved["meta"], saved["trainer_config"]
        except (KeyError, TypeError):
            raise SeqlabError(f"{out / LAST_DIR / 'trainer.json'}: corrupted checkpoint") from None
        model = io.load(out / LAST_DIR, expect=LatentAR.kind)
        if args.model and args.model != model.config.cell:
            raise SeqlabError(f"{out}: holds a {model.config.cell} model, but --model {args.model} was given")
        trainer_fields.update(given(args, ["steps", "time_budget"]))
        if args.data and resolve(args.data)[0].resolve() != resolve(meta["data"])[0].resolve():
            raise SeqlabError(f"{out}: was trained on {meta['data']}, cannot resume on {args.data}")
        dataset = load_dataset(meta)
        trainer_fields["progress"] = not args.no_progress
        config = TrainerConfig(**trainer_fields)
        has_model = True
    else:
        dataset = load_dataset({"data": args.data or DEFAULT_DATA, **given(args, DATA_OPTIONS)})
        meta, defaults = dataset.meta, KIND_DEFAULTS[dataset.kind]
        cell = args.model or defaults.get("model", DEFAULT_MODEL)
        # text keeps runs/CELL (the README's main job); a series or sound is named too: runs/msft-gru
        name = "" if dataset.kind == "text" else f"{Path(dataset.meta['data']).stem}-"
        out = Path(args.out or f"runs/{name}{cell}")
        has_model = (out / io.CONFIG_FILE).exists() or (out / LAST_DIR).exists()
        if has_model and not args.overwrite:
            raise SeqlabError(f"{out}: already holds a model; use --resume to continue it or --overwrite")
        model_config = LatentARConfig(cell=cell)
        for arg, value in {
            **{k: v for k, v in defaults.items() if k in MODEL_OPTIONS},
            **given(args, MODEL_OPTIONS),
        }.items():
            setattr(model_config, MODEL_OPTIONS[arg], value)
        torch.manual_seed(args.seed or 0)
        model = new_model(dataset, model_config)
        trainer_args = {k: v for k, v in defaults.items() if k in trainer_options}
        if given(args, ["steps", "time_budget"]):
            trainer_args.pop("time_budget", None)
        trainer_args.update(given(args, trainer_options))
        if "steps" not in trainer_args and "time_budget" not in trainer_args:
            trainer_args["time_budget"] = DEFAULT_TIME_BUDGET
        config = TrainerConfig(**trainer_args, progress=not args.no_progress)

    text = dataset.kind == "text"
    train_ids = model.encode(dataset.train, source=f"{meta['data']} (training part)")
    valid_ids = None
    if len(dataset.valid):
        extra = {"unknown": "map"} if text else {}
        valid_ids = model.encode(dataset.valid, source=f"{meta['data']} (validation part)", **extra)
    if not args.resume and has_model and args.overwrite and main_process:
        config.validate()  # refuse bad settings before anything is deleted
        WindowStream(train_ids, config.batch_size, config.window, config.seed)
        shutil.rmtree(out)
    budget = f"{config.steps} steps" if config.steps else f"{config.time_budget:g} s"
    say(f"seqlab: {model.describe()}")
    n_valid = 0 if valid_ids is None else len(valid_ids)
    what = dataset.elements
    if dataset.transform is not None:
        what = f"{what} ({', '.join(meta['series'])}; transform {meta['transform']})"
    say(
        f"seqlab: data {meta['data']}: {len(train_ids):,} training, {n_valid:,} validation {what}; "
        f"budget {budget}; writing {out}",
        flush=True,
    )
    trainer = Trainer(model, config, out=out, meta=meta)
    result = trainer.fit(train_ids, valid_ids, resume=args.resume)
    if result.stopped_because == "interrupted":
        say(
            f"seqlab: interrupted at step {result.steps}; checkpoint saved in {out / LAST_DIR}; "
            f"continue with: seqlab train --resume --out {out}"
        )
        return 130
    if not main_process:
        return 0
    best = io.load(out)
    summary = {
        "steps": result.steps,
        "seconds": round(result.elapsed, 1),
        "train_chars_per_second": round(result.chars_per_second),
        "stopped_because": result.stopped_because,
    }
    if valid_ids is not None:
        t0 = time.perf_counter()
        scores = likelihood_scores(best.log_prob(valid_ids))
        summary.update({f"valid_{k}": v for k, v in scores.items()}, valid_seconds=round(time.perf_counter() - t0, 1))
        training = atomic.read_json(out / "training.json")
        atomic.write_json(out / "training.json", {**training, "final": summary})
    print(
        f"seqlab: {result.stopped_because}: {result.steps} steps in {result.elapsed:.0f} s "
        f"({result.chars_per_second:,.0f} {dataset.elements}/s)"
    )
    if valid_ids is not None and text:
        print(
            f"seqlab: held-out {summary['valid_tokens']:,} characters: {summary['valid_bits_per_char']:.3f} bits/char, "
            f"NLL {summary['valid_nll_nats']:.4f} nats, perplexity {summary['valid_perplexity']:.2f}"
        )
    elif valid_ids is not None:
        unit = "bits/sample" if model.discrete else "nats/value (a density: lower is better, can be negative)"
        value = summary["valid_bits_per_char"] if model.discrete else summary["valid_nll_nats"]
        print(f"seqlab: held-out {summary['valid_tokens']:,} {dataset.elements}: {value:.4f} {unit}")
    if dataset.kind == "series":
        print(f"seqlab: forecast with: seqlab forecast {out} --horizon 20 --plot forecast.png")
    elif dataset.kind == "audio":
        print(f"seqlab: generate with: seqlab sample {out} --seconds 2 --out generated.wav")
    elif args.sample_length:
        print(f"seqlab: sample (temperature 0.8, seed 0):\n{best.sample('', args.sample_length, 0.8, seed=0)}")
    return 0


def cmd_sample(args) -> int:
    model = io.load(args.dir)
    vocabulary = getattr(model, "vocabulary", None)
    if isinstance(vocabulary, MuLaw) or (isinstance(model, LatentAR) and not model.discrete and not model.transform):
        return sample_audio(model, args)
    if getattr(model, "transform", None) is not None or not model.head.discrete:
        raise SeqlabError(f"{args.dir}: a model of a series; draw its futures with: seqlab forecast {args.dir}")
    prompt = model.encode(args.prompt, source="--prompt")
    if isinstance(model, LatentAR):  # the NumPy fast path of model.sample (tests/test_streaming.py)
        from seqlab.streaming import StreamingSampler

        ids = StreamingSampler(model).generate(prompt.numpy(), args.length, args.temperature, args.top_k, args.seed)
        text = model.decode(torch.from_numpy(ids))
    else:
        text = model.sample(prompt, args.length, args.temperature, args.top_k, args.seed)
    sys.stdout.write(args.prompt + text + "\n")
    return 0


def sample_audio(model: LatentAR, args) -> int:
    """Stream ``--seconds`` of audio from a mu-law (fast path) or raw-sample model into a WAV file."""
    from seqlab.data.audio import load_audio, write_wav

    meta = training_meta(args.dir)
    rate = model.vocabulary.sample_rate if model.discrete else meta.get("sample_rate")
    if not rate:
        raise SeqlabError(f"{args.dir}: no record of the sample rate it was trained at")
    prompt = np.zeros(0, dtype=np.float32)
    if args.prompt_audio:
        prompt, _ = load_audio(args.prompt_audio, rate)
    n = int(round(args.seconds * rate))
    t0 = time.perf_counter()
    if model.discrete:
        from seqlab.streaming import StreamingSampler

        ids = StreamingSampler(model).generate(model.encode(prompt).numpy(), n, args.temperature, args.top_k, args.seed)
        audio = model.decode(torch.from_numpy(ids))
    else:
        print(f"seqlab: raw-sample model: generating {n:,} samples through step, one torch call each", file=sys.stderr)
        audio = model.sample_elements(torch.from_numpy(prompt.astype(np.float64)), n, args.temperature, None, args.seed)
        audio = audio.float().numpy()
    seconds = time.perf_counter() - t0
    write_wav(args.out, audio, rate)
    print(f"seqlab: wrote {args.out}: {n / rate:.2f} s at {rate} Hz, generated at {n / seconds:,.0f} samples/s")
    if args.spectrogram:
        from seqlab.plots import spectrograms

        real = prompt
        if not len(real):
            if "data" not in meta:
                raise SeqlabError(f"{args.dir}: no record of its training audio to compare with; pass --prompt-audio")
            real = load_dataset(meta).valid.numpy()[:n]
        spectrograms(real, audio, rate, args.spectrogram)
        print(f"seqlab: wrote {args.spectrogram}")
    return 0


def cmd_evaluate(args) -> int:
    model = io.load(args.dir)
    meta = training_meta(args.dir)
    if args.data and data_kind(args.data) == "text":
        path, _ = resolve(args.data)
        data, source, elements = load_text(path), str(path), "characters"
    else:  # the held-out part, read with the options the model was trained with
        if not args.data and "data" not in meta:
            raise SeqlabError(f"{args.dir}: no record of its training data; pass --data")
        options = {k: meta[k] for k in ("data", *DATA_OPTIONS) if k in meta}
        dataset = load_dataset({**options, **({"data": args.data} if args.data else {})})
        data, source, elements = dataset.valid, f"{dataset.meta['data']} (validation part)", dataset.elements
    extra = {"unknown": args.unknown} if isinstance(data, str) else {}
    x = model.encode(data, source=source, **extra)
    if len(x) == 0:
        raise SeqlabError(f"{source}: nothing to score")
    result = {"data": source, **likelihood_scores(model.log_prob(x))}
    if args.unknown == "map" and isinstance(data, str):
        result["unknown_tokens"] = int((x == model.vocabulary.unknown_id).sum())
    if args.json:
        print(json.dumps(result))
    elif model.head.discrete:
        unit = "char" if elements == "characters" else "sample"
        print(
            f"{source}: {result['tokens']:,} {elements}, NLL {result['nll_nats']:.4f} nats/{unit}, "
            f"{result['bits_per_char']:.4f} bits/{unit}, perplexity {result['perplexity']:.3f}"
        )
    else:
        print(f"{source}: {result['tokens']:,} {elements}, NLL {result['nll_nats']:.4f} nats/value (a density)")
    return 0


def cmd_info(args) -> int:
    model = io.load(args.dir)
    print(f"{args.dir}: {model.describe()}")
    training_file = Path(args.dir) / "training.json"
    if training_file.exists():
        training = atomic.read_json(training_file)
        print(f"data: {json.dumps(training.get('meta', {}))}")
        print(f"trainer: {json.dumps(training.get('trainer_config', {}))}")
        progress = training.get("progress", {})
        print(f"best model: step {progress.get('step')}, {progress.get('elapsed', 0):.0f} s of training")
        if "final" in training:
            print(f"final: {json.dumps(training['final'])}")
    return 0


def parse_quantiles(text: str) -> tuple[float, ...]:
    try:
        qs = tuple(float(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise SeqlabError(f"--quantiles: expected numbers in (0, 1) separated by commas, got {text!r}") from None
    if not qs or not all(0.0 < q < 1.0 for q in qs):
        raise SeqlabError(f"--quantiles: expected numbers in (0, 1) separated by commas, got {text!r}")
    return qs


def pick_series(series: list, name: str | None):
    if name is None:
        return series[0]
    for s in series:
        if s.name == name:
            return s
    raise SeqlabError(f"no series {name!r}; the data holds: {', '.join(s.name for s in series)}")


def cmd_forecast(args) -> int:
    from seqlab.data.series import load_series

    model = io.load(args.dir)
    if getattr(model, "head", None) is None or model.head.discrete:
        raise SeqlabError(f"{args.dir}: not a model of a series (train one with seqlab train --data FILE.csv)")
    quantiles = parse_quantiles(args.quantiles)
    meta = training_meta(args.dir)
    data = args.data or meta.get("data")
    if data is None:
        raise SeqlabError(f"{args.dir}: no record of its training data; pass --data")
    column = args.column or (meta.get("column") if data == meta.get("data") else None)
    date_column = args.date_column or (meta.get("date_column") if data == meta.get("data") else None)
    id_column = args.id_column or (meta.get("id_column") if data == meta.get("data") else None)
    covariates = meta.get("covariates") if data == meta.get("data") else None
    fill = args.fill or meta.get("fill")
    series = pick_series(load_series(data, column, date_column, id_column, fill, covariates), args.series)
    if args.context:
        if args.context > len(series):
            raise SeqlabError(f"--context {args.context}: {series.source} has only {len(series)} rows")
        series = series.tail_from(len(series) - args.context)
    values, dates = series.values, series.dates
    transform = getattr(model, "transform", None)
    if transform is not None:
        transform.apply(values, series.source, series.lines[-len(values) :])  # bad values: name their line
    forecast = model.forecast(values, args.horizon, args.samples, quantiles, args.seed, series.covariates)
    header = ["step", *(f"q{q:g}" for q in quantiles), "mean"]
    rows = [[h + 1, *(forecast.quantiles[q][h] for q in quantiles), forecast.mean[h]] for h in range(args.horizon)]
    last = f", last date {str(dates[-1])[:10]}" if dates is not None else ""
    print(f"seqlab: {series.source}: {len(values):,} values{last}; {args.samples} sample paths from {model.describe()}")
    print(",".join(header))
    for row in rows:
        print(",".join([str(row[0]), *(f"{v:.6g}" for v in row[1:])]))
    if args.out:
        lines = [",".join(header)] + [",".join([str(r[0]), *(repr(float(v)) for v in r[1:])]) for r in rows]
        atomic.replace_into(Path(args.out), lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
        print(f"seqlab: wrote {args.out}")
    if args.plot:
        from seqlab.plots import fan_chart

        shown = min(len(values), max(5 * args.horizon, 60))
        title = f"{series.source}: {args.horizon}-step forecast, {args.samples} sample paths"
        fan_chart(values[-shown:], forecast.samples, args.plot, title, dates)
        print(f"seqlab: wrote {args.plot}")
    return 0


def cmd_backtest(args) -> int:
    from seqlab.backtest import BACKTEST_MODELS, backtest, markdown_table

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in BACKTEST_MODELS]
    if unknown or not models:
        raise SeqlabError(
            f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(BACKTEST_MODELS)}"
        )
    dataset = load_dataset({"data": args.data, **given(args, DATA_OPTIONS)})
    if dataset.kind != "series":
        raise SeqlabError(f"{args.data}: {dataset.kind} data; backtest takes a CSV series")
    series = pick_series(dataset.series, args.series)
    y = dataset.transform.apply(series.values, series.source, series.lines)
    covariates = None if series.covariates is None else series.covariates[dataset.transform.lost :]
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    extra = f", covariates {dataset.meta['covariates']} (neural models only)" if covariates is not None else ""
    say(f"seqlab: backtest on {series.source}, transform {dataset.meta['transform']}{extra}: {len(y):,} values")
    result = backtest(
        y,
        models,
        args.horizon,
        args.folds,
        differenced="diff" in dataset.transform.steps,
        test_fraction=dataset.meta["valid_fraction"],
        samples=args.samples,
        steps=args.steps,
        head=args.head,
        hidden=args.hidden,
        seed=args.seed,
        progress=not args.no_progress,
        say=say,
        covariates=covariates,
    )
    result = {"data": series.source, "transform": dataset.meta["transform"], **result}
    if covariates is not None:
        result["covariates"] = dataset.meta["covariates"]
    title = (
        f"{series.source} ({dataset.meta['transform']}{extra}): {result['test_values']:,} held-out values, "
        f"{result['folds']} origins x horizon {result['horizon']}, {result['samples']} sample paths"
    )
    table = markdown_table(result["results"])
    if args.out:
        from seqlab.plots import backtest_chart

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "backtest.md").write_text(f"{title}\n\n{table}", encoding="utf-8")
        atomic.write_json(out / "backtest.json", result)
        keys = list(result["results"][0])
        csv_lines = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in result["results"]]
        (out / "backtest.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
        backtest_chart(result["results"], out / "backtest.png", title)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{title}\n\n{table}")
    return 0


def cmd_compare(args) -> int:
    from seqlab.compare import bar_chart, compare, csv_text, markdown_table

    train, valid, meta = load_split(args.data, args.valid_fraction)
    if not valid:
        raise SeqlabError(f"{args.data}: no validation part to compare on")
    results = compare(train, valid, budget=args.budget, seed=args.seed, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    title = (
        f"{meta['data']}: {meta['train_chars']:,} training / {meta['valid_chars']:,} validation characters, "
        f"{args.budget:g} s per neural model"
    )
    (out / "compare.md").write_text(f"{title}\n\n{table}", encoding="utf-8")
    (out / "compare.csv").write_text(csv_text(results), encoding="utf-8")
    bar_chart(results, out / "compare.png", title)
    if args.json:
        keys = ("model", "nll_nats", "bits_per_char", "params", "fit_seconds", "sample_chars_per_second")
        print(json.dumps({"data": meta, "results": [{k: r[k] for k in keys} for r in results]}))
    else:
        print(f"{title}\n\n{table}\nwritten: {out / 'compare.md'}, {out / 'compare.csv'}, {out / 'compare.png'}")
    return 0


def cmd_experiment(args) -> int:
    from seqlab.experiments import EXPERIMENTS
    from seqlab.experiments.common import markdown_table, write_csv
    from seqlab.plots import save_figures

    config_class, run = EXPERIMENTS[args.experiment]
    size = "quick" if args.quick else (args.size or "default")  # TEMPORARY --size (longrange branch)
    config = config_class() if size == "default" else getattr(config_class, size)()
    options = {**EXPERIMENT_OPTIONS[args.experiment], "seed": "seed", "threads": "threads"}
    for option, value in given(args, options).items():
        setattr(config, options[option], tuple(value) if isinstance(value, list) else value)
    result = run(config, show_progress=not args.no_progress)
    table = markdown_table(result.rows)
    summary = json.dumps(result.summary, indent=1)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = args.experiment.replace("-", "_")
        write_csv(out / f"{stem}.csv", result.rows)
        atomic.write_json(out / f"{stem}.json", result.to_json())
        (out / f"{stem}.md").write_text(result.markdown(), encoding="utf-8")
        written = [out / f"{stem}.csv", out / f"{stem}.json", out / f"{stem}.md", *save_figures(result, out)]
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(f"seqlab experiment {args.experiment} ({size} size; config {json.dumps(result.config)})\n")
        print(f"{table}\nsummary:\n{summary}")
        if args.out:
            print("written: " + ", ".join(str(p) for p in written))
    return 0


COMMANDS = {
    "train": cmd_train,
    "sample": cmd_sample,
    "evaluate": cmd_evaluate,
    "info": cmd_info,
    "compare": cmd_compare,
    "forecast": cmd_forecast,
    "backtest": cmd_backtest,
    "experiment": cmd_experiment,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SeqlabError as e:
        print(f"seqlab {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seqlab {args.command}: aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
