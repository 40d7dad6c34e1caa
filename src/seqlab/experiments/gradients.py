"""``seqlab experiment gradients``: the vanishing gradient, measured.

For a one-layer ``LatentAR`` over a window of T characters of held-out text, with ``h_t`` the hidden
state after reading ``x_t`` (t = 1..T):

    J(t) = d h_T / d h_t   (H, H),     reported as ||J(t)||_F / sqrt(H)   (the RMS singular value; 1 at t = T)
    g(t) = d loss / d e_t  (E,),       loss = -log P(x_{T+1} | x_<=T),  e_t the input embedding of x_t

against the distance d = T - t, averaged over windows, at initialisation and after training on text. The LSTM
is measured once per forget-gate initialisation of ``forget_inits`` (bias 0 as torch.nn, 1, chrono with
T_MAX = T): at initialisation sigma(b_f) sets how fast its cell state, and so its gradient, fades.
For the LSTM, ``h_t`` is the graph node of the hidden output: its influence on ``h_T`` flows through
the gates and the cell state of the later steps (``C_t`` itself is held fixed). Measured in float64:
the RNN's norms reach 1e-40 within 100 steps, below float32's smallest normal number.

J is computed exactly with one backward pass: each window is repeated H times in the batch, and copy
k seeds the backward pass with the k-th unit vector at ``h_T``, so copy k's gradient at ``h_t`` is the
k-th row of J(t); ||J||_F^2 is the sum of the squared row norms.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from seqlab.cells import gru_step, lstm_step, rnn_step
from seqlab.errors import OptionError
from seqlab.experiments.char_model import held_out_bits_per_char, shakespeare_split, train_char_model
from seqlab.experiments.common import (
    CELL_NAMES,
    ExperimentResult,
    Fitting,
    cell_variants,
    progress,
    torch_threads,
    unwatched,
)
from seqlab.models.latent_ar import LatentAR


@dataclass
class GradientsConfig:
    cells: tuple[str, ...] = field(default=("rnn", "lstm", "gru"), metadata={"choices": CELL_NAMES, "what": "cell"})
    length: int = field(default=100, metadata={"min": 2, "help": "window T: the longest distance measured is T - 1"})
    hidden_size: int = field(default=128, metadata={"option": "hidden"})
    embedding_dim: int = field(default=32, metadata={"option": "embedding"})
    train_steps: int = 400
    windows: int = 4  # held-out windows averaged over
    seed: int = 0
    threads: int | None = (
        1  # intra-op threads: 1 is fastest on this shared 2-core CPU (2 threads spin against other jobs)
    )
    forget_inits: tuple[str, ...] = field(
        default=("zero", "1", "chrono"),
        metadata={"help": "LSTM forget-gate inits, one LSTM each: zero, a number, chrono (T_MAX = the length)"},
    )

    @classmethod
    def quick(cls) -> GradientsConfig:
        return cls(length=40, hidden_size=32, embedding_dim=16, train_steps=40, windows=2)


def scan_hidden_states(model: LatentAR, e: torch.Tensor) -> list[torch.Tensor]:
    """h_1..h_T, each (B, H) with its gradient retained, from embeddings e (B, T, E), stepping the
    reference cell of the model's one recurrent layer."""
    layer = model.rnn
    if layer.num_layers != 1:
        raise ValueError(f"the gradient experiment reads one recurrent layer, the model has {layer.num_layers}")
    weights = layer.cells[0].weights()
    B, H = e.shape[0], layer.hidden_size
    h = e.new_zeros(B, H)
    C = e.new_zeros(B, H)
    states = []
    for t in range(e.shape[1]):
        if layer.cell == "lstm":
            h, C = lstm_step(e[:, t], (h, C), *weights)
        elif layer.cell == "gru":
            h = gru_step(e[:, t], h, *weights, reset=layer.reset)
        else:
            h = rnn_step(e[:, t], h, *weights)
        h.retain_grad()
        states.append(h)
    return states


def jacobian_rms(model: LatentAR, x: torch.Tensor) -> torch.Tensor:
    """||d h_T / d h_t||_F / sqrt(H) for x (W, T) ids -> (W, T), column t for h_{t+1} (d = T - 1 - t)."""
    W, T = x.shape
    H = model.rnn.hidden_size
    e = model.elements(x).detach().repeat_interleave(H, dim=0)  # (W H, T, E): H copies of each window
    states = scan_hidden_states(model, e)
    unit = torch.eye(H).repeat(W, 1)  # (W H, H): copy k of a window seeds unit vector k
    (states[-1] * unit).sum().backward()
    rows = torch.stack([h.grad for h in states], dim=1)  # (W H, T, H): row k of J(t) per copy
    return rows.pow(2).sum(-1).view(W, H, T).sum(1).sqrt() / math.sqrt(H)


def input_gradient_norm(model: LatentAR, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||d loss / d e_t|| for x (W, T) ids and the next ids target (W,) -> (W, T)."""
    e = model.elements(x).detach().requires_grad_()  # (W, T, E)
    h_T = scan_hidden_states(model, e)[-1]  # (W, H)
    params = model.elements.head_params(model.out(torch.cat([h_T, e[:, -1]], dim=-1)))  # sees h_T and e(x_T)
    model.head.nll(params, target).sum().backward()
    return e.grad.norm(dim=-1)


def held_out_windows(model: LatentAR, count: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` windows of T ids, evenly spaced in the held-out play, and the id after each."""
    _, valid = shakespeare_split()
    ids = model.encode(valid, unknown="map")
    starts = torch.linspace(0, len(ids) - T - 2, count).long()
    windows = torch.stack([ids[s : s + T] for s in starts.tolist()])
    return windows, ids[starts + T]


def decay_per_step(curve: torch.Tensor) -> float:
    """exp(slope) of the least-squares line through log(curve) against the distance d >= 1 (points that
    underflowed to 0 are left out)."""
    d = torch.arange(len(curve), dtype=torch.float64)[1:]
    y = curve[1:].double()
    d, y = d[y > 0], y[y > 0].log()
    slope = ((d - d.mean()) * (y - y.mean())).sum() / ((d - d.mean()) ** 2).sum()
    return float(slope.exp())


REPORTED_DISTANCES = (1, 5, 10, 20, 50, 100, 200)


def run(config: GradientsConfig, show_progress: bool = True, fitting: Fitting = unwatched) -> ExperimentResult:
    if config.length < 2:
        raise OptionError(f"{{0}} must be at least 2, got {config.length}", "length")
    T = config.length
    rows, curves, summary = [], {}, {}
    kinds = cell_variants(config.cells, config.forget_inits)
    with torch_threads(config.threads), progress(len(kinds) * 2, "gradients", show_progress) as bar:
        for variant in kinds:
            cell = variant.name
            for stage, steps in (("init", 0), ("trained", config.train_steps)):
                with (fitting if steps > 0 else unwatched)() as callbacks:
                    model = train_char_model(
                        variant.cell,
                        config.hidden_size,
                        config.embedding_dim,
                        steps,
                        config.seed,
                        callbacks,
                        forget_init=variant.forget_spec(T),
                    )
                model = copy.deepcopy(model).double()  # float64: the RNN's norms fall below float32's range
                x, target = held_out_windows(model, config.windows, T)
                # reverse the time axis so that index d is the distance T - t
                jac = jacobian_rms(model, x).mean(0).flip(0)  # (T,)
                grad_x = input_gradient_norm(model, x, target).mean(0).flip(0)  # (T,)
                key = f"{cell} {stage}"
                curves[key] = {"jacobian_rms": jac.tolist(), "input_gradient": grad_x.tolist()}
                summary[key] = {
                    "train_steps": steps,
                    "held_out_bits_per_char": held_out_bits_per_char(model),
                    "jacobian_decay_per_step": decay_per_step(jac),
                    "input_gradient_decay_per_step": decay_per_step(grad_x),
                }
                for d in sorted({d for d in REPORTED_DISTANCES if d < T} | {T - 1}):
                    rows.append(
                        {
                            "cell": cell,
                            "stage": stage,
                            "distance": d,
                            "jacobian_rms": float(jac[d]),
                            "input_gradient_norm": float(grad_x[d]),
                        }
                    )
                bar.update(1)
    return ExperimentResult("gradients", asdict(config), rows, summary, curves)
