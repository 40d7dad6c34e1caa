"""The ``Trainer``, shared by every neural model: AdamW, clipping, truncated BPTT, a learning-rate
schedule, periodic validation, early stopping, step and time budgets, safe resumable checkpoints,
and data parallelism through ``torchrun`` (DDP; gloo on the CPU, nccl on the GPU).

Data: the training ids are cut into ``batch_size`` contiguous streams; step ``s`` trains on the
next ``window`` elements of every stream and carries the recurrent state across consecutive windows
(truncated BPTT), resetting it at each epoch, whose start is shifted by a seeded random offset.
Everything a step does is a function of ``(seed, step)`` and the saved state, so a resumed run
continues exactly where the interrupted one stopped.

Checkpoints in ``out``::

    config.json, model.safetensors    the best model so far (by validation NLL): ``seqlab.load(out)``
    training.json                     summary and history of validations
    last/                             the latest state, for ``--resume``: model, optimizer.pt
                                      (read with weights_only=True), trainer.json, carried.safetensors
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from seqlab import atomic, io
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import LN2

LAST_DIR = "last"


@dataclass
class TrainerConfig:
    steps: int | None = None  # total optimizer steps (counted across resumes)
    time_budget: float | None = None  # seconds of training (counted across resumes)
    batch_size: int = 64
    window: int = 64  # truncated-BPTT length
    lr: float = 4e-3
    min_lr_fraction: float = 0.1  # the cosine schedule ends at lr * min_lr_fraction
    warmup_steps: int = 50
    schedule: str = "cosine"  # "cosine" (over steps or time budget) or "constant" (after warmup)
    weight_decay: float = 0.01
    beta2: float = 0.99
    clip: float = 1.0  # max global gradient norm
    eval_every: int = 250  # steps between validations
    eval_chars: int = 30_000  # validation elements scored at each periodic validation
    patience: int = 0  # stop after this many validations without improvement (0: never)
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        if self.steps is None and self.time_budget is None:
            raise OptionError("give a step budget ({0}) or a time budget ({1})", "steps", "time_budget")
        positive = ["batch_size", "window", "lr", "eval_every", "eval_chars"]
        positive += [n for n in ("steps", "time_budget") if getattr(self, n) is not None]
        for name in positive:
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("warmup_steps", "weight_decay", "clip", "patience"):
            if getattr(self, name) < 0:
                raise SeqlabError(f"{name.replace('_', '-')} must be non-negative, got {getattr(self, name)}")
        if self.schedule not in ("cosine", "constant"):
            raise SeqlabError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not 0.0 <= self.min_lr_fraction <= 1.0 or not 0.0 <= self.beta2 < 1.0:
            raise SeqlabError("min-lr-fraction must be in [0, 1] and beta2 in [0, 1)")


class TrainingDiverged(SeqlabError):
    """The loss or the gradient became NaN or infinite."""


@dataclass
class TrainingResult:
    steps: int
    elapsed: float
    best_valid_nll: float | None
    history: list[dict] = field(default_factory=list)
    stopped_because: str = ""
    chars_per_second: float = 0.0


class WindowStream:
    """``batch_size`` contiguous streams over ``ids``; ``window(step)`` -> (B, window + 1) ids."""

    def __init__(self, ids: torch.Tensor, batch_size: int, window: int, seed: int) -> None:
        self.ids, self.batch_size, self.window_size, self.seed = ids, batch_size, window, seed
        self.row_length = (len(ids) - window) // batch_size  # room for an epoch offset < window
        self.windows_per_epoch = (self.row_length - 1) // window
        if self.windows_per_epoch < 1:
            need = batch_size * (window + 1) + window
            raise OptionError(
                f"training data has {len(ids):,} elements, shorter than one training window: "
                f"batch {batch_size} x window {window} needs at least {need:,}; "
                "use a smaller {0} or {1}",
                "batch_size",
                "window",
            )

    def window(self, step: int) -> tuple[torch.Tensor, bool]:
        epoch, w = divmod(step, self.windows_per_epoch)
        offset = int(np.random.default_rng((self.seed, epoch)).integers(self.window_size))
        starts = offset + torch.arange(self.batch_size) * self.row_length + w * self.window_size
        return self.ids[starts[:, None] + torch.arange(self.window_size + 1)], w == 0


def masked_nll(head, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean NLL over the known targets: in continuous data NaN marks a gap between series, nothing to predict.
    The NaNs are replaced before the head sees them, since NaN times a zero gradient is still NaN."""
    if not target.is_floating_point():
        return head.nll(params, target).mean()
    known = ~torch.isnan(target)
    nll = head.nll(params, torch.where(known, target, torch.zeros_like(target)))
    return torch.where(known, nll, torch.zeros_like(nll)).sum() / known.sum().clamp(min=1)


def busy_cpu_notice() -> str:
    """A warning when other processes already load every core: torch's CPU recurrent kernels end each time step
    with a barrier across their threads, and a descheduled thread stalls them all (measured here: a GRU step
    80x slower with 2 threads on 2 busy cores than with 1; docs/audio.md)."""
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if threads < 2 or load < cores - 0.5:
        return ""
    return (
        f"seqlab: notice: the CPU is busy (load {load:.1f} on {cores} cores) and torch uses {threads} threads; "
        "recurrent training can then run many times slower: if it does, set OMP_NUM_THREADS=1"
    )


def nonfinite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first parameter holding NaN or inf, or None: a model that must never be saved."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return name
    return None


def checked_progress(progress, source: Path) -> dict:
    """A saved ``progress`` record, its fields checked: one line naming the file if anything is off."""
    fields = {"step": int, "elapsed": (int, float), "bad_validations": int, "history": list}
    if not isinstance(progress, dict):
        raise SeqlabError(f"{source}: corrupted checkpoint (progress is {type(progress).__name__}, expected a dict)")
    for name, kind in fields.items():
        value = progress.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (not isinstance(value, list) and value < 0):
            raise SeqlabError(f"{source}: corrupted checkpoint (progress.{name} is {value!r})")
    best = progress.get("best_valid_nll")
    if best is not None and not isinstance(best, (int, float)):
        raise SeqlabError(f"{source}: corrupted checkpoint (progress.best_valid_nll is {best!r})")
    if best is not None and not math.isfinite(best):
        best = None  # written before NaN stopped counting as an improvement: not a best to beat
    return {**progress, "best_valid_nll": best}


def _distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(_leave_process_group)
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _leave_process_group() -> None:
    """At exit, the fallback: leave gloo's group rather than leave it to the interpreter's teardown."""
    if dist.is_initialized():
        dist.destroy_process_group()


def leave_process_group() -> bool:
    """After a command succeeded on every rank: wait for the others (rank 0 still evaluates and writes after
    training), then leave the group; whether this process was in one. A rank that exits alone while another
    still runs can abort in gloo's teardown ("terminate called without an active exception": one run in three
    or four of 2 CPU processes), failing a run that had finished. Not on an error path: a rank that failed does
    not wait for the others."""
    if not dist.is_initialized():
        return False
    dist.barrier()
    dist.destroy_process_group()
    return True


def exit_worker(code: int) -> NoReturn:
    """End a torchrun worker whose command finished and left the group: flush the output, then exit without
    the interpreter's teardown. Even after the barrier a rank could still abort there (SIGABRT, "terminate
    called without an active exception", once in CI): DDP wrappers sit in reference cycles, so one can hold
    the gloo group until the interpreter is being finalised, when gloo's threads can no longer take the GIL.
    Every file the command wrote is already closed and fsync'd (``atomic``), so nothing is lost."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _map_state(state, fn):
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def _state_tensors(state) -> dict[str, torch.Tensor]:
    """A carried state as named tensors: "state" for one tensor, "state_0", "state_1", ... for a tuple."""
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {f"state_{i}": s for i, s in enumerate(state)}
    return {"state": state}


def _state_from_tensors(tensors: dict[str, torch.Tensor], fn):
    if not tensors:
        return None
    if "state" in tensors:
        return fn(tensors["state"])
    return tuple(fn(tensors[f"state_{i}"]) for i in range(len(tensors)))


class Trainer:
    """Trains a model with ``forward(x_prev (B, T), state) -> (params, state)`` and a ``head``."""

    def __init__(
        self, model: torch.nn.Module, config: TrainerConfig, out: str | Path | None = None, meta: dict | None = None
    ) -> None:
        config.validate()
        self.model, self.config, self.meta = model, config, meta or {}
        self.out = Path(out) if out is not None else None
        self.rank, self.world = _distributed()
        if config.batch_size % self.world:
            raise SeqlabError(f"batch size {config.batch_size} is not divisible by {self.world} processes")
        self.device = torch.device(
            f"cuda:{self.rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
        )
        model.to(self.device)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
            betas=(0.9, config.beta2),
        )
        self._stop_requested = False
        self.best_weights: dict | None = None  # without a run directory: the best validation's weights
        # called after each last/ checkpoint, e.g. to commit a run directory built beside the one it replaces
        self.after_checkpoint: Callable[[Trainer], None] | None = None
        # where the batch lives in the model's carried state: (L, B, H) for RNNs, (B, ...) for the others
        self.state_batch_dim = getattr(model, "state_batch_dim", 0)

    # -- schedule -----------------------------------------------------------------------------
    def learning_rate(self, step: int, elapsed: float) -> float:
        c = self.config
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        if c.schedule == "constant":
            return c.lr
        progress = 0.0
        if c.steps is not None:
            progress = max(progress, (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps))
        if c.time_budget is not None:
            progress = max(progress, elapsed / c.time_budget)
        progress = min(progress, 1.0)
        return c.lr * (c.min_lr_fraction + (1 - c.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return (what Ctrl-C does)."""
        self._stop_requested = True

    # -- validation ---------------------------------------------------------------------------
    def validation_nll(self, valid: torch.Tensor, limit: int | None) -> float:
        ids = valid if limit is None else valid[:limit]
        log_probs = self.model.log_prob(ids)
        return float(-log_probs[~torch.isnan(log_probs)].mean())  # NaN: a gap between series

    # -- checkpoints --------------------------------------------------------------------------
    def _gather_state(self, state):
        """The carried state of all processes, concatenated along the batch dimension."""
        if self.world == 1 or state is None:
            return state

        def gather(s):
            parts = [torch.empty_like(s) for _ in range(self.world)]
            dist.all_gather(parts, s.contiguous())
            return torch.cat(parts, dim=self.state_batch_dim)

        return _map_state(state, gather)

    def _refuse_nonfinite(self) -> None:
        if (name := nonfinite_parameter(self.model)) is not None:  # never reached through fit(), which stops first
            raise TrainingDiverged(f"refusing to save a model whose parameter {name} holds NaN or inf")

    def save_last(self, progress: dict, state) -> None:
        self._refuse_nonfinite()
        state = self._gather_state(state)  # every rank takes part in the gather
        if self.rank != 0 or self.out is None:
            return

        def write(tmp: Path) -> None:
            io.save(self.model, tmp)
            atomic.write_torch(tmp / "optimizer.pt", self.optimizer.state_dict())
            atomic.write_safetensors(tmp / "carried.safetensors", _state_tensors(state))
            atomic.write_json(
                tmp / "trainer.json", {"progress": progress, "trainer_config": asdict(self.config), "meta": self.meta}
            )

        write_dir = self.out / LAST_DIR
        self.out.mkdir(parents=True, exist_ok=True)
        atomic.write_dir_atomically(write_dir, write)
        if self.after_checkpoint is not None:
            self.after_checkpoint(self)

    def save_best(self, progress: dict) -> None:
        self._refuse_nonfinite()
        if self.out is None:  # training in memory: fit ends on these weights (the best validation's)
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return
        if self.rank != 0:
            return
        io.save(self.model, self.out)
        atomic.write_json(
            self.out / "training.json", {"progress": progress, "trainer_config": asdict(self.config), "meta": self.meta}
        )

    def load_last(self) -> tuple[dict, object]:
        last = self.out / LAST_DIR
        saved = io.load(last, expect=self.model.kind)  # recovers a swap a kill interrupted (atomic.recover)
        if saved.to_config() != self.model.to_config():
            raise SeqlabError(f"{last}: the checkpoint's model config differs from the one requested")
        self.model.load_state_dict(saved.state_dict())
        info = atomic.read_json(last / "trainer.json")
        optimizer_state = atomic.read_torch(last / "optimizer.pt")
        try:
            self.optimizer.load_state_dict(optimizer_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            why = f"not this run's optimizer state ({type(e).__name__}: {e})"
            raise SeqlabError(f"{last / 'optimizer.pt'}: corrupted checkpoint: {why}") from None
        try:
            carried = atomic.read_safetensors(last / "carried.safetensors")
            progress = checked_progress(info["progress"], last / "trainer.json")
        except (KeyError, TypeError, ValueError, OSError, RuntimeError) as e:
            if isinstance(e, SeqlabError):
                raise
            raise SeqlabError(f"{last}: corrupted checkpoint ({type(e).__name__}: {e})") from None
        B = self.config.batch_size // self.world
        state = _state_from_tensors(carried, lambda p: p.narrow(self.state_batch_dim, self.rank * B, B).to(self.device))
        return progress, state

    # -- the loop -----------------------------------------------------------------------------
    def fit(
        self,
        train: torch.Tensor,
        valid: torch.Tensor | None = None,
        resume: bool = False,
        on_step: Callable[[Trainer, int, float], None] | None = None,
    ) -> TrainingResult:
        c = self.config
        stream = WindowStream(train, c.batch_size, c.window, c.seed)
        B = c.batch_size // self.world
        rows = slice(self.rank * B, (self.rank + 1) * B)
        model = self.model
        net = torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else model
        if valid is not None and len(valid) == 0:
            valid = None

        progress = {"step": 0, "elapsed": 0.0, "best_valid_nll": None, "bad_validations": 0, "history": []}
        state = None
        if resume:
            progress, state = self.load_last()
        step = progress["step"]
        history = progress["history"]

        def snapshot() -> dict:
            return {**progress, "step": step, "elapsed": elapsed, "history": history}

        def finished() -> str:
            if c.steps is not None and step >= c.steps:
                return f"reached {c.steps} steps"
            if time_up:
                return f"reached the time budget of {c.time_budget:g} s"
            return ""

        main = self.rank == 0
        if main and c.progress and self.device.type == "cpu" and (notice := busy_cpu_notice()):
            print(notice, file=sys.stderr)
        bar = tqdm(
            total=c.steps if c.steps is not None else int(c.time_budget),
            unit="step" if c.steps is not None else "s",
            initial=0,
            dynamic_ncols=True,
            disable=not (c.progress and main),
            file=sys.stderr,
            mininterval=1.0,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )
        previous_handler = None
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        start, elapsed, loss_ema, chars = time.perf_counter(), progress["elapsed"], None, 0
        start_elapsed = elapsed
        stopped, time_up = "", self._out_of_time(elapsed)
        try:
            model.train()
            while not (stopped := finished()):
                lr = self.learning_rate(step, elapsed)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                batch, epoch_start = stream.window(step)
                batch = batch[rows].to(self.device)
                if epoch_start:
                    state = None
                torch.manual_seed(c.seed * 1_000_003 + step * 7_919 + self.rank)  # dropout masks
                params, state = net(batch[:, :-1], state)
                target = batch[:, 1:, 0] if batch.dim() == 3 else batch[:, 1:]  # covariates are inputs only
                loss = masked_nll(model.head, params, target)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.clip if c.clip > 0 else math.inf)
                loss_value = float(loss.detach())
                if not (math.isfinite(loss_value) and math.isfinite(float(grad_norm))):
                    raise TrainingDiverged(self._divergence_message(step + 1, loss_value, float(grad_norm), progress))
                self.optimizer.step()
                state = _map_state(state, torch.Tensor.detach)
                step += 1
                chars += batch.shape[0] * (batch.shape[1] - 1) * self.world
                elapsed = start_elapsed + (time.perf_counter() - start)
                loss_ema = loss_value if loss_ema is None else 0.95 * loss_ema + 0.05 * loss_value
                if on_step is not None:
                    on_step(self, step, loss_value)
                time_up = self._out_of_time(elapsed)
                if self.world > 1:  # every process must take the same decisions
                    flags = torch.tensor([float(time_up), float(self._stop_requested)], device=self.device)
                    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                    time_up, self._stop_requested = bool(flags[0]), bool(flags[1])

                last_step = c.steps is not None and step >= c.steps
                if step % c.eval_every == 0 or last_step or self._stop_requested or time_up:
                    self._check_finite(step, progress)
                    record = {"step": step, "elapsed": round(elapsed, 2), "train_nll": loss_ema, "lr": lr}
                    if valid is not None:
                        record["valid_nll"] = self.validation_nll(valid, c.eval_chars)
                        record["valid_bits_per_element"] = record["valid_nll"] / LN2
                        model.train()
                    history.append(record)
                    progress["step"], progress["elapsed"] = step, elapsed
                    valid_nll, best = record.get("valid_nll"), progress["best_valid_nll"]
                    improved = valid is None or (  # NaN and inf are never better
                        math.isfinite(valid_nll) and (best is None or valid_nll < best)
                    )
                    if improved:
                        progress["best_valid_nll"] = record.get("valid_nll")
                        progress["bad_validations"] = 0
                        self.save_best(snapshot())
                    else:
                        progress["bad_validations"] += 1
                    self.save_last(snapshot(), state)
                    if c.patience and progress["bad_validations"] >= c.patience:
                        stopped = f"early stopping: no improvement in {c.patience} validations"
                        break
                if self._stop_requested:
                    stopped = "interrupted"
                    break
                self._update_bar(bar, step, elapsed, loss_ema, history, chars / max(elapsed - start_elapsed, 1e-9))
        finally:
            bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        if stopped != "interrupted" and step > 0 and (not history or history[-1]["step"] != step):
            # Reached the budget between validations: record and save the final state too.
            self._check_finite(step, progress)
            self.save_last(snapshot(), state)
        if self.out is None and valid is not None and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        return TrainingResult(
            step, elapsed, progress["best_valid_nll"], history, stopped, chars / max(elapsed - start_elapsed, 1e-9)
        )

    def _check_finite(self, step: int, progress: dict) -> None:
        """Before a checkpoint: stop if the weights hold NaN or inf, keeping the last finite checkpoint."""
        if (name := nonfinite_parameter(self.model)) is not None:
            raise TrainingDiverged(self._divergence_message(step, math.nan, math.nan, progress, name))

    def _divergence_message(
        self, step: int, loss: float, grad_norm: float, progress: dict, parameter: str | None = None
    ) -> str:
        if parameter is not None:
            what = f"parameter {parameter} became NaN or infinite"
        else:
            what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
        last = self.out / LAST_DIR if self.out is not None else None
        kept = (
            f"the last good checkpoint (step {progress['step']}) is kept in {last}"
            if last is not None and last.exists()
            else "no checkpoint had been written yet"
        )
        return f"training stopped at step {step}: {what}; {kept}; try a lower --lr"

    def _out_of_time(self, elapsed: float) -> bool:
        return self.config.time_budget is not None and elapsed >= self.config.time_budget

    def _on_sigint(self, signum, frame) -> None:
        if self._stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_requested = True
        if self.rank == 0:
            print(
                "\nseqlab: interrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
                file=sys.stderr,
            )

    def _update_bar(self, bar, step, elapsed, loss_ema, history, rate) -> None:
        if bar.disable:
            return
        postfix = {"step": step, "loss": f"{loss_ema:.3f}", "chars/s": f"{rate:,.0f}"}
        if history and "valid_bits_per_element" in history[-1]:
            postfix["valid bits"] = f"{history[-1]['valid_bits_per_element']:.3f}"
        bar.set_postfix(postfix, refresh=False)
        position = step if self.config.steps is not None else min(int(elapsed), bar.total)
        bar.update(position - bar.n)  # tqdm redraws at most once per mininterval
