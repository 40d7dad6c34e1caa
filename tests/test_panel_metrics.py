"""The holdout scores the M-competitions judge a panel by (``seqlab.metrics``): MASE with the seasonal scale, sMAPE,
MSIS, the scaled CRPS and coverage, each against values computed by hand, then against utilsforecast's losses
(Nixtla's, a reference we did not write) on a small panel."""

import math
from statistics import NormalDist

import numpy as np
import pytest

from seqlab.errors import SeqlabError
from seqlab.metrics import (
    coverage,
    crps_from_quantiles,
    crps_from_samples,
    holdout_scores,
    interval_score,
    mase,
    msis,
    scaled_crps,
    seasonal_scale,
    smape,
)

# a quarterly training series whose seasonal differences are all 4, and two values to forecast
TRAIN = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
Y = np.array([10.0, 12.0])
POINT = np.array([9.0, 14.0])
LOWER, UPPER = np.array([9.0, 13.0]), np.array([11.0, 15.0])


def test_the_scores_by_hand():
    assert seasonal_scale(TRAIN, 4) == 4.0 and seasonal_scale(TRAIN, 1) == 1.0
    assert mase(Y, POINT, TRAIN, 4) == (1 + 2) / 2 / 4
    assert math.isclose(smape(Y, POINT), (200 * 1 / 19 + 200 * 2 / 26) / 2, rel_tol=1e-15)
    # 95%: the first value inside (width 2), the second 1 below the interval (2 + 2 / 0.05 * 1)
    assert np.allclose(interval_score(Y, LOWER, UPPER, 0.95), [2.0, 42.0])
    assert math.isclose(msis(Y, LOWER, UPPER, TRAIN, 4), (2 + 42) / 2 / 4, rel_tol=1e-14)
    assert coverage(Y, LOWER, UPPER) == 0.5
    # the median alone: CRPS = 2 x pinball(0.5) = the absolute error; a point mass too
    assert np.allclose(crps_from_quantiles({0.5: POINT}, Y), [1.0, 2.0])
    assert scaled_crps(Y, TRAIN, 4, samples=np.tile(POINT, (5, 1))) == mase(Y, POINT, TRAIN, 4)
    scores = holdout_scores(TRAIN, Y, POINT, LOWER, UPPER, period=4)
    assert scores.pop("scaled_crps") is None  # no sample paths given
    assert scores == pytest.approx({"mase": 0.375, "smape": smape(Y, POINT), "msis": 5.5, "coverage_95": 0.5})


def test_smape_counts_zero_over_zero_as_zero_and_stays_within_200():
    assert smape(np.array([0.0, 1.0]), np.array([0.0, -1.0])) == 100.0  # (0 + 200) / 2


def test_crps_from_many_quantiles_approaches_the_exact_gaussian_crps():
    """CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi) (Gneiting & Raftery 2007, eq. 5)."""
    normal = NormalDist()
    y = np.array([0.0, 0.7, -2.0])
    exact = np.array([v * (2 * normal.cdf(v) - 1) + 2 * normal.pdf(v) - 1 / math.sqrt(math.pi) for v in y])
    levels = (np.arange(199) + 0.5) / 199
    from_quantiles = crps_from_quantiles({q: np.full(3, normal.inv_cdf(q)) for q in levels}, y)
    assert np.allclose(from_quantiles, exact, rtol=0.01)
    draws = np.random.default_rng(0).standard_normal((20000, 1))
    assert np.allclose(crps_from_samples(draws, y), exact, atol=0.01)


def test_a_constant_or_short_training_series_has_no_scale():
    assert math.isnan(mase(Y, POINT, np.full(8, 3.0), 4))
    assert math.isnan(msis(Y, LOWER, UPPER, TRAIN[:4], 4))
    with pytest.raises(SeqlabError, match="level"):
        interval_score(Y, LOWER, UPPER, 95)
    with pytest.raises(SeqlabError, match="one of the two"):
        scaled_crps(Y, TRAIN, 4)


# -- against utilsforecast --------------------------------------------------------------------------------------------


def panel(seed: int = 0):
    """Three monthly series of their own lengths, a 6-step holdout, and a forecast with quantiles."""
    rng = np.random.default_rng(seed)
    series = []
    for i, n in enumerate((40, 55, 70)):
        t = np.arange(n + 6)
        values = 50 + 10 * i + 0.2 * t + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n + 6)
        point = values[n:] + rng.normal(0, 1.5, 6)
        spread = rng.uniform(1, 3, 6)
        quantiles = {q: point + spread * s for q, s in ((0.025, -1.96), (0.1, -1.28), (0.5, 0.0), (0.9, 1.28))}
        quantiles[0.975] = point + 1.96 * spread
        series.append((f"s{i}", values[:n], values[n:], point, quantiles))
    return series


def test_the_scores_equal_utilsforecast_losses():
    losses = pytest.importorskip("utilsforecast.losses", reason="utilsforecast is the reference for the panel scores")
    import pandas as pd

    train_rows, test_rows = [], []
    for name, train, y, point, quantiles in panel():
        n = len(train)
        train_rows.append(pd.DataFrame({"unique_id": name, "ds": np.arange(n), "y": train}))
        frame = pd.DataFrame({"unique_id": name, "ds": np.arange(n, n + len(y)), "y": y, "model": point})
        frame["model-lo-95"], frame["model-hi-95"] = quantiles[0.025], quantiles[0.975]
        for q, f in quantiles.items():
            frame[f"model-q-{q}"] = f
        test_rows.append(frame)
    train_df, test_df = pd.concat(train_rows), pd.concat(test_rows)
    theirs_mase = losses.mase(test_df, ["model"], 12, train_df).set_index("unique_id")["model"]
    theirs_smape = losses.smape(test_df, ["model"]).set_index("unique_id")["model"]
    theirs_winkler = losses.winkler_score(test_df, ["model"], 95).set_index("unique_id")["model"]
    theirs_coverage = losses.coverage(test_df, ["model"], 95).set_index("unique_id")["model"]
    levels = np.array(sorted(panel()[0][4]))
    theirs_crps = losses.scaled_crps(test_df, {"model": [f"model-q-{q}" for q in levels]}, levels)
    theirs_crps = theirs_crps.set_index("unique_id")["model"]
    for name, train, y, point, quantiles in panel():
        assert math.isclose(mase(y, point, train, 12), theirs_mase[name], rel_tol=1e-12)
        assert math.isclose(smape(y, point), 200 * theirs_smape[name], rel_tol=1e-12)  # theirs: 0 to 1
        scale = seasonal_scale(train, 12)
        assert math.isclose(msis(y, quantiles[0.025], quantiles[0.975], train, 12), theirs_winkler[name] / scale)
        assert coverage(y, quantiles[0.025], quantiles[0.975]) == theirs_coverage[name]
        # theirs divides by mean |y| (Rangapuram et al. 2021), ours by the seasonal scale: compare unscaled
        ours = float(crps_from_quantiles(quantiles, y).mean())
        assert math.isclose(ours, theirs_crps[name] * np.abs(y).mean(), rel_tol=1e-9)
