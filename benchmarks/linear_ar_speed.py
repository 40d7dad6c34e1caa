"""LinearAR fit time against statsmodels' AutoReg on the same series, side by side in one run.

Series: the bundled MSFT daily log returns (7,982 values) and statsmodels' sunspots (309 values);
fixed orders and order selection by AIC over 0..12 (``ar_select_order``). Median of repeats.

    python benchmarks/linear_ar_speed.py
"""

from __future__ import annotations

import numpy as np

from seqlab.data import load_series
from seqlab.experiments.cost import median_seconds
from seqlab.models import LinearAR


def main() -> None:
    import statsmodels.api as sm
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    series = {
        "msft log returns": np.diff(np.log(load_series("msft")[0].values)),
        "sunspots": sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(),
    }
    print("| series | work | seqlab ms | statsmodels ms | seqlab / statsmodels time |")
    print("|---|---|---:|---:|---:|")
    cases = [
        ("AR(1)", lambda y: LinearAR(order=1).fit(y), lambda y: AutoReg(y, 1, trend="c").fit()),
        ("AR(8)", lambda y: LinearAR(order=8).fit(y), lambda y: AutoReg(y, 8, trend="c").fit()),
        (
            "select by AIC, 0..12",
            lambda y: LinearAR(order="aic", max_order=12).fit(y),
            lambda y: ar_select_order(y, 12, ic="aic", trend="c").model.fit(),
        ),
    ]
    for name, y in series.items():
        for work, ours, theirs in cases:
            a, b = median_seconds(lambda: ours(y), 15), median_seconds(lambda: theirs(y), 15)  # noqa: B023
            print(f"| {name} | {work} | {a * 1e3:.2f} | {b * 1e3:.2f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
