"""ONNX export of the models that are formulas or tables beyond the first ones (``seqlab.export``): GARCH (every
process and noise law, an AR mean, GARCH-X), ETS, the pool (its members' graphs side by side) and n-grams past
the dense table (the backoff form), each checked through onnxruntime against the model's own ``step`` over 500
steps, with a tolerance per dtype."""

import json

import numpy as np
import pytest
import torch
from conftest import relative_error
from test_export import TEXT, fed_back, initial_feeds, nan_aware_error, session_of, text_ids

import seqlab
from seqlab import export
from seqlab.errors import SeqlabError, Unsupported
from seqlab.export import METADATA_KEY, export_onnx
from seqlab.models import LatentAR, LatentARConfig, LinearAR, NGram, RandomWalk
from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.models.pool import Pool, SeriesContender
from seqlab.runs.export import ExportSpec
from seqlab.runs.export import export as export_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra: pip install -e '.[test]'")

STEPS = 500
# relative_error per step (max |a - e| / max |e|) by the dtype both sides compute in: float64 formulas rebuilt
# from the same numbers agree to a few ulps; float32 networks (a pool's neural member) as in test_export.py
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def returns(n, seed=0):
    """Daily-return-like values: Student t(5) at 1 %, with volatility clusters."""
    rng = np.random.default_rng(seed)
    scale = 0.01 * np.exp(0.5 * np.sin(np.arange(n) / 40))
    return scale * rng.standard_t(5, n)


def seasonal(n, seed=0, period=12):
    """A positive trending seasonal series around 100."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 0.05 * t + 10 * np.sin(2 * np.pi * t / period) + np.cumsum(rng.normal(0, 0.5, n))


def state_arrays(model, state):
    """``step``'s state as the graph's state outputs hold it, batch 1, each a float64 or int64 array."""
    if isinstance(model, GARCH):
        values, lags, x_last, seen = state
        out = [values[None]] if model.config.lags else []
        out += [np.asarray(lag, dtype=np.float64)[None] for lag in lags]
        out += [np.array([x_last])] if model.process.exogenous else []
        return out + ([np.array([min(seen, model.config.lags)])] if model.config.lags else [])
    if isinstance(model, ETS):
        level, slope, season = state
        return [np.array([level]), np.array([slope]), np.asarray(season)[None]]
    raise TypeError(type(model))


def parity(model, elements):
    """``step`` and the exported graph side by side over ``elements`` (the start first); the worst relative error
    of the params and of the state over all steps."""
    session, meta = session_of(model)
    feeds, x = initial_feeds(meta), np.full([1, *meta["inputs"][0]["shape"][1:]], np.nan)
    params, state = model.step(None, model.initial_state())
    worst_params = worst_state = 0.0
    for element in [None, *elements]:
        if element is not None:
            params, state = model.step(element, state)
            x = np.asarray(element, dtype=np.float64).reshape(x.shape)
        out = session.run(None, {"x_prev": x, **feeds})
        worst_params = max(worst_params, nan_aware_error(out[0][0], params))
        for expected, actual in zip(state_arrays(model, state), out[1:], strict=True):
            worst_state = max(worst_state, nan_aware_error(actual, torch.from_numpy(np.asarray(expected)).double()))
        feeds = fed_back(meta, feeds, out)
    return worst_params, worst_state


SLOW = pytest.mark.slow
GARCH_CASES = [
    pytest.param(GARCHConfig(), marks=SLOW, id="garch normal"),
    pytest.param(GARCHConfig(o=1, mean="ar", lags=2, dist="t"), id="gjr t, ar(2) mean"),
    pytest.param(GARCHConfig(p=2, q=1, mean="zero"), marks=SLOW, id="garch(2,1) zero mean"),
    pytest.param(GARCHConfig(vol="egarch", o=1, dist="skewt"), id="egarch skewt"),
    pytest.param(GARCHConfig(vol="egarch", o=1, q=2, mean="ar", lags=1, dist="t"), marks=SLOW, id="egarch(1,1,2)"),
]


@pytest.mark.parametrize("config", GARCH_CASES)
def test_garch_step_equals_onnxruntime_over_500_steps(config):
    model = GARCH(config).fit(returns(400, seed=1))
    worst_params, worst_state = parity(model, returns(STEPS, seed=2))
    assert worst_params < TOLERANCE["float64"] and worst_state < TOLERANCE["float64"]


def test_garch_x_takes_the_exogenous_variance_beside_each_value():
    rows = np.column_stack([r := returns(STEPS + 400, seed=3), 0.5 * r**2 + 1e-5])
    model = GARCH(GARCHConfig(vol="garchx", dist="t")).fit(rows[:400])
    worst_params, worst_state = parity(model, rows[400:])
    assert worst_params < TOLERANCE["float64"] and worst_state < TOLERANCE["float64"]
    _, meta = session_of(model)
    assert meta["inputs"][0]["shape"] == ["batch", 2] and meta["elements"]["covariates"] == 1
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "e2", "e2_negative", "sigma2", "x_last"]


def test_garch_metadata_names_the_lags_and_their_start():
    model = GARCH(GARCHConfig(vol="egarch", o=1, dist="skewt")).fit(returns(400))
    _, meta = session_of(model)
    assert meta["model"] == "garch" and meta["head"]["kind"] == "skewt"
    assert meta["head"]["params"] == "mu, log_sigma, eta_raw, lam_raw"
    ln_sigma2 = meta["inputs"][3]
    assert ln_sigma2["name"] == "ln_sigma2" and ln_sigma2["initial"] == pytest.approx(model.backcast)


ETS_CASES = [("ANN", 1), ("AAN", 1), ("AAdA", 4), ("MAM", 12), ("MNM", 12), ("MAdN", 1)]
QUICK_ETS = ("AAdA", "MAM")


@pytest.mark.parametrize(
    "form, period", [pytest.param(f, m, id=f, marks=() if f in QUICK_ETS else SLOW) for f, m in ETS_CASES]
)
def test_ets_step_equals_onnxruntime_over_500_steps(form, period):
    y = seasonal(200 + STEPS, period=max(period, 2))
    # the uncapped fit, as before the default cap on beta: the capped AAdA's slope passes through 2e-7 at step 383,
    # where the relative error is 2e-10 for an absolute one of 4e-17; the graph's parity does not depend on the fit
    model = ETS(ETSConfig(form, period, beta_max=None)).fit(y[:200])
    worst_params, worst_state = parity(model, y[200:])
    assert worst_params < TOLERANCE["float64"] and worst_state < TOLERANCE["float64"]


def test_ets_season_starts_at_its_fitted_values():
    model = ETS(ETSConfig("AAA", 4)).fit(seasonal(120, period=4))
    _, meta = session_of(model)
    season = meta["inputs"][3]
    assert season["shape"] == ["batch", 4] and season["initial"] == pytest.approx(model.params.season.tolist())


def test_the_batch_dimension_is_dynamic_for_garch_and_ets():
    """Three series at once equal three runs of ``step``."""
    for model, series in (
        (GARCH(GARCHConfig(o=1, mean="ar", lags=1)).fit(returns(300)), [returns(30, s) for s in range(3)]),
        (ETS(ETSConfig("MAM", 4)).fit(seasonal(120, period=4)), [seasonal(30, s, 4) for s in range(3)]),
    ):
        session, meta = session_of(model)
        feeds, x = initial_feeds(meta, batch=3), np.full(3, np.nan)
        for t in range(31):
            out = session.run(None, {"x_prev": x, **feeds})
            feeds, x = fed_back(meta, feeds, out), np.array([s[min(t, 29)] for s in series])
        expected = []
        for s in series:
            params, state = model.step(None, model.initial_state())
            for v in s:
                params, state = model.step(v, state)
            expected.append(params)
        assert relative_error(torch.from_numpy(out[0]), torch.stack(expected).double()) < TOLERANCE["float64"]


# -- the pool ------------------------------------------------------------------------------------------------------


def pool_parity(pool, elements):
    """The worst relative error of each member's columns of the params over the steps (each member against its
    own scale and dtype) and of the state."""
    session, meta = session_of(pool)
    columns = [m["columns"] for m in meta["head"]["members"]]
    feeds, x = initial_feeds(meta), np.full([1, *meta["inputs"][0]["shape"][1:]], np.nan)
    params, state = pool.step(None, pool.initial_state())
    worst = [0.0] * len(columns)
    for element in [None, *elements]:
        if element is not None:
            params, state = pool.step(torch.as_tensor(element), state)
            x = np.asarray(element, dtype=np.float64).reshape(x.shape)
        out = session.run(None, {"x_prev": x, **feeds})
        for k, (a, b) in enumerate(columns):
            worst[k] = max(worst[k], nan_aware_error(out[0][0, a:b], params[a:b]))
        feeds = fed_back(meta, feeds, out)
    return worst, meta


def contender(name, part):
    if name == "gru":
        model = scrambled_gru(part)
        return SeriesContender(name, model, lambda values, callbacks: {}, part.ndim == 2, trains=True)
    model = {
        "random_walk": RandomWalk(differenced=False, season=2),
        "ar": LinearAR(order=2),
        "garch": GARCH(GARCHConfig(dist="t")),
        "egarch": GARCH(GARCHConfig(vol="egarch", o=1, mean="ar", lags=1)),
        "ets": ETS(ETSConfig("AAdN")),
        "garchx": GARCH(GARCHConfig(vol="garchx")),
    }[name]
    return SeriesContender(name, model, lambda values, callbacks: model.fit(values.numpy()) and {}, name == "garchx")


def scrambled_gru(part):
    covariates = part.shape[1] - 1 if part.ndim == 2 else 0
    config = LatentARConfig(cell="gru", hidden_size=6, covariates=covariates)
    model = LatentAR.for_series(torch.from_numpy(part).float(), config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("steps", [150, pytest.param(STEPS, marks=SLOW)])
def test_pool_step_equals_onnxruntime_over_500_steps(steps):
    """Members of every kind side by side: a random walk on levels, an AR(2), GARCH-t, EGARCH with an AR mean,
    ETS and a float32 GRU; each member's columns within its own dtype's tolerance (150 steps by default: the
    pool's own step is six members' in Python)."""
    y = returns(200 + steps, seed=4) * 100 + 3
    pool = Pool(["random_walk", "ar", "garch", "egarch", "ets", "gru"], contender).fit(y[:200])
    worst, meta = pool_parity(pool, y[200:])
    dtypes = ["float64"] * 5 + ["float32"]
    assert all(w < TOLERANCE[d] for w, d in zip(worst, dtypes, strict=True)), worst
    assert [m["name"] for m in meta["pool"]] == ["random_walk", "ar", "garch", "egarch", "ets", "gru"]
    weights = [m["weight"] for m in meta["head"]["members"]]
    assert weights == pytest.approx(pool.weights.tolist()) and meta["head"]["kind"] == "pool"
    assert "m5_h" in [p["name"] for p in meta["inputs"]] and meta["inputs"][0]["dtype"] == "float64"


def test_pool_members_that_read_covariates_get_the_row_the_others_the_value():
    rng = np.random.default_rng(5)
    r = returns(200 + 200, seed=5)
    rows = np.column_stack([r, r**2 + 1e-5 * rng.random(len(r))])
    pool = Pool(["ar", "garchx", "gru"], contender, covariates=1).fit(rows[:200])
    worst, meta = pool_parity(pool, rows[200:])
    assert max(worst[:2]) < TOLERANCE["float64"] and worst[2] < TOLERANCE["float32"], worst
    assert meta["inputs"][0]["shape"] == ["batch", 2] and [m["reads_covariates"] for m in meta["pool"]] == [
        False,
        True,
        True,
    ]


def test_a_pool_with_a_member_without_a_graph_is_refused_naming_it(monkeypatch):
    pool = Pool(["ar", "garch"], contender).fit(returns(200))
    monkeypatch.setattr(export, "CLASSICAL", tuple(c for c in export.CLASSICAL if c is not GARCH))
    with pytest.raises(Unsupported, match="pool member garch: GARCH has no ONNX graph"):
        export_onnx(pool)


# -- n-grams past the dense table: the backoff form ----------------------------------------------------------------


@pytest.mark.parametrize(
    "smoothing", ["kneser_ney", "lidstone", *(pytest.param(s, marks=SLOW) for s in ("witten_bell", "laplace"))]
)
def test_ngram_backoff_step_equals_onnxruntime_over_500_steps(smoothing):
    """Order 4 over 29 symbols: a dense table of 30^4 x 29 = 23.5 million probabilities, past ``MAX_TABLE``."""
    model = NGram(order=4, smoothing=smoothing).fit(TEXT * 3)
    assert (model.V + 1) ** 4 * model.V > export.MAX_TABLE
    session, meta = session_of(model)
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "window"]
    feeds, x = initial_feeds(meta), np.array([model.V])
    params, state = model.step(None, model.initial_state())
    worst = 0.0
    ids = text_ids(STEPS // 2) + [torch.tensor(int(v)) for v in model.encode(TEXT * 6)[: STEPS // 2]]
    for element in [None, *ids]:  # random ids (mostly unseen contexts), then the text itself (seen ones)
        if element is not None:
            params, state = model.step(element, state)
            x = np.array([int(element)])
        out = session.run(None, {"x_prev": x, **feeds})
        worst = max(worst, nan_aware_error(out[0][0], params))
        assert out[1][0, 4 - len(state) :].tolist() == list(state)
        feeds = fed_back(meta, feeds, out)
    assert worst < TOLERANCE["float64"]


def test_ngram_backoff_scores_a_text_as_log_prob_does():
    """An unsmoothed model on its own text (every context seen) and at the start of each line (shorter contexts):
    the graph's log P of each next symbol, summed, is ``log_prob``'s."""
    text = TEXT * 4
    model = NGram(order=5, smoothing="mle").fit(text)
    session, meta = session_of(model)
    feeds, x, total = initial_feeds(meta), np.array([model.V]), 0.0
    for v in model.encode(text).tolist():
        out = session.run(None, {"x_prev": x, **feeds})
        total += float(out[0][0, v])
        feeds, x = fed_back(meta, feeds, out), np.array([v])
    assert total == pytest.approx(float(model.log_prob(text).sum()), rel=1e-12)
    assert np.isneginf(out[0][0]).sum() > 0  # what was never seen after this context is impossible, as in step


def test_an_ngram_over_the_backoff_limit_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(export, "MAX_ENTRIES", 100)
    with pytest.raises(Unsupported, match="contexts and pairs; ONNX export takes at most 100"):
        export_onnx(NGram(order=4).fit(TEXT))


def test_ngram_backoff_batch_is_dynamic():
    model = NGram(order=4, smoothing="witten_bell").fit(TEXT * 2)
    session, meta = session_of(model)
    sequences = [text_ids(20, seed) for seed in range(3)]
    feeds, x = initial_feeds(meta, batch=3), np.full(3, model.V)
    for t in range(21):
        out = session.run(None, {"x_prev": x, **feeds})
        feeds = fed_back(meta, feeds, out)
        if t < 20:
            x = np.array([int(s[t]) for s in sequences])
    expected = []
    for seq in sequences:
        params, state = model.step(None, model.initial_state())
        for v in seq:
            params, state = model.step(v, state)
        expected.append(params)
    assert relative_error(torch.from_numpy(out[0]), torch.stack(expected).double()) < TOLERANCE["float64"]


# -- the command -------------------------------------------------------------------------------------------------


def test_export_command_writes_a_garch_model(tmp_path):
    model = GARCH(GARCHConfig(o=1, dist="t")).fit(returns(300))
    seqlab.save(model, tmp_path / "garch")
    result = export_run(ExportSpec(tmp_path / "garch", tmp_path / "garch.onnx"))
    assert result.inputs == ["x_prev", "e2", "e2_negative", "sigma2"] and result.description == model.describe()
    session = ort.InferenceSession(str(tmp_path / "garch.onnx"))
    meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert meta["model"] == "garch" and meta["head"]["kind"] == "studentt"


# -- examples/onnx_sample.py on a formula's graph ------------------------------------------------------------------


@pytest.mark.parametrize("family", ["ets", "garch"])
def test_example_forecasts_an_ets_or_garch_export_as_seqlab_does(tmp_path, family, run_example):
    """The example, numpy and onnxruntime only, forecasts from the graph (ETS's season starts at a list, GARCH-t's
    head is the Student t): with 4000 paths each, every quantile within a fifth of seqlab's 80 % interval's width
    (the draws are not the same: seqlab's come from torch's generator)."""
    if family == "ets":
        y = seasonal(120, period=12)
        model = ETS(ETSConfig("AAA", 12)).fit(y)
    else:
        y = returns(400, seed=6)
        model = GARCH(GARCHConfig(o=1, dist="t")).fit(y)
    csv = tmp_path / "series.csv"
    csv.write_text("t,y\n" + "".join(f"{t},{float(v)!r}\n" for t, v in enumerate(y)), encoding="utf-8")
    path = tmp_path / f"{family}.onnx"
    path.write_bytes(export_onnx(model))
    printed = run_example(path, "--series", csv, "--horizon", 4, "--paths", 4000, "--seed", 0).splitlines()
    table = np.array([[float(v) for v in row.split(",")] for row in printed[1:]])
    expected = model.forecast(y, 4, num_samples=4000, quantiles=(0.1, 0.5, 0.9), seed=0)
    width = expected.quantiles[0.9] - expected.quantiles[0.1]
    for column, q in zip((1, 2, 3), (0.1, 0.5, 0.9), strict=True):
        assert np.all(np.abs(table[:, column] - expected.quantiles[q]) < 0.2 * width), (q, table, expected.quantiles)


def test_hash_table_finds_every_key_within_a_short_run():
    """The backoff form's pairs come in runs of consecutive keys (one context's followers): the home slot is
    spread by a multiplication, so no run of probes grows long (with ``key mod size`` alone, 463 on Shakespeare),
    every key is found with its value and an absent one is not."""
    rng = np.random.default_rng(0)
    contexts = rng.choice(10**12, size=4000, replace=False)
    keys = np.concatenate([c * 81 + np.sort(rng.choice(81, 25, replace=False)) for c in contexts])
    values = rng.normal(size=len(keys))
    table = export.HashTable(keys, values)
    assert table.probes <= 40
    found, got = table(torch.from_numpy(keys))
    assert bool(found.all()) and torch.equal(got, torch.from_numpy(values))
    absent = torch.from_numpy(np.setdiff1d(contexts * 81 + 80, keys)[:500])
    found, got = table(absent)
    assert not bool(found.any()) and bool((got == 0).all())


@pytest.mark.parametrize(
    "model, says",
    [
        (GARCH(GARCHConfig(vol="egarch", o=1)), "GARCH is not fitted yet"),
        (ETS(ETSConfig("AAN")), "ETS is not fitted yet"),
        (Pool(["ar", "garch"], contender), "Pool is not fitted yet"),
        (NGram(order=4), "not fitted yet"),
    ],
    ids=["garch", "ets", "pool", "ngram order 4"],
)
def test_an_unfitted_model_is_refused_in_one_line(model, says):
    with pytest.raises(SeqlabError, match=says) as caught:
        export_onnx(model)
    assert "\n" not in str(caught.value)
