"""``seqlab experiment long-range``: the adding problem and the copy-memory task for growing T, with the
tanh RNN, the LSTM (forget-gate bias 0, 1 and chrono) and the GRU (update-gate bias torch's and chrono) at one
parameter budget, trained until they solve the task or run out of sequences, as Hochreiter & Schmidhuber
(1997) measured it.

The claim tested (DESIGN.md section 1): a vanilla RNN keeps recent information but loses distant
information, while the LSTM's cell state (and the GRU's gated h) carries it across long spans.

    adding:  y_hat = w . h_T + b,             loss (y_hat - y)^2,      baseline MSE 1/6 (predict E[y] = 1)
    copy:    logits_t = W . h_t + b (V = 10), loss mean_t CE(logits_t, y_t), baseline 10 log 8 / (T + 20)

Protocol, per (task, variant, T): every ``eval_every`` steps (``copy_eval_every`` on copy) the network is scored
on a validation set (the network kept, and tested, is the one with the lowest validation loss); it counts as
having *solved* the task once the validation loss is at most ``SOLVED_FRACTION`` of the baseline's (the sequences
seen then are reported), and training stops when it is at most ``stop_fraction`` of it, or ``margin_steps`` (a
fraction) more steps after solving (a margin, so that the test verdict does not hang on noise), or after the
task's budget (``steps``, ``copy_steps``). Learning rate: the first seed trains at every rate of ``lrs``
(``copy_lrs``) side by side, each stopped once it cannot beat a rate that already solved, and after
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

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
from seqlab.experiments.common import (
    CELL_NAMES,
    ExperimentResult,
    Fitting,
    Variant,
    cell_parameter_count,
    cell_variants,
    matched_hidden_size,
    progress,
    torch_threads,
    unwatched,
)
from seqlab.recurrent import Recurrent

TASKS = ("adding", "copy")
SOLVED_FRACTION = 0.1  # solved: loss <= 10% of the memoryless baseline's
# A failure at >= 90% of the baseline's loss carried (almost) nothing across T steps; a longer T is harder, so the
# chain trains no longer T after it.
BASELINE_LEVEL = 0.9
INPUT_SIZE = {"adding": 2, "copy": COPY_VOCABULARY}  # copy: one-hot symbols

# Sequences the literature's LSTM needed, for the table beside ours: Hochreiter & Schmidhuber (1997), Table 7
# (adding problem, their stopping criterion: absolute error < 0.04 on 2,000 consecutive sequences).
LITERATURE_SEQUENCES = {("adding", 100): 74_000, ("adding", 500): 209_000, ("adding", 1000): 853_000}


def _help(text: str) -> dict:
    return {"help": text}


@dataclass
class LongRangeConfig:
    tasks: tuple[str, ...] = field(
        default=TASKS, metadata={"choices": TASKS, "what": "task", **_help("tasks: adding, copy")}
    )
    lengths: tuple[int, ...] = field(
        default=(10, 20, 50, 100, 200), metadata={"min": 2, **_help("adding problem: lengths T")}
    )
    cells: tuple[str, ...] = field(
        default=("rnn", "lstm", "gru"),
        metadata={"choices": CELL_NAMES, "what": "cell", **_help("cells: rnn, lstm, gru")},
    )
    lstm_hidden: int = field(
        default=64, metadata={**_help("LSTM hidden size; every cell gets about its parameters"), "option": "hidden"}
    )
    steps: int = field(
        default=8000, metadata=_help("adding problem: most training steps per network (it stops once solved)")
    )
    copy_steps: int = field(
        default=20_000, metadata=_help("copy memory: most training steps per network (it stops once solved)")
    )
    batch_size: int = field(default=32, metadata=_help("sequences per step"))
    lrs: tuple[float, ...] = field(
        default=(1e-2, 3e-3, 1e-3),
        metadata=_help("adding problem: Adam learning rates the first seed trains side by side; the best is kept"),
    )
    copy_lrs: tuple[float, ...] = field(
        default=(1e-2, 3e-3),
        metadata=_help("copy memory: the same (1e-3 led no copy row: every one chose 1e-2 or 3e-3)"),
    )
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
    copy_lengths: tuple[int, ...] = field(
        default=(10, 50), metadata={"min": 2, **_help("copy memory: blank lengths T")}
    )
    eval_every: int = field(default=100, metadata=_help("adding problem: steps between validation checks"))
    copy_eval_every: int = field(
        default=200, metadata=_help("copy memory: steps between validation checks (it learns over thousands)")
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

    @classmethod
    def quick(cls) -> LongRangeConfig:
        return cls(
            lengths=(10, 20),
            copy_lengths=(10, 20),
            lstm_hidden=32,
            steps=300,
            copy_steps=300,
            batch_size=64,
            lrs=(1e-2,),
            copy_lrs=(1e-2,),
            seeds=1,
            test_size=300,
            forget_inits=("1",),
            update_inits=("zero",),
            eval_every=50,
            copy_eval_every=50,
            workers=1,
        )

    @classmethod
    def long(cls) -> LongRangeConfig:
        return cls(lengths=(10, 20, 50, 100, 200, 500), copy_lengths=(10, 50, 100), steps=20_000, copy_steps=40_000)

    def steps_of(self, task: str) -> int:
        return self.steps if task == "adding" else self.copy_steps

    def lrs_of(self, task: str) -> tuple[float, ...]:
        return self.lrs if task == "adding" else self.copy_lrs

    def eval_every_of(self, task: str) -> int:
        return self.eval_every if task == "adding" else self.copy_eval_every

    def lengths_of(self, task: str) -> tuple[int, ...]:
        return tuple(sorted(self.lengths if task == "adding" else self.copy_lengths))


class TaskNet(nn.Module):
    """``Recurrent`` then a linear read-out: of ``h_T`` (adding, 1 output) or of every ``h_t`` (copy, V).
    ``keep_init`` initialises the gate that keeps the memory: the LSTM's forget gate, the GRU's update gate."""

    def __init__(self, task: str, cell: str, hidden_size: int, keep_init: str = "zero") -> None:
        super().__init__()
        self.task = task
        self.rnn = Recurrent(cell, INPUT_SIZE[task], hidden_size, forget_init=keep_init if cell == "lstm" else "zero")
        if cell == "gru":
            for layer in self.rnn.cells:
                init_update_gate(layer, keep_init)
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


def input_length(task: str, T: int) -> int:
    return T if task == "adding" else T + 2 * COPY_SYMBOLS


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


def validation_set(task: str, T: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return make_batch(task, size, T, torch.Generator().manual_seed(2**30 + T))


def test_set(task: str, T: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return make_batch(task, size, T, torch.Generator().manual_seed(2**31 - 1 - T))


def train(
    task: str, variant: Variant, hidden: int, T: int, seed: int, lrs: tuple[float, ...], config: LongRangeConfig, bar
) -> list[dict]:
    """Train one network per rate of ``lrs`` side by side on the same fresh batches (they depend on (seed, T)
    only, so every variant and rate sees the same data), each until it reaches ``stop_fraction`` of the baseline
    on validation, the margin after solving ends, or the budget. A rate drops out early when it cannot win
    (``choose``): once another rate has solved and it has not (it would take more sequences), and, at
    ``choose_rate_at`` of the budget, unless its validation loss is the lowest so far (successive halving,
    Jamieson & Talwalkar 2016, with one survivor). Returns per rate the network as it was at its lowest
    validation loss (the one tested), that loss, and the sequences seen when validation first reached
    ``SOLVED_FRACTION`` (or None)."""
    budget = config.steps_of(task)
    valid = validation_set(task, T, config.test_size)
    base = baseline(task, T)
    runs = []
    for lr in lrs:
        torch.manual_seed(seed)  # every rate starts from the same network
        net = TaskNet(task, variant.cell, hidden, variant.forget_spec(input_length(task, T)))
        runs.append(
            {"net": net, "optimizer": torch.optim.Adam(net.parameters(), lr=lr), "lr": lr, "solved_after": None,
             "steps": 0, "last": budget, "valid_loss": math.inf, "best_state": None, "live": True}
        )  # fmt: skip
    choose_at = math.ceil(config.choose_rate_at * budget) if len(runs) > 1 else math.inf
    data = torch.Generator().manual_seed(1_000_003 * seed + T)
    step = 0
    while live := [r for r in runs if r["live"]]:
        x, y = make_batch(task, config.batch_size, T, data)
        step += 1
        for r in live:
            loss = task_loss(task, r["net"](x), y)
            r["optimizer"].zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(r["net"].parameters(), config.clip)
            r["optimizer"].step()
            r["steps"] = step
        bar.update(len(live))
        checked = step % config.eval_every_of(task) == 0
        for r in live:
            if checked or step == r["last"]:
                valid_loss = evaluate(task, r["net"], *valid)[0]
                if valid_loss < r["valid_loss"]:
                    r["valid_loss"] = valid_loss
                    r["best_state"] = {k: v.detach().clone() for k, v in r["net"].state_dict().items()}
                if r["solved_after"] is None and valid_loss <= SOLVED_FRACTION * base:
                    r["solved_after"] = step * config.batch_size
                    r["last"] = min(r["last"], math.ceil(step * (1 + config.margin_steps)))  # the margin, bounded
                if valid_loss <= config.stop_fraction * base or not math.isfinite(valid_loss):
                    r["live"] = False
            r["live"] = r["live"] and step < r["last"]
        if any(r["solved_after"] is not None for r in runs):  # the others cannot solve with fewer sequences
            for r in runs:
                r["live"] = r["live"] and r["solved_after"] is not None
        elif checked and step >= choose_at:  # successive halving: only the best so far goes on
            choose_at = math.inf
            best = min(live, key=lambda r: r["valid_loss"])
            for r in runs:
                r["live"] = r["live"] and r is best
    out = []
    for r in runs:
        bar.update(budget - r["steps"])
        if r["best_state"] is not None:  # at lr 1e-2 the loss spikes now and then: the last step's is a lottery
            r["net"].load_state_dict(r["best_state"])
        sequences = r["steps"] * config.batch_size
        out.append({k: r[k] for k in ("net", "lr", "solved_after", "valid_loss")} | {"sequences": sequences})
    return out


def choose(runs: list[dict]) -> dict:
    """The run that solved with the fewest sequences, else the one with the lowest validation loss."""
    return min(runs, key=lambda r: (r["solved_after"] is None, r["solved_after"] or 0, r["valid_loss"]))


def train_seeds(task: str, variant: Variant, T: int, seeds: list[int], lrs: tuple[float, ...], config, bar) -> list:
    """The first seed trains at every rate of ``lrs`` (``train``) and keeps the best (``choose``); the next
    seeds train at that rate, each only while the verdict is open: "solved" needs at least half of ``seeds``,
    so with 3 the third trains only when the first two disagree. Each run is scored on the test set (one per
    T, shared by every seed and variant)."""
    D = INPUT_SIZE[task]
    hidden = matched_hidden_size(variant.cell, D, cell_parameter_count("lstm", D, config.lstm_hidden))
    test = test_set(task, T, config.test_size)
    need = math.ceil(len(seeds) / 2)  # seeds that must solve
    results: list[dict] = []
    for k, seed in enumerate(seeds):
        solved = sum(r["test_loss"] <= SOLVED_FRACTION * baseline(task, T) for r in results)
        if solved >= need or len(results) - solved > len(seeds) - need:  # decided: the rest cannot change it
            bar.update((len(seeds) - k) * config.steps_of(task))
            break
        best = choose(train(task, variant, hidden, T, seed, lrs if k == 0 else (results[0]["lr"],), config, bar))
        test_loss, recall = evaluate(task, best["net"], *test)
        best.update(
            hidden=hidden,
            params=sum(p.numel() for p in best.pop("net").parameters()),
            test_loss=test_loss,
            recall=recall,
        )
        results.append(best)
    return results


def _median(values: list) -> int | None:
    return round(statistics.median(values)) if values else None


def run_chain(task: str, variant: Variant, config: LongRangeConfig, bar) -> list[dict]:
    """One (task, variant) over its lengths T in order: every seed and rate of ``config`` until the first T it
    fails, then ``after_failure_seeds`` seeds at the rate chosen there, up to the first row at the baseline's
    level (``BASELINE_LEVEL``). ``bar``: ``update(n)``, ``write(line)``."""
    full = len(config.lrs_of(task)) + config.seeds - 1  # runs per T before any failure
    rows, failed_lr = [], None
    for T in config.lengths_of(task):
        seeds, lrs = config.seeds, config.lrs_of(task)
        if failed_lr is not None:  # a follow-up, unless the last row is at the baseline's level
            seeds = 0 if rows[-1]["loss_over_baseline"] >= BASELINE_LEVEL else config.after_failure_seeds
            lrs = (failed_lr,)
            bar.update((full - seeds) * config.steps_of(task))  # the runs a failure saves
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


def _chain_in_worker(task: str, variant: Variant, config: LongRangeConfig) -> list[dict]:
    bar = _QueueBar(_worker_queue)
    with torch_threads(config.threads):
        rows = run_chain(task, variant, config, bar)
    bar.flush()
    return rows


def _run_parallel(chains: list[tuple[str, Variant]], config: LongRangeConfig, bar, show: bool) -> list[dict]:
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
    for name in ("steps", "copy_steps", "batch_size", "seeds", "test_size", "eval_every", "copy_eval_every", "workers"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    if not 0 < config.choose_rate_at <= 1:
        raise ValueError(f"choose-rate-at must be in (0, 1], got {config.choose_rate_at}")
    kinds = cell_variants(config.cells, config.forget_inits, config.update_inits)
    # steps of every run per (task, variant, T) before any failure
    full = {t: (len(config.lrs_of(t)) + config.seeds - 1) * config.steps_of(t) for t in config.tasks}
    total = sum(len(config.lengths_of(t)) * full[t] for t in config.tasks) * len(kinds)
    # the longest chains first (copy, and the GRU: torch's CPU GRU is ~3x slower per step than its LSTM), so
    # that the workers finish closer together
    chains = [(task, variant) for task in config.tasks for variant in kinds]
    chains.sort(key=lambda chain: (chain[0] != "copy", chain[1].cell != "gru"))
    with torch_threads(config.threads), progress(total, "long-range", show_progress) as bar:
        if config.workers > 1 and len(chains) > 1:
            rows = _run_parallel(chains, config, bar, show_progress)
        else:
            local = _LocalBar(bar, show_progress)
            rows = [row for task, variant in chains for row in run_chain(task, variant, config, local)]
    order = {v.name: k for k, v in enumerate(kinds)}
    rows.sort(key=lambda r: (config.tasks.index(r["task"]), r["T"], order[r["cell"]]))
    summary = {"longest_solved_T": longest_solved(rows)}
    tables = {"Beside the literature": literature_rows(rows, config)}
    return ExperimentResult("long-range", asdict(config), rows, summary, tables=tables)


def row_line(row: dict) -> str:
    """One finished row as a log line (the long run prints them as they come)."""
    recall = f", recall {row['recall_accuracy']:.2f}" if row["recall_accuracy"] is not None else ""
    took = f", solved after {row['sequences_to_solve']:,.0f} sequences" if row["sequences_to_solve"] else ""
    return (
        f"{row['task']} T={row['T']} {row['cell']}: loss/baseline {row['loss_over_baseline']:.3g}{recall}, "
        f"solved {row['solved_seeds']}, lr {row['lr_chosen']:g}{took}"
    )


def summarise(task: str, variant: Variant, T: int, results: list[dict]) -> dict:
    losses = [r["test_loss"] for r in results]
    base = baseline(task, T)
    solved = [r for r in results if r["test_loss"] <= SOLVED_FRACTION * base]
    recalls = [r["recall"] for r in results if r["recall"] is not None]
    return {
        "task": task,
        "T": T,
        "cell": variant.name,
        "hidden": results[0]["hidden"],
        "params": results[0]["params"],
        "lr_chosen": results[0]["lr"],
        "test_loss_mean": statistics.fmean(losses),
        "test_loss_min": min(losses),
        "test_loss_max": max(losses),
        "baseline": base,
        "loss_over_baseline": statistics.fmean(losses) / base,
        "recall_accuracy": statistics.fmean(recalls) if recalls else None,
        "solved_seeds": f"{len(solved)}/{len(results)}",
        "solved": 2 * len(solved) >= len(results) and bool(solved),
        # median over the seeds that solved it on the test set, of the sequences seen when validation first did
        "sequences_to_solve": _median([r["solved_after"] for r in solved if r["solved_after"] is not None]),
        "sequences_trained_max": max(r["sequences"] for r in results),
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
                        "budget_sequences": config.steps_of(task) * config.batch_size,
                        "literature_sequences": LITERATURE_SEQUENCES.get((task, T)),
                    }
                )
    return out
