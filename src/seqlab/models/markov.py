"""``MarkovChain``: the first-order Markov model (AR(1)) of discrete data.

    P(x_t | x_<t) = P(x_t | x_{t-1}) = (c(x_{t-1} x_t) + k) / (c(x_{t-1}) + k V)

the add-k (Lidstone) estimate of the transition matrix; the first element takes the add-k unigram.
It is ``NGram(order=1, smoothing="lidstone", gamma=k)`` with the matrix view on top.
"""

from __future__ import annotations

import numpy as np

from seqlab.base import ConformanceCase
from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError
from seqlab.models.ngram import NGram


class MarkovChain(NGram):
    """First-order Markov chain with add-``k`` smoothing of the transition counts.

    Example::

        >>> chain = MarkovChain(k=1.0).fit("abracadabra")
        >>> chain.transition_matrix().sum(axis=1).round(6).tolist() == [1.0] * chain.V
        True
    """

    kind = "markov"

    def __init__(self, k: float = 1.0, vocabulary: Vocabulary | None = None) -> None:
        if k <= 0:
            raise SeqlabError(f"add-k smoothing needs k > 0 (else rows of unseen symbols are undefined), got {k}")
        super().__init__(order=1, smoothing="lidstone", gamma=k, vocabulary=vocabulary)
        self.k = k

    def transition_matrix(self) -> np.ndarray:
        """P[i, j] = P(x_t = j | x_{t-1} = i), (V, V); every row sums to 1."""
        self.check_fitted()
        V = self.V
        previous = np.repeat(np.arange(V, dtype=np.int64), V)[:, None]  # (V * V, 1)
        following = np.tile(np.arange(V, dtype=np.int64), V)
        return self._probs(previous, following).reshape(V, V)

    def stationary_distribution(self) -> np.ndarray:
        """pi with pi P = pi and sum(pi) = 1 (unique: with k > 0 the chain is irreducible and aperiodic)."""
        P = self.transition_matrix()
        V = self.V
        A = np.vstack([P.T - np.eye(V), np.ones((1, V))])
        b = np.zeros(V + 1)
        b[-1] = 1.0
        pi, *_ = np.linalg.lstsq(A, b, rcond=None)
        return pi

    def to_config(self) -> dict:
        return {"config": {"k": self.k}, "vocabulary": self.vocabulary.to_json()}

    @classmethod
    def from_config(cls, config: dict) -> MarkovChain:
        return cls(**config["config"], vocabulary=Vocabulary.from_json(config["vocabulary"]))

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        return [ConformanceCase("add-0.5", "text", lambda text: cls(k=0.5))]

    def describe(self) -> str:
        return f"MarkovChain(k={self.k}, {f'vocabulary {self.V}' if self.levels else 'not fitted'})"
