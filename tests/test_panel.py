"""Panels (issue 29): a long or wide CSV as one array of values plus offsets, bad series left out with their
reason, the season from the dates; the M-competitions' holdout backtest scored by hand; any --jobs gives the same
numbers; the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import assert_one_line_error, run_cli

from seqlab.data.panel import load_panel, season_from_gap
from seqlab.errors import OptionError
from seqlab.runs.panel import PanelSpec, run_panel_backtest


def monthly(n: int, start: str = "2001-01-31") -> list[str]:
    months = np.arange(np.datetime64(start[:7]), np.datetime64(start[:7]) + n)
    return [str(d) for d in months.astype("datetime64[D]")]


def write_long(path, series: dict[str, list]) -> None:
    rows = ["unique_id,ds,y"]
    for ident, values in series.items():
        rows += [f"{ident},{d},{v}" for d, v in zip(monthly(len(values)), values, strict=True)]
    rows = [rows[0], *reversed(rows[1:])]  # rows in any order: each series is sorted by its dates
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def seasonal(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return list(np.round(100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, n), 3))


def test_a_long_panel_is_values_plus_offsets_and_bad_series_are_left_out(tmp_path):
    good = {f"s{i}": seasonal(40 + 5 * i, i) for i in range(3)}
    bad = {"short": [1.0, 2.0], "flat": [5.0] * 30, "broken": [*seasonal(30, 9)[:10], "n/a", *seasonal(30, 9)[11:]]}
    write_long(tmp_path / "panel.csv", good | bad)
    with (tmp_path / "panel.csv").open("a") as f:  # a month given twice, and a series with a gap of two months
        f.write("twice,2001-01-01,1\ntwice,2001-02-01,2\ntwice,2001-02-01,3\ntwice,2001-03-01,4\ntwice,2001-04-01,5\n")
        f.write("gap,2001-01-01,1\ngap,2001-02-01,2\ngap,2001-05-01,3\ngap,2001-06-01,4\ngap,2001-07-01,5\n")
    panel = load_panel(tmp_path / "panel.csv", id_column="unique_id", min_length=5)
    assert set(panel.ids) == set(good) and panel.season == 12  # monthly dates
    for i, ident in enumerate(panel.ids):
        np.testing.assert_array_equal(panel.series(i), good[ident])  # in date order, though written reversed
    assert panel.offsets[-1] == len(panel.values) == sum(len(v) for v in good.values())
    assert panel.left_out == {
        "short": "2 values, fewer than 5",
        "flat": "constant (5)",
        "broken": "value 11 is not a finite number",
        "twice": "date 2001-02-01 is given twice",
        "gap": "a gap from 2001-02-01 to 2001-05-01 (missing values)",
    }


def test_a_wide_panel_runs_from_each_columns_first_to_last_cell(tmp_path):
    dates = monthly(6)
    lines = [
        "Date,A,B",
        *(f"{d},{a},{b}" for d, a, b in zip(dates, ["", 1, 2, 3, 4, ""], [1, 3, 2, 5, 4, 6], strict=True)),
    ]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    panel = load_panel(tmp_path / "wide.csv", season=4)
    assert panel.ids == ["A", "B"] and panel.season == 4 and panel.starts == [dates[1], dates[0]]
    np.testing.assert_array_equal(panel.series(0), [1, 2, 3, 4])
    np.testing.assert_array_equal(panel.series(1), [1, 3, 2, 5, 4, 6])


@pytest.mark.parametrize("gap, season", [(1, 7), (7, 52), (30.4, 12), (91.3, 4), (365.25, 1)])
def test_the_season_comes_from_the_dates(gap, season):
    assert season_from_gap(gap) == season


def test_the_holdout_protocol_scored_by_hand(tmp_path):
    """The naive model on one series: fitted on all but the last h values, its forecast the last of them; MASE
    over the seasonal scale of the training part, sMAPE, the 95 % interval's MSIS from the closed form."""
    y = np.array(seasonal(60, 3))
    write_long(tmp_path / "one.csv", {"x": list(y)})
    h, m = 6, 12
    spec = PanelSpec(str(tmp_path / "one.csv"), id_column="unique_id", horizon=h, models=("naive",), progress=False)
    row = run_panel_backtest(spec, say=lambda _: None).rows[0]
    train, test = y[:-h], y[-h:]
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    point = np.full(h, train[-1])
    assert row["mase"] == pytest.approx(np.mean(np.abs(test - point)) / scale, rel=1e-12)
    assert row["smape"] == pytest.approx(np.mean(200 * np.abs(test - point) / (np.abs(test) + np.abs(point))))
    sigma = math.sqrt(np.mean(np.diff(train) ** 2))
    half = 1.959963984540054 * sigma * np.sqrt(np.arange(1, h + 1))
    lower, upper = point - half, point + half
    penalty = 2 / 0.05 * (np.maximum(lower - test, 0) + np.maximum(test - upper, 0))
    assert row["msis"] == pytest.approx(np.mean(upper - lower + penalty) / scale, rel=1e-9)
    assert row["values"] == len(train) and row["error"] == ""


@pytest.mark.slow
def test_any_number_of_jobs_gives_the_same_numbers(tmp_path):
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(48, i) for i in range(6)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=6, samples=50, progress=False)
    spec.models = (*spec.models, "panel_pool")  # its weights from a first pass over the processes
    one = run_panel_backtest(spec, say=lambda _: None).rows
    spec.jobs = 2
    two = run_panel_backtest(spec, say=lambda _: None).rows
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert json.dumps(drop(one)) == json.dumps(drop(two)) and len(one) == 36  # NaN where a model failed


@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_same_numbers(tmp_path, capsys):
    """The same chunks on a Dask cluster of two worker processes (--cluster local:2), as a real cluster would
    take them from `dask scheduler` and `dask worker` (docs/panels.md)."""
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(48, i) for i in range(4)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=6, samples=50, progress=False)
    spec.models = ("naive", "seasonal_naive", "ets")
    here = run_panel_backtest(spec, say=lambda _: None).rows
    spec.cluster = "local:2"
    there = run_panel_backtest(spec, say=lambda _: None).rows
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert json.dumps(drop(here)) == json.dumps(drop(there)) and len(here) == 12
    argv = ["backtest", "--data", str(tmp_path / "panel.csv"), "--id-column", "unique_id", "--holdout"]
    code, _, err = run_cli([*argv, "--cluster", "local:x"], capsys)
    assert_one_line_error(code, err, "--cluster local:N needs a positive number of workers")


def test_a_global_model_is_trained_once_on_every_training_part(tmp_path):
    """global-lstm: one network on the panel's training parts, every series forecast and scored like the others."""
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(36, i) for i in range(3)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=4, samples=20, progress=False)
    spec.models, spec.steps = ("seasonal_naive", "global-lstm"), 3
    result = run_panel_backtest(spec, say=lambda _: None)
    rows = [r for r in result.rows if r["model"] == "global-lstm"]
    assert sorted(r["id"] for r in rows) == ["s0", "s1", "s2"] and all(r["values"] == 32 for r in rows)
    assert all(np.isfinite(r[k]) for r in rows for k in ("mase", "smape", "msis", "scaled_crps", "log_score"))
    assert [m["model"] for m in result.summary] == ["seasonal_naive", "global-lstm"]


def test_a_global_seed_ensemble_is_a_mixture_and_its_runs_repeat(tmp_path):
    """global_seeds = 2: two networks (seeds 0 and 1) forecast as one mixture; the same numbers after other draws
    from torch's global generator (each network's initial weights come from its own seed)."""
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(36, i) for i in range(3)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=4, samples=20, progress=False)
    spec.models, spec.steps = ("global-gru",), 3
    one = run_panel_backtest(spec, say=lambda _: None).rows
    spec.global_seeds = 2
    two = run_panel_backtest(spec, say=lambda _: None).rows
    torch.rand(5)  # the global generator moved on
    again = run_panel_backtest(spec, say=lambda _: None).rows
    scores = ("mase", "smape", "msis", "scaled_crps")
    assert [[r[k] for k in scores] for r in two] == [[r[k] for k in scores] for r in again]
    assert [r["scaled_crps"] for r in one] != [r["scaled_crps"] for r in two]
    spec.global_seeds = 0
    with pytest.raises(OptionError, match="positive integer"):
        run_panel_backtest(spec, say=lambda _: None)


def test_the_command_writes_tables_and_refuses_per_series_options(tmp_path, capsys):
    series = {f"s{i}": seasonal(40, i) for i in range(2)} | {"flat": [3.0] * 40}
    write_long(tmp_path / "panel.csv", series)
    base = ["backtest", "--data", str(tmp_path / "panel.csv"), "--id-column", "unique_id", "--holdout", "--no-progress"]
    code, stdout, err = run_cli([*base, "--horizon", "4", "--jobs", "1", "--json"], capsys)
    assert code == 0, err
    record = json.loads(stdout)  # strict JSON: an undefined measure is null, never NaN
    assert [m["model"] for m in record["models"]] == ["naive", "seasonal_naive", "ets", "linear_ar", "pool"]
    assert record["series"] == 2 and record["left_out"] == {"flat": "constant (3)"} and record["season"] == 12
    code, stdout, err = run_cli([*base, "--models", "naive", "--jobs", "1", "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "| naive |" in stdout, err
    csv_rows = (tmp_path / "out" / "panel_series.csv").read_text().splitlines()
    assert csv_rows[0].startswith("id,model,values,mase,smape,msis") and len(csv_rows) == 3
    code, _, err = run_cli([*base, "--series", "s1"], capsys)
    assert_one_line_error(code, err, "--series is not an option of --holdout")
    code, _, err = run_cli([*base, "--models", "garch"], capsys)
    assert_one_line_error(code, err, "--models: unknown garch on a panel")
    per_series = [a for a in base if a != "--holdout"]
    code, _, err = run_cli([*per_series, "--season", "4", "--global-seeds", "2"], capsys)
    assert_one_line_error(code, err, "--season, --global-seeds: options of --holdout only")


def test_global_seeds_reach_the_panel_from_the_command_line(tmp_path, capsys):
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(40, i) for i in range(2)})
    base = ["backtest", "--data", str(tmp_path / "panel.csv"), "--id-column", "unique_id", "--holdout", "--no-progress"]
    base += ["--models", "global-gru", "--steps", "3", "--horizon", "4", "--jobs", "1", "--json"]
    crps = []
    for seeds in ("1", "2"):
        code, stdout, err = run_cli([*base, "--global-seeds", seeds], capsys)
        assert code == 0, err
        crps.append([m["scaled_crps"] for m in json.loads(stdout)["models"]])
    assert crps[0] != crps[1]  # the mixture of two networks is another forecast than the first network alone


def test_the_panel_pool_weights_every_series_with_the_weights_best_on_all_tails(tmp_path):
    """panel_pool: one set of weights, the argmax of the pool's log score summed over every series' weighting tail
    (better there than each series' own weights and than any single member), the centre every series' weights are
    shrunk towards; a series too short for a tail of its own is forecast with them as they are."""
    from seqlab.models.pool import Pool
    from seqlab.runs.panel import POOL_MEMBERS, pool_of_members

    series = {f"s{i}": seasonal(60 + 6 * i, i) for i in range(4)} | {"short": seasonal(30, 7)}
    write_long(tmp_path / "panel.csv", series)
    h, m = 6, 12
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=h, samples=30, progress=False)
    spec.models = ("ets", "pool", "panel_pool")
    result = run_panel_backtest(spec, say=lambda _: None)
    shared = np.array([result.record["panel_pool_weights"]["panel_pool"][name] for name in POOL_MEMBERS])
    assert shared.sum() == pytest.approx(1.0) and (shared >= 0).all()

    def pooled_log_score(w: np.ndarray, tails: list[np.ndarray]) -> float:
        return sum(float(np.logaddexp.reduce(np.log(np.maximum(w, 1e-300))[:, None] + t, axis=0).sum()) for t in tails)

    tails, own = [], []
    for ident in [f"s{i}" for i in range(4)]:
        train = np.array(series[ident])[:-h]
        tails.append(pool_of_members(m).score_tail(torch.from_numpy(train))[0])
        own.append(pool_of_members(m).fit(train).weights.numpy())
    best = pooled_log_score(shared, tails)
    for w in [*own, *np.eye(len(POOL_MEMBERS))]:
        assert best >= pooled_log_score(w, tails) - 1e-6
    rows = {(r["id"], r["model"]): r for r in result.rows}
    assert all(rows[(ident, "panel_pool")]["error"] == "" for ident in series)
    assert rows[("short", "pool")]["error"]  # too short to weight on its own tail
    alone = pool_of_members(m, shared).fit(np.array(series["short"])[:-h])
    np.testing.assert_allclose(alone.weights.numpy(), shared, rtol=1e-12)
    assert isinstance(alone, Pool) and len(alone.members) == len(POOL_MEMBERS)


def test_a_pool_given_weights_keeps_them_and_refuses_bad_ones():
    from seqlab.errors import SeqlabError
    from seqlab.runs.panel import pool_of_members

    y = np.array(seasonal(48, 2))
    pool = pool_of_members(12, np.array([0.2, 0.0, 0.8])).fit(y)
    assert pool.weights.tolist() == [0.2, 0.0, 0.8] and pool.record()["given_weights"] == [0.2, 0.0, 0.8]
    assert "fits_at" not in pool.record()  # no weighting tail was scored
    for weights, message in [([0.5, 0.5], "needs as many weights"), ([0.5, 0.6, -0.1], "non-negative shares")]:
        with pytest.raises(SeqlabError, match=message):
            pool_of_members(12, np.array(weights))


def test_the_panel_pool_shrinks_a_series_weights_towards_the_panels(monkeypatch):
    """With a finite PANEL_POOL_STRENGTH a series' weights are its tail's posterior mode under a Dirichlet centred
    on the panel's weights (tests/test_pool.py checks that mode); a series too short for a tail takes the panel's."""
    from seqlab.runs import panel

    monkeypatch.setattr(panel, "PANEL_POOL_STRENGTH", 20.0)
    shared = np.array([0.1, 0.2, 0.7])
    long = panel.panel_pool(12, shared, np.array(seasonal(60, 4)))
    assert long.record()["centre"] == shared.tolist() and long.record()["strength"] == 20.0
    own = panel.pool_of_members(12).fit(np.array(seasonal(60, 4))).weights.numpy()
    assert not np.allclose(long.weights.numpy(), own) and not np.allclose(long.weights.numpy(), shared)
    short = panel.panel_pool(12, shared, np.array(seasonal(30, 4)))
    np.testing.assert_allclose(short.weights.numpy(), shared, rtol=1e-12)
    y = np.array([*seasonal(60, 4), 0.0, 0.0])  # the runner's first pass scores the tail once; the fit reuses it
    (tail,) = panel.tail_chunk([("s", y, 0)], 2, 12)
    reused = panel.panel_pool(12, shared, y[:-2], tail)
    assert reused.weights.tolist() == long.weights.tolist() and reused.record() == long.record()


@pytest.mark.parametrize("total", [1, 7, 200])
def test_mixture_counts_sum_to_the_paths_and_stay_within_one_of_each_share(total):
    from seqlab.runs.panel import mixture_counts

    rng = np.random.default_rng(total)
    for _ in range(50):
        w = rng.dirichlet(np.ones(4))
        counts = mixture_counts(w, total)
        assert counts.sum() == total and np.all(np.abs(counts - w * total) < 1)
    assert mixture_counts(np.array([0.0, 1.0, 0.0]), total).tolist() == [0, total, 0]


@pytest.mark.parametrize("member", [2, 3])  # ets, the network
def test_the_global_pool_with_all_weight_on_one_member_is_that_member(tmp_path, monkeypatch, member):
    """panel_pool_global's plumbing: with every share on one member its rows are that member's rows (the same paths,
    the same point forecast); with the weights it chooses, they sum to 1 over the three local members and the
    network, and every series is scored."""
    from seqlab.runs import panel

    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(48, i) for i in range(4)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=6, samples=30, progress=False)
    spec.models, spec.steps = ("ets", "global-lstm", "panel_pool_global"), 4
    chosen = run_panel_backtest(spec, say=lambda _: None)
    weights = chosen.record["panel_pool_weights"]["panel_pool_global"]
    assert list(weights) == [*panel.POOL_MEMBERS, "global-lstm"] and sum(weights.values()) == pytest.approx(1.0)
    assert all(r["error"] == "" and np.isfinite(r["scaled_crps"]) for r in chosen.rows)

    one_hot = dict.fromkeys(weights, 0.0) | {list(weights)[member]: 1.0}
    monkeypatch.setattr(panel, "global_pool_weights", lambda *args: one_hot)
    rows = run_panel_backtest(spec, say=lambda _: None).rows
    alone = {r["id"]: r for r in rows if r["model"] == ("ets", "global-lstm")[member - 2]}
    scores = ("mase", "smape", "scaled_crps")  # ETS's intervals are its closed form's, a mixture's its paths'
    scores += ("msis", "coverage_80", "coverage_95") if member == 3 else ()
    for r in (r for r in rows if r["model"] == "panel_pool_global"):
        for key in scores:
            assert r[key] == pytest.approx(alone[r["id"]][key], rel=1e-12), key


def test_the_panel_wide_pools_from_the_command_line(tmp_path, capsys):
    """backtest --holdout --models ...,panel_pool,panel_pool_global: both pools' weights in the JSON record, each
    set summing to 1 over its members."""
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(48, i) for i in range(3)})
    base = ["backtest", "--data", str(tmp_path / "panel.csv"), "--id-column", "unique_id", "--holdout", "--no-progress"]
    models = "ets,panel_pool,panel_pool_global"
    base += ["--models", models, "--steps", "3", "--horizon", "6", "--jobs", "1", "--json"]
    code, stdout, err = run_cli(base, capsys)
    assert code == 0, err
    record = json.loads(stdout)
    assert [m["model"] for m in record["models"]] == models.split(",") and record["series"] == 3
    weights = record["panel_pool_weights"]
    assert list(weights["panel_pool"]) == ["naive", "seasonal_naive", "ets"]
    assert list(weights["panel_pool_global"]) == ["naive", "seasonal_naive", "ets", "global-lstm"]
    assert all(sum(w.values()) == pytest.approx(1.0) for w in weights.values())
    base[base.index(models)] = "global-gru,panel_pool_global"  # the network the run names is the one pooled
    code, stdout, err = run_cli(base, capsys)
    assert code == 0, err
    assert list(json.loads(stdout)["panel_pool_weights"]["panel_pool_global"])[-1] == "global-gru"


def test_panel_weights_fall_back_to_the_members_scored_on_every_tail():
    """Where no series has every member scored (a season longer than the tails' starts), the members scored on every
    series' tail share the weights, the others get 0, as in a series' own pool; with none, one line says so."""
    from seqlab.errors import SeqlabError
    from seqlab.models.pool import pool_weights
    from seqlab.runs.panel import panel_weights

    rng = np.random.default_rng(0)
    tails = [{"log_probs": rng.normal(-1.0, 0.5, (3, n))} for n in (10, 14)]
    for t in tails:
        t["log_probs"][1] = -np.inf  # the seasonal naive: too few values before the tail
    expected = pool_weights(np.concatenate([t["log_probs"][[0, 2]] for t in tails], axis=1))
    np.testing.assert_allclose(panel_weights(tails + [{"log_probs": None}]), [expected[0], 0.0, expected[1]])
    tails[0]["log_probs"][0] = tails[1]["log_probs"][2] = -np.inf
    with pytest.raises(SeqlabError, match="panel_pool: no member could be scored on the weighting tails"):
        panel_weights(tails)


def test_a_panel_pool_without_weights_fails_its_rows_only(tmp_path, monkeypatch):
    from seqlab.errors import SeqlabError
    from seqlab.runs import panel

    def no_weights(tails, pool="panel_pool"):
        raise SeqlabError("panel_pool: no member could be scored on the weighting tails of every series")

    monkeypatch.setattr(panel, "panel_weights", no_weights)
    write_long(tmp_path / "panel.csv", {f"s{i}": seasonal(48, i) for i in range(2)})
    spec = PanelSpec(str(tmp_path / "panel.csv"), id_column="unique_id", horizon=6, samples=20, progress=False)
    spec.models = ("naive", "panel_pool")
    said = []
    rows = run_panel_backtest(spec, say=said.append).rows
    assert any("no member could be scored" in line for line in said)
    assert all(r["error"] == "" for r in rows if r["model"] == "naive")
    assert all("the panel gave no weights" in r["error"] for r in rows if r["model"] == "panel_pool")
