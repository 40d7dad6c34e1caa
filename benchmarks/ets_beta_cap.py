"""An experiment, not a setting: seqlab's ETS with beta capped as statsforecast's AutoETS caps it in effect, to see
how much of the two ETS' difference the cap explains, judged without M3's held-out values (docs/panels.md, "The
parameter region").

statsforecast 2.1.1's ``initparam`` lowers beta's upper end in place on the one bounds array that ``ets_f`` passes
to every candidate form, so in ``ZZZ`` beta is at most 0.20006 in AAN and AAdN (fitted first) and at most 0.0168 in
every later trended form (m = 12). Here seqlab's compiled objective is wrapped to return ``INVALID`` above that cap
and the starts are moved below it; nothing else changes (R's region, ``bounds="both"``, stays on). M1 monthly and
Tourism monthly are scored on their held-out parts, M3 monthly's training parts in-sample only (forms); the other
fits (seqlab's default, AutoETS) are read from ``docs/panels/ets_bounds.json`` (``benchmarks/ets_bounds.py``).

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/ets_beta_cap.py --jobs 2 --docs

Writes ``benchmarks/out/ets_beta_cap.json`` (with ``--docs`` also ``docs/panels/ets_beta_cap.json``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from ets_panels import PANELS, ROOT, SAMPLES, SEASON, run, tasks, write_record

from seqlab.models import ets_fit, ets_kernel
from seqlab.models.ets import ETS, ETSConfig
from seqlab.runs.panel import forecast_one, score_one
from seqlab.runs.report import markdown_table

SCORES = ("mase", "smape", "msis")
_objective, _starts = ets_kernel.compiled_objective, ets_fit.start_smoothing


def cap(has_season: bool, multiplicative_error: bool) -> float:
    """AutoETS's effective upper end of beta (m = 12): AAN and AAdN 0.20006, every other trended form 0.0168."""
    return 0.20006 if not has_season and not multiplicative_error else 0.0168


def capped_objective():
    objective = _objective()

    def wrapped(v, y, m, has_trend, has_season, damped, season_m, error_m, grad, hyndman):
        if has_trend and v[0] * v[1] > cap(has_season, error_m):  # alpha * beta* = beta
            grad[:] = 0.0
            return ets_fit.INVALID
        return objective(v, y, m, has_trend, has_season, damped, season_m, error_m, grad, hyndman)

    return wrapped


def capped_starts(form, m):
    out = []
    for alpha, beta_star, gamma_star, phi in _starts(form, m):
        limit = cap(form.has_season, form.error == "M")
        if form.has_trend and alpha * beta_star > 0.9 * limit:  # a start above the cap could not move
            beta_star = max(ets_fit.LOWER, 0.5 * limit / alpha)
        out.append((alpha, beta_star, gamma_star, phi))
    return out


# the workers are forked from this process, so they inherit the cap
ets_kernel.compiled_objective = capped_objective
ets_fit.start_smoothing = capped_starts


def one(task: tuple[str, int, np.ndarray, np.ndarray, bool]) -> dict:
    panel, index, x, xx, score = task
    model = ETS(ETSConfig("ZZZ", SEASON)).fit(x)
    row = {"panel": panel, "index": index, "cap form": model.form.name, "cap beta": model.params.beta}
    if score:
        scores = score_one(x, xx, forecast_one(model, x, len(xx), SAMPLES, index), SEASON)
        row |= {f"cap {k}": scores[k] for k in SCORES}
    return row


def summary(rows: list[dict], reference: dict, panel: str, scored: bool) -> dict:
    own = [(r, reference[r["panel"], r["index"]]) for r in rows if r["panel"] == panel]
    entry = {"panel": panel, "series": len(own)}
    entry["form as AutoETS's, capped"] = float(np.mean([r["cap form"] == q["AutoETS form"] for r, q in own]))
    entry["form as AutoETS's, default"] = float(np.mean([q["both form"] == q["AutoETS form"] for _, q in own]))
    for k in SCORES if scored else ():
        for other in ("both", "AutoETS"):
            d = np.array([r[f"cap {k}"] - q[f"{other} {k}"] for r, q in own], dtype=float)
            d = d[np.isfinite(d)]
            entry[f"{k}: cap - {other} (se)"] = f"{d.mean():+.4f} ({d.std(ddof=1) / np.sqrt(len(d)):.4f})"
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--docs", action="store_true", help="also write docs/panels/ets_beta_cap.json")
    args = parser.parse_args()
    reference = {
        (r["panel"], r["index"]): r
        for r in json.loads((ROOT / "docs" / "panels" / "ets_bounds.json").read_text(encoding="utf-8"))["rows"]
    }
    rows, timing = run(one, tasks(), args.jobs)
    table = [summary(rows, reference, panel, score) for panel, (_, score) in PANELS.items()]
    print(markdown_table(table))
    path = write_record("ets_beta_cap", {**timing, "summary": table, "rows": rows}, args.docs)
    print(f"ets_beta_cap: {len(rows)} series in {timing['seconds']:.0f} s; wrote {path}")

if __name__ == "__main__":
    main()
