"""``seqlab`` command line: argument parsing and printing only. Each command turns its options into a typed spec,
calls the application layer (``seqlab.runs``) and prints the result; errors are one line, exit code 1."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import math
import os
import shlex
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from seqlab import distributed
from seqlab.atomic import STDOUT_NAME
from seqlab.cells import FORGET_INIT_HELP
from seqlab.cli_options import (
    DATA_OPTIONS,
    add_config_options,
    add_data_options,
    fraction,
    list_of,
    non_negative_int,
    number,
    path_name,
    positive_float,
    positive_int,
)
from seqlab.data.bundled_data import resolve
from seqlab.data.spec import DataSpec
from seqlab.distributions import CONTINUOUS_HEADS
from seqlab.errors import OptionError, SeqlabError
from seqlab.experiments import EXPERIMENTS
from seqlab.metrics import score_names
from seqlab.models import families, sizing
from seqlab.models.garch import VOLATILITY_NAMES
from seqlab.models.latent_ar import LatentARConfig
from seqlab.models.noise import NOISES
from seqlab.models.pool import PRIOR
from seqlab.runs import backtest, compare, evaluate, experiment, explore, forecast, info, panel, sample, train
from seqlab.runs import export as export_run
from seqlab.runs.run_directory import LAST_DIR
from seqlab.training import TrainerConfig
from seqlab.voice import METRICS

DEFAULT_OUT = f"runs/{train.DEFAULT_CELL}"
QUANTILES = list_of(number(float, lambda q: 0 < q < 1, "a number in (0, 1)"), "numbers in (0, 1)")
MODEL = LatentARConfig()
TRAINER = TrainerConfig()
# command-line option -> library field, where they differ (the rest: --field-name is field_name)
MODEL_OPTIONS = {"model": "cell", "hidden": "hidden_size", "layers": "num_layers", "embedding": "embedding_dim"}
MODEL_OPTIONS |= {"gru_reset": "reset", "dropout": "dropout", "backend": "backend", "head": "head"}
MODEL_OPTIONS |= {"components": "components", "forget_init": "forget_init"}
MODEL_OPTIONS |= {"vol": "vol", "dist": "dist", "mean": "mean", "lags": "lags", "members": "members"}
MODEL_OPTIONS |= {"pool_prior": "pool_prior"}
POOL_PRIOR_HELP = (
    f"Dirichlet prior on the pool's weights: 1, the log score alone; larger, closer to equal weights ({PRIOR:g}; "
    "docs/forecasting.md)"
)
MODEL_DATA_NOTE = "default: the model's; the transform and audio encoding stay the model's"
FLAGS = {field: "--" + option.replace("_", "-") for option, field in MODEL_OPTIONS.items()}
FLAGS |= {"source": "--data", "unknown": "--unknown", "table": "--out", "prompt": "--prompt"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="seqlab", description="Probabilistic sequence models: train, sample, evaluate.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a latent AR model (RNN, LSTM, GRU) on text, a CSV series or audio")
    t.add_argument(
        "--data",
        type=path_name,
        help="text, .csv or .wav file, or a bundled name: shakespeare, msft, speech (shakespeare)",
    )
    t.add_argument(
        "--model",
        choices=(*train.CLI_MODELS, *train.CLI_CLASSICAL_MODELS, *train.POOL_MODELS),
        help="cell (lstm for text, gru for series and audio), garch (a series; see --vol) or pool (see --members)",
    )
    t.add_argument(
        "--out", type=path_name, help="output directory (runs/MODEL for text, runs/DATA-MODEL for a series or audio)"
    )
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    g = t.add_argument_group("model")
    g.add_argument("--hidden", type=positive_int, help=f"hidden units per layer ({MODEL.hidden_size})")
    g.add_argument("--layers", type=positive_int, help=f"recurrent layers ({MODEL.num_layers})")
    g.add_argument("--embedding", type=positive_int, help=f"input embedding size ({MODEL.embedding_dim})")
    g.add_argument("--dropout", type=fraction, help=f"dropout between layers ({MODEL.dropout})")
    g.add_argument("--gru-reset", choices=["before", "after"], help="GRU: reset before (notes) or after (cuDNN)")
    g.add_argument("--backend", choices=["auto", "reference", "torch", "triton"], help="recurrence backend (auto)")
    g.add_argument("--head", choices=CONTINUOUS_HEADS, help="distribution of a continuous next value (gaussian)")
    g.add_argument("--components", type=positive_int, help="mixture head: components (3)")
    g.add_argument("--forget-init", help=f"LSTM only, {FORGET_INIT_HELP} ({MODEL.forget_init})")
    g = t.add_argument_group("GARCH (--model garch)")
    g.add_argument(
        "--vol",
        choices=tuple(VOLATILITY_NAMES),
        help="garch, gjr, egarch, or garchx / gjrx with the covariate (--features range) in the variance (garch)",
    )
    g.add_argument("--dist", choices=tuple(NOISES), help="noise: normal, Student t or skewed t (normal)")
    g.add_argument("--mean", choices=("zero", "constant", "ar"), help="mean of the returns (constant)")
    g.add_argument("--lags", type=positive_int, help="AR order of the mean (1 with --mean ar)")
    g = t.add_argument_group("pool (--model pool)")
    members = ", ".join(families.SeriesOptions.pool_members)
    g.add_argument(
        "--members", type=list_of(str, "names"), help=f"the forecasters pooled, as backtest names them ({members})"
    )
    g.add_argument("--pool-prior", type=positive_float, help=POOL_PRIOR_HELP)
    add_data_options(t)
    g = t.add_argument_group("budget")
    g.add_argument("--steps", type=positive_int, help="total optimizer steps")
    g.add_argument(
        "--time-budget", type=positive_float, help=f"seconds ({train.DEFAULT_TIME_BUDGET:g} without --steps)"
    )
    g = t.add_argument_group("optimiser")
    g.add_argument("--batch-size", type=positive_int, help=f"streams per batch ({TRAINER.batch_size})")
    g.add_argument("--window", type=positive_int, help=f"truncated-BPTT length ({TRAINER.window})")
    g.add_argument("--lr", type=positive_float, help=f"peak learning rate ({TRAINER.lr})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay ({TRAINER.weight_decay})")
    g.add_argument("--clip", type=float, help=f"max gradient norm, 0 for none ({TRAINER.clip})")
    g.add_argument("--warmup-steps", type=non_negative_int, help=f"({TRAINER.warmup_steps})")
    g.add_argument("--schedule", choices=["cosine", "constant"], help="learning-rate schedule (cosine)")
    g.add_argument("--eval-every", type=positive_int, help=f"steps between validations ({TRAINER.eval_every})")
    g.add_argument("--patience", type=non_negative_int, help="early stopping after N validations without gain")
    g.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    t.add_argument("--sample-length", type=non_negative_int, default=300, help="sample printed at the end (300)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="generate text or audio from a trained model")
    s.add_argument(
        "dir", nargs="?", type=path_name, default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})"
    )
    s.add_argument("--prompt", default="", help="text to continue")
    s.add_argument("--length", type=non_negative_int, default=500, help="characters to generate (500)")
    s.add_argument("--seconds", type=positive_float, default=2.0, help="audio: seconds to generate (2)")
    s.add_argument(
        "--out", type=path_name, default="generated.wav", help="audio: WAV file to write, - for stdout (generated.wav)"
    )
    s.add_argument("--prompt-audio", type=path_name, help="audio: a WAV file to continue")
    s.add_argument("--spectrogram", type=path_name, help="audio: also draw real against generated audio into this PNG")
    s.add_argument(
        "--data", type=path_name, help="audio: the real audio for --spectrogram (default: the model's, if bundled)"
    )
    s.add_argument(
        "--temperature",
        type=positive_float,
        default=1.0,
        help="sampling temperature; vocoder frames: times each group's (docs/audio.md) (1.0)",
    )
    s.add_argument("--top-k", type=positive_int, default=None, help="sample among the k most likely")
    s.add_argument("--seed", type=non_negative_int, default=None, help="random seed")

    e = sub.add_parser("evaluate", help="score text: NLL per character, bits per character, perplexity")
    e.add_argument(
        "dir", nargs="?", type=path_name, default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})"
    )
    e.add_argument(
        "--data", type=path_name, help="text file or bundled name (default: the model's held-out validation part)"
    )
    e.add_argument("--unknown", choices=["error", "map"], default="error", help="characters not in the vocabulary")
    e.add_argument("--json", action="store_true", help="print JSON")
    g = e.add_argument_group("voice (audio models)")
    g.add_argument("--voice", action="store_true", help="generate audio and measure its voice beside the data's")
    g.add_argument("--seconds", type=positive_float, default=10.0, help="seconds to generate for --voice (10)")
    g.add_argument("--seed", type=non_negative_int, default=0, help="random seed of --voice (0)")
    g.add_argument("--temperature", type=positive_float, default=1.0, help="--voice: sampling temperature (1.0)")
    g.add_argument("--out", help="--voice: also write the generated audio to this WAV file (- for stdout)")
    add_data_options(e, note=MODEL_DATA_NOTE)

    x = sub.add_parser("explore", help="write one HTML page to look inside a trained text model")
    x.add_argument(
        "dir", nargs="?", type=path_name, default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})"
    )
    x.add_argument(
        "--data", type=path_name, help="text file or bundled name (default: the model's held-out validation part)"
    )
    x.add_argument(
        "--chars", type=positive_int, default=explore.DEFAULT_CHARS, help=f"characters shown ({explore.DEFAULT_CHARS})"
    )
    x.add_argument(
        "--against", type=path_name, help="another saved text model of the same text (an n-gram, say) to compare with"
    )
    x.add_argument("--out", type=path_name, required=True, help="the HTML page to write (- for stdout)")

    c = sub.add_parser("compare", help="fit every model family on one split and rank them by validation NLL")
    c.add_argument(
        "--data", type=path_name, default=train.DEFAULT_DATA, help=f"text file or bundled name ({train.DEFAULT_DATA})"
    )
    c.add_argument("--budget", type=positive_float, default=60.0, help="seconds of training per neural model (60)")
    c.add_argument(
        "--out", type=path_name, default="runs/compare", help="where compare.md, .csv, .json and .png go (runs/compare)"
    )
    c.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    c.add_argument("--valid-fraction", type=positive_float, help="held-out share of a text without a marked one (0.1)")
    c.add_argument("--json", action="store_true", help="print the results as JSON")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")

    f = sub.add_parser("forecast", help="probabilistic forecast of a series with a trained model: table and fan chart")
    f.add_argument("dir", type=path_name, help="model directory (trained with seqlab train --data FILE.csv)")
    f.add_argument("--data", type=path_name, help="CSV file or bundled name (default: the model's training data)")
    add_data_options(f, series_only=True, note=MODEL_DATA_NOTE)
    f.add_argument("--series", help="which series to forecast, with several (default: the first)")
    f.add_argument("--horizon", type=positive_int, default=20, help="steps ahead (20)")
    f.add_argument(
        "--quantiles", type=QUANTILES, default=(0.1, 0.5, 0.9), help="comma-separated, in (0, 1) (0.1,0.5,0.9)"
    )
    f.add_argument("--samples", type=positive_int, default=1000, help="sample paths (1000)")
    f.add_argument("--context", type=positive_int, help="condition on only the last N values (default: all)")
    f.add_argument("--out", type=path_name, help="write the table to this CSV (- for stdout)")
    f.add_argument(
        "--plot", type=path_name, help="write a fan chart (history, median, 50%% and 80%% bands) to this PNG"
    )
    f.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")

    b = sub.add_parser("backtest", help="rolling-origin backtest of forecasting models on a series")
    b.add_argument("--data", type=path_name, default="msft", help="CSV file or bundled name (msft)")
    add_data_options(b, series_only=True)
    b.add_argument("--series", help="which series, with several (default: the first)")
    b.add_argument(
        "--models",
        type=list_of(str, "names"),
        default=backtest.DEFAULT_MODELS,
        help=f"{', '.join(backtest.DEFAULT_MODELS)}; pool: a linear pool of the others named",
    )
    b.add_argument("--horizon", type=positive_int, default=5, help="steps ahead per forecast (5)")
    b.add_argument("--folds", type=positive_int, default=50, help="forecast origins in the held-out part (50)")
    b.add_argument("--samples", type=positive_int, default=200, help="sample paths per forecast (200)")
    b.add_argument(
        "--passes",
        type=positive_int,
        default=sizing.MAX_PASSES,
        help=f"neural models: passes at most, stopped early on the training part's tail ({sizing.MAX_PASSES})",
    )
    b.add_argument("--steps", type=positive_int, help="neural models: this many training steps instead of --passes")
    b.add_argument(
        "--reference", help="the model the paired column compares with (best GARCH by AIC, else random_walk)"
    )
    b.add_argument("--refit-every", type=positive_int, help="refit every K held-out steps on all values before")
    b.add_argument("--pool-prior", type=positive_float, default=PRIOR, help=POOL_PRIOR_HELP)
    b.add_argument("--head", choices=CONTINUOUS_HEADS, default="gaussian", help="neural models' head (gaussian)")
    b.add_argument("--hidden", type=positive_int, default=64, help="neural models' hidden units (64)")
    b.add_argument(
        "--out", type=path_name, help="directory for backtest.md, backtest.csv, backtest.json and backtest.png"
    )
    b.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    b.add_argument("--json", action="store_true", help="print the results as JSON")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    p = b.add_argument_group("panel (--holdout)")
    p.add_argument(
        "--holdout",
        action="store_true",
        help="every series of the file, each forecast from --horizon values before its end (the M-competitions' "
        "protocol), scale-free scores averaged over the series; models "
        + ", ".join([*panel.PANEL_MODELS, *panel.GLOBAL_MODELS]),
    )
    p.add_argument("--season", type=positive_int, help="values per season (default: from the dates, monthly 12)")
    p.add_argument(
        "--jobs", type=positive_int, help="processes (default: every core); any number gives the same result"
    )
    p.add_argument(
        "--cluster",
        help="run on Dask instead: a scheduler's address (tcp://host:8786) or local:N (N worker processes here); "
        "pip install 'seqlab[cluster]'",
    )

    i = sub.add_parser("info", help="describe a trained model and what it was trained on")
    i.add_argument(
        "dir", nargs="?", type=path_name, default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})"
    )

    x = sub.add_parser("experiment", help="measure the notes' claims: " + ", ".join(EXPERIMENTS))
    xs = x.add_subparsers(dest="experiment", required=True, parser_class=Parser)
    for name, (config_class, run) in EXPERIMENTS.items():
        e = xs.add_parser(name, help=(run.__doc__ or name).strip().splitlines()[0])
        e.add_argument("--quick", action="store_true", help="the CI size (--size quick): under a minute")
        e.add_argument("--size", choices=experiment.sizes(name), default=None, help="quick, default or long")
        e.add_argument("--json", action="store_true", help="print the table and summary as JSON")
        e.add_argument(
            "--out", type=path_name, help="write the table (CSV, Markdown, JSON) and PNG figures into this directory"
        )
        e.add_argument("--no-progress", action="store_true", help="no progress bars")
        e.set_defaults(config_options=add_config_options(e, config_class))
    add_export_parser(sub)
    return parser


def add_export_parser(sub) -> None:
    x = sub.add_parser("export", help="write a model's step as an ONNX graph and its metadata (docs/export.md)")
    x.add_argument(
        "dir", nargs="?", type=path_name, default=DEFAULT_OUT, help=f"model directory (default: {DEFAULT_OUT})"
    )
    x.add_argument("--out", type=path_name, required=True, help="the ONNX file to write (- for stdout)")


def given(args, names) -> dict:
    return {k: v for k, v in ((n, getattr(args, n, None)) for n in names) if v is not None}


def pick(args, spec_class, **values):
    """``spec_class`` from the options named like its fields, and ``values``."""
    names = [f.name for f in dataclasses.fields(spec_class) if f.name not in values and hasattr(args, f.name)]
    return spec_class(**{n: getattr(args, n) for n in names}, **values)


def cmd_train(args) -> int:
    trainer_fields = [f.name for f in dataclasses.fields(TrainerConfig) if hasattr(args, f.name)]
    model = {MODEL_OPTIONS[k]: v for k, v in given(args, MODEL_OPTIONS).items()}
    named = (*train.CLI_CLASSICAL_MODELS, *train.POOL_MODELS)
    family = model.pop("cell") if model.get("cell") in named else "latent_ar"  # --model garch or pool
    trainer = given(args, trainer_fields) | {"progress": not args.no_progress}
    options = given(args, DATA_OPTIONS)
    data = DataSpec(args.data or train.DEFAULT_DATA, **options) if args.data or options else None
    out = Path(args.out) if args.out else None
    spec = train.TrainSpec(data, model, trainer, out, args.resume, args.overwrite, family)
    run = train.train(spec, say=say)
    result, kind, final = run.training, run.dataset.kind, run.final
    if result is not None and result.stopped_because == "interrupted":
        say(
            f"seqlab: interrupted at step {result.steps}; checkpoint saved in {run.out / LAST_DIR}; "
            f"continue with: seqlab train --resume --out {run.out}"
        )
        return 130
    if not run.main_process:
        return 0
    if result is None:  # GARCH: fitted by maximum likelihood; held-out values each given all before them
        say(f"seqlab: {run.model.describe()}; fitted in {final['fit_seconds']:.3f} s; saved in {run.out}")
    else:
        rate = f"{result.elements_per_second:,.0f} {run.dataset.elements}/s"
        say(f"seqlab: {result.stopped_because}: {result.steps} steps in {result.elapsed:.0f} s ({rate})")
    discrete = run.model.head.discrete
    names = score_names(run.dataset.elements, discrete)
    if final is not None and kind == "text":
        say(
            f"seqlab: held-out {final['valid_tokens']:,} characters: {final['valid_bits_per_char']:.3f} bits/char, "
            f"NLL {final['valid_nll_nats']:.4f} nats, perplexity {final['valid_perplexity']:.2f}"
        )
    elif final is not None and f"valid_{names['nll']}" in final:
        unit = run.dataset.elements.removesuffix("s")
        value = final[f"valid_{names['bits' if discrete else 'nll']}"]
        unit = f"bits/{unit}" if discrete else f"nats/{unit} (a density: lower is better, can be negative)"
        say(f"seqlab: held-out {final['valid_' + names['count']]:,} {run.dataset.elements}: {value:.4f} {unit}")
    if kind == "series":  # a local file must be named again (a checkpoint's recorded path is never read unnamed)
        source = run.dataset.spec.source
        named = "" if resolve(source)[1] is not None else f" --data {shlex.quote(source)}"
        command = f"seqlab forecast {shlex.quote(str(run.out))}{named} --horizon 20 --plot forecast.png"
        say(f"seqlab: forecast with: {command}")
    elif kind == "audio":
        say(f"seqlab: generate with: seqlab sample {run.out} --seconds 2 --out generated.wav")
        if run.dataset.elements == "frames":
            say(f"seqlab: measure its voice with: seqlab evaluate {run.out} --voice")
    elif args.sample_length:
        say(f"seqlab: sample (temperature 0.8, seed 0):\n{run.model.sample('', args.sample_length, 0.8, seed=0)}")
    return 0


def say(line: str) -> None:
    print(line, flush=True)


def reporter(args) -> Callable[[str], None]:
    """``say``, or one to stderr where ``--out -`` makes standard output the file written (a WAV, a page, a CSV
    that the command's own lines would corrupt)."""
    if getattr(args, "out", None) == STDOUT_NAME:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return say


def cmd_sample(args) -> int:
    result = sample.sample(pick(args, sample.SampleSpec, model_dir=Path(args.dir)))
    if result.text is not None:
        sys.stdout.write(result.text + "\n")
        return 0
    tell = reporter(args)
    how = ", one torch step per sample (a raw-sample model)" if result.raw else ""
    if result.vocoder:
        how = f" ({result.samples_per_second / result.rate:.0f}x real time: vocoder frames, then WORLD synthesis)"
    tell(
        f"seqlab: wrote {result.wav}: {result.seconds:.2f} s at {result.rate} Hz, generated at "
        f"{result.samples_per_second:,.0f} samples/s{how}"
    )
    if result.spectrogram:
        tell(f"seqlab: wrote {result.spectrogram}")
    return 0


def cmd_evaluate(args) -> int:
    if args.voice:
        return print_voice(args)
    data = ({"source": args.data} if args.data else {}) | given(args, DATA_OPTIONS)
    result = evaluate.evaluate(evaluate.EvaluateSpec(Path(args.dir), data, args.unknown))
    scores = result.scores
    if args.json:
        print(json.dumps({"data": result.source, **scores}))
        return 0
    names = score_names(result.elements, result.discrete)
    unit = "char" if result.elements == "characters" else result.elements.removesuffix("s")
    counted = f"{result.source}: {scores[names['count']]:,} {result.elements}"
    if result.discrete:
        print(
            f"{counted}, NLL {scores[names['nll']]:.4f} nats/{unit}, {scores[names['bits']]:.4f} bits/{unit}, "
            f"perplexity {scores['perplexity']:.3f}"
        )
    else:
        print(f"{counted}, NLL {scores[names['nll']]:.4f} nats/{unit} (a density)")
    return 0


def print_voice(args) -> int:
    spec = evaluate.VoiceSpec(Path(args.dir), args.data, args.seconds, args.seed, args.temperature, args.out)
    result = evaluate.evaluate_voice(spec)
    tell = reporter(args)
    if args.json:
        record = {**dataclasses.asdict(result), "seed": args.seed}
        for part in ("data", "generated"):  # NaN (no voiced frame) is null in JSON
            record[part] = {k: None if math.isnan(v) else v for k, v in record[part].items()}
        tell(json.dumps(record))
        return 0
    tell(
        f"voice of {result.seconds:.1f} s generated by {args.dir} (seed {args.seed}) beside its training audio "
        f"({result.source}, {result.data_seconds:.1f} s), at {result.rate} Hz:"
    )
    tell(f"  {'':38} {'data':>9} {'generated':>10}")
    for key, label, unit in METRICS:
        tell(f"  {label + (f' ({unit})' if unit else ''):38} {result.data[key]:9.3f} {result.generated[key]:10.3f}")
    return 0


def cmd_explore(args) -> int:
    data = DataSpec(args.data) if args.data else None
    against = Path(args.against) if args.against else None
    spec = explore.ExploreSpec(Path(args.dir), Path(args.out), data, args.chars, against)
    result = explore.explore(spec)
    scores = f"{result.bits_per_char:.3f} bits/char"
    if result.against_bits_per_char is not None:
        scores += f" (the other model: {result.against_bits_per_char:.3f})"
    tell = reporter(args)
    tell(f"seqlab: wrote {result.out} ({result.bytes / 2**20:.1f} MB): {result.chars:,} characters, {scores}")
    tell(f"seqlab: views: {', '.join(result.views)}; open it in a browser (no network needed)")
    return 0


def cmd_info(args) -> int:
    model = info.info(Path(args.dir))
    print(f"{args.dir}: {model.description}")
    for name, weight, description in model.members:
        print(f"member {name}: weight {weight:.3f} ({100 * weight:.1f}%): {description}")
    if model.data is not None:
        print(f"data: {json.dumps(model.data.to_json())}")
    if model.training:
        for key, label in (("meta", "data record"), ("trainer_config", "trainer")):
            if key in model.training:
                print(f"{label}: {json.dumps(model.training[key])}")
        progress = model.training.get("progress")
        if progress:
            print(f"best model: step {progress.get('step')}, {progress.get('elapsed', 0):.0f} s of training")
        if "final" in model.training:
            print(f"final: {json.dumps(model.training['final'])}")
    return 0


def cmd_forecast(args) -> int:
    data = ({"source": args.data} if args.data else {}) | given(args, DATA_OPTIONS)
    result = forecast.forecast(pick(args, forecast.ForecastSpec, model_dir=Path(args.dir), data=data, table=args.out))
    series, dates = result.series, result.series.dates
    tell = reporter(args)
    last = f", last date {str(dates[-1])[:10]}" if dates is not None else ""
    tell(f"seqlab: {series.source}: {len(series):,} values{last}; {args.samples} sample paths from {result.model}")
    tell(",".join(result.rows[0]))
    for row in result.rows:
        tell(",".join([str(row["step"]), *(f"{v:.6g}" for k, v in row.items() if k != "step")]))
    for path in result.written:
        tell(f"seqlab: wrote {path}")
    return 0


def cmd_backtest(args) -> int:
    if args.holdout:
        return panel_backtest(args)
    data = DataSpec(args.data, **given(args, DATA_OPTIONS))
    spec = pick(args, backtest.BacktestSpec, data=data, progress=not args.no_progress)
    result = backtest.run_backtest(spec, (lambda m: print(m, file=sys.stderr)) if args.json else say)
    say(json.dumps(result.record) if args.json else f"{result.title}\n\n{result.table}")
    return 0


def panel_backtest(args) -> int:
    """``backtest --holdout``: the panel of every series in the file (seqlab.runs.panel)."""
    for option in ("series", "refit_every", "transform", "covariates", "features", "fill"):
        if getattr(args, option, None) is not None:
            raise OptionError("{0} is not an option of --holdout, which forecasts every series", option)
    models = panel.DEFAULT_PANEL_MODELS if args.models == backtest.DEFAULT_MODELS else tuple(args.models)
    spec = panel.PanelSpec(
        args.data,
        **{name: getattr(args, name) for name in ("id_column", "column", "date_column", "season", "horizon")},
        models=models,
        samples=args.samples,
        seed=args.seed,
        jobs=args.jobs or os.cpu_count() or 1,
        cluster=args.cluster,
        steps=args.steps,
        out=args.out,
        progress=not args.no_progress,
    )
    result = panel.run_panel_backtest(spec, (lambda m: print(m, file=sys.stderr)) if args.json else say)
    if args.json:
        say(json.dumps(result.record))
        return 0
    left = f"; {len(result.left_out)} left out (panel.json lists them and why)" if result.left_out else ""
    say(f"{panel.summary_table(result)}\n{len(result.panel)} series in {result.seconds:.1f} s{left}")
    if result.written:
        say(f"written: {', '.join(map(str, result.written))}")
    return 0


def cmd_compare(args) -> int:
    data = DataSpec(args.data, valid_fraction=args.valid_fraction)
    result = compare.run_compare(pick(args, compare.CompareSpec, data=data, progress=not args.no_progress))
    if args.json:
        keys = ("model", "nll_nats", "bits_per_char", "params", "fit_seconds", "sample_chars_per_second")
        say(json.dumps({"data": result.meta, "results": [{k: r[k] for k in keys} for r in result.results]}))
    else:
        say(f"{result.title}\n\n{result.table}\nwritten: {', '.join(map(str, result.written))}")
    return 0


def cmd_experiment(args) -> int:
    size = "quick" if args.quick else (args.size or "default")
    given_settings = {path: getattr(args, option) for option, path in args.config_options.items()}
    config = experiment.make_config(args.experiment, size, {k: v for k, v in given_settings.items() if v is not None})
    spec = experiment.ExperimentSpec(args.experiment, config, size, args.out, not args.no_progress)
    run = experiment.run_experiment(spec)
    if args.json:
        say(json.dumps(run.result.to_json()))
        return 0
    say(f"seqlab experiment {args.experiment} ({size} size; config {json.dumps(run.result.config)})\n")
    say(f"{run.table}\nsummary:\n{run.summary}")
    if run.written:
        say("written: " + ", ".join(str(p) for p in run.written))
    return 0


def cmd_export(args) -> int:
    result = export_run.export(export_run.ExportSpec(Path(args.dir), Path(args.out)))
    tell = reporter(args)
    tell(f"seqlab: wrote {result.out} ({result.bytes:,} bytes): the step of {result.description}")
    tell(f"seqlab: inputs {', '.join(result.inputs)}; outputs {', '.join(result.outputs)}; metadata under 'seqlab'")
    return 0


COMMANDS = {name: globals()[f"cmd_{name}"] for name in ("train", "sample", "evaluate", "info", "compare")}
COMMANDS |= {name: globals()[f"cmd_{name}"] for name in ("forecast", "backtest", "experiment", "explore")}
COMMANDS["export"] = cmd_export


def flag(field: str, args) -> str:
    """A library field as the option that sets it (an experiment's own options first)."""
    option = {f: o for o, f in getattr(args, "config_options", {}).items()}.get(field)
    return "--" + option.replace("_", "-") if option else FLAGS.get(field, "--" + field.replace("_", "-"))


def os_error_line(e: OSError) -> str:
    """An ``OSError`` as the path and the cause; a full disk says so (seqlab's writes leave the old file whole)."""
    where = e.filename if e.filename is not None else "output"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: cannot write it: the disk is full ({e.strerror}); the previous version, if any, is kept"
    return f"{where}: {e.strerror or e}"


def exit_worker(code: int) -> NoReturn:
    """End a torchrun worker whose command finished and left the group: flush the output, then exit without
    the interpreter's teardown. Even after the barrier a rank could still abort there (SIGABRT, "terminate
    called without an active exception", once in CI): DDP wrappers sit in reference cycles, so one can hold
    the gloo group until the interpreter is being finalised, when gloo's threads can no longer take the GIL.
    Every file the command wrote is already closed and fsync'd (``atomic``), so nothing is lost."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        if code == 0 and distributed.leave():  # under torchrun: every rank leaves together
            exit_worker(code)
        return code
    except OptionError as e:
        print(f"seqlab {args.command}: error: {e.render(lambda field: flag(field, args))}", file=sys.stderr)
        return 1
    except SeqlabError as e:
        print(f"seqlab {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full or read-only disk, a missing folder: the path and the reason
        print(f"seqlab {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"seqlab {args.command}: aborted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line, and the traceback on request
        if args.debug:
            traceback.print_exc()
        else:
            why = f"internal error ({type(e).__name__}: {e}); a bug in seqlab: rerun with seqlab --debug to see where"
            print(f"seqlab {args.command}: {why}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
