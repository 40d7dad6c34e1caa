"""What a person sees while ``compare``, ``backtest`` and the experiments fit models in turn (``seqlab.runs.progress``):
a training bar per neural model on stderr (none with --no-progress), and Ctrl-C stopping the fit under way so the
command goes on with what it trained; a second Ctrl-C aborts with exit code 130. Tiny models, in process; Ctrl-C is
a real SIGINT this process sends itself from inside a training step."""

from __future__ import annotations

import functools
import json
import signal
from dataclasses import replace

import numpy as np
import pytest
from helpers import run_cli as run
from helpers import write_small_text

from seqlab.experiments.gates import GatesConfig
from seqlab.models.latent_ar import LatentARConfig
from seqlab.models.neural_ar import NeuralARConfig
from seqlab.models.transformer import CausalTransformerConfig
from seqlab.runs import compare as compare_command
from seqlab.runs import experiment, progress
from seqlab.runs.contenders import contenders
from seqlab.training import Trainer

TINY_CONTENDERS = functools.partial(
    contenders,
    ngram_orders=(2,),
    latent=LatentARConfig(hidden_size=8, embedding_dim=4),
    neural_ar=NeuralARConfig(window=4, hidden_size=8, embedding_dim=4),
    transformer=CausalTransformerConfig(context=8, d_model=8, num_layers=1, num_heads=2),
)
FIELD, NEURAL = 8, 5  # markov, ngram order 2, infinigram; neural AR, the transformer, latent AR rnn, lstm, gru


def bar_lines(err: str, elements: str) -> list[str]:
    """The training bars as they were left on stderr (tqdm redraws a bar in place with carriage returns)."""
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    return [line for line in lines if f"{elements}/s=" in line]


@pytest.fixture
def tiny_compare(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_command, "contenders", TINY_CONTENDERS)
    data = write_small_text(tmp_path)
    return ["compare", "--data", str(data), "--out", str(tmp_path / "cmp"), "--json"]


def ctrl_c_at_step(monkeypatch, step: int, times: int = 1) -> None:
    """Every Trainer gets SIGINT (Ctrl-C) ``times`` times right after its training step ``step``
    (``raise_signal`` runs the Python handler before it returns)."""
    train_step = Trainer.train_step

    def step_then_ctrl_c(self, net, stream, progress_record, state):
        state = train_step(self, net, stream, progress_record, state)
        if progress_record.step == step:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return state

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)


def test_compare_draws_a_bar_per_neural_model(tiny_compare, capsys):
    code, stdout, err = run([*tiny_compare, "--budget", "0.3"], capsys)
    assert code == 0, err
    assert len(json.loads(stdout)["results"]) == FIELD
    bars = bar_lines(err, "characters")
    assert len(bars) == NEURAL, err
    assert all("step=" in b and "loss=" in b and "/1 [" in b for b in bars)  # a 0.3 s budget: a bar over 1 s


def test_ctrl_c_stops_each_neural_fit_and_compare_goes_on(tiny_compare, monkeypatch, capsys):
    ctrl_c_at_step(monkeypatch, 2)
    code, stdout, err = run([*tiny_compare, "--budget", "600", "--no-progress"], capsys)  # 600 s: only Ctrl-C ends
    assert code == 0, err
    results = json.loads(stdout)["results"]
    assert len(results) == FIELD  # every model fitted, scored and ranked
    assert err.count("seqlab: interrupt: stopping this model's training after its current step") == NEURAL
    assert err.count("training interrupted at step 2, ranked as it stands") == NEURAL
    assert all(np.isfinite(r["nll_nats"]) for r in results)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back after every fit
    assert bar_lines(err, "characters") == [] and "\r" not in err  # --no-progress: no bar, Ctrl-C still works


def test_a_second_ctrl_c_aborts_compare_with_exit_code_130(tiny_compare, monkeypatch, capsys):
    ctrl_c_at_step(monkeypatch, 2, times=2)
    code, stdout, err = run([*tiny_compare, "--budget", "600", "--no-progress"], capsys)
    assert code == 130 and stdout == ""
    assert err.strip().endswith("seqlab compare: aborted")


def test_backtest_draws_a_bar_per_neural_fit_in_values(tmp_path, capsys):
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300)))
    path = tmp_path / "prices.csv"
    path.write_text("Close\n" + "".join(f"{p:.4f}\n" for p in prices), "utf-8")
    argv = ["backtest", "--data", str(path), "--models", "random_walk,gru", "--steps", "3", "--hidden", "4"]
    argv += ["--folds", "2", "--samples", "5", "--json"]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    (bar,) = bar_lines(err, "values")  # the GRU's; the random walk trains nothing
    assert "3/3" in bar and "step=3" in bar
    code, _, err = run([*argv, "--no-progress"], capsys)
    assert code == 0 and bar_lines(err, "values") == []


@pytest.mark.parametrize("shown", [True, False])
def test_an_experiment_draws_a_bar_per_network_it_trains(shown, capsys):
    config = replace(
        GatesConfig.quick(), cells=("gru",), hidden_size=4, embedding_dim=4, train_steps=3, chars=200, heatmap_chars=40
    )
    run_ = experiment.run_experiment(experiment.ExperimentSpec("gates", config, "quick", None, shown))
    assert run_.result.rows
    bars = bar_lines(capsys.readouterr().err, "characters")
    assert len(bars) == (1 if shown else 0) and all("3/3" in b for b in bars)


def test_a_ctrl_c_that_no_trainer_took_aborts_when_the_block_ends():
    """Between fits (nothing trains after it) a Ctrl-C is never swallowed: KeyboardInterrupt at the block's end."""
    with pytest.raises(KeyboardInterrupt):
        with progress.fitting("characters", enabled=False):
            signal.raise_signal(signal.SIGINT)  # taken: the handler only asks for a stop
            reached = True
    assert reached and signal.getsignal(signal.SIGINT) is signal.default_int_handler
