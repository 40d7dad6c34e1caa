"""The model families that apply to discrete text, cheapest first, each buildable and fittable by name:
what ``seqlab compare`` ranks and the ``order`` experiment shuffles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from seqlab.data.text import Vocabulary
from seqlab.models.infinigram import InfiniGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.markov import MarkovChain
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.ngram import NGram
from seqlab.models.transformer import CausalTransformer, CausalTransformerConfig
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
