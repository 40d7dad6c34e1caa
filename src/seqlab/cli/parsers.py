"""The ``seqlab`` parser: one small function per command (train's in ``seqlab.cli.train``); the options several
commands share come from ``seqlab.cli_options`` (the model directory, ``--seed``, ``--json``, ``--no-progress``,
the data options)."""

from __future__ import annotations

from seqlab.cli.train import DEFAULT_OUT, add_train_parser
from seqlab.cli_options import (
    SCORE_ALL_HELP,
    Parser,
    add_config_options,
    add_data_option,
    add_data_options,
    add_json,
    add_model_dir,
    add_no_progress,
    add_seed,
    list_of,
    non_negative_int,
    number,
    path_name,
    positive_float,
    positive_int,
)
from seqlab.distributions import CONTINUOUS_HEADS
from seqlab.experiments import EXPERIMENTS
from seqlab.models.pool import PRIOR
from seqlab.runs import backtest, experiment, explore, panel, sizing, train

QUANTILES = list_of(number(float, lambda q: 0 < q < 1, "a number in (0, 1)"), "numbers in (0, 1)")
POOL_PRIOR_HELP = (
    f"Dirichlet prior on the pool's weights: 1, the log score alone; larger, closer to equal weights ({PRIOR:g}; "
    "docs/forecasting.md)"
)
MODEL_DATA_NOTE = "default: the model's; the transform and audio encoding stay the model's"
TEXT_DATA_HELP = "text file or bundled name (default: the model's held-out validation part)"


def build_parser() -> Parser:
    parser = Parser(prog="seqlab", description="Probabilistic sequence models: train, sample, evaluate.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train_parser(sub, POOL_PRIOR_HELP)
    for add in (add_sample_parser, add_evaluate_parser, add_explore_parser, add_compare_parser, add_forecast_parser):
        add(sub)
    for add in (add_backtest_parser, add_info_parser, add_experiment_parser, add_export_parser):
        add(sub)
    return parser


def add_sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="generate text or audio from a trained model")
    add_model_dir(s, DEFAULT_OUT)
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
    add_seed(s, None)


def add_evaluate_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="score text: NLL per character, bits per character, perplexity")
    add_model_dir(e, DEFAULT_OUT)
    e.add_argument("--data", type=path_name, help=TEXT_DATA_HELP)
    e.add_argument("--unknown", choices=["error", "map"], default="error", help="characters not in the vocabulary")
    add_json(e, "print JSON")
    e.add_argument("--score-all", action="store_true", help=SCORE_ALL_HELP)
    g = e.add_argument_group("voice (audio models)")
    g.add_argument("--voice", action="store_true", help="generate audio and measure its voice beside the data's")
    g.add_argument("--seconds", type=positive_float, default=10.0, help="seconds to generate for --voice (10)")
    add_seed(g, 0, "random seed of --voice")
    g.add_argument("--temperature", type=positive_float, default=1.0, help="--voice: sampling temperature (1.0)")
    g.add_argument("--out", help="--voice: also write the generated audio to this WAV file (- for stdout)")
    add_data_options(e, note=MODEL_DATA_NOTE)


def add_explore_parser(sub) -> None:
    x = sub.add_parser("explore", help="write one HTML page to look inside a trained text model")
    add_model_dir(x, DEFAULT_OUT)
    x.add_argument("--data", type=path_name, help=TEXT_DATA_HELP)
    x.add_argument(
        "--chars", type=positive_int, default=explore.DEFAULT_CHARS, help=f"characters shown ({explore.DEFAULT_CHARS})"
    )
    x.add_argument(
        "--against", type=path_name, help="another saved text model of the same text (an n-gram, say) to compare with"
    )
    x.add_argument("--out", type=path_name, required=True, help="the HTML page to write (- for stdout)")
    add_data_option(x, "encoding")  # of the --data file (the model's own text: as it was trained)


def add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="fit every model family on one split and rank them by validation NLL")
    c.add_argument(
        "--data", type=path_name, default=train.DEFAULT_DATA, help=f"text file or bundled name ({train.DEFAULT_DATA})"
    )
    c.add_argument("--budget", type=positive_float, default=60.0, help="seconds of training per neural model (60)")
    c.add_argument(
        "--out", type=path_name, default="runs/compare", help="where compare.md, .csv, .json and .png go (runs/compare)"
    )
    add_seed(c)
    c.add_argument("--valid-fraction", type=positive_float, help="held-out share of a text without a marked one (0.1)")
    add_data_option(c, "encoding")
    add_json(c)
    add_no_progress(c)


def add_forecast_parser(sub) -> None:
    f = sub.add_parser("forecast", help="probabilistic forecast of a series with a trained model: table and fan chart")
    add_model_dir(f, None, "model directory (trained with seqlab train --data FILE.csv)")
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
    add_seed(f)


def add_backtest_parser(sub) -> None:
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
    add_seed(b)
    add_json(b)
    add_no_progress(b)
    p = b.add_argument_group("panel (--holdout)")
    p.add_argument(
        "--holdout",
        action="store_true",
        help="every series of the file, each forecast from --horizon values before its end (the M-competitions' "
        "protocol), scale-free scores averaged over the series; models "
        + ", ".join([*panel.PANEL_MODELS, *panel.PANEL_WIDE, *panel.GLOBAL_MODELS]),
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
    p.add_argument(
        "--global-seeds",
        type=positive_int,
        help="global models: this many networks (seeds --seed, --seed + 1, ...) forecast as their mixture (1)",
    )


def add_info_parser(sub) -> None:
    i = sub.add_parser("info", help="describe a trained model and what it was trained on")
    add_model_dir(i, DEFAULT_OUT)


def add_experiment_parser(sub) -> None:
    x = sub.add_parser("experiment", help="measure the notes' claims: " + ", ".join(EXPERIMENTS))
    xs = x.add_subparsers(dest="experiment", required=True, parser_class=Parser)
    for name, (config_class, run) in EXPERIMENTS.items():
        e = xs.add_parser(name, help=(run.__doc__ or name).strip().splitlines()[0])
        e.add_argument("--quick", action="store_true", help="the CI size (--size quick): under a minute")
        e.add_argument("--size", choices=experiment.sizes(name), default=None, help="quick, default or long")
        add_json(e, "print the table and summary as JSON")
        e.add_argument(
            "--out", type=path_name, help="write the table (CSV, Markdown, JSON) and PNG figures into this directory"
        )
        add_no_progress(e)
        e.set_defaults(config_options=add_config_options(e, config_class))


def add_export_parser(sub) -> None:
    x = sub.add_parser("export", help="write a model's step as an ONNX graph and its metadata (docs/export.md)")
    add_model_dir(x, DEFAULT_OUT)
    x.add_argument("--out", type=path_name, required=True, help="the ONNX file to write (- for stdout)")
    x.add_argument(
        "--chunk",
        type=int,
        metavar="K",
        help="write the generation graph instead: K steps and their draws per call (models of ids or frames)",
    )
    x.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
