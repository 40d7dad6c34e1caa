"""Fast streaming generation from a discrete ``LatentAR``: batch 1, one element at a time, in NumPy.

Generating audio means one model step per sample, tens of thousands per second of sound, so per-step
overhead decides the speed: a torch call costs microseconds of dispatch, and a step of the model is a dozen
of them. This sampler computes exactly ``LatentAR.step`` (the equations of ``seqlab.cells``) with NumPy on
float32 copies of the weights, and folds everything that depends only on the input element into tables:

    input_table[v]  = W_ih . e(v) + b_ih           (V + 1, G)   first layer's input projection, per element
    output_table[v] = W_out[:, H:] . e(v) + b_out  (V + 1, V)   the head's direct view of the previous element

so a step is ``W_hh . h`` per layer, the gates, ``W_out[:, :H] . h``, and an inverse-CDF draw from the softmax.
``tests/test_streaming.py`` checks it against ``LatentAR.step`` (logits and states) and the draws against
the softmax of the reference logits.
"""

from __future__ import annotations

import numpy as np
import torch

from seqlab.errors import SeqlabError, Unsupported


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class StreamingSampler:
    """``step(x_prev) -> logits`` and ``generate(prompt, length)`` for a discrete ``LatentAR`` (any cell,
    any number of layers, both GRU reset variants), computed in float32 NumPy."""

    def __init__(self, model) -> None:
        if not model.discrete:
            raise Unsupported("the streaming sampler needs a model of discrete data (text or mu-law audio)")
        c = model.config
        self.cell, self.reset, self.H, self.L = c.cell, c.reset, c.hidden_size, c.num_layers
        # a text vocabulary's unknown symbol (U+FFFD) is never drawn: it stands for characters not seen in training
        self.never_drawn = getattr(model.vocabulary, "unknown_id", None)
        f32 = lambda t: t.detach().cpu().float().numpy()  # noqa: E731
        with torch.no_grad():
            e = f32(model.elements.embedding.weight)  # (V + 1, E): every element and the start symbol
            cells = list(model.rnn.cells)
            self.input_table = e @ f32(cells[0].weight_ih).T + f32(cells[0].bias_ih)  # (V + 1, G)
            self.weight_ih = [f32(cell.weight_ih) for cell in cells]  # layers > 0 take h of the layer below
            self.bias_ih = [f32(cell.bias_ih) for cell in cells]
            self.weight_hh = [f32(cell.weight_hh) for cell in cells]
            self.bias_hh = [f32(cell.bias_hh) for cell in cells]
            W_out = f32(model.out.weight)  # (V, H + E)
            self.out_h = np.ascontiguousarray(W_out[:, : self.H])
            self.output_table = e @ W_out[:, self.H :].T + f32(model.out.bias)  # (V + 1, V)
        self.start = len(model.vocabulary)
        self.reset_state()

    def reset_state(self) -> None:
        self.h = [np.zeros(self.H, dtype=np.float32) for _ in range(self.L)]
        self.C = [np.zeros(self.H, dtype=np.float32) for _ in range(self.L)]

    def step(self, x_prev: int | None) -> np.ndarray:
        """The next element's logits (V,) after ``x_prev`` (``None``: the start of the sequence)."""
        v = self.start if x_prev is None else int(x_prev)
        H = self.H
        x_in = None  # the layer below's new h
        for k in range(self.L):
            gi = self.input_table[v] if k == 0 else self.weight_ih[k] @ x_in + self.bias_ih[k]
            h = self.h[k]
            if self.cell == "gru":
                W_hh, b_hh = self.weight_hh[k], self.bias_hh[k]
                if self.reset == "after":
                    gh = W_hh @ h + b_hh
                    r = _sigmoid(gi[:H] + gh[:H])
                    z = _sigmoid(gi[H : 2 * H] + gh[H : 2 * H])
                    n = np.tanh(gi[2 * H :] + r * gh[2 * H :])
                else:
                    gh = W_hh[: 2 * H] @ h + b_hh[: 2 * H]
                    r = _sigmoid(gi[:H] + gh[:H])
                    z = _sigmoid(gi[H : 2 * H] + gh[H:])
                    n = np.tanh(gi[2 * H :] + W_hh[2 * H :] @ (r * h) + b_hh[2 * H :])
                h = (1.0 - z) * n + z * h
            elif self.cell == "lstm":
                gates = gi + self.weight_hh[k] @ h + self.bias_hh[k]
                i, f = _sigmoid(gates[:H]), _sigmoid(gates[H : 2 * H])
                g, o = np.tanh(gates[2 * H : 3 * H]), _sigmoid(gates[3 * H :])
                self.C[k] = f * self.C[k] + i * g
                h = o * np.tanh(self.C[k])
            else:
                h = np.tanh(gi + self.weight_hh[k] @ h + self.bias_hh[k])
            self.h[k] = x_in = h
        return self.out_h @ h + self.output_table[v]

    def generate(
        self,
        prompt: np.ndarray | list[int],
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """Condition on ``prompt`` (ids), then draw ``length`` ids: softmax(logits / temperature), optionally
        restricted to the ``top_k`` largest, sampled by inverting its CDF at one uniform number per step."""
        if temperature <= 0:
            raise SeqlabError(f"temperature must be positive, got {temperature}")
        rng = np.random.default_rng(seed)
        uniforms = rng.random(length)
        self.reset_state()
        logits = self.step(None)
        for v in prompt:
            logits = self.step(v)
        out = np.empty(length, dtype=np.int64)
        for t in range(length):
            if self.never_drawn is not None:
                logits[self.never_drawn] = -np.inf
            out[t] = v = draw(logits, temperature, top_k, uniforms[t])
            logits = self.step(v)
        return out


def draw(logits: np.ndarray, temperature: float, top_k: int | None, u: float) -> int:
    """The element whose CDF interval holds ``u`` under softmax(logits / temperature) (top-k restricted)."""
    scaled = logits / temperature
    if top_k is not None and top_k < len(scaled):
        kth = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    p = np.exp(scaled - scaled.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1))
