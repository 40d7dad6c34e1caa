"""What a person sees while a model trains, kept out of the (silent) ``Trainer``: the progress bar (a Trainer
callback), a notice when the CPU is already busy, and Ctrl-C that asks the Trainer to stop at the next step.
All of it on stderr (the results go to stdout), and only from the main process under torchrun."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

import torch
from tqdm import tqdm

from seqlab.training import Progress, Trainer, TrainerConfig


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
                total=self.config.steps if self.by_steps else int(self.config.time_budget),
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


@contextlib.contextmanager
def shown(trainer: Trainer, elements: str, enabled: bool) -> Iterator[TrainingBar]:
    """The bar as a callback of ``trainer`` for the block (and the busy-CPU notice first, on the CPU)."""
    if enabled and trainer.device.type == "cpu" and (notice := busy_cpu_notice()):
        print(notice, file=sys.stderr)
    bar = TrainingBar(trainer.config, elements, enabled)
    trainer.callbacks.append(bar)
    try:
        yield bar
    finally:
        trainer.callbacks.remove(bar)
        bar.close()


@contextlib.contextmanager
def ctrl_c_stops(trainer: Trainer, main: bool = True) -> Iterator[None]:
    """For the block, the first Ctrl-C asks ``trainer`` to finish its step, save a checkpoint and return; a second
    one raises ``KeyboardInterrupt``. Signals reach the main thread only: elsewhere nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame) -> None:
        if trainer.stop_requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        trainer.request_stop()
        if main:
            print(
                "\nseqlab: interrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
                file=sys.stderr,
            )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
