"""The ``Trainer``, shared by every neural model: AdamW, clipping, truncated BPTT, a learning-rate schedule,
periodic validation, early stopping, step and time budgets, resumable checkpoints, and data parallelism through
``torchrun`` (``seqlab.distributed``).

Data: the training ids are cut into ``batch_size`` contiguous streams; step ``s`` trains on the next ``window``
elements of every stream and carries the recurrent state across consecutive windows (truncated BPTT), resetting it
at each epoch, whose start is shifted by a seeded random offset. Everything a step does is a function of
``(seed, step)`` and the saved state, so a resumed run continues exactly where the interrupted one stopped.

The Trainer is silent: it prints nothing, names no command-line option and never ends the process. What it
reports goes to ``callbacks`` (``callback(trainer, progress)`` after every step; a progress bar is one, written
by the caller); what it keeps goes to a ``Checkpoints`` object (``save_best``, ``save_last``, ``load_last``):
a run directory on disk (``seqlab.runs.run_directory``), or ``BestInMemory`` (the default), which puts the best
validation's weights back into the model when ``fit`` returns. The loop, top to bottom::

    progress, state = Progress(), None             (or the last checkpoint's, on resume)
    while not stopped:
        state = train_step(progress, state)        one optimizer step; progress.step += 1
        callbacks(progress)
        if a validation is due:
            stopped = validate_and_checkpoint(progress, state)    score, save best and last, early stopping
        stopped = stopped or interrupted or budget spent

A checkpoint is good only after a finite validation: a NaN or infinite validation loss stops training like a
NaN loss does (``TrainingDiverged``), before anything is saved, so the last checkpoint kept is always one that
scored finite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from seqlab import distributed
from seqlab.base import LOG_PROB_CHUNK
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import LN2, scores_from_nll

RENAMED_FIELDS = {"eval_chars": "eval_elements"}  # a saved trainer config's older names: it counts any element
RETIRED_FIELDS = ("progress",)  # saved by earlier versions, read and dropped: showing progress is the caller's


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
    eval_elements: int = 30_000  # validation elements scored at each periodic validation
    # the score after training (score_held_out): a held-out part up to this long is scored whole, a longer one on
    # evenly spread blocks with a standard error; None scores all of it
    score_limit: int | None = 250_000
    patience: int = 0  # stop after this many validations without improvement (0: never)
    seed: int = 0

    def validate(self) -> None:
        """Raise ``OptionError`` naming the field (``lr``), never an option of some interface (``--lr``)."""
        if self.steps is None and self.time_budget is None:
            raise OptionError("give a step budget ({0}) or a time budget ({1})", "steps", "time_budget")
        numbers = [f.name for f in fields(self) if f.name != "schedule"]
        for name in numbers:
            value = getattr(self, name)
            if value is not None and not isinstance(value, int) and not math.isfinite(value):
                raise OptionError(f"{{0}} must be a finite number, got {value}", name)
        positive = ["batch_size", "window", "lr", "eval_every", "eval_elements"]
        positive += [n for n in ("steps", "time_budget", "score_limit") if getattr(self, n) is not None]
        for name in positive:
            if getattr(self, name) <= 0:
                raise OptionError(f"{{0}} must be positive, got {getattr(self, name)}", name)
        for name in ("warmup_steps", "weight_decay", "clip", "patience"):
            if getattr(self, name) < 0:
                raise OptionError(f"{{0}} must be non-negative, got {getattr(self, name)}", name)
        if self.schedule not in ("cosine", "constant"):
            raise OptionError(f"{{0}} must be 'cosine' or 'constant', got {self.schedule!r}", "schedule")
        if not 0.0 <= self.min_lr_fraction <= 1.0:
            raise OptionError("{0} must be in [0, 1]", "min_lr_fraction")
        if not 0.0 <= self.beta2 < 1.0:
            raise OptionError("{0} must be in [0, 1)", "beta2")

    @staticmethod
    def upgraded(saved: dict) -> dict:
        """A saved config with the names of earlier versions replaced (``RENAMED_FIELDS``) and their retired
        fields left out (``RETIRED_FIELDS``)."""
        return {RENAMED_FIELDS.get(k, k): v for k, v in saved.items() if k not in RETIRED_FIELDS}

    @classmethod
    def from_json(cls, saved, source: Path) -> TrainerConfig:
        """The settings a checkpoint saved (``trainer_config``), every key and type checked: a damaged or edited
        file is one line naming it, never a ``TypeError`` from the constructor."""
        if not isinstance(saved, dict):
            raise SeqlabError(f"{source}: damaged or unexpected content (trainer_config is not an object)")
        saved = cls.upgraded(saved)
        kinds = {f.name: f.type for f in fields(cls)}
        for name, value in saved.items():
            if name not in kinds:
                raise SeqlabError(f"{source}: damaged or unexpected content (unknown key trainer_config.{name})")
            if not _of_type(value, kinds[name]):
                why = f"trainer_config.{name} is {value!r}, expected {kinds[name]}"
                raise SeqlabError(f"{source}: damaged or unexpected content ({why})")
        config = cls(**saved)
        try:
            config.validate()
        except OptionError as e:
            raise SeqlabError(f"{source}: damaged or unexpected content (trainer_config: {e})") from None
        return config


def _of_type(value, annotation: str) -> bool:
    """``value`` fits a field annotated ``int``, ``float``, ``str``, ``bool`` or ``X | None`` (bool is no number)."""
    options = [a.strip() for a in annotation.split("|")]
    if value is None:
        return "None" in options
    if isinstance(value, bool):
        return "bool" in options
    return any(
        (o == "int" and isinstance(value, int))
        or (o == "float" and isinstance(value, int | float))
        or (o == "str" and isinstance(value, str))
        for o in options
    )


class TrainingDiverged(OptionError):
    """The loss, the gradient, the weights or the validation loss became NaN or infinite; the message names the
    last good checkpoint and the setting to lower (``lr``, which an interface spells its own way)."""

    def __init__(self, step: int, what: str, kept: str) -> None:
        super().__init__(f"training stopped at step {step}: {what}; {kept}; try a lower {{0}}", "lr")


@dataclass
class Progress:
    """Where a run stands. The first five fields are saved with every checkpoint (``to_json``); the rest describe
    this session, for the callbacks."""

    step: int = 0
    elapsed: float = 0.0  # seconds of training, counted across resumes
    best_valid_nll: float | None = None
    bad_validations: int = 0  # validations since the last improvement
    history: list[dict] = field(default_factory=list)  # one record per validation
    loss: float = math.nan  # the last step's training loss
    loss_ema: float | None = None  # its exponential moving average
    lr: float = 0.0  # the last step's learning rate
    elements: int = 0  # elements trained on in this session, over every process
    session_seconds: float = 0.0  # seconds of training in this session

    SAVED = ("step", "elapsed", "best_valid_nll", "bad_validations", "history")

    @property
    def elements_per_second(self) -> float:
        return self.elements / max(self.session_seconds, 1e-9)

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.SAVED}

    @classmethod
    def from_json(cls, saved, source: Path) -> Progress:
        """A saved ``progress`` record, its fields checked: one line naming the file if anything is off."""
        if not isinstance(saved, dict):
            raise SeqlabError(f"{source}: corrupted checkpoint (progress is {type(saved).__name__}, expected a dict)")
        if unknown := sorted(set(saved) - set(cls.SAVED)):
            raise SeqlabError(f"{source}: damaged or unexpected content (unknown key progress.{unknown[0]})")
        kinds = {"step": int, "elapsed": (int, float), "bad_validations": int, "history": list}
        for name, kind in kinds.items():
            value = saved.get(name)
            bad = not isinstance(value, kind) or isinstance(value, bool)
            if bad or (not isinstance(value, list) and not (0 <= value < math.inf)):
                raise SeqlabError(f"{source}: corrupted checkpoint (progress.{name} is {value!r})")
        if not all(isinstance(record, dict) for record in saved["history"]):
            raise SeqlabError(f"{source}: corrupted checkpoint (progress.history holds a non-object)")
        best = saved.get("best_valid_nll")
        if best is not None and (not isinstance(best, int | float) or isinstance(best, bool)):
            raise SeqlabError(f"{source}: corrupted checkpoint (progress.best_valid_nll is {best!r})")
        if best is not None and not math.isfinite(best):
            best = None  # written before NaN stopped counting as an improvement: not a best to beat
        return cls(saved["step"], float(saved["elapsed"]), best, saved["bad_validations"], saved["history"])


@dataclass
class TrainingResult:
    steps: int
    elapsed: float
    best_valid_nll: float | None
    history: list[dict] = field(default_factory=list)
    stopped_because: str = ""
    elements_per_second: float = 0.0  # training throughput of this session (characters, samples, values...)

    @classmethod
    def of(cls, progress: Progress, stopped: str) -> TrainingResult:
        """The record of a finished (or stopped) fit: its ``progress`` and why it stopped."""
        p = progress
        return cls(p.step, p.elapsed, p.best_valid_nll, p.history, stopped, p.elements_per_second)


class Checkpoints(Protocol):
    """Where the Trainer keeps its best model and its resumable state. Called on every process; a
    checkpointer writes from ``trainer.rank == 0`` only."""

    def save_best(self, trainer: Trainer, progress: Progress) -> None: ...

    def save_last(self, trainer: Trainer, progress: Progress, carried: dict[str, torch.Tensor]) -> None:
        """``carried``: the recurrent state of every process, named by ``state_tensors``."""

    def load_last(self, trainer: Trainer) -> tuple[Progress, dict[str, torch.Tensor]]:
        """Load the last checkpoint's weights and optimizer state into ``trainer``; (its progress, carried state)."""

    def kept(self) -> str | None:
        """Where the last checkpoint is kept, for messages; None if there is none."""

    def end(self, trainer: Trainer) -> None:
        """``fit`` returns: e.g. put the best weights back into the model."""


class BestInMemory:
    """Training without a run directory: the best validation's weights, put back into the model at the end."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] | None = None

    def save_best(self, trainer: Trainer, progress: Progress) -> None:
        self.weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def save_last(self, trainer: Trainer, progress: Progress, carried: dict[str, torch.Tensor]) -> None:
        pass

    def load_last(self, trainer: Trainer) -> tuple[Progress, dict[str, torch.Tensor]]:
        raise SeqlabError("nothing to resume: this training keeps no checkpoint")

    def kept(self) -> str | None:
        return None

    def end(self, trainer: Trainer) -> None:
        if self.weights is not None:
            trainer.model.load_state_dict(self.weights)


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
        batch = self.ids[starts[:, None] + torch.arange(self.window_size + 1)]
        # text ids of a token store come as uint8/uint16 views of the memory-mapped file: only the windows
        # drawn are read (and widened), so memory does not grow with the corpus
        return (batch.long() if batch.dtype in SMALL_IDS else batch), w == 0


SMALL_IDS = (torch.uint8, torch.uint16)

# Held-out scores: above ``SCORE_LIMIT`` elements (about a minute for the default LSTM on a shared 2-core CPU),
# ``score_held_out`` scores ``SCORE_BLOCKS`` blocks spread evenly over the held-out part (each after
# ``SCORE_WARMUP`` unscored elements that set up the model's state) and reports their mean with its standard
# error; ``limit=None`` scores everything.
SCORE_LIMIT = TrainerConfig.score_limit  # above the bundled plays' held-out play (122,356): scored whole
SCORE_BLOCKS = 50
SCORE_WARMUP = 512
SCORE_CHUNK = 1 << 18  # elements per pass (a multiple of every model's own log_prob chunk)


def log_prob_chunks(model, ids: torch.Tensor, start: int = 0, stop: int | None = None, warmup: int = 0):
    """``log P(x_s | x_<s)`` for s in [start, stop) of ``ids`` (T,), chunk by chunk (a generator of tensors), in
    memory bounded by the chunk: the ids may be a memory-mapped uint8/uint16 view of a token store.

    A neural model (``forward(x_prev, state)``) carries its state across the chunks, running exactly the passes
    of ``teacher_forced_log_prob``, so the values are those of ``model.log_prob(ids)``; it starts ``warmup``
    elements before ``start`` (fewer if the ids begin sooner) with a fresh state, those not scored. An n-gram model
    is given its ``order`` elements of context before each chunk (the same values again). Any other model
    conditions on the whole history and is scored in one ``log_prob`` from ``start - warmup``."""
    stop = len(ids) if stop is None else stop
    begin = max(0, start - warmup)
    if isinstance(model, torch.nn.Module) and hasattr(model, "target") and hasattr(model, "elements"):
        inner = 4 * model.config.context if hasattr(model.config, "context") else LOG_PROB_CHUNK  # its log_prob's
        first, state = model.elements.start, None
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        try:
            with torch.no_grad():
                for s in range(begin, stop, inner):
                    e = min(s + inner, stop)
                    x = model.encode(ids[s:e]).to(device)
                    if s == 0:
                        x_prev = torch.cat([x.new_full((1, *x.shape[1:]), first), x[:-1]])
                    else:
                        x_prev = torch.cat([model.encode(ids[s - 1 : s]).to(device), x[:-1]])
                    params, state = model(x_prev[None], state)
                    out = -model.head.nll(params[0], model.target(x))
                    yield out[max(0, start - s) :]
        finally:
            model.train(was_training)
        return
    order = getattr(model, "order", None) if getattr(model, "kind", None) == "ngram" else None
    if order is None:
        yield model.log_prob(ids[begin:stop])[start - begin :]
        return
    for s in range(start, stop, SCORE_CHUNK):
        context = max(begin, s - order)
        yield model.log_prob(ids[context : min(s + SCORE_CHUNK, stop)])[s - context :]


def score_held_out(
    model, ids: torch.Tensor, elements: str = "characters", discrete: bool = True, limit: int | None = SCORE_LIMIT
) -> dict:
    """``likelihood_scores`` of ``model`` on the held-out ids, in bounded memory and, by default, bounded time.

    Up to ``limit`` elements (or all, ``limit=None``) are scored whole, in chunks with the state carried: the
    same numbers as ``likelihood_scores(model.log_prob(ids))``. A longer part is sampled: ``SCORE_BLOCKS``
    blocks of ``limit // SCORE_BLOCKS`` elements at evenly spaced positions, each after ``SCORE_WARMUP`` unscored
    elements; the scores are those of the blocks together, with ``nll_standard_error`` (the blocks' spread over
    the square root of their number) and ``sampled_of``, the held-out part's length."""
    n = len(ids)
    if limit is None or n <= limit:
        spans = [(0, n)]
        warmup = 0
    else:
        size = max(1, limit // SCORE_BLOCKS)
        starts = np.linspace(0, n - size, SCORE_BLOCKS).astype(np.int64)
        spans = [(int(a), int(a) + size) for a in starts]
        warmup = SCORE_WARMUP
    sums, counts = [], []
    for a, b in spans:
        total, count = 0.0, 0
        for chunk in log_prob_chunks(model, ids, a, b, warmup):
            chunk = chunk.detach().double()
            chunk = chunk[~torch.isnan(chunk)]  # gaps between joined series: nothing predicted there
            total += float(chunk.sum())
            count += chunk.numel()
        sums.append(total)
        counts.append(count)
    scores = scores_from_nll(-sum(sums) / max(sum(counts), 1), sum(counts), elements, discrete)
    if len(spans) > 1:
        block_nll = -np.array(sums) / np.maximum(counts, 1)
        scores["nll_standard_error"] = float(block_nll.std(ddof=1) / math.sqrt(len(spans)))
        scores["sampled_of"] = n
    return scores


def masked_nll(head, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean NLL over the known targets: in continuous data NaN marks a gap between series, nothing to predict
    (in frames (B, T, D), a frame holding a NaN). The NaNs are replaced before the head sees them, since NaN
    times a zero gradient is still NaN."""
    if not target.is_floating_point():
        return head.nll(params, target).mean()
    known = ~torch.isnan(target)
    nll = head.nll(params, torch.where(known, target, torch.zeros_like(target)))
    if known.dim() > nll.dim():  # frames: one NLL per frame
        known = known.all(-1)
    return torch.where(known, nll, torch.zeros_like(nll)).sum() / known.sum().clamp(min=1)


def nonfinite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first parameter holding NaN or inf, or None: a model that must never be saved."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return name
    return None


def _map_state(state, fn):
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def state_tensors(state) -> dict[str, torch.Tensor]:
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


Callback = Callable[["Trainer", Progress], None]


class Trainer:
    """Trains a model with ``forward(x_prev (B, T), state) -> (params, state)``, a ``head`` and
    ``target(elements)`` (what the head predicts of the elements: ``ElementsModel.target``)."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainerConfig,
        checkpoints: Checkpoints | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        config.validate()
        self.model, self.config = model, config
        self.checkpoints = checkpoints if checkpoints is not None else BestInMemory()
        self.callbacks = list(callbacks)
        self.rank, self.world = distributed.join()
        if config.batch_size % self.world:
            raise OptionError(f"{{0}} {config.batch_size} is not divisible by {self.world} processes", "batch_size")
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
        self.stop_requested = False
        self.last_checkpoint_step: int | None = None  # the step of the last checkpoint saved or resumed
        self._clock = (0.0, 0.0)  # (when this session of fit started, seconds of training before it)
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
        """Finish the current step, save a checkpoint and return (what Ctrl-C does; the caller installs that)."""
        self.stop_requested = True

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, train: torch.Tensor, valid: torch.Tensor | None = None, resume: bool = False) -> TrainingResult:
        c = self.config
        stream = WindowStream(train, c.batch_size, c.window, c.seed)
        net = torch.nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model
        valid = valid if valid is not None and len(valid) else None
        progress, state = self.load_last() if resume else (Progress(), None)
        self._clock = (time.perf_counter(), progress.elapsed)
        self.model.train()
        stopped = self._finished(progress, self._out_of_time(progress.elapsed))
        while not stopped:
            state = self.train_step(net, stream, progress, state)
            for callback in self.callbacks:
                callback(self, progress)
            time_up, self.stop_requested = distributed.agree(  # every process takes the same decisions
                [self._out_of_time(progress.elapsed), self.stop_requested], self.device
            )
            budget_spent = c.steps is not None and progress.step >= c.steps
            if progress.step % c.eval_every == 0 or budget_spent or time_up or self.stop_requested:
                stopped = self.validate_and_checkpoint(progress, valid, state)
            stopped = stopped or ("interrupted" if self.stop_requested else self._finished(progress, time_up))
        if stopped != "interrupted" and progress.step > 0 and self.last_checkpoint_step != progress.step:
            self._check_finite(progress.step)
            self.save_last(progress, state)  # resumed past the budget: the final state is saved too
        self.checkpoints.end(self)
        return TrainingResult.of(progress, stopped)

    def train_step(self, net, stream: WindowStream, progress: Progress, state):
        """One optimizer step on window ``progress.step`` of every stream; the carried state after it."""
        c, model = self.config, self.model
        lr = self.learning_rate(progress.step, progress.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch, epoch_start = stream.window(progress.step)  # (B, T + 1), or (B, T + 1, 1 + covariates)
        B = c.batch_size // self.world
        batch = batch[self.rank * B : (self.rank + 1) * B].to(self.device)  # this process's rows
        if epoch_start:
            state = None
        torch.manual_seed(c.seed * 1_000_003 + progress.step * 7_919 + self.rank)  # dropout masks
        params, state = net(batch[:, :-1], state)  # (B, T, P): the head's parameters for every next element
        target = model.target(batch[:, 1:])  # what the head predicts: covariates are inputs only
        loss = masked_nll(model.head, params, target)
        self.optimise(loss, progress, lr, batch.shape[0] * (batch.shape[1] - 1) * self.world)
        return _map_state(state, torch.Tensor.detach)

    def optimise(self, loss: torch.Tensor, progress: Progress, lr: float, elements: int) -> None:
        """Backward through ``loss``, clip, refuse a non-finite loss or gradient, step, and advance ``progress``
        (``elements``: what the step predicted): the end of every training step, whatever its batches are."""
        c, model = self.config, self.model
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), c.clip if c.clip > 0 else math.inf))
        loss_value = float(loss.detach())
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            bad = ("loss", loss_value) if not math.isfinite(loss_value) else ("gradient norm", grad_norm)
            raise self._diverged(progress.step + 1, f"the {bad[0]} became {bad[1]}")
        self.optimizer.step()
        started, elapsed_before = self._clock
        progress.step += 1
        progress.session_seconds = time.perf_counter() - started
        progress.elapsed = elapsed_before + progress.session_seconds
        progress.elements += elements
        progress.loss, progress.lr = loss_value, lr
        progress.loss_ema = loss_value if progress.loss_ema is None else 0.95 * progress.loss_ema + 0.05 * loss_value

    def validate_and_checkpoint(self, progress: Progress, valid: torch.Tensor | None, state) -> str:
        """Score the model, save it as the best if it improved and always as the last checkpoint; "" or why to
        stop (early stopping). Stops with ``TrainingDiverged`` before saving weights or a validation that are
        not finite."""
        c = self.config
        self._check_finite(progress.step)
        record = {"step": progress.step, "elapsed": round(progress.elapsed, 2), "train_nll": progress.loss_ema}
        record["lr"] = progress.lr
        if valid is not None:
            record["valid_nll"] = self.validation_nll(valid, c.eval_elements)
            record["valid_bits_per_element"] = record["valid_nll"] / LN2
            self.model.train()
            if not math.isfinite(record["valid_nll"]):  # not a good checkpoint: the last good one stays
                raise self._diverged(progress.step, f"the validation loss became {record['valid_nll']}")
        progress.history.append(record)
        best = progress.best_valid_nll
        if valid is None or best is None or record["valid_nll"] < best:
            progress.best_valid_nll = record.get("valid_nll")
            progress.bad_validations = 0
            self.save_best(progress)
        else:
            progress.bad_validations += 1
        self.save_last(progress, state)
        if c.patience and progress.bad_validations >= c.patience:
            return f"early stopping: no improvement in {c.patience} validations"
        return ""

    def validation_nll(self, valid: torch.Tensor, limit: int | None) -> float:
        ids = valid if limit is None else valid[:limit]
        log_probs = self.model.log_prob(ids)
        return float(-log_probs[~torch.isnan(log_probs)].mean())  # NaN: a gap between series

    # -- checkpoints --------------------------------------------------------------------------
    def save_best(self, progress: Progress) -> None:
        self._refuse_nonfinite()
        self.checkpoints.save_best(self, progress)

    def save_last(self, progress: Progress, state) -> None:
        self._refuse_nonfinite()
        gathered = _map_state(state, lambda s: distributed.gather(s, self.state_batch_dim, self.world))
        self.checkpoints.save_last(self, progress, state_tensors(gathered))
        self.last_checkpoint_step = progress.step

    def load_last(self) -> tuple[Progress, object]:
        """The last checkpoint's weights and optimizer state into this trainer; (its progress, this process's state)."""
        progress, carried = self.checkpoints.load_last(self)
        self.last_checkpoint_step = progress.step
        B = self.config.batch_size // self.world

        def this_process(saved: torch.Tensor) -> torch.Tensor:
            # a copy in memory of its own, as a straight run's state is: the tensors read from a file can sit at
            # any offset of it, and a matrix product can round differently on such an operand
            return saved.narrow(self.state_batch_dim, self.rank * B, B).to(self.device, copy=True)

        return progress, _state_from_tensors(carried, this_process)

    def _refuse_nonfinite(self) -> None:
        if (name := nonfinite_parameter(self.model)) is not None:  # never reached through fit(), which stops first
            what = f"refusing to save a model whose parameter {name} holds NaN or inf"
            raise TrainingDiverged(self.last_checkpoint_step or 0, what, "nothing was saved")

    def _check_finite(self, step: int) -> None:
        """Before a checkpoint: stop if the weights hold NaN or inf, keeping the last finite checkpoint."""
        if (name := nonfinite_parameter(self.model)) is not None:
            raise self._diverged(step, f"parameter {name} became NaN or infinite")

    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        where = self.checkpoints.kept()
        kept = (
            f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in {where}"
            if where is not None and self.last_checkpoint_step is not None
            else "no checkpoint had been written yet"
        )
        return TrainingDiverged(step, what, kept)

    # -- budgets ------------------------------------------------------------------------------
    def _finished(self, progress: Progress, time_up: bool) -> str:
        if self.config.steps is not None and progress.step >= self.config.steps:
            return f"reached {self.config.steps} steps"
        if time_up:
            return f"reached the time budget of {self.config.time_budget:g} s"
        return ""

    def _out_of_time(self, elapsed: float) -> bool:
        return self.config.time_budget is not None and elapsed >= self.config.time_budget
