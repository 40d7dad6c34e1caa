"""Short monthly series (issue 12): does any seqlab model, with default options, score worse than the random walk?

The data: ``tests/data/monthly.csv``, long form (Date, Ticker, Close), 4 synthetic stocks x 100 months whose log
returns have a drift, Student-t(5) noise and a slowly varying volatility (GARCH(1,1)); written by
``monthly_prices`` with ``--write`` (seed 0). Each series is backtested on its own (``seqlab.runs.backtest``,
default options; the last 20 months held out), and the paired one-step NLL difference against the random walk
is pooled over the series (80 held-out months): the target is <= 0.05 nats per month for every model.

    OMP_NUM_THREADS=1 python benchmarks/short_series.py                  # the committed file
    OMP_NUM_THREADS=1 python benchmarks/short_series.py --seeds 0 1 2    # more synthetic draws (not committed)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from seqlab.data.spec import DataSpec
from seqlab.runs.backtest import BacktestSpec, run_backtest

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "monthly.csv"
MODELS = ("random_walk", "linear_ar", "garch-t", "neural_ar", "rnn", "lstm", "gru")


def monthly_prices(path: Path, series: int = 4, months: int = 100, seed: int = 0) -> None:
    """Write the long-form CSV described in the module docstring."""
    rng = np.random.default_rng(seed)
    lines = ["Date,Ticker,Close"]
    for i in range(series):
        s2, log_price = 0.06**2, np.log(20 + 10 * i)
        for m in range(months):
            r = 0.008 + np.sqrt(s2) * rng.standard_t(5) / np.sqrt(5 / 3)
            s2 = 0.0003 + 0.1 * r**2 + 0.8 * s2
            log_price += r
            lines.append(f"{2010 + m // 12}-{m % 12 + 1:02d}-01,S{i},{np.exp(log_price):.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def paired_differences(path: Path, models=MODELS, series=("S0", "S1", "S2", "S3")) -> dict[str, list[float]]:
    """Per model, the mean one-step NLL difference against the random walk on each series' held-out part."""
    differences = {m: [] for m in models}
    for name in series:
        spec = BacktestSpec(DataSpec(str(path), id_column="Ticker"), series=name, models=models, folds=2)
        spec.samples, spec.progress, spec.reference = 20, False, "random_walk"
        for row in run_backtest(spec, say=lambda m: None).record["results"]:
            differences[row["model"].split()[0]].append(row["d_nll"])
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", help="synthetic draws instead of the committed file")
    parser.add_argument("--write", action="store_true", help="(re)write tests/data/monthly.csv (seed 0)")
    args = parser.parse_args()
    if args.write:
        monthly_prices(DATA)
    t0 = time.perf_counter()
    pooled = {m: [] for m in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds if args.seeds else [None]:
            path = DATA if seed is None else Path(tmp) / f"monthly{seed}.csv"
            if seed is not None:
                monthly_prices(path, seed=seed)
            for m, d in paired_differences(path).items():
                pooled[m] += d
    print(
        f"| model | mean dNLL vs random walk (nats/month) | worst series | series |  ({time.perf_counter() - t0:.0f} s)"
    )
    print("|---|---:|---:|---:|")
    for m, d in pooled.items():
        print(f"| {m} | {np.mean(d):+.3f} | {np.max(d):+.3f} | {len(d)} |")


if __name__ == "__main__":
    main()
