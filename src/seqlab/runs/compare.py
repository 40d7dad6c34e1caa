"""``compare``: fit every family that applies to a text on one train/validation split, and rank them
by validation NLL per character: what each model's memory of the past buys."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlab.data.dataset import ELEMENT_NAMES
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models.infinigram import InfiniGram
from seqlab.plots import compare_chart
from seqlab.runs.contenders import Contender, contenders, fit_contender
from seqlab.runs.progress import fitting
from seqlab.runs.report import Column, markdown_table, write_report

SAMPLE_LENGTH = 80
SPEED_LENGTH = 300


def evaluate_contender(
    contender: Contender,
    train: torch.Tensor,
    valid: torch.Tensor,
    budget: float,
    seed: int,
    progress: bool,
    log: Callable[[str], None],
) -> dict:
    """Fit ``contender`` (a neural one with a bar when ``progress``; Ctrl-C ends its training early), then score
    it on ``valid`` and time its sampling."""
    start = time.perf_counter()
    watched = fitting(ELEMENT_NAMES["text"], progress) if contender.neural else contextlib.nullcontext(())
    with watched as callbacks:
        model = fit_contender(contender, train, seed, budget=budget, callbacks=callbacks)
    fit_seconds = time.perf_counter() - start
    if contender.neural and (record := model.training_result).stopped_because == "interrupted":
        log(f"seqlab compare: {contender.name}: training interrupted at step {record.steps}, ranked as it stands")
    if contender.neural:
        params = sum(p.numel() for p in model.parameters())
    else:
        # what it stores: distinct n-grams, or the indexed training symbols
        params = len(model.text) if isinstance(model, InfiniGram) else sum(len(level.grams) for level in model.levels)
    scores = likelihood_scores(model.log_prob(valid))
    start = time.perf_counter()
    sample = model.sample("", SPEED_LENGTH, temperature=0.8, seed=seed)
    sample_rate = SPEED_LENGTH / (time.perf_counter() - start)
    return {
        "model": contender.name,
        "conditions_on": contender.conditions_on,
        "nll_nats": scores["nll_nats"],
        "bits_per_char": scores["bits_per_char"],
        "params": params,
        "fit_seconds": fit_seconds,
        "sample_chars_per_second": sample_rate,
        "sample": sample[:SAMPLE_LENGTH],
    }


def compare(
    train_text: str,
    valid_text: str,
    budget: float = 60.0,
    seed: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> list[dict]:
    vocabulary = Vocabulary.from_text(train_text)
    train = vocabulary.encode(train_text, source="training part")
    valid = vocabulary.encode(valid_text, unknown="map", source="validation part")
    results = []
    for contender in contenders(vocabulary):
        log(f"seqlab compare: {contender.name}" + (f" ({budget:g} s of training)" if contender.neural else ""))
        results.append(evaluate_contender(contender, train, valid, budget, seed, progress, log))
    return sorted(results, key=lambda r: r["nll_nats"])


COLUMNS = [
    Column("model", "model"),
    Column("conditions_on", "conditions on"),
    Column("nll_nats", "validation NLL (nats/char)", "{:.4f}"),
    Column("bits_per_char", "bits/char", "{:.3f}"),
    Column("params", "parameters (or stored n-grams)", "{:,}"),
    Column("fit_seconds", "fit s", "{:.1f}"),
    Column("sample_chars_per_second", "sampling chars/s", "{:,.0f}"),
    Column("sample", "sample", "`{}`"),
]


@dataclass
class CompareSpec:
    data: DataSpec
    budget: float = 60.0  # seconds of training per neural model
    out: Path = Path("runs/compare")
    seed: int = 0
    progress: bool = True


@dataclass
class CompareResult:
    title: str
    meta: dict  # the data record
    results: list[dict]  # rows, best first
    table: str  # Markdown
    written: list[Path]


def run_compare(spec: CompareSpec, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> CompareResult:
    if spec.data.kind != "text":  # by the file's name, before reading it (audio: a WORLD analysis)
        raise SeqlabError(
            f"{spec.data.source}: {spec.data.kind} data; this command ranks text models (series: backtest)"
        )
    dataset = load_dataset(spec.data)
    if not dataset.valid:
        raise SeqlabError(f"{spec.data.source}: no validation part to compare on")
    meta = dataset.meta
    results = compare(dataset.train, dataset.valid, spec.budget, spec.seed, spec.progress, log)
    title = (
        f"{meta['data']}: {meta['train_chars']:,} training / {meta['valid_chars']:,} validation characters, "
        f"{spec.budget:g} s per neural model"
    )
    record = {"data": meta, "results": results}
    written = write_report(spec.out, "compare", results, record, title, COLUMNS)
    written.append(Path(spec.out) / "compare.png")
    compare_chart(results, written[-1], title)
    return CompareResult(title, meta, results, markdown_table(results, COLUMNS), written)
