"""The Trainer: exact resume, Ctrl-C, divergence, budgets, early stopping, data-parallel training, and what a
person sees (the progress bar, the busy-CPU notice) from the edges, never from the Trainer."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial

import pytest
import torch
from helpers import SMALL_TEXT, TINY_MODEL, TINY_TRAINING, checkpoints_in, tiny_latent_ar, write_small_text
from safetensors.torch import load_file

from seqlab import SeqlabError, training
from seqlab.data import Vocabulary
from seqlab.runs import progress as shown_progress
from seqlab.training import Trainer, TrainerConfig, TrainingDiverged, WindowStream

VOCAB = Vocabulary.from_text(SMALL_TEXT)
TRAIN = VOCAB.encode(SMALL_TEXT[:16_000])
VALID = VOCAB.encode(SMALL_TEXT[16_000:17_000])


tiny_model = partial(tiny_latent_ar, VOCAB, cell="lstm", hidden_size=12, num_layers=2, embedding_dim=6, dropout=0.2)


def config(**kw) -> TrainerConfig:
    base = dict(steps=8, batch_size=4, window=16, eval_every=3, eval_elements=500, warmup_steps=2)
    return TrainerConfig(**{**base, **kw})


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_interrupt_and_resume_equals_a_straight_run(tmp_path, schedule):
    straight = tiny_model()
    Trainer(straight, config(schedule=schedule), checkpoints_in(tmp_path / "a")).fit(TRAIN, VALID)

    def stop_at_5(trainer, progress):
        if progress.step == 5:
            trainer.request_stop()

    first = tiny_model()
    trainer = Trainer(first, config(schedule=schedule), checkpoints_in(tmp_path / "b"), callbacks=[stop_at_5])
    result = trainer.fit(TRAIN, VALID)
    assert result.stopped_because == "interrupted" and result.steps == 5
    assert json.loads((tmp_path / "b/last/trainer.json").read_text())["progress"]["step"] == 5

    resumed = tiny_model()  # fresh weights: everything must come from the checkpoint
    result = Trainer(resumed, config(schedule=schedule), checkpoints_in(tmp_path / "b")).fit(TRAIN, VALID, resume=True)
    assert result.steps == 8
    assert_same_weights(weights(resumed), weights(straight))
    # and the carried hidden state saved at the end is the same too
    a, b = (
        load_file(str(tmp_path / "a/last/carried.safetensors")),
        load_file(str(tmp_path / "b/last/carried.safetensors")),
    )
    assert_same_weights(a, b)


def test_steps_then_more_steps_equals_the_total(tmp_path):
    """Training N steps, then resuming with a budget of 2N, gives the weights of 2N straight (constant lr)."""
    straight = tiny_model()
    Trainer(straight, config(steps=8, schedule="constant"), checkpoints_in(tmp_path / "a")).fit(TRAIN, VALID)
    part = tiny_model()
    Trainer(part, config(steps=4, schedule="constant"), checkpoints_in(tmp_path / "b")).fit(TRAIN, VALID)
    assert not all(torch.equal(a, b) for a, b in zip(weights(part).values(), weights(straight).values(), strict=True))
    rest = tiny_model()
    Trainer(rest, config(steps=8, schedule="constant"), checkpoints_in(tmp_path / "b")).fit(TRAIN, VALID, resume=True)
    assert_same_weights(weights(rest), weights(straight))


def test_training_lowers_the_validation_loss(tmp_path):
    model = tiny_model()
    untrained = float(-model.log_prob(VALID[:500]).mean())
    trainer = Trainer(
        model, config(steps=90, eval_every=30, lr=1e-2, batch_size=8, window=32), checkpoints_in(tmp_path)
    )
    result = trainer.fit(TRAIN, VALID)
    nlls = [h["valid_nll"] for h in result.history]
    assert len(nlls) == 3 and nlls[-1] < nlls[0] < untrained - 0.5


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(trainer, progress):
        if progress.step == 4:
            with torch.no_grad():
                trainer.model.out.weight.fill_(float("nan"))

    trainer = Trainer(tiny_model(), config(), checkpoints_in(tmp_path), callbacks=[poison])
    with pytest.raises(TrainingDiverged, match="step 5: the loss became nan.*step 3.* kept") as error:
        trainer.fit(TRAIN, VALID)
    assert error.value.names == ("lr",)  # the setting to lower, by its field name: the interface spells it
    saved = json.loads((tmp_path / "last/trainer.json").read_text())
    assert saved["progress"]["step"] == 3
    assert all(torch.isfinite(v).all() for v in load_file(str(tmp_path / "last/model.safetensors")).values())


def fake_clock(monkeypatch, seconds_per_call: float) -> None:
    """The Trainer's clock advances ``seconds_per_call`` each time it is read: a time budget without wall time."""
    ticks = itertools.count()
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(ticks) * seconds_per_call)


def test_time_budget_stops_training(monkeypatch):
    fake_clock(monkeypatch, 0.25)  # read once at the start and once per step: 0.25 s a step
    result = Trainer(tiny_model(), config(steps=None, time_budget=1.0)).fit(TRAIN, VALID)
    assert result.stopped_because == "reached the time budget of 1 s"
    assert result.steps == 4 and result.elapsed == 1.0
    assert [h["step"] for h in result.history] == [3, 4]  # eval_every 3, and the budget's end


def test_progress_bar_shows_steps_loss_throughput_and_validation_in_the_datas_elements(capsys):
    trainer = Trainer(tiny_model(), config(steps=6, eval_every=3))
    with shown_progress.shown(trainer, "characters", enabled=True):
        trainer.fit(TRAIN, VALID)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]  # the bar as it was left
    assert "6/6" in last and "step=6" in last and "loss=" in last and "valid bits=" in last
    assert "characters/s=" in last and "chars/s" not in last
    assert trainer.callbacks == []  # the bar was a callback for the block only


def test_the_trainer_prints_nothing(capsys):
    Trainer(tiny_model(), config(steps=3)).fit(TRAIN, VALID)
    assert capsys.readouterr() == ("", "")


def test_early_stopping(monkeypatch):
    scores = iter([3.0, 2.0, 2.5, 2.0, 2.0, 1.0])  # no improvement in the 3rd and 4th validations
    monkeypatch.setattr(Trainer, "validation_nll", lambda self, valid, limit: next(scores))
    result = Trainer(tiny_model(), config(steps=100, eval_every=2, patience=2)).fit(TRAIN, VALID)
    assert result.stopped_because == "early stopping: no improvement in 2 validations"
    assert result.steps == 8 and result.best_valid_nll == 2.0


def test_text_shorter_than_a_window():
    with pytest.raises(SeqlabError, match="shorter than one training window"):
        WindowStream(TRAIN[:100], batch_size=4, window=32, seed=0)


def test_windows_are_consecutive_within_an_epoch():
    stream = WindowStream(TRAIN, batch_size=3, window=10, seed=0)
    first, start = stream.window(0)
    second, _ = stream.window(1)
    assert start and first.shape == (3, 11)
    assert torch.equal(first[:, -1], second[:, 0])  # the state carried across windows sees contiguous text


@pytest.mark.slow  # a subprocess importing torch: in CI's slow pass
def test_a_finished_worker_exits_with_its_code_and_its_output():
    """exit_worker skips the interpreter's teardown (os._exit), so it must flush what is still buffered."""
    code = "import sys; from seqlab.cli import exit_worker; sys.stdout.write('kept'); exit_worker(3)"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe: block-buffered
    done = subprocess.run(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=buffered
    )
    assert (done.returncode, done.stdout) == (3, "kept")


@pytest.mark.slow
@pytest.mark.cross_process
def test_data_parallel_training_matches_one_process(tmp_path):
    """torchrun with 2 CPU processes (gloo) gives the weights of one process on the same global batch."""
    data = write_small_text(tmp_path)
    common = [
        "train",
        "--data",
        str(data),
        "--steps",
        "4",
        *TINY_MODEL,
        *TINY_TRAINING,
        "--batch-size",
        "4",
        "--sample-length",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "seqlab", *common, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "seqlab",
            *common,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_file(str(tmp_path / "one/last/model.safetensors"))
    b = load_file(str(tmp_path / "two/last/model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), k
    carried_one = load_file(str(tmp_path / "one/last/carried.safetensors"))
    carried_two = load_file(str(tmp_path / "two/last/carried.safetensors"))
    assert carried_two["state_0"].shape == carried_one["state_0"].shape == (1, 4, 8)  # (L, B, H) of the LSTM's h


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    data = write_small_text(tmp_path)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "seqlab",
        "train",
        "--data",
        str(data),
        "--steps",
        "100000",
        *TINY_MODEL,
        *TINY_TRAINING,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # until the loop is running: no deadline, since a busy machine takes longer to get there (a deadline sent the
    # signal before the first checkpoint); a training that ends first fails the test at once
    while not (out / "last" / "trainer.json").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted at step" in stdout
    step = json.loads((out / "last/trainer.json").read_text())["progress"]["step"]
    assert step > 0
    resumed = subprocess.run(
        [*cmd[:4], "--resume", "--steps", str(step + 3), "--out", str(out), "--no-progress", "--sample-length", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "last/trainer.json").read_text())["progress"]["step"] == step + 3


def test_a_busy_cpu_gets_a_notice(monkeypatch):
    monkeypatch.setattr(shown_progress.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    monkeypatch.setattr(shown_progress.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(shown_progress.torch, "get_num_threads", lambda: 2)
    assert "the CPU is busy (load 8.0 on 2 cores)" in shown_progress.busy_cpu_notice()
    assert "OMP_NUM_THREADS=1" in shown_progress.busy_cpu_notice()
    monkeypatch.setattr(shown_progress.torch, "get_num_threads", lambda: 1)
    assert shown_progress.busy_cpu_notice() == ""
    monkeypatch.setattr(shown_progress.os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    monkeypatch.setattr(shown_progress.torch, "get_num_threads", lambda: 2)
    assert shown_progress.busy_cpu_notice() == ""
