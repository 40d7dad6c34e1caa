"""The model families, each buildable and fittable by name.

- text: the families that apply to discrete text, cheapest first: what ``seqlab compare`` ranks and the
  ``order`` experiment shuffles (``contenders``, ``fit_contender``);
- series: the forecasting families ``seqlab backtest`` compares and the pool combines (``series_contender``,
  each with its own fit: ``fit_values``, ``fit_neural``, the pool's, each returning a typed ``FitRecord``): the
  random walk, a linear AR, the GARCH family (``garch``, ``gjr-t``, ``egarch-skewt``, ``garchx-t`` ...:
  volatility[-noise], ``seqlab.models.garch``), the neural models, and ``pool``, a linear pool of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import torch

from seqlab.base import SequenceModel
from seqlab.data.text import Vocabulary
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import aic
from seqlab.models.garch import GARCH, GARCH_EXAMPLES, GARCHConfig
from seqlab.models.infinigram import InfiniGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.markov import MarkovChain
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.ngram import NGram
from seqlab.models.pool import PRIOR, FitRecord, Pool, SeriesContender, check_prior, member_view
from seqlab.models.random_walk import RandomWalk
from seqlab.models.transformer import CausalTransformer, CausalTransformerConfig
from seqlab.runs import sizing
from seqlab.training import Callback, TrainerConfig


@dataclass
class Contender:
    name: str
    conditions_on: str
    build: Callable[[], object]
    neural: bool


def ngram_name(order: int) -> str:
    return "unigram (ngram order 0)" if order == 0 else f"ngram order {order} (Kneser-Ney)"


def contenders(
    vocabulary: Vocabulary,
    ngram_orders: tuple[int, ...] = (2, 4, 6, 8),
    latent: LatentARConfig | None = None,
    neural_ar: NeuralARConfig | None = None,
    transformer: CausalTransformerConfig | None = None,
) -> list[Contender]:
    """The families that apply to discrete text, cheapest first; the neural sizes default to the CLI's
    (``latent``: its ``cell`` is replaced by each of rnn, lstm, gru)."""
    latent = latent or LatentARConfig()
    neural_ar = neural_ar or NeuralARConfig(window=16, hidden_size=256)
    transformer = transformer or CausalTransformerConfig()

    def latent_ar(cell: str) -> Callable[[], object]:
        return lambda: LatentAR(vocabulary, replace(latent, cell=cell))

    def ngram(n: int) -> Callable[[], object]:
        return lambda: NGram(order=n, smoothing="kneser_ney", vocabulary=vocabulary)

    size = f"{latent.num_layers} x {latent.hidden_size}"
    reach = transformer.num_layers * (transformer.context - 1) + 1
    w = neural_ar.window
    return [
        Contender("markov (add-0.5)", "x_{t-1}", lambda: MarkovChain(k=0.5, vocabulary=vocabulary), False),
        *[
            Contender(ngram_name(n), f"x_{{t-{n}}}..x_{{t-1}}" if n else "nothing (unigram)", ngram(n), False)
            for n in ngram_orders
        ],
        Contender(
            "infinigram", "all of x_<t (every matching suffix)", lambda: InfiniGram(vocabulary=vocabulary), False
        ),
        Contender(
            f"neural AR window {w} (MLP)",
            f"x_{{t-{w}}}..x_{{t-1}}",
            lambda: NeuralAR(vocabulary, replace(neural_ar)),
            True,
        ),
        Contender(
            f"causal transformer {transformer.num_layers} x d{transformer.d_model}",
            f"x_{{t-{reach}}}..x_{{t-1}}",
            lambda: CausalTransformer(vocabulary, replace(transformer)),
            True,
        ),
        *[
            Contender(f"latent AR {cell} {size}", "x_{t-1} and H_t (all of x_<t)", latent_ar(cell), True)
            for cell in ("rnn", "lstm", "gru")
        ],
    ]


def fit_contender(
    contender: Contender,
    train: torch.Tensor,
    seed: int,
    budget: float | None = None,
    trainer: TrainerConfig | None = None,
    callbacks: Sequence[Callback] = (),
):
    """Build and fit one contender: counts for the classical models, the shared ``Trainer`` for the neural
    ones, for ``budget`` seconds or as ``trainer`` says (a step budget makes the result reproducible), with
    ``callbacks`` (the caller's progress bar)."""
    torch.manual_seed(seed)
    model = contender.build()
    if contender.neural:
        config = trainer or TrainerConfig(time_budget=budget, seed=seed, eval_every=10**9)
        return model.fit(train, None, callbacks=callbacks, **vars(config))
    return model.fit(train)


# -- series: what backtest compares and the pool combines ------------------------------------------------------

NEURAL_SERIES_MODELS = ("neural_ar", "rnn", "lstm", "gru")
SERIES_MODELS = ("random_walk", "linear_ar", *NEURAL_SERIES_MODELS, "pool")
NEURAL_LR = 2e-3


def known_series_name(name: str) -> bool:
    return name in SERIES_MODELS or GARCHConfig.from_name(name) is not None


def reads_covariates(name: str) -> bool:
    """Whether the contender called ``name`` reads the covariates beside the values: the neural models, GARCH-X."""
    config = GARCHConfig.from_name(name)
    return name in NEURAL_SERIES_MODELS or (config is not None and GARCH(config).num_covariates > 0)


@dataclass
class SeriesOptions:
    """How a series contender is built and trained: ``differenced`` (the series is increments, e.g. log
    returns), the neural models' head and width, their budget in passes (or a fixed number of steps)."""

    differenced: bool = True
    head: str = "gaussian"
    hidden: int = 64
    passes: int = sizing.MAX_PASSES
    steps: int | None = None
    seed: int = 0
    pool_members: tuple[str, ...] = ("random_walk", "linear_ar", "garch-t", "egarch-t", "gru")
    pool_prior: float = PRIOR  # the pool's Dirichlet prior on its weights


@dataclass(frozen=True)
class TrainedFit(FitRecord):
    """A neural model's training: the Trainer's steps, as passes over the fitting part, and why it stopped."""

    steps: int
    passes: float
    stopped: str
    detail: ClassVar[str | None] = "training"

    def summary(self) -> str:
        return f", {self.passes:g} passes ({self.stopped})"


@dataclass(frozen=True)
class OrderFit(FitRecord):
    """A linear AR's fit: the order BIC chose."""

    order: int

    def label(self, name: str) -> str:
        return f"{name} (order {self.order})"


@dataclass(frozen=True)
class GARCHFit(FitRecord):
    """A GARCH-family fit: its AIC on the training part (what chooses the backtest's default reference)."""

    aic: float


@dataclass(frozen=True)
class PoolFit(FitRecord):
    """A pool's fit: the weight of each member and the log scores on the weighting tail that chose them
    (``Pool.record``)."""

    weights: dict[str, float]
    tail_scores: dict = field(default_factory=dict)
    detail: ClassVar[str | None] = "pool"

    @classmethod
    def of(cls, pool: Pool) -> PoolFit:
        record = pool.record()
        return cls(record.pop("weights"), record)

    def as_json(self) -> dict:
        return {"weights": dict(self.weights), **self.tail_scores}

    def summary(self) -> str:
        return "; weights " + ", ".join(f"{m} {w:.2f}" for m, w in self.weights.items())


def series_contender(name: str, train: np.ndarray, options: SeriesOptions) -> SeriesContender:
    """An unfitted contender called ``name`` for ``train``: the modelled series (T,), or (T, 1 + C) with past
    covariates, which the neural models (they standardise by it: ``for_series``) and GARCH-X read."""
    covariates = train.shape[1] - 1 if train.ndim == 2 else 0
    if name in NEURAL_SERIES_MODELS:
        if name == "neural_ar":
            config = NeuralARConfig(window=20, hidden_size=options.hidden, head=options.head, covariates=covariates)
            model = NeuralAR.for_series(torch.from_numpy(train), config)
        else:
            config = LatentARConfig(cell=name, hidden_size=options.hidden, head=options.head, covariates=covariates)
            model = LatentAR.for_series(torch.from_numpy(train), config)
        fit = lambda data, callbacks: fit_neural(model, data, options, callbacks)  # noqa: E731
        return SeriesContender(name, model, fit, covariates > 0, trains=True)
    if name == "pool":
        members = [m for m in options.pool_members if m != "pool"]
        reads = covariates if any(reads_covariates(m) for m in members) else 0
        model = Pool(
            members,
            lambda member, part: series_contender(member, part, options),
            options.seed,
            covariates=reads,
            prior=options.pool_prior,
        )
        fit = lambda data, callbacks: PoolFit.of(model.fit(data, callbacks=callbacks))  # noqa: E731
        trains = any(m in NEURAL_SERIES_MODELS for m in members)
        return SeriesContender(name, model, fit, reads > 0, trains)
    if name == "random_walk":
        walk = RandomWalk(options.differenced)
        return SeriesContender(name, walk, lambda data, callbacks: fit_values(walk, data))
    if name == "linear_ar":
        ar = LinearAR(order="bic", max_order=10)  # BIC: AIC overfits a short series (monthly: +1 nat)

        def fit_ar(data: torch.Tensor, callbacks: Sequence[Callback]) -> OrderFit:
            fit_values(ar, data)
            return OrderFit(ar.order)

        return SeriesContender(name, ar, fit_ar)
    if (config := GARCHConfig.from_name(name)) is not None:
        garch = GARCH(config)
        check_exogenous(name, covariates)

        def fit_garch(data: torch.Tensor, callbacks: Sequence[Callback]) -> GARCHFit:
            fit_values(garch, data)
            return GARCHFit(in_sample_aic(garch))

        return SeriesContender(name, garch, fit_garch, garch.num_covariates > 0)
    choices = ", ".join(SERIES_MODELS + GARCH_EXAMPLES)
    raise OptionError(f"{{0}}: unknown {name!r}; choose from {choices}", "models")


def check_exogenous(name: str, covariates: int, listed: str = "models") -> None:
    """A GARCH-X contender reads one exogenous variance beside the values: refuse data with ``covariates`` other
    than one, naming the option that ``listed`` it (``models``; a pool's ``members``) and ``features``."""
    config = GARCHConfig.from_name(name)
    needs = GARCH(config).num_covariates if config is not None else 0
    if needs and needs != covariates:
        raise OptionError(
            f"{{0}}: {name} reads one exogenous variance beside the values; the data have {covariates} "
            "covariates (give {1} range)",
            listed,
            "features",
        )


def check_contenders(names: Sequence[str], options: SeriesOptions, covariates: int, listed: str = "models") -> None:
    """Refuse, before anything is fitted, what the contenders ``names`` (and a pool's members) would refuse only
    when their turn came: the pool's prior (``check_prior``) and a GARCH-X name without its covariate. Inside a
    pool such a member was merely left out, its reason naming fields (``models``), not options. ``listed`` names
    the option that gave ``names``."""
    if "pool" in names:
        try:
            check_prior(options.pool_prior)
        except SeqlabError as e:
            raise OptionError(f"{{0}}: {e}", "pool_prior") from None
    for name in (*names, *(options.pool_members if "pool" in names else ())):
        check_exogenous(name, covariates, listed)


def fit_values(model: SequenceModel, data: torch.Tensor) -> FitRecord:
    """Maximum likelihood or closed form on the values (T,), with their covariates (T, 1 + C) for a model that
    reads them (GARCH-X); the covariates are dropped for the others."""
    values = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    model.fit(member_view(values, model.num_covariates > 0))
    return FitRecord()


def in_sample_aic(model: GARCH) -> float:
    """AIC of a fitted GARCH-family model on its training part."""
    return aic(len(model.params), model.training_result.loglik)


def fit_neural(
    model: SequenceModel, data: torch.Tensor, options: SeriesOptions, callbacks: Sequence[Callback] = ()
) -> TrainedFit:
    """The neural models train on all but the tail of ``data`` (everything before the fitting point); the tail
    picks their weights and stops them (``sizing``); ``callbacks`` go to the Trainer. Returns the steps, passes
    and the reason it stopped."""
    fit_part, tail = sizing.split_tail(data)
    trainer = sizing.trainer_options(len(fit_part), options.passes)
    if options.steps is not None:
        trainer["steps"] = options.steps
    if tail is None:
        trainer["patience"] = 0
    model.fit(fit_part, tail, callbacks=callbacks, lr=NEURAL_LR, seed=options.seed, **trainer)
    record = model.training_result
    per_pass = sizing.steps_per_pass(len(fit_part), trainer["window"], trainer["batch_size"])
    return TrainedFit(record.steps, round(record.steps / per_pass, 1), record.stopped_because)
