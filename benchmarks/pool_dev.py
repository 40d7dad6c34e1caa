"""How should a pool weight its members on a short series? Chosen on a development panel that shares no value with
the scored one (issue 25).

The scored panel of ``short_series.py --panel --pool`` (``tests/data/monthly.csv``, synthetic seed 0, and the MSFT
month ends) must not choose how the pool weights: a setting picked by its score there is selection on the scored
part. This script draws a separate panel from the same generator with other seeds (``monthly_prices``, seeds 1..N,
4 series each) and series of i.i.d. Student-t returns (no volatility clustering: the random walk's home ground),
and records per series, for the 7 models of ``short_series.py``,

- the pool's own weighting data (``Pool.score_tail``: each member's one-step log densities on the last half of the
  training part, fitted before each of 4 blocks) and which members it leaves out;
- every member's one-step log densities on the held-out part (the last 20%), fitted on the whole training part, as
  the pool's members and the backtest's rows are;

then scores each weighting (``pool_weights`` with a Dirichlet prior from 1, the log score alone, to equal weights)
by two targets per series: the pool within 0.02 nats/month of the best single model after the fact,
and never more than 0.02 behind the random walk. The rule, fixed before the 240-series run: the prior that meets both
on the most series; among those within 2 series of it, the one with the smallest worst gap to the random walk.
The script also prints how well the training part predicts the held-out ranking (the correlation, over series,
of a member's advantage over the random walk on the weighting tail and on the held-out part).

    OMP_NUM_THREADS=1 python benchmarks/pool_dev.py --collect /tmp/pooldev --seeds $(seq 1 30)    # 240 series
    OMP_NUM_THREADS=1 python benchmarks/pool_dev.py --score /tmp/pooldev
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from short_series import MODELS, monthly_prices  # noqa: E402

from seqlab.errors import SeqlabError  # noqa: E402
from seqlab.models.pool import Pool, pool_weights  # noqa: E402
from seqlab.runs.contenders import SeriesOptions, series_contender  # noqa: E402

TOLERANCE = 0.02


def iid_prices(path: Path, series: int = 4, months: int = 100, seed: int = 0) -> None:
    """Long-form CSV of ``series`` stocks whose monthly log returns are i.i.d. drift + Student-t(5) noise."""
    rng = np.random.default_rng(10_000 + seed)
    lines = ["Date,Ticker,Close"]
    for i in range(series):
        log_price, scale = np.log(20 + 10 * i), 0.04 + 0.02 * i
        for m in range(months):
            log_price += 0.006 + scale * rng.standard_t(5) / np.sqrt(5 / 3)
            lines.append(f"{2010 + m // 12}-{m % 12 + 1:02d}-01,I{i},{np.exp(log_price):.4f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def log_returns(path: Path) -> dict[str, np.ndarray]:
    closes: dict[str, list[float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        _, ticker, close = line.split(",")
        closes.setdefault(ticker, []).append(float(close))
    return {t: np.diff(np.log(np.array(c))) for t, c in closes.items()}


def member_log_densities(y: np.ndarray, head: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """(K, n_tail) the pool's weighting data (-inf rows: members it leaves out), (K, n - cut) the members'
    held-out log densities (-inf rows: members that fail on the whole training part)."""
    cut = int(len(y) * 0.8)
    options = SeriesOptions(head=head, pool_members=MODELS)
    pool = Pool(MODELS, lambda name, part: series_contender(name, part, options))
    x = torch.from_numpy(y)
    tail_lp, _, _ = pool.score_tail(x[:cut])
    test_lp = np.full((len(MODELS), len(y) - cut), -np.inf)
    for k, name in enumerate(MODELS):
        try:
            contender = pool._fit_member(name, x[:cut], ())
            test_lp[k] = pool._member_log_prob(contender.model, contender.reads_covariates, x)[cut:].numpy()
        except SeqlabError:
            pass
    return tail_lp, test_lp


def collect(out: Path, seeds: list[int], head: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for family, write in (("garch", monthly_prices), ("iid", iid_prices)):
            target = out / f"{family}{seed}.npz"
            if target.exists():
                continue
            csv = out / f"{family}{seed}.csv"
            write(csv, seed=seed)
            t0 = time.perf_counter()
            arrays = {}
            for name, y in log_returns(csv).items():
                arrays[f"{name}_train"], arrays[f"{name}_test"] = member_log_densities(y, head)
            np.savez(target, **arrays)
            print(f"{target.name}: {time.perf_counter() - t0:.0f} s", flush=True)


PRIORS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, float("inf"))  # inf: equal weights


def weights(log_probs: np.ndarray, prior: float) -> np.ndarray:
    return np.full(len(log_probs), 1 / len(log_probs)) if prior == float("inf") else pool_weights(log_probs, prior)


def score(folder: Path) -> None:
    series = []
    for f in sorted(folder.glob("*.npz")):
        arrays = np.load(f)
        for key in sorted(k for k in arrays if k.endswith("_train")):
            name = key[: -len("_train")]
            series.append((f"{f.stem}/{name}", arrays[key], arrays[f"{name}_test"]))
    walk = MODELS.index("random_walk")
    print(f"{len(series)} series; targets: pool - best <= {TOLERANCE} and pool - random walk <= {TOLERANCE}")
    print("| prior | both met | pool - best: mean | worst | pool - random walk: mean | worst |")
    print("|---|---:|---:|---:|---:|---:|")
    for prior in PRIORS:
        met, to_best, to_walk = 0, [], []
        for _, tail_lp, test_lp in series:
            singles = -test_lp.mean(axis=1)  # inf: a member that fails on the whole training part (no row)
            scored = np.isfinite(tail_lp).all(axis=1) & np.isfinite(singles)  # the others get weight 0
            w = weights(tail_lp[scored], prior)
            pooled = -np.logaddexp.reduce(np.log(np.maximum(w, 1e-300))[:, None] + test_lp[scored], axis=0).mean()
            to_best.append(pooled - singles.min())
            to_walk.append(pooled - singles[walk])
            met += to_best[-1] <= TOLERANCE and to_walk[-1] <= TOLERANCE
        print(
            f"| {prior:g} | {met}/{len(series)} | {np.mean(to_best):+.3f} | {np.max(to_best):+.3f} | "
            f"{np.mean(to_walk):+.3f} | {np.max(to_walk):+.3f} |"
        )
    print("\nDoes the weighting tail predict the held-out part? Per member, over the series where it was scored: the")
    print("correlation of its mean log-density advantage over the random walk on the tail and on the held-out part.")
    for k, name in enumerate(MODELS):
        if k == walk:
            continue
        pairs = np.array(
            [
                (tail[k].mean() - tail[walk].mean(), test[k].mean() - test[walk].mean())
                for _, tail, test in series
                if np.isfinite(tail[k]).all() and np.isfinite(test[k]).all()
            ]
        )
        print(f"  {name}: r = {np.corrcoef(pairs.T)[0, 1]:+.2f} over {len(pairs)} series")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect", type=Path, help="folder for the members' log densities")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--head", default="gaussian", help="the neural members' head (backtest's default: gaussian)")
    parser.add_argument("--score", type=Path, help="score the weighting schemes on a collected folder")
    args = parser.parse_args()
    if args.collect:
        if 0 in args.seeds:
            parser.error("seed 0 is the scored panel's tests/data/monthly.csv")
        collect(args.collect, args.seeds, args.head)
    if args.score:
        score(args.score)


if __name__ == "__main__":
    main()
