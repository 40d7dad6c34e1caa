"""``seqlab train``: its options and what it prints. ``--model`` names a family (``runs.family.FAMILIES``) and
``--cell`` the latent AR model's cell; the older spelling ``--model lstm`` is latent AR with that cell."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from pathlib import Path

from seqlab.cli.cell_help import FORGET_INIT_HELP
from seqlab.cli_options import (
    DATA_OPTIONS,
    SCORE_ALL_HELP,
    add_data_options,
    add_no_progress,
    add_seed,
    fraction,
    given,
    list_of,
    non_negative_int,
    order,
    path_name,
    positive_float,
    positive_int,
)
from seqlab.data.bundled_data import resolve
from seqlab.data.spec import DataSpec
from seqlab.distributions import CONTINUOUS_HEADS
from seqlab.errors import OptionError
from seqlab.metrics import score_names
from seqlab.models.garch import VOLATILITY_NAMES
from seqlab.models.latent_ar import LatentARConfig
from seqlab.models.ngram import SMOOTHINGS
from seqlab.models.noise import NOISES
from seqlab.recurrent import CELLS
from seqlab.runs import contenders, train, train_global
from seqlab.runs.family import FAMILIES
from seqlab.runs.run_directory import LAST_DIR
from seqlab.runs.sample import voice_summary
from seqlab.training import SCORE_BLOCKS, TrainerConfig

DEFAULT_OUT = f"runs/{train.DEFAULT_CELL}"
MODEL = LatentARConfig()
TRAINER = TrainerConfig()
# command-line option (argparse dest) -> TrainSpec.model key, where they differ (the rest: --name is name)
MODEL_OPTIONS = {"hidden": "hidden_size", "layers": "num_layers", "embedding": "embedding_dim", "gru_reset": "reset"}
MODEL_OPTIONS |= {"attention_heads": "num_heads"}
MODEL_OPTIONS |= {
    name: name
    for name in ("cell", "dropout", "backend", "head", "components", "forget_init", "context")
    + ("order", "smoothing", "add_k", "max_length", "form", "season", "vol", "dist", "mean", "lags", "members")
    + ("pool_prior", "horizon", "series_embedding")
}
FLAGS = {key: "--" + option.replace("_", "-") for option, key in MODEL_OPTIONS.items()} | {"family": "--model"}
FAMILY_HELP = (
    "the model family: latent_ar (the default; its cell: --cell), neural_ar, transformer, ngram, markov, infinigram "
    "(text), linear_ar, random_walk, ets (see --form), garch (see --vol), pool (see --members) (a series); rnn, lstm "
    "or gru: latent_ar with that cell; global-lstm, global-gru or global-rnn: one network on every series of a panel "
    "(see --id-column, --horizon)"
)


def add_train_parser(sub, pool_prior_help: str) -> None:
    t = sub.add_parser("train", help="train a model (latent AR by default: RNN, LSTM, GRU) on text, a series or audio")
    t.add_argument(
        "--data",
        type=path_name,
        help="text, .csv or .wav file, or a bundled name: shakespeare, msft, speech (shakespeare)",
    )
    t.add_argument("--model", choices=(*CELLS, *FAMILIES), help=FAMILY_HELP)
    t.add_argument(
        "--out", type=path_name, help="output directory (runs/MODEL for text, runs/DATA-MODEL for a series or audio)"
    )
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    g = t.add_argument_group("model (the neural families)")
    g.add_argument("--cell", choices=tuple(CELLS), help="latent AR: the cell (lstm for text, gru for series and audio)")
    g.add_argument("--hidden", type=positive_int, help=f"hidden units per layer ({MODEL.hidden_size})")
    g.add_argument("--layers", type=positive_int, help=f"recurrent layers ({MODEL.num_layers})")
    g.add_argument("--embedding", type=positive_int, help=f"input embedding size ({MODEL.embedding_dim})")
    g.add_argument("--dropout", type=fraction, help=f"dropout between layers ({MODEL.dropout})")
    g.add_argument("--gru-reset", choices=["before", "after"], help="GRU: reset before (notes) or after (cuDNN)")
    g.add_argument("--backend", choices=["auto", "reference", "torch", "triton"], help="recurrence backend (auto)")
    g.add_argument("--head", choices=CONTINUOUS_HEADS, help="distribution of a continuous next value (gaussian)")
    g.add_argument("--components", type=positive_int, help="mixture head: components (3)")
    g.add_argument("--forget-init", help=f"LSTM only, {FORGET_INIT_HELP} ({MODEL.forget_init})")
    g.add_argument("--context", type=positive_int, help="elements a prediction sees: neural_ar (8), transformer (128)")
    g.add_argument("--attention-heads", type=positive_int, help="transformer: attention heads (4)")
    g = t.add_argument_group("counts (--model ngram, markov, infinigram) and linear AR")
    g.add_argument("--order", type=order, help="ngram: previous characters seen (5); linear_ar: lags, aic or bic (bic)")
    g.add_argument("--smoothing", choices=SMOOTHINGS, help="ngram: how unseen n-grams get probability (kneser_ney)")
    g.add_argument("--add-k", type=positive_float, help="markov: added to every transition count (1)")
    g.add_argument("--max-length", type=non_negative_int, help="infinigram: longest suffix matched (no limit)")
    g = t.add_argument_group("ETS (--model ets; a series of levels wants --transform none)")
    g.add_argument("--form", help="error, trend, season: A/M, N/A/Ad, N/A/M, Z for chosen by AICc (ZZZ)")
    g.add_argument("--season", type=positive_int, help="values per season, 12 for monthly (1: no season)")
    g = t.add_argument_group("global model (--model global-lstm, global-gru, global-rnn; also --season, --hidden ...)")
    g.add_argument(
        "--horizon", type=positive_int, help=f"the horizon trained for ({train_global.default_horizon()}, as backtest)"
    )
    g.add_argument(
        "--series-embedding",
        type=positive_int,
        help="width of a learned embedding of each series (none: the model forecasts series it never saw)",
    )
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
    members = ", ".join(contenders.SeriesOptions.pool_members)
    g.add_argument(
        "--members", type=list_of(str, "names"), help=f"the forecasters pooled, as backtest names them ({members})"
    )
    g.add_argument("--pool-prior", type=positive_float, help=pool_prior_help)
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
    add_seed(g, None, "random seed (0)")
    t.add_argument("--sample-length", type=non_negative_int, default=300, help="sample printed at the end (300)")
    t.add_argument("--score-all", action="store_true", help=SCORE_ALL_HELP)
    add_no_progress(t, "no progress bar")


def cell_flag(args) -> str:
    """The option that gave the cell: ``--cell``, or ``--model`` in its older spelling (``--model lstm``)."""
    return "--cell" if getattr(args, "cell", None) else "--model"


def family_and_cell(args) -> tuple[str | None, str | None]:
    """(family, cell) from ``--model`` and ``--cell``: a cell named by ``--model`` is latent AR with it."""
    if args.model in CELLS:
        if args.cell and args.cell != args.model:
            raise OptionError(f"--model {args.model} names a cell; {{0}} {args.cell} another: give one", "cell")
        return "latent_ar", args.model
    if args.cell and args.model not in (None, "latent_ar"):
        raise OptionError(f"{{0}}: an option of --model latent_ar; --model {args.model} has no cell", "cell")
    return args.model or ("latent_ar" if args.cell else None), args.cell


def cmd_train(args, say: Callable[[str], None]) -> int:
    family, cell = family_and_cell(args)
    model = {MODEL_OPTIONS[k]: v for k, v in given(args, MODEL_OPTIONS).items()} | ({"cell": cell} if cell else {})
    trainer_fields = [f.name for f in dataclasses.fields(TrainerConfig) if hasattr(args, f.name)]
    trainer = given(args, trainer_fields)
    if args.score_all:
        trainer["score_limit"] = None
    options = given(args, DATA_OPTIONS)
    data = DataSpec(args.data or train.DEFAULT_DATA, **options) if args.data or options else None
    out = Path(args.out) if args.out else None
    spec = train.TrainSpec(data, model, trainer, out, args.resume, args.overwrite, family, not args.no_progress)
    run = train.train(spec, say=say)
    result, kind, final = run.training, run.dataset.kind, run.final
    if result is not None and result.stopped_because == "interrupted" and not (run.out / LAST_DIR).is_dir():
        say(f"seqlab: interrupted at step {result.steps}; the best model so far is saved in {run.out}")
        return 130
    if result is not None and result.stopped_because == "interrupted":
        say(
            f"seqlab: interrupted at step {result.steps}; checkpoint saved in {run.out / LAST_DIR}; "
            f"continue with: seqlab train --resume --out {run.out}"
        )
        return 130
    if not run.main_process:
        return 0
    if result is None:  # fitted in one go (GARCH, a pool, counts); held-out values each given all before them
        say(f"seqlab: {run.model.describe()}; fitted in {final['fit_seconds']:.3f} s; saved in {run.out}")
    else:
        rate = f"{result.elements_per_second:,.0f} {run.dataset.elements}/s"
        say(f"seqlab: {result.stopped_because}: {result.steps} steps in {result.elapsed:.0f} s ({rate})")
        target = train.KIND_DEFAULTS["vocoder"]["steps"] if run.dataset.elements == "frames" else None
        if target and "steps" not in trainer and result.steps < target and "time budget" in result.stopped_because:
            say(
                f"seqlab: the {result.elapsed:.0f} s ceiling stopped it at {result.steps:,} of the default "
                f"{target:,} steps: a less trained voice than docs/audio.md measures; finish with: seqlab train "
                f"--resume --out {run.out} --time-budget 1800"
            )
    print_scores(run, final, say)
    # a local file must be named again (a checkpoint's recorded path is never read unnamed)
    source = run.dataset.spec.source
    named = "" if resolve(source)[1] is not None else f" --data {shlex.quote(source)}"
    if isinstance(run.dataset, train_global.PanelDataset):
        spec = run.dataset.spec
        columns = "".join(
            f" --{name.replace('_', '-')} {shlex.quote(getattr(spec, name))}"
            for name in train_global.PANEL_DATA_FIELDS
            if getattr(spec, name) is not None
        )
        horizon = run.model.config.horizon
        command = f"seqlab forecast {shlex.quote(str(run.out))}{named}{columns} --horizon {horizon}"
        say(f"seqlab: forecast every series with: {command}")
    elif kind == "series":
        command = f"seqlab forecast {shlex.quote(str(run.out))}{named} --horizon 20 --plot forecast.png"
        say(f"seqlab: forecast with: {command}")
    elif kind == "audio":
        if (line := voice_summary(run.model, run.dataset)) is not None:
            say(f"seqlab: {line}")
        say(f"seqlab: generate with: seqlab sample {run.out} --seconds 2 --out generated.wav")
        if run.dataset.elements == "frames":
            say(f"seqlab: measure its voice with: seqlab evaluate {shlex.quote(str(run.out))} --voice{named}")
    elif args.sample_length:
        say(f"seqlab: sample (temperature 0.8, seed 0):\n{run.model.sample('', args.sample_length, 0.8, seed=0)}")
    return 0


def print_scores(run: train.TrainResult, final: dict | None, say: Callable[[str], None]) -> None:
    discrete = run.model.head.discrete
    names = score_names(run.dataset.elements, discrete)
    if final is not None and run.dataset.kind == "text" and "valid_tokens" in final:
        say(
            f"seqlab: held-out {final['valid_tokens']:,} characters: {final['valid_bits_per_char']:.3f} bits/char, "
            f"NLL {final['valid_nll_nats']:.4f} nats, perplexity {final['valid_perplexity']:.2f}"
        )
    elif final is not None and f"valid_{names['nll']}" in final:
        unit = run.dataset.elements.removesuffix("s")
        value = final[f"valid_{names['bits' if discrete else 'nll']}"]
        unit = f"bits/{unit}" if discrete else f"nats/{unit} (a density: lower is better, can be negative)"
        say(f"seqlab: held-out {final['valid_' + names['count']]:,} {run.dataset.elements}: {value:.4f} {unit}")
    if final is not None and "valid_sampled_of" in final:
        error, total = final["valid_nll_standard_error"], final["valid_sampled_of"]
        say(
            f"seqlab: (a sample of the held-out part: {SCORE_BLOCKS} blocks spread over its {total:,} "
            f"{run.dataset.elements}, NLL standard error {error:.4f} nats; --score-all scores every one)"
        )
