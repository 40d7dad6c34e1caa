"""``seqlab experiment long-range``: the adding problem and the copy-memory task for growing T, with the
tanh RNN, the LSTM and the GRU at one parameter budget and one number of training steps.

The claim tested (DESIGN.md section 1): a vanilla RNN keeps recent information but loses distant
information, while the LSTM's cell state (and the GRU's gated h) carries it across long spans.

    adding:  y_hat = w . h_T + b,             loss (y_hat - y)^2,      baseline MSE 1/6 (predict E[y] = 1)
    copy:    logits_t = W . h_t + b (V = 10), loss mean_t CE(logits_t, y_t), baseline 10 log 8 / (T + 20)

"Solved" at T: the test loss is at most ``SOLVED_FRACTION`` of the baseline's for at least half the seeds.
With several learning rates (``lrs``), each (cell, T, seed) trains at each and keeps the network with the
lowest loss on a validation set, so that no cell is judged at a step size that suits another.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from seqlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    COPY_SYMBOLS,
    COPY_VOCABULARY,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from seqlab.experiments.common import (
    CELL_NAMES,
    ExperimentResult,
    cell_parameter_count,
    matched_hidden_size,
    progress,
    torch_threads,
)
from seqlab.recurrent import Recurrent

TASKS = ("adding", "copy")
SOLVED_FRACTION = 0.1  # solved: test loss <= 10% of the memoryless baseline's
INPUT_SIZE = {"adding": 2, "copy": COPY_VOCABULARY}  # copy: one-hot symbols


@dataclass
class LongRangeConfig:
    tasks: tuple[str, ...] = field(default=TASKS, metadata={"choices": TASKS, "what": "task"})
    lengths: tuple[int, ...] = field(default=(10, 20, 50, 100, 200), metadata={"min": 2, "help": "sequence lengths T"})
    cells: tuple[str, ...] = field(default=("rnn", "lstm", "gru"), metadata={"choices": CELL_NAMES, "what": "cell"})
    lstm_hidden: int = field(  # the budget: every cell gets about the parameters of an LSTM of this size
        default=64, metadata={"option": "hidden", "help": "LSTM hidden size that sets the parameter budget"}
    )
    steps: int = 500
    batch_size: int = 64
    lrs: tuple[float, ...] = (1e-2,)  # Adam; several: each network keeps the one best on validation data
    clip: float = 1.0
    seeds: int = 3
    seed: int = 0
    test_size: int = 1000
    threads: int | None = 1  # intra-op threads (1: reproducible and fair to the other users of the CPU)

    @classmethod
    def quick(cls) -> LongRangeConfig:
        return cls(lengths=(10, 20), lstm_hidden=32, steps=300, seeds=1, test_size=500)


class TaskNet(nn.Module):
    """``Recurrent`` then a linear read-out: of ``h_T`` (adding, 1 output) or of every ``h_t`` (copy, V)."""

    def __init__(self, task: str, cell: str, hidden_size: int) -> None:
        super().__init__()
        self.task = task
        self.rnn = Recurrent(cell, INPUT_SIZE[task], hidden_size)
        self.readout = nn.Linear(hidden_size, 1 if task == "adding" else COPY_VOCABULARY)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.task == "copy":
            x = nn.functional.one_hot(x, COPY_VOCABULARY).float()  # (B, T, V)
        h, _ = self.rnn(x)  # (B, T, H)
        if self.task == "adding":
            return self.readout(h[:, -1]).squeeze(-1)  # (B,)
        return self.readout(h)  # (B, T, V)


def make_batch(task: str, batch_size: int, T: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return (adding_problem if task == "adding" else copy_memory)(batch_size, T, generator)


def task_loss(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "adding":
        return nn.functional.mse_loss(output, y)
    return nn.functional.cross_entropy(output.flatten(0, 1), y.flatten())


def baseline(task: str, T: int) -> float:
    return ADDING_BASELINE_MSE if task == "adding" else copy_memory_baseline(T)


def evaluate(task: str, net: TaskNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    """(loss, recall accuracy on the K copied symbols for copy (chance 1/8), else None)."""
    with torch.no_grad():
        output = net(x)
        loss = float(task_loss(task, output, y))
        if task != "copy":
            return loss, None
        return loss, float((output[:, -COPY_SYMBOLS:].argmax(-1) == y[:, -COPY_SYMBOLS:]).float().mean())


def train(task: str, cell: str, hidden: int, T: int, seed: int, lr: float, config: LongRangeConfig, bar) -> TaskNet:
    """Train one network on fresh batches; the data depend on (seed, T) only, so every cell and learning
    rate sees the same batches."""
    torch.manual_seed(seed)
    net = TaskNet(task, cell, hidden)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    data = torch.Generator().manual_seed(1_000_003 * seed + T)
    for _ in range(config.steps):
        x, y = make_batch(task, config.batch_size, T, data)
        loss = task_loss(task, net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), config.clip)
        optimizer.step()
        bar.update(1)
    return net


def train_and_test(task: str, cell: str, T: int, seed: int, config: LongRangeConfig, bar) -> dict:
    """Train at every learning rate of ``config.lrs``, keep the network with the lowest loss on a validation
    set, and score it on the test set (one validation and one test set per T, shared by all seeds and cells)."""
    D = INPUT_SIZE[task]
    hidden = matched_hidden_size(cell, D, cell_parameter_count("lstm", D, config.lstm_hidden))
    valid = make_batch(task, config.test_size, T, torch.Generator().manual_seed(2**30 + T))
    nets = [(lr, train(task, cell, hidden, T, seed, lr, config, bar)) for lr in config.lrs]
    lr, net = min(nets, key=lambda pair: evaluate(task, pair[1], *valid)[0])
    test_loss, recall = evaluate(
        task, net, *make_batch(task, config.test_size, T, torch.Generator().manual_seed(2**31 - 1 - T))
    )
    params = sum(p.numel() for p in net.parameters())
    return {"hidden": hidden, "params": params, "lr": lr, "test_loss": test_loss, "recall": recall}


def run(config: LongRangeConfig, show_progress: bool = True) -> ExperimentResult:
    runs = len(config.tasks) * len(config.lengths) * len(config.cells) * config.seeds * len(config.lrs)
    rows = []
    with torch_threads(config.threads), progress(runs * config.steps, "long-range", show_progress) as bar:
        for task in config.tasks:
            for T in config.lengths:
                for cell in config.cells:
                    seeds = [config.seed + k for k in range(config.seeds)]
                    results = [train_and_test(task, cell, T, s, config, bar) for s in seeds]
                    losses = [r["test_loss"] for r in results]
                    base = baseline(task, T)
                    solved = sum(loss <= SOLVED_FRACTION * base for loss in losses)
                    recalls = [r["recall"] for r in results if r["recall"] is not None]
                    rows.append(
                        {
                            "task": task,
                            "T": T,
                            "cell": cell,
                            "hidden": results[0]["hidden"],
                            "params": results[0]["params"],
                            "lr_chosen": ",".join(f"{r['lr']:g}" for r in results),
                            "test_loss_mean": statistics.fmean(losses),
                            "test_loss_min": min(losses),
                            "test_loss_max": max(losses),
                            "baseline": base,
                            "loss_over_baseline": statistics.fmean(losses) / base,
                            "recall_accuracy": statistics.fmean(recalls) if recalls else None,
                            "solved_seeds": f"{solved}/{len(seeds)}",
                        }
                    )
    return ExperimentResult("long-range", asdict(config), rows, {"longest_solved_T": longest_solved(rows)})


def longest_solved(rows: list[dict]) -> dict:
    """{task: {cell: the largest T solved by at least half the seeds, or None}}."""
    out: dict = {}
    for r in rows:
        solved, total = map(int, r["solved_seeds"].split("/"))
        best = out.setdefault(r["task"], {}).setdefault(r["cell"], None)
        if 2 * solved >= total and solved > 0 and (best is None or r["T"] > best):
            out[r["task"]][r["cell"]] = r["T"]
    return out
