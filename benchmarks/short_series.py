"""Short monthly series: does any seqlab model, with default options, score worse than the random walk (issue
12), and is the pool of them close to the best single model chosen after the fact (issue 25)?

The data, long form (Date, Ticker, Close):

- ``tests/data/monthly.csv``: 4 synthetic stocks x 100 months whose log returns have a drift, Student-t(5) noise
  and a slowly varying volatility (GARCH(1,1)); written by ``monthly_prices`` with ``--write`` (seed 0);
- ``tests/data/msft_monthly.csv``: the bundled MSFT daily closes taken to month ends (the last trading day of
  each month, 1987-11 to 2017-10) and cut into 3 series of 120 months (M1, M2, M3); written by
  ``msft_monthly`` with ``--write``.

Each series is backtested on its own (``seqlab.runs.backtest``, default options; the last 20% held out). Issue
12's table: the paired one-step NLL difference against the random walk, pooled over the series (the target:
<= 0.05 nats per month for every model). With ``--pool``, the pool of the other models is backtested beside
them and one row per series compares it with the best single model chosen after the fact and with the random
walk (the targets: within 0.02 nats per month of the first, never more than 0.02 behind the second).

    OMP_NUM_THREADS=1 python benchmarks/short_series.py                       # tests/data/monthly.csv
    OMP_NUM_THREADS=1 python benchmarks/short_series.py --seeds 0 1 2         # more synthetic draws (not committed)
    OMP_NUM_THREADS=1 python benchmarks/short_series.py --panel --pool        # both committed files, with the pool
    OMP_NUM_THREADS=1 python benchmarks/short_series.py --panel --pool --pool-prior 5   # its weights pulled to equal
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from seqlab.data.spec import DataSpec
from seqlab.models.pool import PRIOR
from seqlab.runs.backtest import BacktestSpec, run_backtest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "monthly.csv"
MSFT_MONTHLY = ROOT / "tests" / "data" / "msft_monthly.csv"
MSFT_DAILY = ROOT / "src" / "seqlab" / "data" / "bundled" / "msft.csv"
MODELS = ("random_walk", "linear_ar", "garch-t", "neural_ar", "rnn", "lstm", "gru")
SYNTHETIC_SERIES, MSFT_SERIES = ("S0", "S1", "S2", "S3"), ("M1", "M2", "M3")


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


def msft_monthly(path: Path, series: int = 3, months: int = 120) -> None:
    """Write the month-end closes of the bundled MSFT daily file, the last ``series x months`` complete months
    (the last month of the file, cut short, is left out), as ``series`` consecutive series M1, M2, ..."""
    rows = [line.split(",") for line in MSFT_DAILY.read_text(encoding="utf-8").splitlines()[1:]]
    month_end = {}
    for row in rows:  # the file is in date order: the last row of a month is its close
        month_end[row[0][:7]] = (row[0], row[4])
    closes = list(month_end.values())[:-1][-series * months :]
    lines = ["Date,Ticker,Close"]
    for i, (date, close) in enumerate(closes):
        lines.append(f"{date},M{i // months + 1},{close}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def backtest_rows(path: Path, name: str, models=MODELS, prior: float = PRIOR) -> dict[str, dict]:
    """model -> its backtest row on series ``name`` of ``path`` (paired column against the random walk)."""
    data = DataSpec(str(path), id_column="Ticker")
    spec = BacktestSpec(data, series=name, models=models, folds=2, pool_prior=prior)
    spec.samples, spec.progress, spec.reference = 20, False, "random_walk"
    return {row["model"].split()[0]: row for row in run_backtest(spec, say=lambda m: None).record["results"]}


def paired_differences(path: Path, models=MODELS, series=SYNTHETIC_SERIES) -> dict[str, list[float]]:
    """Per model, the mean one-step NLL difference against the random walk on each series' held-out part."""
    differences = {m: [] for m in models}
    for name in series:
        for model, row in backtest_rows(path, name, models).items():
            differences[model].append(row["d_nll"])
    return differences


def pool_rows(panel: list[tuple[Path, str]], prior: float = PRIOR) -> list[str]:
    """One Markdown row per series: the best single model after the fact, the pool against it and against the
    random walk (nats per month; negative: the pool is better), the pool's weights at the training cut."""
    out = []
    for path, name in panel:
        rows = backtest_rows(path, name, (*MODELS, "pool"), prior)
        singles = {m: r["nll"] for m, r in rows.items() if m != "pool"}
        best = min(singles, key=singles.get)
        pool = rows["pool"]
        weights = ", ".join(f"{m} {w:.2f}" for m, w in pool["pool"][0]["weights"].items() if w >= 0.005)
        behind_best, behind_walk = pool["nll"] - singles[best], pool["d_nll"]
        met = "yes" if behind_best <= 0.02 and behind_walk <= 0.02 else "**no**"
        out.append(
            f"| {path.stem} {name} | {best} | {singles[best]:+.3f} | {pool['nll']:+.3f} | {behind_best:+.3f} | "
            f"{behind_walk:+.3f} ({pool['d_nll_se']:.3f}) | {met} | {weights} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", help="synthetic draws instead of the committed file")
    parser.add_argument("--write", action="store_true", help="(re)write both committed files")
    parser.add_argument("--panel", action="store_true", help="both committed files (7 series), not only monthly.csv")
    parser.add_argument("--pool", action="store_true", help="also the pool against the best single model")
    parser.add_argument("--pool-prior", type=float, default=PRIOR, help="the pool's Dirichlet prior (seqlab's default)")
    args = parser.parse_args()
    if args.write:
        monthly_prices(DATA)
        msft_monthly(MSFT_MONTHLY)
    t0 = time.perf_counter()
    if args.pool:
        panel = [(DATA, s) for s in SYNTHETIC_SERIES] + ([(MSFT_MONTHLY, s) for s in MSFT_SERIES] if args.panel else [])
        print(
            "| series | best single (after the fact) | its NLL | pool NLL | pool - best | pool - random walk (s.e.) | "
            "target met | weights at the cut |"
        )
        print("|---|---|---:|---:|---:|---:|---|---|")
        for line in pool_rows(panel, args.pool_prior):
            print(line, flush=True)
        print(f"({time.perf_counter() - t0:.0f} s)")
        return
    pooled = {m: [] for m in MODELS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds if args.seeds else [None]:
            path = DATA if seed is None else Path(tmp) / f"monthly{seed}.csv"
            if seed is not None:
                monthly_prices(path, seed=seed)
            for m, d in paired_differences(path).items():
                pooled[m] += d
        if args.panel and not args.seeds:
            for m, d in paired_differences(MSFT_MONTHLY, series=MSFT_SERIES).items():
                pooled[m] += d
    print(
        f"| model | mean dNLL vs random walk (nats/month) | worst series | series |  ({time.perf_counter() - t0:.0f} s)"
    )
    print("|---|---:|---:|---:|")
    for m, d in pooled.items():
        print(f"| {m} | {np.mean(d):+.3f} | {np.max(d):+.3f} | {len(d)} |")


if __name__ == "__main__":
    main()
