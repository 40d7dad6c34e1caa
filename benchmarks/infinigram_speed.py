"""InfiniGram on the bundled Shakespeare: index build time and the latency of one next-symbol distribution.

The index is the suffix array of the eight training plays (945,940 characters); queries are the histories
of the first 2,000 positions of the held-out play, each conditioned on its whole history.

    python benchmarks/infinigram_speed.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from seqlab.data import BUNDLED, load_text, split_text
from seqlab.models import InfiniGram


def main() -> None:
    train, valid = split_text(load_text("shakespeare"), valid_from=BUNDLED["shakespeare"].valid_from)
    start = time.perf_counter()
    model = InfiniGram().fit(train)
    build = time.perf_counter() - start
    x = model.encode(valid[:2000]).numpy()
    latencies = []
    for t in range(len(x)):
        start = time.perf_counter()
        model.distribution(x[:t])
        latencies.append(time.perf_counter() - start)
    lat = np.array(latencies) * 1e3
    start = time.perf_counter()
    log_prob = model.log_prob(valid[:20_000])
    rate = 20_000 / (time.perf_counter() - start)
    print(f"index over {len(train):,} characters: {build:.2f} s")
    print(
        f"next-symbol distribution: median {statistics.median(lat):.3f} ms, p90 {np.percentile(lat, 90):.3f} ms, "
        f"max {lat.max():.3f} ms over {len(lat):,} queries"
    )
    print(
        f"log_prob: {rate:,.0f} characters/s; held-out (first 20,000 characters) "
        f"{float(-log_prob.mean()) / np.log(2):.3f} bits/char"
    )


if __name__ == "__main__":
    main()
