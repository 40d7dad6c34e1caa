"""A small character model trained briefly on the bundled Shakespeare, for the experiments that look
inside a trained recurrent network (gradients, gates)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from seqlab.data import BUNDLED, load_text, split_text
from seqlab.data.text import Vocabulary
from seqlab.metrics import likelihood_scores
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.training import Callback, Trainer, TrainerConfig

DATA = "shakespeare"


@functools.lru_cache(maxsize=1)
def shakespeare_split() -> tuple[str, str]:
    """(training plays, held-out play) of the bundled text, split as ``seqlab train`` splits it."""
    return split_text(load_text(DATA), 0.1, BUNDLED[DATA].valid_from)


def train_char_model(
    cell: str,
    hidden_size: int,
    embedding_dim: int,
    steps: int,
    seed: int,
    callbacks: Sequence[Callback] = (),
    batch_size: int = 32,
    window: int = 64,
    forget_init: str = "1",
) -> LatentAR:
    """A one-layer ``LatentAR(cell)`` trained for ``steps`` steps of the shared ``Trainer`` (``steps = 0``:
    the model at initialisation). Same seed, same weights. ``forget_init``: the LSTM's (``LatentARConfig``);
    ``callbacks``: the Trainer's (``common.Fitting``)."""
    train, _ = shakespeare_split()
    torch.manual_seed(seed)
    model = LatentAR(
        Vocabulary.from_text(train),
        LatentARConfig(cell=cell, hidden_size=hidden_size, embedding_dim=embedding_dim, forget_init=forget_init),
    )
    if steps > 0:
        config = TrainerConfig(
            steps=steps,
            batch_size=batch_size,
            window=window,
            warmup_steps=min(50, steps // 5),
            eval_every=10**9,
            seed=seed,
        )
        Trainer(model, config, callbacks=callbacks).fit(model.encode(train, source="training text"))
    model.eval()
    return model


def held_out_bits_per_char(model: LatentAR, chars: int = 5000) -> float:
    """Bits per character on the first ``chars`` characters of the held-out play."""
    _, valid = shakespeare_split()
    return likelihood_scores(model.log_prob(model.encode(valid[:chars], unknown="map")))["bits_per_char"]
