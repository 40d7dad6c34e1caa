"""``seqlab experiment cost``: what each cell costs per time step, side by side.

For the RNN, LSTM and GRU at one hidden size H and at one parameter count (the LSTM's at H), with
input size D and G = gates * H packed rows (1, 4, 3 gates):

    parameters           G (D + H + 2)                 (weight_ih, weight_hh, bias_ih, bias_hh)
    multiply-adds/step   G (D + H)                     per sequence: the two matrix products

so at one H and D the GRU has exactly 3/4 of the LSTM's weights and multiply-adds. Measured:

- multiply-adds, counted: ``torch.utils.flop_counter.FlopCounterMode`` over one step of the reference
  cell (``seqlab.cells``), divided by 2 (it counts a multiply-add as 2 FLOPs; element-wise gate
  arithmetic is not counted, by it or by the formula);
- time per step: forward (no autograd) and forward + backward on (B, T, D) random input, the median of
  ``repeats`` runs after one warm-up, divided by T, for ``Recurrent(backend="torch")`` (torch's kernels:
  oneDNN's fused LSTM on the CPU, a per-step loop of ATen ops for the RNN and GRU) and for
  ``backend="reference"`` (the same Python loop over the reference cells for all three: the cost of the
  equations themselves, with the same per-op overhead);
- activation memory: the bytes autograd saves for the backward pass during one forward, recorded with
  ``torch.autograd.graph.saved_tensors_hooks`` (each storage counted once), divided by B T; this is the
  memory that stays alive from forward to backward, for the torch backend and for the reference cells.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from seqlab.experiments.common import (
    CELL_NAMES,
    NUM_GATES,
    ExperimentResult,
    Fitting,
    cell_parameter_count,
    matched_hidden_size,
    progress,
    torch_threads,
    unwatched,
)
from seqlab.recurrent import Recurrent


@dataclass
class CostConfig:
    cells: tuple[str, ...] = field(default=("rnn", "lstm", "gru"), metadata={"choices": CELL_NAMES, "what": "cell"})
    hidden_size: int = field(default=256, metadata={"option": "hidden"})
    input_size: int = 64
    length: int = 100  # T
    batch_size: int = 32  # B
    repeats: int = 10
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls) -> CostConfig:
        return cls(hidden_size=64, input_size=32, length=20, batch_size=8, repeats=3)


def counted_macs_per_step(layer: Recurrent) -> int:
    """Multiply-adds of one step of one sequence, counted by torch's FLOP counter on the reference cell."""
    cell = layer.cells[0]
    x = torch.zeros(1, layer.input_size)
    h = torch.zeros(1, layer.hidden_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        cell(x, (h, h)) if layer.cell == "lstm" else cell(x, h)
    return counter.get_total_flops() // 2


def saved_activation_bytes(layer: Recurrent, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves for backward during ``layer(x)``."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.nn.Parameter) and t.requires_grad is not None:
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y, _ = layer(x)
    del y
    return sum(n for ptr, n in storages.items() if ptr not in params)  # weights are not activations


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitives
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(cell: str, hidden: int, setting: str, config: CostConfig) -> dict:
    D, T, B = config.input_size, config.length, config.batch_size
    torch.manual_seed(config.seed)
    layer = Recurrent(cell, D, hidden, backend="torch")
    reference = Recurrent(cell, D, hidden, backend="reference")
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(B, T, D)
    G = NUM_GATES[cell] * hidden
    row = {
        "setting": setting,
        "cell": cell,
        "hidden": hidden,
        "params": sum(p.numel() for p in layer.parameters()),
        "params_formula": cell_parameter_count(cell, D, hidden),
        "macs_per_step_formula": G * (D + hidden),
        "macs_per_step_counted": counted_macs_per_step(layer),
    }
    for backend, net in (("torch", layer), ("reference", reference)):

        def forward(net=net):
            with torch.no_grad():
                net(x)

        def forward_backward(net=net):
            y, _ = net(x)
            y.sum().backward()

        row[f"forward_us_per_step_{backend}"] = 1e6 * median_seconds(forward, config.repeats) / T
        row[f"forward_backward_us_per_step_{backend}"] = 1e6 * median_seconds(forward_backward, config.repeats) / T
        row[f"saved_bytes_per_step_{backend}"] = saved_activation_bytes(net, x) / (B * T)
    return row


def run(config: CostConfig, show_progress: bool = True, fitting: Fitting = unwatched) -> ExperimentResult:
    """``fitting``: unused (nothing is trained here)."""
    budget = cell_parameter_count("lstm", config.input_size, config.hidden_size)
    settings = [("same hidden", {c: config.hidden_size for c in config.cells})]
    settings.append(("same params", {c: matched_hidden_size(c, config.input_size, budget) for c in config.cells}))
    rows = []
    with torch_threads(config.threads), progress(2 * len(config.cells), "cost", show_progress) as bar:
        for setting, hidden in settings:
            for cell in config.cells:
                rows.append(measure(cell, hidden[cell], setting, config))
                bar.update(1)
    return ExperimentResult("cost", asdict(config), rows, {"gru_over_lstm": ratios(rows, "gru", "lstm")})


def ratios(rows: list[dict], numerator: str, denominator: str) -> dict:
    """Per setting, the numerator cell's measurements over the denominator cell's (when both ran)."""
    keys = [k for k in rows[0] if isinstance(rows[0][k], int | float) and k != "hidden"]
    out = {}
    for setting in dict.fromkeys(r["setting"] for r in rows):
        by_cell = {r["cell"]: r for r in rows if r["setting"] == setting}
        if numerator in by_cell and denominator in by_cell:
            out[setting] = {k: by_cell[numerator][k] / by_cell[denominator][k] for k in keys}
    return out
