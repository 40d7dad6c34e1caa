"""Likelihood metrics from per-step log-probabilities (the output of ``SequenceModel.log_prob``)."""

from __future__ import annotations

import math

import torch

LN2 = math.log(2.0)


def likelihood_scores(log_probs: torch.Tensor) -> dict:
    """NLL per step in nats, in bits (bits per character for text), perplexity, and the step count."""
    if log_probs.numel() == 0:
        raise ValueError("no steps to score")
    nll = float(-log_probs.double().mean())
    return {"nll_nats": nll, "bits_per_char": nll / LN2, "perplexity": math.exp(nll), "tokens": log_probs.numel()}
