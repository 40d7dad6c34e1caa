"""InfiniGram on the bundled Shakespeare: index build time and the latency of one next-symbol distribution,
and the suffix-array sort that builds the index: libdivsufsort (pydivsufsort, what ``InfiniGram`` uses) against
the prefix doubling it replaced (kept as the tests' reference), on the same ids.

The index is the suffix array of the eight training plays (945,940 characters); queries are the histories
of the first 2,000 positions of the held-out play, each conditioned on its whole history.

    OMP_NUM_THREADS=1 python benchmarks/infinigram_speed.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from seqlab.data import BUNDLED, load_text, split_text
from seqlab.models import InfiniGram
from seqlab.models.infinigram import sorted_suffixes, suffix_array


def compare_sorts(x: np.ndarray) -> None:
    """Both sorts on ``x`` (uint8 ids), each timed once; the arrays must be the same."""
    results = []
    for name, sort in [
        ("libdivsufsort", sorted_suffixes),
        ("prefix doubling", lambda a: suffix_array(a.astype(np.int64))),
    ]:
        start = time.perf_counter()
        results.append(sort(x))
        print(f"suffix array of {len(x):,} ids by {name}: {time.perf_counter() - start:.2f} s")
    assert np.array_equal(results[0], results[1])


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
    compare_sorts(model.text.copy())
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
