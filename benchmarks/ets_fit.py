"""ETS against statsmodels' ``ETSModel``: the log-likelihood at the same parameters, the fitted maximum of every form,
and the fit times (the numbers in docs/forecasting.md, section ETS); then the last 12 months of AirPassengers held
out and scored as the M4 competition scores (``seqlab.metrics.holdout_scores``): ETS chosen by AICc against the
seasonal naive model and the random walk.

Series: AirPassengers (``tests/data/air_passengers.csv``), the El Nino sea temperatures statsmodels ships, and a
monthly sinusoid with trend and noise; the fit times on 100 months of each.

    OMP_NUM_THREADS=1 python benchmarks/ets_fit.py
    OMP_NUM_THREADS=1 python benchmarks/ets_fit.py --repeats 9
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from statsmodels.datasets import elnino
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from seqlab.metrics import holdout_scores
from seqlab.models import ETS, ETSConfig, RandomWalk
from seqlab.models.ets_fit import fit_form, initial_state
from seqlab.models.ets_state import ETSForm, ETSParams, concentrated_loglik, run_filter

ROOT = Path(__file__).resolve().parents[1]
FORMS = ["ANN", "AAN", "AAdN", "ANA", "AAA", "AAdA", "MNN", "MAN", "MAdN", "MNA", "MAA", "MAdA", "MNM", "MAM", "MAdM"]


def series() -> dict[str, np.ndarray]:
    air = np.loadtxt(ROOT / "tests" / "data" / "air_passengers.csv", delimiter=",", skiprows=1, usecols=1)
    sea = elnino.load_pandas().data.iloc[:, 1:].to_numpy().ravel()
    t = np.arange(100)
    synthetic = 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 2, 100)
    return {"AirPassengers 1949-57": air[:100], "El Nino 1950-58": sea[:100], "synthetic": synthetic}


def reference(form: ETSForm, y: np.ndarray, m: int) -> ETSModel:
    return ETSModel(
        y,
        error={"A": "add", "M": "mul"}[form.error],
        trend="add" if form.has_trend else None,
        damped_trend=form.damped,
        seasonal={"A": "add", "M": "mul"}.get(form.season),
        seasonal_periods=m if form.has_season else None,
    )


def parity(y: np.ndarray, m: int) -> float:
    """The largest relative difference of the log-likelihoods at the same parameters, over every form."""
    worst = 0.0
    for name in [*FORMS, "ANM", "AAM", "AAdM"]:
        form = ETSForm.parse(name)
        level, slope, season = initial_state(form, y, m)
        p = ETSParams(0.35, 0.05 * form.has_trend, 0.15 * form.has_season, 0.9 if form.damped else 1.0, level, slope,
                      season, 1.0)  # fmt: skip
        mu, _ = run_filter(form, p, y)
        v = [p.alpha] + [p.beta] * form.has_trend + [p.gamma] * form.has_season + [p.phi] * form.damped
        v += [p.level] + [p.slope] * form.has_trend + (list(p.season[::-1]) if form.has_season else [])
        expected = reference(form, y, m).loglike(np.array(v))
        worst = max(worst, abs(concentrated_loglik(form, mu, y) - expected) / abs(expected))
    return worst


def holdout(air: np.ndarray, horizon: int = 12, samples: int = 4000) -> None:
    train, y = air[:-horizon], air[-horizon:]
    models = {
        "ETS, ZZZ": ETS(ETSConfig("ZZZ", period=12)),
        "seasonal naive": RandomWalk(differenced=False, season=12),
        "random walk": RandomWalk(differenced=False),
    }
    print(f"\nAirPassengers, the last {horizon} months held out ({samples} sample paths; intervals 95%):\n")
    print("| model | MASE | sMAPE | MSIS | scaled CRPS | coverage 95% |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        model.fit(train)
        forecast = model.forecast(train, horizon, num_samples=samples, quantiles=(0.025, 0.975), seed=0)
        point = model.point_forecast(train, horizon) if isinstance(model, ETS) else forecast.mean
        lower, upper = forecast.quantiles[0.025], forecast.quantiles[0.975]
        s = holdout_scores(train, y, point, lower, upper, period=12, samples=forecast.samples)
        label = f"{name} ({model.form.name})" if isinstance(model, ETS) else name
        print(f"| {label} | {s['mase']:.3f} | {s['smape']:.2f} | {s['msis']:.2f} | {s['scaled_crps']:.3f} | "
              f"{s['coverage_95']:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fits of ZZZ per series (the median is reported)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # statsmodels' convergence warnings
    m = 12
    print("| series | max rel. diff. of loglike at the same params | seqlab ZZZ fit s (15 forms), median | chosen | "
          "statsmodels: 15 fits s | forms ahead / behind statsmodels by > 0.5 |")  # fmt: skip
    print("|---|---:|---:|---|---:|---|")
    for label, y in series().items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model = ETS(ETSConfig("ZZZ", period=m)).fit(y)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = {name: reference(ETSForm.parse(name), y, m).fit(disp=False).llf for name in FORMS}
        their_time = time.perf_counter() - start
        ahead, behind = [], []
        for name in FORMS:
            ours = fit_form(ETSForm.parse(name), y, m)[1]
            if ours > theirs[name] + 0.5:
                ahead.append(f"{name} {ours - theirs[name]:+.1f}")
            elif ours < theirs[name] - 0.5:
                behind.append(f"{name} {ours - theirs[name]:+.1f}")
        print(f"| {label} | {parity(y, m):.1e} | {np.median(times):.2f} | {model.form.name} | {their_time:.2f} | "
              f"{', '.join(ahead) or 'none'} / {', '.join(behind) or 'none'} |")  # fmt: skip
    holdout(np.loadtxt(ROOT / "tests" / "data" / "air_passengers.csv", delimiter=",", skiprows=1, usecols=1))


if __name__ == "__main__":
    main()
