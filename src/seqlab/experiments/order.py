"""``seqlab experiment order``: order carries information.

Every model family that applies to text is fitted on the training plays, then scores the held-out text
x and three permutations of it that keep exactly the same characters (the same multiset):

    lines   the lines in shuffled order          (destroys order across lines)
    words   the words shuffled, whitespace kept  (destroys order across words)
    chars   all characters shuffled              (destroys all order)

NLL per character, ``-1/N sum_s log P(x_s | x_<s)``. A model that uses context finds the shuffled text
less likely. The unigram model ``P(x_s | x_<s) = P(x_s)`` (``NGram(order=0)``) cannot see order: its
log-probabilities are the same multiset for every permutation, so its NLL does not move at all.
``LinearAR`` is skipped: it is a model of continuous values (a Gaussian over real numbers), and
character ids are labels, not quantities.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field

import torch

from seqlab.data.text import Vocabulary
from seqlab.experiments.char_model import shakespeare_split
from seqlab.experiments.common import ExperimentResult, Fitting, progress, torch_threads, unwatched
from seqlab.models import CausalTransformerConfig, LatentARConfig, NeuralARConfig
from seqlab.runs.contenders import contenders, fit_contender, ngram_name
from seqlab.training import TrainerConfig

SHUFFLES = ("lines", "words", "chars")
UNIGRAM = ngram_name(0)
SKIPPED = {"LinearAR": "continuous-valued (Gaussian head): character ids are labels, not numbers to regress on"}


@dataclass
class OrderConfig:
    chars: int = 20_000  # held-out characters scored
    ngram_orders: tuple[int, ...] = field(
        default=(0, 2, 4, 6), metadata={"min": 0, "help": "n-gram orders, 0 the unigram"}
    )
    train_steps: int = 400  # every neural model: the same number of Trainer steps
    batch_size: int = 32
    window: int = 64
    latent_hidden: int = field(default=256, metadata={"option": "hidden"})
    neural_ar_hidden: int = 256
    transformer_d_model: int = 64
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls) -> OrderConfig:
        return cls(
            chars=3000,
            ngram_orders=(0, 2, 4),
            train_steps=40,
            latent_hidden=32,
            neural_ar_hidden=32,
            transformer_d_model=32,
        )


def shuffle_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    rng.shuffle(lines)
    return "\n".join(lines)


def shuffle_words(text: str, rng: random.Random) -> str:
    """Shuffle the maximal runs of non-space characters among themselves; the whitespace stays put."""
    pieces = re.split(r"(\s+)", text)  # words at even indices, whitespace at odd ones
    slots = [k for k in range(0, len(pieces), 2) if pieces[k]]  # not the empty ends of a text that starts or
    words = [pieces[k] for k in slots]  # ends with whitespace: moved inside, they would merge two runs of it
    rng.shuffle(words)
    for k, word in zip(slots, words, strict=True):
        pieces[k] = word
    return "".join(pieces)


def shuffle_chars(text: str, rng: random.Random) -> str:
    chars = list(text)
    rng.shuffle(chars)
    return "".join(chars)


SHUFFLE = {"lines": shuffle_lines, "words": shuffle_words, "chars": shuffle_chars}


def shuffled_texts(text: str, seed: int) -> dict[str, str]:
    """{"original", "lines", "words", "chars"} -> text; each permutation keeps the same characters."""
    return {"original": text, **{name: SHUFFLE[name](text, random.Random(f"{seed}-{name}")) for name in SHUFFLES}}


def run(config: OrderConfig, show_progress: bool = True, fitting: Fitting = unwatched) -> ExperimentResult:
    train_text, valid_text = shakespeare_split()
    start = max(0, valid_text.find("[Enter"))  # speeches, not the title page
    texts = shuffled_texts(valid_text[start : start + config.chars], config.seed)
    vocabulary = Vocabulary.from_text(train_text)
    train = vocabulary.encode(train_text, source="training plays")
    scored = {name: vocabulary.encode(t, unknown="map", source=f"held-out text ({name})") for name, t in texts.items()}
    field = contenders(
        vocabulary,
        config.ngram_orders,
        latent=LatentARConfig(hidden_size=config.latent_hidden, embedding_dim=32),
        neural_ar=NeuralARConfig(window=16, hidden_size=config.neural_ar_hidden),
        transformer=CausalTransformerConfig(context=128, d_model=config.transformer_d_model),
    )
    trainer = TrainerConfig(
        steps=config.train_steps,
        batch_size=config.batch_size,
        window=config.window,
        warmup_steps=min(50, config.train_steps // 5),
        eval_every=10**9,
        seed=config.seed,
    )
    rows, invariance = [], {}
    with torch_threads(config.threads), progress(len(field), "order", show_progress) as bar:
        for contender in field:
            with fitting() as callbacks:
                model = fit_contender(contender, train, config.seed, trainer=trainer, callbacks=callbacks)
            log_probs = {name: model.log_prob(x).double() for name, x in scored.items()}
            # fsum: the exactly rounded sum, so a permutation of the same log-probabilities gives the same NLL
            nll = {name: -math.fsum(lp.tolist()) / len(lp) for name, lp in log_probs.items()}
            row = {"model": contender.name, "conditions_on": contender.conditions_on, "nll_original": nll["original"]}
            for name in SHUFFLES:
                row[f"nll_{name}"] = nll[name]
                row[f"increase_{name}"] = nll[name] - nll["original"]
            rows.append(row)
            if contender.name == UNIGRAM:
                original = log_probs["original"].sort().values
                invariance = {name: bool(torch.equal(original, log_probs[name].sort().values)) for name in SHUFFLES}
            bar.update(1)
    summary = {
        "held_out_chars": len(texts["original"]),
        "unigram_log_probs_identical_multiset": invariance or None,
        "skipped": SKIPPED,
    }
    return ExperimentResult("order", asdict(config), rows, summary, {"texts": {k: v[:300] for k, v in texts.items()}})
