"""``seqlab compare``: fit every family that applies to a text on one train/validation split, and rank them
by validation NLL per character: what each model's memory of the past buys."""

from __future__ import annotations

import csv
import io as _io
import math
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from seqlab.data.text import Vocabulary
from seqlab.metrics import likelihood_scores
from seqlab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    InfiniGram,
    LatentAR,
    LatentARConfig,
    MarkovChain,
    NeuralAR,
    NeuralARConfig,
    NGram,
)
from seqlab.training import Trainer, TrainerConfig

SAMPLE_LENGTH = 80
SPEED_LENGTH = 300


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
    progress: bool,
    budget: float | None = None,
    trainer: TrainerConfig | None = None,
):
    """Build and fit one contender: counts for the classical models, the shared ``Trainer`` for the neural
    ones, for ``budget`` seconds or as ``trainer`` says (a step budget makes the result reproducible)."""
    torch.manual_seed(seed)
    model = contender.build()
    if contender.neural:
        config = trainer or TrainerConfig(time_budget=budget, seed=seed, progress=progress, eval_every=10**9)
        Trainer(model, config).fit(train, None)
    else:
        model.fit(train)
    return model


def evaluate_contender(
    contender: Contender, train: torch.Tensor, valid: torch.Tensor, budget: float, seed: int, progress: bool
) -> dict:
    start = time.perf_counter()
    model = fit_contender(contender, train, seed, progress, budget=budget)
    fit_seconds = time.perf_counter() - start
    if contender.neural:
        params = sum(p.numel() for p in model.parameters())
    else:
        # what it stores: distinct n-grams, or the indexed training symbols
        params = len(model.text) if isinstance(model, InfiniGram) else sum(len(level.grams) for level in model.levels)
    scores = likelihood_scores(model.log_prob(valid))
    start = time.perf_counter()
    sample = model.sample("", SPEED_LENGTH, temperature=0.8, seed=seed)
    sample_rate = SPEED_LENGTH / (time.perf_counter() - start)
    return {
        "model": contender.name,
        "conditions_on": contender.conditions_on,
        "nll_nats": scores["nll_nats"],
        "bits_per_char": scores["bits_per_char"],
        "params": params,
        "fit_seconds": fit_seconds,
        "sample_chars_per_second": sample_rate,
        "sample": sample[:SAMPLE_LENGTH],
    }


def compare(
    train_text: str,
    valid_text: str,
    budget: float = 60.0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> list[dict]:
    vocabulary = Vocabulary.from_text(train_text)
    train = vocabulary.encode(train_text, source="training part")
    valid = vocabulary.encode(valid_text, unknown="map", source="validation part")
    results = []
    for contender in contenders(vocabulary):
        log(f"seqlab compare: {contender.name}" + (f" ({budget:g} s of training)" if contender.neural else ""))
        results.append(evaluate_contender(contender, train, valid, budget, seed, progress))
    return sorted(results, key=lambda r: r["nll_nats"])


def markdown_table(results: list[dict]) -> str:
    lines = [
        "| model | conditions on | validation NLL (nats/char) | bits/char | parameters (or stored n-grams) "
        "| fit s | sampling chars/s | sample |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        sample = r["sample"].replace("\n", "⏎").replace("|", "\\|")
        lines.append(
            f"| {r['model']} | {r['conditions_on']} | {r['nll_nats']:.4f} | {r['bits_per_char']:.3f} | "
            f"{r['params']:,} | {r['fit_seconds']:.1f} | {r['sample_chars_per_second']:,.0f} | `{sample}` |"
        )
    return "\n".join(lines) + "\n"


def csv_text(results: list[dict]) -> str:
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(results[0]))
    writer.writeheader()
    writer.writerows(results)
    return buffer.getvalue()


def bar_chart(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(results) + 1.2))
    names = [r["model"] for r in results][::-1]
    bits = [r["bits_per_char"] for r in results][::-1]
    ax.barh(names, bits, color="#4c72b0")
    for y, b in enumerate(bits):
        ax.text(b, y, f" {b:.3f}", va="center", fontsize=8)
    ax.set_xlabel("validation bits per character (lower is better)")
    ax.set_xlim(0, max(bits) * 1.15 if all(map(math.isfinite, bits)) else None)
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
