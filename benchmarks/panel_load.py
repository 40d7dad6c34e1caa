"""How fast a panel loads and how much memory it takes: N series of 100 monthly values in a long CSV
(unique_id, ds, y), loaded by ``seqlab.data.panel.load_panel``; time and peak resident memory above the
interpreter's after importing seqlab.

    python benchmarks/panel_load.py --series 100000     # docs/panels.md
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from seqlab.data.panel import load_panel


def write_panel(path: Path, series: int, length: int, seed: int = 0) -> None:
    months = np.arange(np.datetime64("2001-01"), np.datetime64("2001-01") + length).astype("datetime64[D]").astype(str)
    rng = np.random.default_rng(seed)
    with path.open("w") as f:
        f.write("unique_id,ds,y\n")
        for i in range(series):
            values = np.round(100 + rng.normal(size=length).cumsum(), 3)
            f.write("".join(f"s{i},{d},{v}\n" for d, v in zip(months, values, strict=True)))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "panel.csv"
        write_panel(path, args.series, args.length)
        before = peak_mb()  # the generator above stays under the import's footprint
        start = time.perf_counter()
        panel = load_panel(path, id_column="unique_id")
        seconds = time.perf_counter() - start
        grown = peak_mb() - before
        size = path.stat().st_size / 2**20
    values = panel.values.nbytes / 2**20
    print(
        f"{len(panel):,} series x {args.length} values ({size:.0f} MB of CSV): loaded in {seconds:.2f} s; peak memory "
        f"+{grown:.0f} MB over the import, {grown / values:.1f} x the values' {values:.0f} MB; season {panel.season}"
    )


if __name__ == "__main__":
    main()
