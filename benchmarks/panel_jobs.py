"""How much ``--jobs`` speeds up ``seqlab backtest --holdout`` on a panel: the same command with 1 and with N
processes, alternately (1, N, 1, N, ...: a load that drifts hits both), each run's wall seconds, the CPU seconds of
its processes and the machine's load average before it; the per-series tables of every run must be identical.

The panel is synthetic (so any machine can run it): monthly series of 48 to 126 values (M3 monthly's range) with a
level, a trend, a season whose size grows with the level, and noise, all positive.

    OMP_NUM_THREADS=1 python benchmarks/panel_jobs.py --series 300 --jobs 2 --repeats 2   # docs/panels.md
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_panel(path: Path, series: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w") as f:
        f.write("unique_id,ds,y\n")
        for i in range(series):
            n = int(rng.integers(48, 127))
            t = np.arange(n)
            level = 1000 * np.exp(rng.normal(0, 1)) * (1 + rng.normal(0.002, 0.004) * t)
            season = 1 + rng.uniform(0, 0.3) * np.sin(2 * np.pi * (t + rng.integers(12)) / 12)
            y = np.maximum(level * season * (1 + rng.normal(0, 0.05, n).cumsum() / 5), 1.0)
            dates = np.datetime64("2000-01") + t
            f.write("".join(f"s{i},{d}-01,{v:.3f}\n" for d, v in zip(dates.astype(str), y, strict=True)))


def run(data: Path, out: Path, jobs: int, models: str, horizon: int) -> tuple[float, float]:
    """Wall and CPU seconds (the command's processes, children included) of one backtest."""
    command = [sys.executable, "-m", "seqlab", "backtest", "--data", str(data), "--id-column", "unique_id"]
    command += ["--holdout", "--horizon", str(horizon), "--season", "12", "--models", models, "--jobs", str(jobs)]
    command += ["--out", str(out), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=os.environ | {"OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (1 job, then --jobs)")
    parser.add_argument("--models", default="naive,seasonal_naive,ets")
    parser.add_argument("--horizon", type=int, default=18)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; {args.series} series; models {args.models}; horizon {args.horizon}")
    times: dict[int, list[float]] = {1: [], args.jobs: []}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "panel.csv"
        write_panel(data, args.series)
        tables = []
        print("| run | jobs | load average before (1 min) | wall s | CPU s, all processes |")
        print("|---:|---:|---:|---:|---:|")
        for k in range(args.repeats):
            for jobs in (1, args.jobs):
                load = os.getloadavg()[0]
                out = Path(folder) / f"run{k}_{jobs}"
                wall, cpu = run(data, out, jobs, args.models, args.horizon)
                times[jobs].append(wall)
                tables.append(_without_seconds((out / "panel_series.csv").read_text()))
                print(f"| {k + 1} | {jobs} | {load:.2f} | {wall:.1f} | {cpu:.1f} |", flush=True)
    same = all(t == tables[0] for t in tables)
    ratio = np.median(times[1]) / np.median(times[args.jobs])
    print(f"\nspeed-up, median wall of 1 job / median wall of {args.jobs}: {ratio:.2f}x; "
          f"per-series tables identical across runs: {same}")  # fmt: skip
    if not same:
        raise SystemExit("the runs' per-series tables differ")


def _without_seconds(table: str) -> list[list[str]]:
    """The per-series CSV without its ``seconds`` column (the only one that may differ between runs)."""
    rows = list(csv.reader(io.StringIO(table)))
    drop = rows[0].index("seconds")
    return [[c for k, c in enumerate(row) if k != drop] for row in rows]


if __name__ == "__main__":
    main()
