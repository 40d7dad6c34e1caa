"""Figures (matplotlib, drawn off-screen): forecast fan charts, backtest and compare bars, spectrograms.
The experiments' figures are in ``seqlab.experiments.figures``."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from seqlab.atomic import replace_into


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` atomically (``seqlab.atomic.replace_into``: a temporary file renamed over it, so
    a reader or an interrupted run never leaves half a PNG; a device or "-" is streamed into), in the format its
    suffix names (PNG without one), then close it."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        replace_into(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
    finally:
        pyplot().close(fig)


def fan_chart(
    history: np.ndarray, samples: np.ndarray, path: str | Path, title: str, dates: np.ndarray | None = None
) -> None:
    """The last values of ``history``, then the median of ``samples (S, h)`` with its 50% and 80% bands."""
    plt = pyplot()
    n, h = len(history), samples.shape[1]
    x_hist = np.arange(-n + 1, 1)
    x_future = np.arange(0, h + 1)
    last = np.full((samples.shape[0], 1), history[-1])
    paths = np.concatenate([last, samples], axis=1)  # start every band at the last observed value
    q10, q25, q50, q75, q90 = np.quantile(paths, [0.1, 0.25, 0.5, 0.75, 0.9], axis=0)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x_hist, history, color="black", lw=1, label="history")
    ax.fill_between(x_future, q10, q90, color="#4c72b0", alpha=0.25, lw=0, label="80% interval")
    ax.fill_between(x_future, q25, q75, color="#4c72b0", alpha=0.45, lw=0, label="50% interval")
    ax.plot(x_future, q50, color="#1f3b73", lw=1.5, label="median")
    end = f" (last date {str(dates[-1])[:10]})" if dates is not None and len(dates) else ""
    ax.set_xlabel(f"steps from the last observation{end}")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save(fig, path)


def backtest_chart(rows: list[dict], path: str | Path, title: str) -> None:
    """CRPS and 80%-interval coverage per model, side by side."""
    plt = pyplot()
    names = [r["model"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.45 * len(rows) + 1.6))
    a.barh(names[::-1], [r["crps"] for r in rows][::-1], color="#4c72b0")
    a.set_xlabel("CRPS (lower is better)")
    b.barh(names[::-1], [r["coverage_80"] for r in rows][::-1], color="#55a868")
    b.axvline(0.8, color="black", ls="--", lw=1)
    b.set_xlim(0, 1)
    b.set_xlabel("share of values inside the 80% interval (target 0.8)")
    b.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)


def compare_chart(results: list[dict], path: Path, title: str) -> None:
    """Validation bits per character per model, best at the top (``seqlab compare``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(results) + 1.2))
    names = [r["model"] for r in results][::-1]
    bits = [r["bits_per_char"] for r in results][::-1]
    ax.barh(names, bits, color="#4c72b0")
    for y, b in enumerate(bits):
        ax.text(b, y, f" {b:.3f}", va="center", fontsize=8)
    ax.set_xlabel("validation bits per character (lower is better)")
    ax.set_xlim(0, max(bits) * 1.15 if all(map(math.isfinite, bits)) else None)
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    fig.tight_layout()
    save(fig, path)


def spectrograms(real: np.ndarray, generated: np.ndarray, rate: int, path: str | Path) -> None:
    """Log-power spectrograms of real and generated audio, one above the other, on the same colour scale."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for ax, audio, name in ((axes[0], real, "real"), (axes[1], generated, "generated")):
        ax.specgram(audio, NFFT=512, Fs=rate, noverlap=384, cmap="magma", vmin=-120, vmax=-20)
        ax.set_ylabel("Hz")
        ax.set_title(f"{name}: {len(audio) / rate:.2f} s", fontsize=9)
    axes[1].set_xlabel("seconds")
    fig.tight_layout()
    save(fig, path)


# -- seqlab experiment ----------------------------------------------------------------------------------

CELL_COLOURS = {"rnn": "#c44e52", "lstm": "#4c72b0", "gru": "#55a868"}
