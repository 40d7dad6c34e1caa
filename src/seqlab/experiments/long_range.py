"""``seqlab experiment long-range``: the adding problem and the copy-memory task for growing T, with the
tanh RNN, the LSTM (forget-gate bias 0, 1 and chrono) and the GRU (update-gate bias torch's and chrono) at one
parameter budget, trained until they solve the task or run out of sequences, as Hochreiter & Schmidhuber
(1997) measured it.

The claim tested (DESIGN.md section 1): a vanilla RNN keeps recent information but loses distant
information, while the LSTM's cell state (and the GRU's gated h) carries it across long spans.

    adding:  y_hat = w . h_T + b,             loss (y_hat - y)^2,      baseline MSE 1/6 (predict E[y] = 1)
    copy:    logits_t = W . h_t + b (V = 10), loss mean_t CE(logits_t, y_t), baseline 10 log 8 / (T + 20)

Protocol, per (task, variant, T), under the task's ``Budget`` (``--steps``, ``--lrs``, ``--eval-every`` for the
adding problem, ``--copy-steps``, ``--copy-lrs``, ``--copy-eval-every`` for copy memory): every ``eval_every``
steps the network is scored on a validation set (the network kept, and tested, is the one with the lowest
validation loss); it counts as having *solved* the task once the validation loss is at most ``SOLVED_FRACTION``
of the baseline's (the sequences seen then are reported), and training stops when it is at most
``stop_fraction`` of it, or ``margin_steps`` (a fraction) more steps after solving (a margin, so that the test
verdict does not hang on noise), or after the budget's ``steps``. Learning rate: the first seed trains at every
rate of the budget's ``lrs`` side by side, each stopped once it cannot beat a rate that already solved, and after
``choose_rate_at`` of the budget all but the best on validation; the one that solved with the fewest sequences
(else the lowest validation loss) trains the other seeds. "Solved" at T: test loss at most ``SOLVED_FRACTION`` of
the baseline's for at least half the seeds; a seed trains only while that verdict is open (of 3, the third only
when the first two disagree). Once a variant fails at some T, the longer T train ``after_failure_seeds`` seeds at
the learning rate chosen there (their loss shown, at a fraction of the cost), until a row is at the baseline's
level (``BASELINE_LEVEL``): a longer T is harder. Each (task, variant) is one chain of T; ``workers`` processes
run the chains side by side, and since every network is seeded on its own (seed and T), the rows do not depend on
the workers.
"""

from __future__ import annotations

import math
import multiprocessing
import queue as queue_module
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import torch
from torch import nn

from seqlab.cells import init_update_gate
from seqlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    COPY_SYMBOLS,
    COPY_VOCABULARY,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from seqlab.errors import OptionError
from seqlab.experiments.common import (
    CELL_NAMES,
    ExperimentResult,
    Fitting,
    Variant,
    cell_parameter_count,
    cell_variants,
    matched_hidden_size,
    progress,
    settings,
    torch_threads,
    unwatched,
)
from seqlab.recurrent import Recurrent

SOLVED_FRACTION = 0.1  # solved: loss <= 10% of the memoryless baseline's
# A failure at >= 90% of the baseline's loss carried (almost) nothing across T steps; a longer T is harder, so the
# chain trains no longer T after it.
BASELINE_LEVEL = 0.9

# Sequences the literature's LSTM needed, for the table beside ours: Hochreiter & Schmidhuber (1997), Table 7
# (adding problem, their stopping criterion: absolute error < 0.04 on 2,000 consecutive sequences).
LITERATURE_SEQUENCES = {("adding", 100): 74_000, ("adding", 500): 209_000, ("adding", 1000): 853_000}


@dataclass(frozen=True)
class Task:
    """One task: how its batches are drawn (``batch(B, T, generator) -> x, y``), what the network reads and reads
    out, its loss and the loss of the best memoryless model (``baseline(T)``)."""

    name: str
    title: str  # of its figure panel: "adding problem (MSE)"
    input_size: int
    outputs: int
    one_hot: bool  # the inputs are symbol ids, one-hot encoded (else real values)
    every_step: bool  # read out every h_t (else h_T only)
    extra_length: int  # the input is T + this long
    batch: Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    baseline: Callable[[int], float]
    recall: Callable[[torch.Tensor, torch.Tensor], float] | None = None  # accuracy on what it must remember


def _adding_baseline(T: int) -> float:
    return ADDING_BASELINE_MSE


def _cross_entropy_per_step(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(output.flatten(0, 1), y.flatten())  # (B, T, V) against (B, T)


def _copy_recall(output: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy on the K copied symbols (chance 1/8)."""
    return float((output[:, -COPY_SYMBOLS:].argmax(-1) == y[:, -COPY_SYMBOLS:]).float().mean())


ADDING = Task(
    "adding", "adding problem (MSE)", input_size=2, outputs=1, one_hot=False, every_step=False, extra_length=0,
    batch=adding_problem, loss=nn.functional.mse_loss, baseline=_adding_baseline,
)  # fmt: skip
COPY = Task(
    "copy", "copy memory (cross-entropy)", input_size=COPY_VOCABULARY, outputs=COPY_VOCABULARY, one_hot=True,
    every_step=True, extra_length=2 * COPY_SYMBOLS, batch=copy_memory, loss=_cross_entropy_per_step,
    baseline=copy_memory_baseline, recall=_copy_recall,
)  # fmt: skip
TASKS = {task.name: task for task in (ADDING, COPY)}


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class Budget:
    """What one task trains: its lengths T, and per network at most ``steps``, the learning rates ``lrs`` and
    a validation check every ``eval_every`` steps."""

    lengths: tuple[int, ...] = field(metadata={"min": 2, **_help("lengths T")})
    steps: int = field(metadata=_help("most training steps per network (it stops once solved)"))
    lrs: tuple[float, ...] = field(
        metadata=_help("Adam learning rates the first seed trains side by side; the best is kept")
    )
    eval_every: int = field(metadata=_help("steps between validation checks"))


@dataclass
class LongRangeConfig:
    """One ``Budget`` field per task of ``TASKS``, named as the task; its options are ``--lengths``, ``--steps``,
    ... for the adding problem and ``--copy-lengths``, ``--copy-steps``, ... for copy memory (``prefix``)."""

    tasks: tuple[str, ...] = field(
        default=tuple(TASKS), metadata={"choices": tuple(TASKS), "what": "task", **_help("tasks: adding, copy")}
    )
    adding: Budget = field(
        default=Budget(lengths=(10, 20, 50, 100, 200), steps=8000, lrs=(1e-2, 3e-3, 1e-3), eval_every=100),
        metadata={"prefix": "", **_help("adding problem")},
    )
    # copy learns over thousands of steps; 1e-3 led no copy row (every one chose 1e-2 or 3e-3)
    copy: Budget = field(
        default=Budget(lengths=(10, 50), steps=20_000, lrs=(1e-2, 3e-3), eval_every=200),
        metadata={"prefix": "copy", **_help("copy memory")},
    )
    cells: tuple[str, ...] = field(
        default=("rnn", "lstm", "gru"),
        metadata={"choices": CELL_NAMES, "what": "cell", **_help("cells: rnn, lstm, gru")},
    )
    lstm_hidden: int = field(
        default=64, metadata={**_help("LSTM hidden size; every cell gets about its parameters"), "option": "hidden"}
    )
    batch_size: int = field(default=32, metadata=_help("sequences per step"))
    choose_rate_at: float = field(
        default=0.25,
        metadata=_help(
            "fraction of the budget after which the first seed goes on with its best rate on validation only "
            "(1: every rate trains the whole budget)"
        ),
    )
    clip: float = field(default=1.0, metadata=_help("gradient norm clipped to this"))
    seeds: int = field(
        default=3, metadata=_help("seeds per (task, T, cell), at most: a seed trains only while the verdict is open")
    )
    seed: int = field(default=0, metadata=_help("first seed"))
    test_size: int = field(default=1000, metadata=_help("validation and test sequences per T"))
    threads: int | None = field(
        default=1, metadata=_help("torch threads per worker (1: reproducible, fair on a shared CPU)")
    )
    workers: int = field(
        default=2,
        metadata={"min": 1, **_help("processes training (task, cell) chains side by side (the rows do not change)")},
    )
    forget_inits: tuple[str, ...] = field(
        default=("zero", "1", "chrono"),
        metadata=_help("LSTM forget-gate inits, one LSTM each: zero, a number, chrono (T_MAX = the input length)"),
    )
    update_inits: tuple[str, ...] = field(
        default=("zero", "chrono"),
        metadata=_help("GRU update-gate inits, one GRU each: zero (torch's), a number, chrono (T_MAX as the LSTM's)"),
    )
    stop_fraction: float = field(default=0.05, metadata=_help("stop once validation loss <= this x baseline"))
    margin_steps: float = field(
        default=0.25,
        metadata=_help("once solved on validation, train at most this fraction more steps towards --stop-fraction"),
    )
    after_failure_seeds: int = field(
        default=1,
        metadata=_help(
            "seeds for the T beyond a variant's first failure, until one is at the baseline's level (0: skip them)"
        ),
    )

    def __post_init__(self) -> None:
        counts = {name: getattr(self, name) for name in ("batch_size", "seeds", "test_size", "workers")}
        for task in TASKS:
            counts |= {f"{task}.{name}": getattr(self.budget(task), name) for name in ("steps", "eval_every")}
        for name, value in counts.items():
            if value <= 0:
                raise OptionError(f"{{0}} must be positive, got {value}", name)
        if not 0 < self.choose_rate_at <= 1:
            raise OptionError(f"{{0}} must be in (0, 1], got {self.choose_rate_at:g}", "choose_rate_at")

    def budget(self, task: str) -> Budget:
        return getattr(self, task)

    @classmethod
    def quick(cls) -> LongRangeConfig:
        budget = Budget(lengths=(10, 20), steps=300, lrs=(1e-2,), eval_every=50)
        return cls(
            adding=budget,
            copy=budget,
            lstm_hidden=32,
            batch_size=64,
            seeds=1,
            test_size=300,
            forget_inits=("1",),
            update_inits=("zero",),
            workers=1,
        )

    @classmethod
    def long(cls) -> LongRangeConfig:
        default = cls()
        adding = Budget((10, 20, 50, 100, 200, 500), 20_000, default.adding.lrs, default.adding.eval_every)
        copy = Budget((10, 50, 100), 40_000, default.copy.lrs, default.copy.eval_every)
        return cls(adding=adding, copy=copy)


class TaskNet(nn.Module):
    """``Recurrent`` then a linear read-out: of ``h_T`` (adding, 1 output) or of every ``h_t`` (copy, V).
    ``keep_init`` initialises the gate that keeps the memory: the LSTM's forget gate, the GRU's update gate."""

    def __init__(self, task: Task, cell: str, hidden_size: int, keep_init: str = "zero") -> None:
        super().__init__()
        self.task = task
        self.rnn = Recurrent(cell, task.input_size, hidden_size, forget_init=keep_init if cell == "lstm" else "zero")
        if cell == "gru":
            for layer in self.rnn.cells:
                init_update_gate(layer, keep_init)
        self.readout = nn.Linear(hidden_size, task.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.task.one_hot:
            x = nn.functional.one_hot(x, self.task.input_size).float()  # (B, T, V)
        h, _ = self.rnn(x)  # (B, T, H)
        if self.task.every_step:
            return self.readout(h)  # (B, T, V)
        return self.readout(h[:, -1]).squeeze(-1)  # (B,)


def evaluate(task: Task, net: TaskNet, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
    """(loss, ``task.recall`` (copy: accuracy on the K copied symbols, chance 1/8), else None)."""
    with torch.no_grad():
        output = net(x)
        loss = float(task.loss(output, y))
        return loss, (task.recall(output, y) if task.recall is not None else None)


def validation_set(task: Task, T: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return task.batch(size, T, torch.Generator().manual_seed(2**30 + T))


def test_set(task: Task, T: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return task.batch(size, T, torch.Generator().manual_seed(2**31 - 1 - T))


@dataclass
class RateRun:
    """One network training at one learning rate (``train``), side by side with the other rates."""

    net: TaskNet
    optimizer: torch.optim.Optimizer | None
    lr: float
    last: int  # the last step it may train: the budget, or the margin after solving
    steps: int = 0  # trained so far
    solved_after: int | None = None  # sequences seen when validation first reached SOLVED_FRACTION of the baseline
    valid_loss: float = math.inf  # the lowest validation loss so far
    best_state: dict | None = None  # the network at that loss
    live: bool = True


@dataclass(frozen=True)
class SeedResult:
    """One seed's network at (task, variant, T), at the rate chosen for it, scored on the test set."""

    lr: float
    solved_after: int | None  # as in RateRun
    valid_loss: float
    sequences: int  # trained
    hidden: int
    params: int
    test_loss: float
    recall: float | None


def train(
    task: Task, variant: Variant, hidden: int, T: int, seed: int, lrs: tuple[float, ...], config: LongRangeConfig, bar
) -> list[RateRun]:
    """Train one network per rate of ``lrs`` side by side on the same fresh batches (they depend on (seed, T)
    only, so every variant and rate sees the same data), each until it reaches ``stop_fraction`` of the baseline
    on validation, the margin after solving ends, or the budget. A rate drops out early when it cannot win
    (``choose``): once another rate has solved and it has not (it would take more sequences), and, at
    ``choose_rate_at`` of the budget, unless its validation loss is the lowest so far (successive halving,
    Jamieson & Talwalkar 2016, with one survivor). Returns per rate the network as it was at its lowest
    validation loss (the one tested), that loss, and the sequences seen when validation first reached
    ``SOLVED_FRACTION`` (or None)."""
    budget = config.budget(task.name)
    valid = validation_set(task, T, config.test_size)
    base = task.baseline(T)
    runs = []
    for lr in lrs:
        torch.manual_seed(seed)  # every rate starts from the same network
        net = TaskNet(task, variant.cell, hidden, variant.forget_spec(T + task.extra_length))
        runs.append(RateRun(net, torch.optim.Adam(net.parameters(), lr=lr), lr, last=budget.steps))
    choose_at = math.ceil(config.choose_rate_at * budget.steps) if len(runs) > 1 else math.inf
    data = torch.Generator().manual_seed(1_000_003 * seed + T)
    step = 0
    while live := [r for r in runs if r.live]:
        x, y = task.batch(config.batch_size, T, data)
        step += 1
        for r in live:
            loss = task.loss(r.net(x), y)
            r.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(r.net.parameters(), config.clip)
            r.optimizer.step()
            r.steps = step
        bar.update(len(live))
        checked = step % budget.eval_every == 0
        for r in live:
            if checked or step == r.last:
                valid_loss = evaluate(task, r.net, *valid)[0]
                if valid_loss < r.valid_loss:
                    r.valid_loss = valid_loss
                    r.best_state = {k: v.detach().clone() for k, v in r.net.state_dict().items()}
                if r.solved_after is None and valid_loss <= SOLVED_FRACTION * base:
                    r.solved_after = step * config.batch_size
                    r.last = min(r.last, math.ceil(step * (1 + config.margin_steps)))  # the margin, bounded
                if valid_loss <= config.stop_fraction * base or not math.isfinite(valid_loss):
                    r.live = False
            r.live = r.live and step < r.last
        if any(r.solved_after is not None for r in runs):  # the others cannot solve with fewer sequences
            for r in runs:
                r.live = r.live and r.solved_after is not None
        elif checked and step >= choose_at:  # successive halving: only the best so far goes on
            choose_at = math.inf
            best = min(live, key=lambda r: r.valid_loss)
            for r in runs:
                r.live = r.live and r is best
    for r in runs:
        bar.update(budget.steps - r.steps)
        if r.best_state is not None:  # at lr 1e-2 the loss spikes now and then: the last step's is a lottery
            r.net.load_state_dict(r.best_state)
        r.optimizer = r.best_state = None  # done: only the network is read from here on
    return runs


def choose(runs: list[RateRun]) -> RateRun:
    """The run that solved with the fewest sequences, else the one with the lowest validation loss."""
    return min(runs, key=lambda r: (r.solved_after is None, r.solved_after or 0, r.valid_loss))


def train_seeds(
    task: Task, variant: Variant, T: int, seeds: list[int], lrs: tuple[float, ...], config: LongRangeConfig, bar
) -> list[SeedResult]:
    """The first seed trains at every rate of ``lrs`` (``train``) and keeps the best (``choose``); the next
    seeds train at that rate, each only while the verdict is open: "solved" needs at least half of ``seeds``,
    so with 3 the third trains only when the first two disagree. Each run is scored on the test set (one per
    T, shared by every seed and variant)."""
    D = task.input_size
    hidden = matched_hidden_size(variant.cell, D, cell_parameter_count("lstm", D, config.lstm_hidden))
    test = test_set(task, T, config.test_size)
    steps = config.budget(task.name).steps
    need = math.ceil(len(seeds) / 2)  # seeds that must solve
    results: list[SeedResult] = []
    for k, seed in enumerate(seeds):
        solved = sum(r.test_loss <= SOLVED_FRACTION * task.baseline(T) for r in results)
        if solved >= need or len(results) - solved > len(seeds) - need:  # decided: the rest cannot change it
            bar.update((len(seeds) - k) * steps)
            break
        best = choose(train(task, variant, hidden, T, seed, lrs if k == 0 else (results[0].lr,), config, bar))
        test_loss, recall = evaluate(task, best.net, *test)
        params = sum(p.numel() for p in best.net.parameters())
        sequences = best.steps * config.batch_size
        results.append(
            SeedResult(best.lr, best.solved_after, best.valid_loss, sequences, hidden, params, test_loss, recall)
        )
    return results


def _median(values: list) -> int | None:
    return round(statistics.median(values)) if values else None


def run_chain(task: Task, variant: Variant, config: LongRangeConfig, bar) -> list[dict]:
    """One (task, variant) over its lengths T in order: every seed and rate of ``config`` until the first T it
    fails, then ``after_failure_seeds`` seeds at the rate chosen there, up to the first row at the baseline's
    level (``BASELINE_LEVEL``). ``bar``: ``update(n)``, ``write(line)``."""
    budget = config.budget(task.name)
    full = len(budget.lrs) + config.seeds - 1  # runs per T before any failure
    rows, failed_lr = [], None
    for T in sorted(budget.lengths):
        seeds, lrs = config.seeds, budget.lrs
        if failed_lr is not None:  # a follow-up, unless the last row is at the baseline's level
            seeds = 0 if rows[-1]["loss_over_baseline"] >= BASELINE_LEVEL else config.after_failure_seeds
            lrs = (failed_lr,)
            bar.update((full - seeds) * budget.steps)  # the runs a failure saves
            if seeds == 0:
                continue
        seed_list = [config.seed + k for k in range(seeds)]
        started = time.perf_counter()
        row = summarise(task, variant, T, train_seeds(task, variant, T, seed_list, lrs, config, bar))
        row["seconds"] = round(time.perf_counter() - started, 1)  # this row's training and tests, in its process
        rows.append(row)
        bar.write(row_line(row))
        if not row["solved"] and failed_lr is None:
            failed_lr = row["lr_chosen"]
    return rows


class _LocalBar:
    """The progress bar in this process: finished rows are written above it, on stderr, when shown."""

    def __init__(self, bar, show: bool) -> None:
        self.bar, self.show = bar, show

    def update(self, n: int) -> None:
        self.bar.update(n)

    def write(self, line: str) -> None:
        if self.show:
            self.bar.write(line, file=sys.stderr)


class _QueueBar:
    """A worker's progress bar: sends its updates (batched, at most ~4 a second) and lines to the parent."""

    def __init__(self, queue) -> None:
        self.queue, self.pending, self.sent = queue, 0, time.monotonic()

    def update(self, n: int) -> None:
        self.pending += n
        if time.monotonic() - self.sent > 0.25:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.queue.put(("update", self.pending))
        self.pending, self.sent = 0, time.monotonic()

    def write(self, line: str) -> None:
        self.flush()
        self.queue.put(("write", line))


_worker_queue = None  # set in each worker process by _start_worker


def _start_worker(queue) -> None:
    global _worker_queue
    _worker_queue = queue


def _chain_in_worker(task: Task, variant: Variant, config: LongRangeConfig) -> list[dict]:
    bar = _QueueBar(_worker_queue)
    with torch_threads(config.threads):
        rows = run_chain(task, variant, config, bar)
    bar.flush()
    return rows


def _run_parallel(chains: list[tuple[Task, Variant]], config: LongRangeConfig, bar, show: bool) -> list[dict]:
    """The chains in ``config.workers`` processes (spawned: no torch state is forked); every network is
    seeded on its own, so the rows are those of one process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    rows: list[dict] = []
    with ProcessPoolExecutor(config.workers, mp_context=context, initializer=_start_worker, initargs=(queue,)) as pool:
        pending = [pool.submit(_chain_in_worker, task, variant, config) for task, variant in chains]
        while True:
            all_done = all(f.done() for f in pending)  # read before draining: no message is left behind
            try:
                while True:
                    kind, payload = queue.get(timeout=0.2)
                    if kind == "update":
                        bar.update(payload)
                    elif show:
                        bar.write(payload, file=sys.stderr)
            except queue_module.Empty:
                pass
            if all_done:
                break
        for future in pending:
            rows += future.result()  # a worker's error is raised here
    return rows


def run(config: LongRangeConfig, show_progress: bool = True, fitting: Fitting = unwatched) -> ExperimentResult:
    """``fitting``: unused (the networks train in this module's own loop, counted on its one bar)."""
    kinds = cell_variants(config.cells, config.forget_inits, config.update_inits)
    budgets = {name: config.budget(name) for name in config.tasks}
    # steps of every run of a (task, variant) chain before any failure
    total = sum(len(b.lengths) * (len(b.lrs) + config.seeds - 1) * b.steps for b in budgets.values()) * len(kinds)
    # the longest chains first (the most steps per network: copy; the GRU: torch's CPU GRU is ~3x slower per step
    # than its LSTM), so that the workers finish closer together
    chains = [(TASKS[name], variant) for name in config.tasks for variant in kinds]
    chains.sort(key=lambda chain: (-budgets[chain[0].name].steps, chain[1].cell != "gru"))
    with torch_threads(config.threads), progress(total, "long-range", show_progress) as bar:
        if config.workers > 1 and len(chains) > 1:
            rows = _run_parallel(chains, config, bar, show_progress)
        else:
            local = _LocalBar(bar, show_progress)
            rows = [row for task, variant in chains for row in run_chain(task, variant, config, local)]
    order = {v.name: k for k, v in enumerate(kinds)}
    rows.sort(key=lambda r: (config.tasks.index(r["task"]), r["T"], order[r["cell"]]))
    return result(rows, config)


def result(rows: list[dict], config: LongRangeConfig) -> ExperimentResult:
    """The experiment's record from its table: the longest T solved and the table beside the literature."""
    summary = {"longest_solved_T": longest_solved(rows)}
    tables = {"Beside the literature": literature_rows(rows, config)}
    return ExperimentResult("long-range", settings(config), rows, summary, tables=tables)


def row_line(row: dict) -> str:
    """One finished row as a log line (the long run prints them as they come)."""
    recall = f", recall {row['recall_accuracy']:.2f}" if row["recall_accuracy"] is not None else ""
    took = f", solved after {row['sequences_to_solve']:,.0f} sequences" if row["sequences_to_solve"] else ""
    return (
        f"{row['task']} T={row['T']} {row['cell']}: loss/baseline {row['loss_over_baseline']:.3g}{recall}, "
        f"solved {row['solved_seeds']}, lr {row['lr_chosen']:g}{took}"
    )


def summarise(task: Task, variant: Variant, T: int, results: list[SeedResult]) -> dict:
    """The table's row for (task, variant, T) from its seeds' results."""
    losses = [r.test_loss for r in results]
    base = task.baseline(T)
    solved = [r for r in results if r.test_loss <= SOLVED_FRACTION * base]
    recalls = [r.recall for r in results if r.recall is not None]
    return {
        "task": task.name,
        "T": T,
        "cell": variant.name,
        "hidden": results[0].hidden,
        "params": results[0].params,
        "lr_chosen": results[0].lr,
        "test_loss_mean": statistics.fmean(losses),
        "test_loss_min": min(losses),
        "test_loss_max": max(losses),
        "baseline": base,
        "loss_over_baseline": statistics.fmean(losses) / base,
        "recall_accuracy": statistics.fmean(recalls) if recalls else None,
        "solved_seeds": f"{len(solved)}/{len(results)}",
        "solved": 2 * len(solved) >= len(results) and bool(solved),
        # median over the seeds that solved it on the test set, of the sequences seen when validation first did
        "sequences_to_solve": _median([r.solved_after for r in solved if r.solved_after is not None]),
        "sequences_trained_max": max(r.sequences for r in results),
    }


def longest_solved(rows: list[dict]) -> dict:
    """{task: {variant: the largest T solved by at least half the seeds, or None}}."""
    out: dict = {}
    for r in rows:
        best = out.setdefault(r["task"], {}).setdefault(r["cell"], None)
        if r["solved"] and (best is None or r["T"] > best):
            out[r["task"]][r["cell"]] = r["T"]
    return out


def literature_rows(rows: list[dict], config: LongRangeConfig) -> list[dict]:
    """Per task and variant: the largest T solved and every T the literature gives a count for (Hochreiter &
    Schmidhuber 1997, Table 7, adding problem: T = 100, 500, 1000), each with the sequences it took here and the
    literature's count beside it (None where it gives none)."""
    out = []
    for task, by_variant in longest_solved(rows).items():
        for name, longest in by_variant.items():
            measured = {r["T"]: r for r in rows if r["task"] == task and r["cell"] == name}
            shown = {T for (t, T) in LITERATURE_SEQUENCES if t == task and T in measured}
            if longest:
                shown.add(longest)
            elif not shown:  # solved nothing, no count beside it: its shortest T, where it came closest
                shown.add(min(measured))
            for T in sorted(shown):
                row = measured[T]
                out.append(
                    {
                        "task": task,
                        "cell": name,
                        "T": T,
                        "largest_T_solved": longest,
                        "solved_seeds": row["solved_seeds"],
                        "loss_over_baseline": row["loss_over_baseline"],
                        "sequences_to_solve": row["sequences_to_solve"],
                        "budget_sequences": config.budget(task).steps * config.batch_size,
                        "literature_sequences": LITERATURE_SEQUENCES.get((task, T)),
                    }
                )
    return out
