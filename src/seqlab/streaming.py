"""Fast streaming generation from a ``LatentAR`` of discrete data or of frames: batch 1, one element at a time,
in NumPy.

Generating audio means one model step per sample, tens of thousands per second of sound, so per-step
overhead decides the speed: a torch call costs microseconds of dispatch, and a step of the model is a dozen
of them. This sampler computes exactly ``LatentAR.step`` (the equations of ``seqlab.cells``) with NumPy on
float32 copies of the weights, and folds everything that depends only on the input element into tables:

    input_table[v]  = W_ih . e(v) + b_ih           (V + 1, G)   first layer's input projection, per element
    output_table[v] = W_out[:, H:] . e(v) + b_out  (V + 1, V)   the head's direct view of the previous element

so a step is ``W_hh . h`` per layer, the gates, ``W_out[:, :H] . h``, and an inverse-CDF draw from the softmax.
Frames (``FrameSampler``): the input is the features ``f = (standardised values (D), missing flag)`` of the
previous frame and the embedding ``e = W_e f + b_e`` is linear, so it folds into both the first layer and the
head's direct view of the previous frame:

    gi  = (W_ih W_e) f + (W_ih b_e + b_ih)                           (G, D + 1)
    out = W_out[:, :H] h + (W_out[:, H:] W_e) f + (W_out[:, H:] b_e + b_out)

then the head's parameters on the data's scale, a draw from each dimension (temperature per dimension), and the
clamp to the training range. ``tests/test_streaming.py`` checks both samplers against ``LatentAR.step`` (logits,
params and states) and the draws against the reference distributions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from seqlab.errors import SeqlabError, Unsupported


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


class NumpyRecurrence:
    """The recurrent cells of a ``LatentAR`` (any cell, any number of layers, both GRU reset variants) in float32
    NumPy: ``advance(gi)`` takes the first layer's input projection (G,) and returns the top layer's new h."""

    def __init__(self, model) -> None:
        c = model.config
        self.cell, self.reset, self.H, self.L = c.cell, c.reset, c.hidden_size, c.num_layers
        with torch.no_grad():
            cells = list(model.rnn.cells)
            self.weight_ih = [_f32(cell.weight_ih) for cell in cells]  # layers > 0 take h of the layer below
            self.bias_ih = [_f32(cell.bias_ih) for cell in cells]
            self.weight_hh = [_f32(cell.weight_hh) for cell in cells]
            self.bias_hh = [_f32(cell.bias_hh) for cell in cells]
        self.reset_state()

    def reset_state(self) -> None:
        self.h = [np.zeros(self.H, dtype=np.float32) for _ in range(self.L)]
        self.C = [np.zeros(self.H, dtype=np.float32) for _ in range(self.L)]

    def advance(self, gi_first: np.ndarray, hook: Callable[[int, dict], None] | None = None) -> np.ndarray:
        """One time step of every layer; ``gi_first`` (G,) is ``W_ih x + b_ih`` of the first layer. ``hook(k,
        values)``, if given, gets layer k's quantities of ``seqlab.cells.CELL_VALUES`` (gates, cell state, h)."""
        H = self.H
        x_in = None  # the layer below's new h
        for k in range(self.L):
            gi = gi_first if k == 0 else self.weight_ih[k] @ x_in + self.bias_ih[k]
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
                values = {"r": r, "z": z, "n": n} if hook else None
            elif self.cell == "lstm":
                gates = gi + self.weight_hh[k] @ h + self.bias_hh[k]
                i, f = _sigmoid(gates[:H]), _sigmoid(gates[H : 2 * H])
                g, o = np.tanh(gates[2 * H : 3 * H]), _sigmoid(gates[3 * H :])
                self.C[k] = f * self.C[k] + i * g
                h = o * np.tanh(self.C[k])
                values = {"i": i, "f": f, "o": o, "g": g, "c": self.C[k]} if hook else None
            else:
                h = np.tanh(gi + self.weight_hh[k] @ h + self.bias_hh[k])
                values = {} if hook else None
            if hook:
                hook(k, values | {"h": h})
            self.h[k] = x_in = h
        return x_in


class StreamingSampler(NumpyRecurrence):
    """``step(x_prev) -> logits`` and ``generate(prompt, length)`` for a discrete ``LatentAR``, in float32 NumPy."""

    def __init__(self, model) -> None:
        if not model.discrete:
            raise Unsupported("the streaming sampler needs a model of discrete data (text or mu-law audio)")
        super().__init__(model)
        # a text vocabulary's unknown symbol (U+FFFD) is never drawn: it stands for characters not seen in training
        self.never_drawn = model.vocabulary.unknown_id if model.vocabulary is not None else None
        with torch.no_grad():
            e = _f32(model.elements.embedding.weight)  # (V + 1, E): every element and the start symbol
            self.input_table = e @ self.weight_ih[0].T + self.bias_ih[0]  # (V + 1, G)
            W_out = _f32(model.out.weight)  # (V, H + E)
            self.out_h = np.ascontiguousarray(W_out[:, : self.H])
            self.output_table = e @ W_out[:, self.H :].T + _f32(model.out.bias)  # (V + 1, V)
        self.start = model.elements.start

    def step(self, x_prev: int | None) -> np.ndarray:
        """The next element's logits (V,) after ``x_prev`` (``None``: the start of the sequence)."""
        v = self.start if x_prev is None else int(x_prev)
        return self.out_h @ self.advance(self.input_table[v]) + self.output_table[v]

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


class FrameSampler(NumpyRecurrence):
    """``step(x_prev) -> params`` (P,) (what ``LatentAR.step`` returns: the head's parameters on the data's
    scale) and ``generate(prompt, length, temperature, seed) -> (length, D)`` for a ``LatentAR`` of frames whose
    head is a ``FrameHead`` of a Gaussian or a mixture per dimension; the network in float32, the draws in
    float64, each frame clamped to the training range as ``FrameElements.draw`` clamps it."""

    @staticmethod
    def supports(model) -> bool:
        """A ``LatentAR`` (its recurrence is what the tables fold) of frames with a gaussian or mixture head."""
        head = model.head
        return (
            model.kind == "latent_ar" and head.kind == "frames" and head.per_dimension.kind in ("gaussian", "mixture")
        )

    def __init__(self, model) -> None:
        if not self.supports(model):
            raise Unsupported("the frame sampler needs a LatentAR of frames with a gaussian or mixture head")
        head = model.head
        super().__init__(model)
        self.elements, self.D = model.elements, head.dims
        self.continuous, self.binary = np.array(head.continuous, dtype=np.int64), np.array(head.binary, dtype=np.int64)
        self.p, self.K, self.mixture = head.p, head.components, head.per_dimension.kind == "mixture"
        with torch.no_grad():
            W_e, b_e = _f32(model.elements.embedding.weight), _f32(model.elements.embedding.bias)  # (E, D + 1), (E,)
            self.input_matrix = self.weight_ih[0] @ W_e  # (G, D + 1)
            self.input_bias = self.weight_ih[0] @ b_e + self.bias_ih[0]
            W_out, b_out = _f32(model.out.weight), _f32(model.out.bias)  # (P, H + E)
            self.out_h = np.ascontiguousarray(W_out[:, : self.H])
            self.out_matrix = W_out[:, self.H :] @ W_e  # (P, D + 1)
            self.out_bias = W_out[:, self.H :] @ b_e + b_out
            self.location, self.scale = _f32(model.elements.location), _f32(model.elements.scale)
            self.low, self.high = (
                _f32(model.elements.low).astype(np.float64),
                _f32(model.elements.high).astype(np.float64),
            )
        self.log_scale = np.log(self.scale[self.continuous])

    def features(self, x_prev) -> np.ndarray:
        """(standardised values (D), missing flag) of the previous frame; ``None`` or a NaN: missing."""
        f = np.zeros(self.D + 1, dtype=np.float32)
        x = None if x_prev is None else np.asarray(x_prev, dtype=np.float32)
        if x is None or np.isnan(x).any():
            f[self.D] = 1.0
        else:
            f[: self.D] = (x - self.location) / self.scale
        return f

    def step(self, x_prev) -> np.ndarray:
        """The next frame's head parameters (P,) on the data's scale after ``x_prev`` (``None``: the start)."""
        f = self.features(x_prev)
        h = self.advance(self.input_matrix @ f + self.input_bias)
        raw = self.out_h @ h + self.out_matrix @ f + self.out_bias  # standardised units
        n = len(self.continuous) * self.p
        theta = raw[:n].reshape(len(self.continuous), self.p).copy()
        location = self.location[self.continuous]
        if self.mixture:  # (logits K, means K, log sigmas K) per dimension
            K = self.K
            theta[:, K : 2 * K] = theta[:, K : 2 * K] * self.scale[self.continuous][:, None] + location[:, None]
            theta[:, 2 * K :] += self.log_scale[:, None]
        else:  # (mean, log sigma)
            theta[:, 0] = theta[:, 0] * self.scale[self.continuous] + location
            theta[:, 1] += self.log_scale
        return np.concatenate([theta.reshape(-1), raw[n:]])

    def draw(self, params: np.ndarray, temperature: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A frame (D,) from ``params`` (P,) at a temperature per dimension (D,), clamped to the training range:
        per continuous dimension a component by inverting the weights' CDF (mixture), then mean + t sigma eps;
        per binary dimension 1 when u < sigmoid(logit / t)."""
        Dc = len(self.continuous)
        theta = params[: Dc * self.p].reshape(Dc, self.p).astype(np.float64)
        t_continuous, t_binary = temperature[self.continuous], temperature[self.binary]
        eps = rng.standard_normal(Dc)
        if self.mixture:
            K = self.K
            logits = theta[:, :K] - theta[:, :K].max(1, keepdims=True)
            w = np.exp(logits)
            cdf = np.cumsum(w, 1) / w.sum(1, keepdims=True)
            k = np.minimum((cdf < rng.random(Dc)[:, None]).sum(1), K - 1)
            rows = np.arange(Dc)
            mu, log_sigma = theta[rows, K + k], theta[rows, 2 * K + k]
        else:
            mu, log_sigma = theta[:, 0], theta[:, 1]
        x = np.empty(self.D)
        x[self.continuous] = mu + t_continuous * np.exp(log_sigma) * eps
        logit = params[Dc * self.p :].astype(np.float64) / t_binary
        x[self.binary] = rng.random(len(self.binary)) < 1.0 / (1.0 + np.exp(-logit))
        return np.minimum(np.maximum(x, self.low), self.high)

    def mean(self, params: np.ndarray) -> np.ndarray:
        """The predicted frame (D,) of ``params`` (P,): each continuous dimension's mean (a mixture's weighted
        mean), each binary one's probability."""
        Dc = len(self.continuous)
        theta = params[: Dc * self.p].reshape(Dc, self.p).astype(np.float64)
        m = np.empty(self.D)
        if self.mixture:
            K = self.K
            w = np.exp(theta[:, :K] - theta[:, :K].max(1, keepdims=True))
            m[self.continuous] = (w * theta[:, K : 2 * K]).sum(1) / w.sum(1)
        else:
            m[self.continuous] = theta[:, 0]
        m[self.binary] = 1.0 / (1.0 + np.exp(-params[Dc * self.p :].astype(np.float64)))
        return m

    def generate(self, prompt, length: int, temperature=1.0, seed: int | None = None, restart=None) -> np.ndarray:
        """Condition on ``prompt`` (n, D) (``None``: nothing), then draw ``length`` frames (length, D).
        ``temperature``: a number, ``D`` numbers or ``{group: temperature}`` (``FrameElements.temperatures``).
        ``restart(predicted (D,), drawn (D,)) -> bool``, if given, is asked after each draw; True starts the
        recurrence afresh (as at the start, no previous frame) instead of feeding the draw back
        (``seqlab.data.vocoder.Watchdog``: generation that has left speech)."""
        t = np.broadcast_to(self.elements.temperatures(temperature).numpy(), (self.D,))
        rng = np.random.default_rng(seed)
        self.reset_state()
        params = self.step(None)
        for x in [] if prompt is None else prompt:
            params = self.step(x)
        out = np.empty((length, self.D))
        for i in range(length):
            out[i] = x = self.draw(params, t, rng)
            if restart is not None and restart(self.mean(params), x):
                self.reset_state()
                params = self.step(None)
            else:
                params = self.step(x)
        return out
