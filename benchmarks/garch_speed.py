"""GARCH fit time against the ``arch`` package on the same series, side by side in one run.

Series: the bundled MSFT daily log returns x 100 (7,982 values, arch's preferred scale). seqlab's ``fit``
includes both sets of standard errors (Hessian and sandwich); arch computes its covariance lazily, so it is
timed twice: ``fit`` alone and ``fit`` plus reading ``std_err`` (the like-for-like number). Median of repeats.
Run with one thread, as the numbers in the docs were:

    OMP_NUM_THREADS=1 python benchmarks/garch_speed.py
"""

from __future__ import annotations

import numpy as np

from seqlab.data import load_series
from seqlab.experiments.cost import median_seconds
from seqlab.models import GARCH, GARCHConfig

CASES = [
    ("GARCH(1,1) normal", {}, {"vol": "GARCH", "p": 1, "q": 1}),
    ("GARCH(1,1) t", {"dist": "t"}, {"vol": "GARCH", "p": 1, "q": 1, "dist": "t"}),
    ("GJR(1,1,1) t", {"o": 1, "dist": "t"}, {"vol": "GARCH", "p": 1, "o": 1, "q": 1, "dist": "t"}),
    ("EGARCH(1,1,1) t", {"vol": "egarch", "o": 1, "dist": "t"}, {"vol": "EGARCH", "p": 1, "o": 1, "q": 1, "dist": "t"}),
    ("AR(1)-GARCH(1,1) skew-t", {"mean": "ar", "lags": 1, "dist": "skewt"}, {"mean": "AR", "lags": 1, "dist": "skewt"}),
]


def main(repeats: int = 7) -> None:
    from arch import arch_model

    y = 100 * np.diff(np.log(load_series("msft")[0].values))
    print(f"MSFT daily log returns x 100, {len(y):,} values; median of {repeats} fits")
    print("| model | seqlab fit + s.e. ms | arch fit ms | arch fit + s.e. ms | seqlab / arch (with s.e.) |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in CASES:
        a = median_seconds(lambda: GARCH(GARCHConfig(**ours)).fit(y), repeats)  # noqa: B023
        b = median_seconds(lambda: arch_model(y, **theirs).fit(disp="off"), repeats)  # noqa: B023
        c = median_seconds(lambda: arch_model(y, **theirs).fit(disp="off").std_err, repeats)  # noqa: B023
        print(f"| {name} | {a * 1e3:.0f} | {b * 1e3:.0f} | {c * 1e3:.0f} | {a / c:.2f} |")


if __name__ == "__main__":
    main()
