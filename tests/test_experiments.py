"""``seqlab experiment ...``: each experiment at its --quick size through the command line, with the
direction of each effect that must hold even at that size; the measuring tools against references."""

import functools
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import relative_error
from helpers import assert_one_line_error
from helpers import run_cli as run

from seqlab.cells import GRUCell, LSTMCell, gru_step, lstm_step, rnn_step
from seqlab.data.text import Vocabulary
from seqlab.errors import OptionError
from seqlab.experiments import long_range
from seqlab.experiments.common import (
    cell_parameter_count,
    config_settings,
    matched_hidden_size,
    settings,
    with_settings,
)
from seqlab.experiments.gates import gru_gates, longest_runs, lstm_gates, speech_line_breaks
from seqlab.experiments.gradients import jacobian_rms
from seqlab.experiments.long_range import ADDING, COPY, Budget, LongRangeConfig, RateRun, SeedResult
from seqlab.experiments.order import shuffled_texts
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.recurrent import Recurrent
from seqlab.runs.experiment import write_outputs


def experiment(name, capsys, tmp_path, *options):
    """Run ``seqlab experiment NAME --quick --json --out tmp_path``; returns the parsed JSON."""
    code, out, err = run(
        ["experiment", name, "--quick", "--json", "--no-progress", "--out", str(tmp_path), *options], capsys
    )
    assert code == 0, err
    return json.loads(out)


def assert_written(tmp_path, stem, figures):
    assert (tmp_path / f"{stem}.csv").read_text().count("\n") >= 2
    for figure in figures:
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"


# -- parameter budgets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parameter_formula_counts_the_recurrent_layer(cell):
    layer = Recurrent(cell, 7, 11, num_layers=2)
    assert cell_parameter_count(cell, 7, 11, num_layers=2) == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_matched_hidden_size_is_the_closest_to_the_budget(cell):
    budget = cell_parameter_count("lstm", 10, 64)
    H = matched_hidden_size(cell, 10, budget)
    gap = abs(cell_parameter_count(cell, 10, H) - budget)
    assert gap <= min(abs(cell_parameter_count(cell, 10, h) - budget) for h in (H - 1, H + 1))
    assert gap / budget < 0.02


# -- long-range -------------------------------------------------------------------------------------------
ADDING_DEFAULTS = LongRangeConfig().adding


def timeless(rows: list[dict]) -> list[dict]:
    """The rows without their wall time, the one field a rerun may change."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
def test_long_range_quick_lstm_and_gru_beat_the_adding_baseline_at_T20(capsys, tmp_path):
    result = experiment("long-range", capsys, tmp_path)
    rows = {(r["task"], r["T"], r["cell"]): r for r in result["rows"]}
    cells = ("rnn", "lstm:1", "gru")  # quick: the LSTM with forget bias 1 only
    assert {key for key in rows if key[0] == "adding"} == {("adding", T, c) for T in (10, 20) for c in cells}
    for c in cells:  # copy T = 20 is trained unless T = 10 ended at the baseline's level
        expected = rows["copy", 10, c]["loss_over_baseline"] < long_range.BASELINE_LEVEL
        assert (("copy", 20, c) in rows) == expected, rows["copy", 10, c]
    for cell in ("lstm:1", "gru"):
        assert rows["adding", 20, cell]["test_loss_mean"] < 0.5 * (1 / 6), rows["adding", 20, cell]
    params = [rows["adding", 20, c]["params"] for c in cells]
    assert max(params) / min(params) < 1.03  # one parameter budget
    for (task, T, _), row in rows.items():
        if task == "copy":
            assert abs(row["baseline"] - 10 * math.log(8) / (T + 20)) < 1e-12
            assert 0.0 <= row["recall_accuracy"] <= 1.0
    literature = {(r["task"], r["cell"]): r for r in result["tables"]["Beside the literature"]}
    for (task, cell), r in literature.items():
        assert r["largest_T_solved"] == result["summary"]["longest_solved_T"][task][cell]
        if r["largest_T_solved"] is not None and r["T"] == r["largest_T_solved"]:  # took at most the budget
            assert 0 < r["sequences_to_solve"] <= r["budget_sequences"]
    assert_written(tmp_path, "long_range", ["long_range.png"])
    assert "### Beside the literature" in (tmp_path / "long_range.md").read_text()


def test_long_range_stops_once_solved_and_counts_the_sequences():
    config = LongRangeConfig(
        tasks=("adding",), adding=Budget(lengths=(4,), steps=400, lrs=(1e-2,), eval_every=20), cells=("gru",),
        lstm_hidden=16, batch_size=64, seeds=1, test_size=200, threads=1, update_inits=("zero",),
    )  # fmt: skip
    (row,) = long_range.run(config, show_progress=False).rows
    assert row["solved"] and row["solved_seeds"] == "1/1", row
    assert row["sequences_to_solve"] % (20 * 64) == 0  # counted at a validation check
    assert row["sequences_to_solve"] <= row["sequences_trained_max"] < 400 * 64  # it stopped before the budget


def test_long_range_once_solved_trains_at_most_the_margin_more():
    config = LongRangeConfig(
        tasks=("adding",), adding=Budget(lengths=(4,), steps=400, lrs=(1e-2,), eval_every=20), cells=("gru",),
        lstm_hidden=16, batch_size=64, seeds=1, test_size=200, threads=1, update_inits=("zero",),
        stop_fraction=0.0, margin_steps=0.5,
    )  # fmt: skip
    (row,) = long_range.run(config, show_progress=False).rows
    solved_step = row["sequences_to_solve"] // 64
    assert row["sequences_trained_max"] == math.ceil(1.5 * solved_step) * 64  # stop_fraction 0 never stops it


def test_long_range_tests_the_network_of_the_lowest_validation_loss():
    from seqlab.experiments.common import Variant

    adding = replace(ADDING_DEFAULTS, steps=60, eval_every=10)
    config = LongRangeConfig(adding=adding, batch_size=16, test_size=100, stop_fraction=0.0)

    seen = []
    evaluate = long_range.evaluate

    def record(task, net, x, y):
        out = evaluate(task, net, x, y)
        seen.append(out[0])
        return out

    long_range.evaluate = record
    try:
        (run,) = long_range.train(ADDING, Variant("rnn"), 16, 12, 0, (5e-2,), config, _CountingBar())
    finally:
        long_range.evaluate = evaluate
    assert len(seen) == 6 and run.valid_loss == min(seen) != seen[-1]  # lr 5e-2: the last is not the best
    again = long_range.evaluate(ADDING, run.net, *long_range.validation_set(ADDING, 12, 100))[0]
    assert again == pytest.approx(min(seen), rel=1e-6)


@pytest.mark.slow  # two spawned workers, each importing torch, twice
@pytest.mark.cross_process
def test_long_range_workers_give_the_rows_of_one_process():
    config = LongRangeConfig(
        adding=Budget(lengths=(6,), steps=20, lrs=(1e-2, 1e-3), eval_every=10),
        copy=Budget(lengths=(3,), steps=20, lrs=(1e-2, 3e-3), eval_every=200), lstm_hidden=8, batch_size=8,
        seeds=2, test_size=50, forget_inits=("chrono",), update_inits=("zero", "chrono"), workers=1,
    )  # fmt: skip
    serial = long_range.run(config, show_progress=False).rows
    assert [(r["task"], r["cell"]) for r in serial] == [
        (task, cell) for task in ("adding", "copy") for cell in ("rnn", "lstm:chrono", "gru", "gru:chrono")
    ]
    assert timeless(long_range.run(replace(config, workers=2), show_progress=False).rows) == timeless(serial)


def test_long_range_after_a_failure_longer_T_run_one_seed_at_the_chosen_rate_up_to_the_baseline_level(monkeypatch):
    from seqlab.experiments.common import Variant

    over_baseline = {6: 0.5, 8: 0.3, 10: 0.95, 12: 0.1}  # test loss / baseline by T, as if trained
    calls = []

    def fake_train_seeds(task, variant, T, seeds, lrs, config, bar):
        calls.append((T, len(seeds), lrs))
        loss = over_baseline[T] * task.baseline(T)
        return [SeedResult(lrs[-1], None, 1.0, 0, hidden=8, params=1, test_loss=loss, recall=None) for _ in seeds]

    monkeypatch.setattr(long_range, "train_seeds", fake_train_seeds)
    adding = replace(ADDING_DEFAULTS, lengths=(6, 8, 10, 12), lrs=(1e-2, 1e-3))
    config = LongRangeConfig(adding=adding, seeds=2, after_failure_seeds=1)
    rows = long_range.run_chain(ADDING, Variant("rnn"), config, _CountingBar())
    # T = 6 fails at 0.5 x: one seed at its rate for T = 8 (0.3 x: not solved either), then T = 10 at the
    # baseline's level ends the chain; T = 12 is not trained although it would have been solved
    assert calls == [(6, 2, (1e-2, 1e-3)), (8, 1, (1e-3,)), (10, 1, (1e-3,))]
    assert [(r["T"], r["solved_seeds"], r["lr_chosen"]) for r in rows] == [
        (6, "0/2", 1e-3),
        (8, "0/1", 1e-3),
        (10, "0/1", 1e-3),
    ]
    assert all(r["seconds"] >= 0 for r in rows)
    calls.clear()
    assert [
        r["T"]
        for r in long_range.run_chain(ADDING, Variant("rnn"), replace(config, after_failure_seeds=0), _CountingBar())
    ] == [6]
    over_baseline[6] = 0.9  # at the baseline's level at once: nothing longer
    assert [r["T"] for r in long_range.run_chain(ADDING, Variant("rnn"), config, _CountingBar())] == [6]


def test_long_range_each_task_chooses_among_its_own_rates(monkeypatch):
    from seqlab.experiments.common import Variant

    grids = []

    def fake_train_seeds(task, variant, T, seeds, lrs, config, bar):
        grids.append((task.name, lrs))
        return [SeedResult(lrs[0], 1, 0.0, 1, hidden=8, params=1, test_loss=0.0, recall=None) for _ in seeds]

    monkeypatch.setattr(long_range, "train_seeds", fake_train_seeds)
    adding = replace(ADDING_DEFAULTS, lengths=(5,), lrs=(1e-1, 1e-2))
    config = LongRangeConfig(adding=adding, copy=replace(LongRangeConfig().copy, lengths=(5,), lrs=(3e-3,)))
    for task in (ADDING, COPY):
        long_range.run_chain(task, Variant("gru"), config, _CountingBar())
    assert grids == [("adding", (1e-1, 1e-2)), ("copy", (3e-3,))]


class _CountingBar:
    def __init__(self):
        self.steps = 0

    def update(self, n):
        self.steps += n

    def write(self, line):
        pass


def test_long_range_rates_side_by_side_are_the_rates_one_by_one():
    """Rates trained side by side see the batches each would see alone: with no early choice and no solving,
    every rate's network is the one it would be alone (one batch stream, one initial network per seed)."""
    from seqlab.experiments.common import Variant

    copy = replace(LongRangeConfig().copy, steps=40)  # validation at the last step only
    config = LongRangeConfig(copy=copy, batch_size=8, test_size=50, choose_rate_at=1.0)
    lrs = (3e-2, 1e-3)
    together = long_range.train(COPY, Variant("gru"), 12, 4, 1, lrs, config, _CountingBar())
    for lr, trained in zip(lrs, together, strict=True):
        (alone,) = long_range.train(COPY, Variant("gru"), 12, 4, 1, (lr,), config, _CountingBar())
        assert trained.valid_loss == alone.valid_loss and trained.steps == alone.steps == 40
        for a, b in zip(trained.net.parameters(), alone.net.parameters(), strict=True):
            assert torch.equal(a, b)


def test_long_range_keeps_only_the_best_rate_after_choose_rate_at():
    from seqlab.experiments.common import Variant

    adding = replace(ADDING_DEFAULTS, steps=80, eval_every=10)
    config = LongRangeConfig(adding=adding, batch_size=8, test_size=50, choose_rate_at=0.25)
    bar = _CountingBar()
    runs = long_range.train(ADDING, Variant("lstm"), 8, 6, 0, (1e-2, 1e-4, 1e-6), config, bar)
    assert sorted(r.steps for r in runs) == [20, 20, 80]  # the choice at step 20 of 80
    survivor = max(runs, key=lambda r: r.steps)
    assert survivor.lr == 1e-2  # 1e-6 barely moves in 20 steps
    assert bar.steps == 3 * 80  # the progress bar counts the steps a rate no longer trains


def test_long_range_trains_a_seed_only_while_the_verdict_is_open(monkeypatch):
    from seqlab.experiments.common import Variant

    config = LongRangeConfig(adding=replace(ADDING_DEFAULTS, steps=10, eval_every=5), batch_size=4, test_size=20)
    outcomes = {}  # seed -> test loss over the baseline, as if trained

    def fake_train(task, variant, hidden, T, seed, lrs, config, bar):
        return [RateRun(torch.nn.Linear(1, 1), None, lrs[0], last=10, valid_loss=1.0)]

    def fake_evaluate(task, net, x, y):
        return outcomes[trained.pop(0)] * task.baseline(6), None

    monkeypatch.setattr(long_range, "train", fake_train)
    monkeypatch.setattr(long_range, "evaluate", fake_evaluate)
    for pattern, expected in [((0.01, 0.02, 0.5), 2), ((0.5, 0.9, 0.01), 2), ((0.01, 0.5, 0.02), 3)]:
        outcomes = dict(enumerate(pattern))
        trained = [0, 1, 2]
        bar = _CountingBar()
        results = long_range.train_seeds(ADDING, Variant("rnn"), 6, [0, 1, 2], (1e-2,), config, bar)
        assert len(results) == expected, pattern  # 3 seeds: a third only when the first two disagree
        assert bar.steps == (3 - expected) * 10  # the seeds not trained, counted done
        row = long_range.summarise(ADDING, Variant("rnn"), 6, results)
        assert row["solved"] == (sum(o <= 0.1 for o in pattern) >= 2)  # the verdict all three would give


def test_learning_rate_choice_prefers_the_fewest_sequences_then_the_lowest_loss():
    runs = [
        RateRun(None, None, 1e-3, last=1, solved_after=None, valid_loss=0.01),
        RateRun(None, None, 3e-3, last=1, solved_after=6400, valid_loss=0.005),
        RateRun(None, None, 1e-2, last=1, solved_after=3200, valid_loss=0.008),
    ]
    assert long_range.choose(runs).lr == 1e-2
    assert long_range.choose([runs[0], replace(runs[0], lr=5.0, valid_loss=0.02)]).lr == 1e-3


def test_literature_table_sits_beside_hochreiter_and_schmidhubers_counts():
    config = LongRangeConfig(adding=replace(ADDING_DEFAULTS, steps=100), batch_size=10)
    row = {"task": "adding", "cell": "gru", "T": 100, "solved": True, "solved_seeds": "3/3", "sequences_to_solve": 500}
    row["loss_over_baseline"] = 0.05
    rows = [
        row,
        {**row, "T": 200, "sequences_to_solve": 900},
        {**row, "T": 500, "solved": False, "solved_seeds": "0/1"},
    ]
    rows.append({**row, "cell": "rnn", "T": 100, "solved": False, "solved_seeds": "0/3", "sequences_to_solve": None})
    failed = {**row, "task": "copy", "cell": "lstm:1", "solved": False, "sequences_to_solve": None}
    rows += [{**failed, "T": 50, "solved_seeds": "0/1"}, {**failed, "T": 10, "solved_seeds": "0/2"}]
    table = long_range.literature_rows(rows, config)
    assert [(r["task"], r["cell"], r["T"], r["largest_T_solved"], r["literature_sequences"]) for r in table] == [
        ("adding", "gru", 100, 200, 74_000),  # the literature's T, with its count beside ours
        ("adding", "gru", 200, 200, None),  # the largest T solved here: the literature gives no count at T = 200
        ("adding", "gru", 500, 200, 209_000),  # run but not solved: still shown beside the count
        ("adding", "rnn", 100, None, 74_000),
        ("copy", "lstm:1", 10, None, None),  # solved nothing, no count: its shortest T, where it came closest
    ]
    assert table[0]["sequences_to_solve"] == 500 and table[0]["budget_sequences"] == 1000
    assert table[3]["sequences_to_solve"] is None and table[3]["solved_seeds"] == "0/3"
    assert table[4]["solved_seeds"] == "0/2" and table[4]["budget_sequences"] == config.copy.steps * 10
    rows[-1]["loss_over_baseline"] = 0.4  # the failed variant's shortest T: how close it came
    assert long_range.literature_rows(rows, config)[4]["loss_over_baseline"] == 0.4


def test_long_range_same_seed_same_numbers_other_seed_other_numbers(capsys):
    args = ["experiment", "long-range", "--tasks", "adding", "--lengths", "8", "--steps", "15", "--seeds", "1"]
    args += ["--hidden", "8", "--workers", "1", "--json", "--no-progress"]  # 2: the same rows (a slow test)
    first = json.loads(run([*args, "--seed", "3"], capsys)[1])["rows"]
    again = json.loads(run([*args, "--seed", "3"], capsys)[1])["rows"]
    other = json.loads(run([*args, "--seed", "4"], capsys)[1])["rows"]
    assert timeless(first) == timeless(again)
    assert [r["test_loss_mean"] for r in first] != [r["test_loss_mean"] for r in other]


def test_long_range_docs_outputs_come_again_from_their_rows(tmp_path):
    """docs/experiments/long_range.{md,csv,json}: the summary, the table beside the literature and the files are
    what this code makes of the rows and the config recorded there (the config's keys: the options' names)."""
    docs = Path(__file__).resolve().parents[1] / "docs" / "experiments"
    record = json.loads((docs / "long_range.json").read_text())
    names = {s.name: s.path for s in config_settings(LongRangeConfig())}
    changes = {names[k]: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()}
    config = with_settings(LongRangeConfig(), changes)
    assert json.loads(json.dumps(settings(config))) == record["config"]
    written = write_outputs(long_range.result(record["rows"], config), tmp_path)
    assert [p.name for p in written[:3]] == ["long_range.md", "long_range.csv", "long_range.json"]
    for name in ("long_range.md", "long_range.csv"):
        assert (tmp_path / name).read_text() == (docs / name).read_text(), name
    assert json.loads((tmp_path / "long_range.json").read_text()) == record


def test_long_range_budget_options_reach_their_task(capsys):
    """--copy-steps, --copy-lrs, --copy-eval-every, --copy-lengths set the copy task's budget, --steps ... the adding
    problem's (the long runs in docs/experiments.md are given so)."""
    args = ["experiment", "long-range", "--tasks", "copy", "--copy-lengths", "3", "--copy-steps", "6"]
    args += ["--copy-lrs", "0.003", "--copy-eval-every", "2", "--steps", "5", "--lrs", "0.1", "--cells", "rnn"]
    args += ["--seeds", "1", "--hidden", "4", "--test-size", "10", "--batch-size", "4", "--json", "--no-progress"]
    code, out, err = run(args, capsys)
    assert code == 0, err
    result = json.loads(out)
    copy = {k: result["config"][k] for k in ("copy_lengths", "copy_steps", "copy_lrs", "copy_eval_every")}
    assert copy == {"copy_lengths": [3], "copy_steps": 6, "copy_lrs": [0.003], "copy_eval_every": 2}
    assert (result["config"]["steps"], result["config"]["lrs"]) == (5, [0.1])
    (row,) = result["rows"]
    assert (row["task"], row["T"], row["lr_chosen"]) == ("copy", 3, 0.003)
    assert row["sequences_trained_max"] <= 6 * 4


def test_long_range_config_errors_name_the_setting():
    with pytest.raises(OptionError, match=r"^copy\.steps must be positive, got 0$"):
        LongRangeConfig(copy=replace(LongRangeConfig().copy, steps=0))
    with pytest.raises(OptionError, match=r"^choose_rate_at must be in \(0, 1\], got 0$"):
        LongRangeConfig(choose_rate_at=0.0)


# -- gradients --------------------------------------------------------------------------------------------
def run_cell(model, e, h, C, steps):
    """The reference cell of ``model`` from state (h, C) over e[:, steps]; returns (h, C)."""
    weights = model.rnn.cells[0].weights()
    for s in steps:
        if model.rnn.cell == "lstm":
            h, C = lstm_step(e[:, s], (h, C), *weights)
        elif model.rnn.cell == "gru":
            h = gru_step(e[:, s], h, *weights, reset=model.rnn.reset)
        else:
            h = rnn_step(e[:, s], h, *weights)
    return h, C


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_jacobian_norms_match_autograd_jacobian(cell):
    """The one-backward-pass trick against torch.autograd.functional.jacobian of h_T as a function of h_t."""
    torch.manual_seed(0)
    H, T = 5, 6
    model = LatentAR(Vocabulary.from_text("abcdef"), LatentARConfig(cell=cell, hidden_size=H, embedding_dim=3))
    model.double()
    x = torch.tensor([[0, 3, 1, 4, 2, 5], [5, 5, 1, 0, 2, 3]])
    measured = jacobian_rms(model, x)  # (W, T)
    for w in range(2):
        e = model.elements(x[w : w + 1]).detach()  # (1, T, E)
        zeros = torch.zeros(1, H, dtype=torch.double)
        for t in range(T):
            h_t, C_t = run_cell(model, e, zeros, zeros, range(t + 1))  # C_t is held fixed, as in the experiment
            later = functools.partial(run_cell, model, e, C=C_t, steps=range(t + 1, T))
            J = torch.autograd.functional.jacobian(lambda h, later=later: later(h=h)[0], h_t)
            expected = J.reshape(H, H).norm() / math.sqrt(H)
            assert relative_error(measured[w, t], expected) < 1e-10, (cell, w, t)


@pytest.mark.slow  # trains three cells
def test_gradients_quick_the_rnn_vanishes_and_trained_gated_cells_keep_more(capsys, tmp_path):
    result = experiment("gradients", capsys, tmp_path)
    at = {(r["cell"], r["stage"], r["distance"]): r for r in result["rows"]}
    longest = max(r["distance"] for r in result["rows"])
    assert at["rnn", "init", 20]["jacobian_rms"] < 1e-2 * at["rnn", "init", 1]["jacobian_rms"]
    for cell in ("lstm:1", "gru"):
        for key in ("jacobian_rms", "input_gradient_norm"):
            assert at[cell, "trained", longest][key] > 100 * at["rnn", "trained", longest][key], (cell, key)
    for name, s in result["summary"].items():
        assert 0 < s["jacobian_decay_per_step"] < 1, name  # the norm falls with distance for every cell
    # at initialisation the forget bias sets the LSTM's memory: sigma(0) = 0.5 < sigma(1) = 0.73 < chrono's
    decay = {v: result["summary"][f"lstm:{v} init"]["jacobian_decay_per_step"] for v in ("zero", "1", "chrono")}
    assert decay["zero"] < decay["1"] < decay["chrono"], decay
    assert at["lstm:chrono", "init", longest]["jacobian_rms"] > 1e3 * at["lstm:zero", "init", longest]["jacobian_rms"]
    assert (
        result["summary"]["lstm:1 trained"]["held_out_bits_per_char"]
        < result["summary"]["lstm:1 init"]["held_out_bits_per_char"]
    )
    assert_written(tmp_path, "gradients", ["gradients.png"])


# -- cost -------------------------------------------------------------------------------------------------
def test_cost_quick_gru_has_three_quarters_of_the_lstm(capsys, tmp_path):
    result = experiment("cost", capsys, tmp_path)
    rows = {(r["setting"], r["cell"]): r for r in result["rows"]}
    gru, lstm = rows["same hidden", "gru"], rows["same hidden", "lstm"]
    assert gru["params"] * 4 == lstm["params"] * 3
    assert gru["macs_per_step_counted"] * 4 == lstm["macs_per_step_counted"] * 3
    for r in result["rows"]:
        assert r["params"] == r["params_formula"] and r["macs_per_step_counted"] == r["macs_per_step_formula"]
        assert r["forward_backward_us_per_step_reference"] > r["forward_us_per_step_reference"] > 0
        assert r["saved_bytes_per_step_reference"] > 0
    # activations saved per step by the reference cells: the GRU keeps fewer than the LSTM at one H
    assert gru["saved_bytes_per_step_reference"] < lstm["saved_bytes_per_step_reference"]
    same = [rows["same params", c]["params"] for c in ("rnn", "lstm", "gru")]
    assert max(same) / min(same) < 1.01
    assert result["summary"]["gru_over_lstm"]["same hidden"]["params"] == 0.75
    assert_written(tmp_path, "cost", ["cost.png"])


# -- gates ------------------------------------------------------------------------------------------------
def test_gate_readouts_reproduce_the_reference_cells():
    torch.manual_seed(0)
    x, h, C = (
        torch.randn(3, 4, dtype=torch.double),
        torch.randn(3, 6, dtype=torch.double),
        torch.randn(3, 6, dtype=torch.double),
    )
    lstm = LSTMCell(4, 6).double()
    gates, (h_t, C_t) = lstm_gates(x, (h, C), lstm.weights())
    C_tilde = torch.tanh((x @ lstm.weight_ih.T + lstm.bias_ih + h @ lstm.weight_hh.T + lstm.bias_hh).chunk(4, -1)[2])
    assert relative_error(gates["forget"] * C + gates["input"] * C_tilde, C_t) < 1e-12
    assert relative_error(gates["output"] * torch.tanh(C_t), h_t) < 1e-12
    for reset in ("before", "after"):
        gru = GRUCell(4, 6, reset=reset).double()
        gates, h_t = gru_gates(x, h, gru.weights(), reset)
        W_ir, W_iz, W_in = gru.weight_ih.split(6)
        W_hr, W_hz, W_hn = gru.weight_hh.split(6)
        b_ir, b_iz, b_in = gru.bias_ih.split(6)
        b_hr, b_hz, b_hn = gru.bias_hh.split(6)
        r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        recurrent = (r * h) @ W_hn.T + b_hn if reset == "before" else r * (h @ W_hn.T + b_hn)
        h_tilde = torch.tanh(x @ W_in.T + b_in + recurrent)
        assert relative_error(gates["reset"], r) < 1e-12 and relative_error(gates["update"], z) < 1e-12
        assert relative_error((1 - gates["update"]) * h_tilde + gates["update"] * h, h_t) < 1e-12


def test_speech_line_breaks_and_open_runs():
    text = "LEONATO.\nI learn in this letter\nthat Don Pedro comes.\n\n[Exit.]\nMESSENGER.\nHe is near.\n"
    assert [text[p + 1 : p + 5] for p in speech_line_breaks(text)] == ["that"]
    open_ = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    assert longest_runs(open_).tolist() == [3, 4]


@pytest.mark.slow  # trains an LSTM and a GRU
def test_gates_quick_saturation_statistics_and_memory_units(capsys, tmp_path):
    result = experiment("gates", capsys, tmp_path)
    gates = {(r["cell"], r["gate"]) for r in result["rows"]}
    assert gates == {("lstm", "input"), ("lstm", "forget"), ("lstm", "output"), ("gru", "reset"), ("gru", "update")}
    for r in result["rows"]:
        assert 0 < r["mean"] < 1 and r["fraction_below_0.1"] + r["fraction_above_0.9"] <= 1
    for cell in ("lstm", "gru"):
        units = result["summary"][cell]["memory_units"]
        assert len(units) == 5 and result["summary"][cell]["speech_line_breaks"] > 0
        held = [u["breaks_held"] for u in units]
        assert held == sorted(held, reverse=True)
    assert_written(tmp_path, "gates", ["gates_lstm.png", "gates_gru.png"])


def test_gates_reads_a_trained_model_directory(capsys, tmp_path):
    from helpers import TINY_MODEL, TINY_TRAINING, write_small_text

    data = write_small_text(tmp_path)
    model_dir = tmp_path / "gru"
    code, _, err = run(
        [
            "train",
            "--data",
            str(data),
            "--model",
            "gru",
            "--steps",
            "3",
            *TINY_MODEL,
            *TINY_TRAINING,
            "--out",
            str(model_dir),
        ],
        capsys,
    )
    assert code == 0, err
    code, out, err = run(
        ["experiment", "gates", "--quick", "--cells", "gru", "--model", str(model_dir), "--json", "--no-progress"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert list(summary) == ["gru"] and summary["gru"]["source"] == "loaded" and "1 x 8" in summary["gru"]["model"]


# -- order ------------------------------------------------------------------------------------------------
def test_shuffles_keep_the_characters_and_change_the_order():
    text = "LEONATO.\nI learn in this letter that Don Pedro\nof Arragon comes this night.\n\nMESSENGER.\nHe is near.\n"
    texts = shuffled_texts(text, seed=0)
    for name, shuffled in texts.items():
        assert sorted(shuffled) == sorted(text), name
        assert (shuffled == text) == (name == "original")
    assert sorted(texts["words"].split()) == sorted(text.split()) and sorted(texts["lines"].split("\n")) == sorted(
        text.split("\n")
    )
    assert re.findall(r"\s+", texts["words"]) == re.findall(r"\s+", text)  # the whitespace runs, in order
    assert shuffled_texts(text, seed=0) == texts and shuffled_texts(text, seed=1) != texts


@pytest.mark.slow
def test_order_quick_shuffling_costs_every_context_model_and_not_the_unigram(capsys, tmp_path):
    result = experiment("order", capsys, tmp_path)
    rows = {r["model"]: r for r in result["rows"]}
    unigram = rows.pop("unigram (ngram order 0)")
    assert result["summary"]["unigram_log_probs_identical_multiset"] == {"lines": True, "words": True, "chars": True}
    assert unigram["nll_chars"] == unigram["nll_words"] == unigram["nll_lines"] == unigram["nll_original"]
    families = {"markov", "ngram order 2", "ngram order 4", "infinigram", "neural AR", "causal transformer"}
    families |= {f"latent AR {c}" for c in ("rnn", "lstm", "gru")}
    assert all(any(name.startswith(f) for name in rows) for f in families), list(rows)
    for name, r in rows.items():
        assert r["nll_chars"] > r["nll_original"] + 0.1, name  # order carries information
    for name in ("ngram order 2 (Kneser-Ney)", "ngram order 4 (Kneser-Ney)", "infinigram"):
        assert rows[name]["nll_words"] > rows[name]["nll_original"], name
    assert "LinearAR" in result["summary"]["skipped"]
    assert_written(tmp_path, "order", ["order.png"])


# -- bad options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["long-range", "--lengths", "10,0"], ["--lengths", "integers >= 2", "10,0"]),
        (["long-range", "--lengths", "-5"], ["--lengths", "integers >= 2"]),
        (["long-range", "--lengths", "ten"], ["--lengths", "'ten'"]),
        (["long-range", "--cells", "rnn,lstmx"], ["--cells", "unknown cell 'lstmx'", "rnn, lstm, gru"]),
        (["gradients", "--length", "0"], ["--length", "an integer >= 2"]),
        (["cost", "--cells", "transformer"], ["unknown cell 'transformer'"]),
        (["gates", "--cells", "rnn"], ["unknown gated cell 'rnn'", "lstm, gru"]),
        (["long-range", "--tasks", "parity"], ["unknown task 'parity'"]),
        (["order", "--chars", "0"], ["--chars", "a positive integer"]),
        (["long-range", "--lrs", "1e-2,0"], ["--lrs", "positive numbers"]),
        (["sorting"], ["invalid choice", "sorting"]),
    ],
)
def test_bad_experiment_options_get_one_line_errors(argv, fragments, capsys):
    code, _, err = run(["experiment", *argv], capsys)
    assert_one_line_error(code, err, *fragments)


def test_gates_refuses_a_model_without_gates(capsys, tmp_path):
    from helpers import TINY_MODEL, TINY_TRAINING, write_small_text

    data = write_small_text(tmp_path)
    code, _, _ = run(
        [
            "train",
            "--data",
            str(data),
            "--model",
            "rnn",
            "--steps",
            "2",
            *TINY_MODEL,
            *TINY_TRAINING,
            "--out",
            str(tmp_path / "rnn"),
        ],
        capsys,
    )
    assert code == 0
    code, _, err = run(["experiment", "gates", "--quick", "--model", str(tmp_path / "rnn")], capsys)
    assert_one_line_error(code, err, "reads an LSTM or GRU LatentAR", "rnn")
