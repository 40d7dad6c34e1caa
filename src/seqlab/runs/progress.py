"""What a person sees while a model trains, kept out of the (silent) ``Trainer``: the progress bar (a Trainer
callback), a notice when the CPU is already busy, and Ctrl-C that asks the Trainer to stop at the next step.
All of it on stderr (the results go to stdout), and only from the main process under torchrun.

``seqlab train`` watches its one Trainer (``shown``, ``ctrl_c_stops``). A command that fits models in turn
(``compare``, ``backtest``, the experiments) wraps each fit in ``fitting``, which yields the callbacks to hand to
``fit``: a bar per Trainer, and Ctrl-C stopping the fit under way (the command goes on with what it trained)::

    with progress.fitting("characters", enabled) as callbacks:
        model.fit(train, valid, callbacks=callbacks, steps=...)
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from tqdm import tqdm

from seqlab.training import Callback, Progress, Trainer, TrainerConfig


class TrainingBar:
    """A tqdm bar over the step budget (or the time budget, in seconds) with the loss, the throughput in the
    data's own elements (``characters``, ``samples``, ``values``...) and the last validation in bits."""

    def __init__(self, config: TrainerConfig, elements: str, enabled: bool = True) -> None:
        self.config, self.elements, self.enabled = config, elements, enabled
        self.by_steps = config.steps is not None
        self.bar: tqdm | None = None  # drawn at the first step: a run refused before it shows no bar

    def __call__(self, trainer: Trainer, progress: Progress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(
                total=self.config.steps if self.by_steps else math.ceil(self.config.time_budget),  # 0.5 s: 0/1
                unit="step" if self.by_steps else "s",
                dynamic_ncols=True,
                file=sys.stderr,
                mininterval=1.0,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
            )
        postfix = {"step": progress.step, "loss": f"{progress.loss_ema:.3f}"}
        postfix[f"{self.elements}/s"] = f"{progress.elements_per_second:,.0f}"
        if progress.history and "valid_bits_per_element" in progress.history[-1]:
            postfix["valid bits"] = f"{progress.history[-1]['valid_bits_per_element']:.3f}"
        self.bar.set_postfix(postfix, refresh=False)
        position = progress.step if self.by_steps else min(int(progress.elapsed), self.bar.total)
        self.bar.update(position - self.bar.n)  # tqdm redraws at most once per mininterval

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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


def notice_if_busy(trainer: Trainer) -> None:
    if trainer.device.type == "cpu" and (notice := busy_cpu_notice()):
        print(notice, file=sys.stderr)


@contextlib.contextmanager
def shown(trainer: Trainer, elements: str, enabled: bool) -> Iterator[TrainingBar]:
    """The bar as a callback of ``trainer`` for the block (and the busy-CPU notice first, on the CPU)."""
    if enabled:
        notice_if_busy(trainer)
    bar = TrainingBar(trainer.config, elements, enabled)
    trainer.callbacks.append(bar)
    try:
        yield bar
    finally:
        trainer.callbacks.remove(bar)
        bar.close()


class Stoppable(Protocol):
    """What Ctrl-C asks to stop: a ``Trainer``, or the fits of a ``fitting`` block (``FitWatch``)."""

    stop_requested: bool

    def request_stop(self) -> None: ...


CHECKPOINT_AND_RETURN = "finishing this step and saving a checkpoint"


@contextlib.contextmanager
def ctrl_c_stops(target: Stoppable, main: bool = True, doing: str = CHECKPOINT_AND_RETURN) -> Iterator[None]:
    """For the block, the first Ctrl-C asks ``target`` to stop (a Trainer: finish its step, save a checkpoint and
    return; ``doing`` says so on stderr from the ``main`` process); a second one raises ``KeyboardInterrupt``.
    Signals reach the main thread only: elsewhere nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame) -> None:
        if target.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        target.request_stop()
        if main:
            print(f"\nseqlab: interrupt: {doing} (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class FitWatch:
    """The one callback of a ``fitting`` block, for every Trainer that runs in it (one model, or several in
    turn): a bar per Trainer, drawn at its first step (the busy-CPU notice before it), and
    the Trainer under way as the one Ctrl-C stops. A Ctrl-C before the first step stops the next Trainer after
    its first; one that no Trainer took (none ran after it) aborts when the block ends."""

    def __init__(self, elements: str, enabled: bool) -> None:
        self.elements, self.enabled = elements, enabled
        self.trainer: Trainer | None = None  # the last Trainer seen
        self.bar: TrainingBar | None = None
        self.stop_requested = False
        self.taken = False  # whether a Trainer was asked to stop

    def __call__(self, trainer: Trainer, progress: Progress) -> None:
        if trainer is not self.trainer:
            self.close()
            self.trainer, self.bar = trainer, TrainingBar(trainer.config, self.elements, self.enabled)
            if self.enabled:
                notice_if_busy(trainer)
            if self.stop_requested:
                trainer.request_stop()
                self.taken = True
        self.bar(trainer, progress)

    def request_stop(self) -> None:
        self.stop_requested = True
        if self.trainer is not None:
            self.trainer.request_stop()
            self.taken = True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def fitting(elements: str, enabled: bool) -> Iterator[list[Callback]]:
    """The callbacks to hand to the fits of the block (``fit(..., callbacks=...)``): a bar per Trainer when
    ``enabled``, and, whether or not, Ctrl-C stopping the Trainer under way after its current step (the fit
    returns what it trained; ``training_result.stopped_because`` is ``"interrupted"``); a second Ctrl-C aborts."""
    watch = FitWatch(elements, enabled)
    try:
        with ctrl_c_stops(watch, doing="stopping this model's training after its current step"):
            yield [watch]
    finally:
        watch.close()
    if watch.stop_requested and not watch.taken:  # nothing trained after the Ctrl-C: never swallow it
        raise KeyboardInterrupt


@contextlib.contextmanager
def analysing(source: str, enabled: bool) -> Iterator[Callable[[float, float], None] | None]:
    """``progress(seconds analysed, seconds in all)`` for ``load_dataset``: a bar over the audio's seconds while the
    vocoder analyses a long file (drawn from its first update; none for text, series or a cached analysis)."""
    if not enabled:
        yield None
        return
    bar: list[tqdm] = []

    def update(done: float, total: float) -> None:
        if not bar:
            bar.append(tqdm(total=round(total), desc=f"analysing {source}", unit="s of audio", leave=False))
        bar[0].update(round(done) - bar[0].n)

    try:
        yield update
    finally:
        if bar:
            bar[0].close()
