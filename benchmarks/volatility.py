"""Can a neural model beat GARCH at one-step density forecasts of MSFT daily log returns?

Protocol: the bundled MSFT closes -> 7,982 daily log returns r_t; every model is fitted on the
first 80% (6,385 days) and scored, parameters fixed, on every one of the 1,597 held-out days by its one-step
log density log p(r_t | everything before t), in nats/day. GARCH(1,1)-t, GJR-t and EGARCH(1,1,1)-t are fitted by
seqlab's ``GARCH``; the best of them on the held-out part is the reference (picked on the scored part: the
hardest reference for the neural model to beat).

The neural model is seqlab's ``LatentAR`` (a GRU, Student-t head) with past covariates. A covariate in row t
is an input of the step that predicts r_{t+1} (``Elements``: the head at t+1 reads element t), so row t may hold
only what is known at the close of day t:

- ``logvar``: ln sigma^2_{t+1|t}, EGARCH-t's variance forecast for the next day (its parameters from the
  training part; its filter reads r_<=t only);
- ``logsq``: ln(r_t^2 + 1e-8);
- ``range`` (``--features range``): ln((ln High_t - ln Low_t)^2 + 1e-6), the day's Parkinson range, a
  measured volatility that GARCH does not see (more information, not only a better model).

The head starts as the EGARCH-t density (its log scale reads ``logvar`` through the linear path, ``nu`` set to
EGARCH's), the GRU's contribution starts at zero. Training: Adam on the first 80% of the training part; the
epoch kept is the best by the one-step NLL of the training part's last 20% (the state carried in from the
days before it). The held-out 20% is never used for any choice. Paired comparison per held-out day:
d_t = log p_neural(r_t) - log p_ref(r_t), mean, its standard error (i.i.d. and Newey-West, 10 lags) and t.

    OMP_NUM_THREADS=1 python benchmarks/volatility.py --features returns --hidden 4 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/volatility.py --features range --hidden 4 --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/volatility.py --features range --hidden 16 --seeds 0 1 2

With several seeds the script also scores their ensemble (the equal-weight mixture of the seeds' densities), so
no seed is picked; with ``--features range`` it also scores a linear, non-neural use of the same inputs
(``linear_range_model``), to tell how much of a gain is the range's information and how much the recurrence, and
the econometric peer given the same range: GARCH-X(1,1)-t (``GARCHConfig(vol="garchx", dist="t")``, Parkinson's
variance ``(ln High - ln Low)^2 / (4 ln 2)`` of day t-1 in the variance of day t), against which the neural
models are paired too.
Hidden size 16 was the first setting run; 4 was tried after seeing held-out numbers (say so when quoting it).
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch

from seqlab.data import load_series
from seqlab.distributions import StudentT
from seqlab.models import GARCH, GARCHConfig, LatentAR, LatentARConfig

TEST_FRACTION = 0.2
VALID_FRACTION = 0.2  # of the training part: its tail, for the choice of epoch
GARCH_FAMILY = {
    "GARCH(1,1)-t": GARCHConfig(dist="t"),
    "GJR(1,1,1)-t": GARCHConfig(o=1, dist="t"),
    "EGARCH(1,1,1)-t": GARCHConfig(vol="egarch", o=1, dist="t"),
}


def msft() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily log returns r (n,), the log range and Parkinson's variance of the same days (n,) each."""
    (series,) = load_series("msft", covariates="High,Low", features="range")
    r = np.diff(np.log(series.values))
    high, low = series.covariates[1:, 0], series.covariates[1:, 1]
    return r, np.log((np.log(high) - np.log(low)) ** 2 + 1e-6), series.covariates[1:, 2]


def paired(d: np.ndarray, lags: int = 10) -> dict:
    """Mean of d, its i.i.d. and Newey-West standard errors, and the t statistics."""
    if np.abs(d).max() < 1e-10:  # the same density (a model kept at its GARCH start): no t to speak of
        return {"mean": 0.0, "se": 0.0, "t": math.nan, "se_nw": 0.0, "t_nw": math.nan}
    n, centred = len(d), d - d.mean()
    se = float(d.std(ddof=1) / math.sqrt(n))
    long_run = centred @ centred / n
    for k in range(1, lags + 1):
        long_run += 2 * (1 - k / (lags + 1)) * (centred[k:] @ centred[:-k]) / n
    se_nw = math.sqrt(long_run / n)
    return {
        "mean": float(d.mean()),
        "se": se,
        "t": float(d.mean()) / se,
        "se_nw": se_nw,
        "t_nw": float(d.mean()) / se_nw,
    }


def garch_init(model: LatentAR, egarch: GARCH) -> None:
    """Make the untrained network the EGARCH-t density: log s_t = ln sigma_t + ln sqrt((nu-2)/nu), where
    ln sigma^2_t is covariate 0 of the previous element; mean mu; the GRU's weight in the head zero."""
    e, out = model.elements, model.out
    H = model.config.hidden_size
    loc, scale = float(e.covariate_location[0]), float(e.covariate_scale[0])
    nu = egarch.params[-1]
    with torch.no_grad():
        e.embedding.weight[0].zero_()
        e.embedding.bias[0] = 0.0
        e.embedding.weight[0, 2] = (
            1.0  # embedding unit 0 = standardised ln sigma^2 (inputs: value, missing, covariates)
        )
        out.weight.zero_()
        out.bias.zero_()
        # head params are (mu, log s, nu_raw) in standardised units, then rescaled by the series' location/scale
        out.weight[1, H + 0] = 0.5 * scale
        out.bias[1] = 0.5 * loc + 0.5 * math.log((nu - 2) / nu) - math.log(float(e.scale))
        out.bias[0] = (egarch.params[0] - float(e.location)) / float(e.scale)
        out.bias[2] = math.log(math.expm1(nu - 2))


def new_model(elements: torch.Tensor, end: int, egarch: GARCH, seed: int, args) -> LatentAR:
    torch.manual_seed(seed)
    covariates = elements.shape[1] - 1
    config = LatentARConfig(
        cell="gru", hidden_size=args.hidden, embedding_dim=args.embedding, head="studentt", covariates=covariates
    )
    model = LatentAR.for_series(elements[:end], config)
    garch_init(model, egarch)
    return model


def train_epochs(model: LatentAR, train: torch.Tensor, epochs: int, args, on_epoch=None) -> None:
    """Full-batch Adam on consecutive chunks of ``train``: one step per epoch; ``on_epoch(epoch)`` before each."""
    chunks = train.unfold(0, args.window, args.window).transpose(1, 2)  # (B, window, 1 + C)
    start = torch.full((chunks.shape[0], 1, chunks.shape[2]), float("nan"), dtype=chunks.dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    for epoch in range(epochs + 1):
        if on_epoch is not None and on_epoch(epoch):
            return
        if epoch == epochs:
            return
        model.train()
        params, _ = model(torch.cat([start, chunks[:, :-1]], dim=1))
        loss = model.head.nll(params, chunks[..., 0])[:, args.burn_in :].mean()  # skip each chunk's cold start
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def train_neural(elements: torch.Tensor, cut: int, egarch: GARCH, seed: int, args) -> tuple[LatentAR, dict]:
    """Choose the number of epochs on the training part's tail, then (``--refit``) train that many on all of it."""
    inner = int(cut * (1 - VALID_FRACTION))
    model = new_model(elements, inner, egarch, seed, args)
    best = {"valid_nll": float("inf"), "epoch": -1, "state": None, "start": None}

    def validate(epoch: int) -> bool:
        model.eval()
        valid_nll = float(-model.log_prob(elements[:cut])[inner:].mean())  # state carried in from the days before
        best["start"] = valid_nll if best["start"] is None else best["start"]
        if valid_nll < best["valid_nll"]:
            best.update(valid_nll=valid_nll, epoch=epoch, state=copy.deepcopy(model.state_dict()))
        return epoch - best["epoch"] > args.patience

    train_epochs(model, elements[:inner], args.epochs, args, validate)
    info = {"best_epoch": best["epoch"], "valid_nll": best["valid_nll"], "valid_nll_at_start": best["start"]}
    if args.refit:
        model = new_model(elements, cut, egarch, seed, args)
        train_epochs(model, elements[:cut], best["epoch"], args)
    else:
        model.load_state_dict(best["state"])
    model.eval()
    return model, info


def linear_range_model(elements: torch.Tensor, cut: int) -> np.ndarray:
    """Not neural, for comparison: Student-t with ln sigma^2_t = w . [1, ln sigma^2_{t|t-1} (EGARCH), range_{t-1}]
    (a GARCH-X with the range), fitted by L-BFGS on the training part; its held-out log densities (n - cut,)."""
    x = elements[1:, 0]
    X = torch.stack([torch.ones_like(x), elements[:-1, 1], elements[:-1, 3]], dim=1)  # row t-1 predicts r_t
    w = torch.tensor([0.0, 1.0, 0.0, 0.0, 2.0], requires_grad=True)  # 3 weights, mu, nu_raw
    head = StudentT()

    def params() -> torch.Tensor:
        nu = 2 + torch.nn.functional.softplus(w[4])
        log_s = 0.5 * (X @ w[:3]) + 0.5 * torch.log((nu - 2) / nu)  # the t's scale for variance sigma^2
        return torch.stack([w[3].expand_as(log_s), log_s, w[4].expand_as(log_s)], dim=-1)

    optimizer = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = head.nll(params()[: cut - 1], x[: cut - 1]).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return -head.nll(params()[cut - 1 :], x[cut - 1 :]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", choices=("returns", "range"), default="returns")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--embedding", type=int, default=8)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--burn-in", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--patience", type=int, default=60)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--refit", action="store_true", help="retrain on the whole training part for the epochs chosen")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)

    r, log_range, parkinson = msft()
    n = len(r)
    cut = int(n * (1 - TEST_FRACTION))
    print(f"MSFT daily log returns: {n:,} days, fitted on {cut:,}, scored on {n - cut:,}")
    scores = {}
    fitted = {}
    for name, config in GARCH_FAMILY.items():
        t0 = time.perf_counter()
        model = GARCH(copy.deepcopy(config)).fit(r[:cut])
        scores[name] = model.log_prob(r).numpy()[cut:]
        fitted[name] = model
        print(f"{name}: held-out NLL {-scores[name].mean():.4f} nats/day (fit {time.perf_counter() - t0:.2f} s)")
    reference = max(scores, key=lambda k: scores[k].mean())
    egarch = fitted["EGARCH(1,1,1)-t"]
    next_var = egarch.filter(np.append(r, 0.0))[1][1:]  # row t: sigma^2_{t+1|t}, from r_<=t
    columns = [r, np.log(next_var), np.log(r**2 + 1e-8)]
    if args.features == "range":
        columns.append(log_range)
    elements = torch.from_numpy(np.stack(columns, axis=1))  # (n, 1 + C)

    garchx = None
    if args.features == "range":
        lp = linear_range_model(elements, cut)
        s = paired(lp - scores[reference])
        print(
            f"linear range model (not neural): held-out NLL {-lp.mean():.4f}, d {s['mean']:+.4f} +- {s['se']:.4f}, "
            f"t {s['t']:.2f} (Newey-West {s['t_nw']:.2f})"
        )
        rows = np.stack([r, parkinson], axis=1)  # (n, 2): the return and the day's range, for GARCH-X
        t0 = time.perf_counter()
        garchx = GARCH(GARCHConfig(vol="garchx", dist="t")).fit(rows[:cut]).log_prob(rows).numpy()[cut:]
        s = paired(garchx - scores[reference])
        print(
            f"GARCH-X(1,1)-t with the range (econometric peer, fit {time.perf_counter() - t0:.2f} s): held-out NLL "
            f"{-garchx.mean():.4f}, d {s['mean']:+.4f} +- {s['se']:.4f}, t {s['t']:.2f} (Newey-West {s['t_nw']:.2f})"
        )
    print(f"reference: {reference}; neural: LatentAR gru {args.hidden}, covariates {args.features}, {vars(args)}")
    print("| seed | epoch kept | valid NLL start -> kept | held-out NLL | paired d vs ref | se | t | t (Newey-West) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    all_d, all_lp = [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        model, info = train_neural(elements, cut, egarch, seed, args)
        lp = model.log_prob(elements).numpy()[cut:]
        d = lp - scores[reference]
        all_d.append(d)
        all_lp.append(lp)
        s = paired(d)
        print(
            f"| {seed} | {info['best_epoch']} | {info['valid_nll_at_start']:.4f} -> {info['valid_nll']:.4f} | "
            f"{-lp.mean():.4f} | {s['mean']:+.4f} | {s['se']:.4f} | {s['t']:.2f} | {s['t_nw']:.2f} |"
            f"  ({time.perf_counter() - t0:.0f} s)"
        )
    if len(all_d) > 1:
        means = [float(d.mean()) for d in all_d]
        print(f"paired d over seeds: mean {np.mean(means):+.4f}, min {min(means):+.4f}, max {max(means):+.4f}")
        # the seeds' ensemble: the equal-weight mixture of their one-step densities (no choice among seeds)
        lp = np.logaddexp.reduce(np.stack(all_lp), axis=0) - math.log(len(all_lp))
        s = paired(lp - scores[reference])
        print(
            f"| ensemble of the {len(all_lp)} seeds | | | {-lp.mean():.4f} | {s['mean']:+.4f} | {s['se']:.4f} | "
            f"{s['t']:.2f} | {s['t_nw']:.2f} |"
        )
    if garchx is not None:  # the neural models against the econometric peer with the same range
        neural = {f"seed {seed}": lp for seed, lp in zip(args.seeds, all_lp, strict=True)}
        if len(all_lp) > 1:
            neural["ensemble"] = np.logaddexp.reduce(np.stack(all_lp), axis=0) - math.log(len(all_lp))
        for label, lp in neural.items():
            s = paired(lp - garchx)
            print(
                f"neural {label} against GARCH-X-t: d {s['mean']:+.4f} +- {s['se']:.4f}, t {s['t']:.2f} "
                f"(Newey-West {s['t_nw']:.2f})"
            )


if __name__ == "__main__":
    main()
