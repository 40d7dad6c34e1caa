"""`seqlab train` on a run directory it must not damage: --overwrite replaces only a marked seqlab run, only after
the new run's first checkpoint, never `.`, a symlink or a folder holding the user's files; one process per run
folder; --resume finds a checkpoint an interrupted swap left behind. All through the command line, tiny models."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import TINY_MODEL, TINY_TRAINING, assert_one_line_error, write_small_text
from helpers import run_cli as run

from seqlab import io
from seqlab.runs.run_directory import LOCK_FILE
from seqlab.training import Trainer

TINY = [*TINY_MODEL, *TINY_TRAINING]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_small_text(tmp_path_factory.mktemp("data"))


def train(data, out, *extra):
    return ["train", "--data", str(data), "--steps", "2", *TINY, "--out", str(out), *extra]


def weights(path):
    return {k: v.clone() for k, v in io.load(path).state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_overwrite_never_deletes_a_folder_holding_the_users_files(data, tmp_path, capsys):
    thesis = tmp_path / "thesis"
    (thesis / "src").mkdir(parents=True)
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    (thesis / "src" / "main.py").write_text("print(1)")
    (thesis / "config.json").write_text("{}")  # looks like a model folder to the old rmtree rule
    code, _, err = run(train(data, thesis, "--overwrite"), capsys)
    assert_one_line_error(code, err, "holds files seqlab did not write", "thesis.tex")
    assert (thesis / "thesis.tex").read_text() == "\\documentclass{article}"
    assert (thesis / "src" / "main.py").exists() and (thesis / "config.json").read_text() == "{}"


def test_out_dot_is_refused_and_the_working_directory_kept(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "config.json").write_text("{}")
    for out in (".", str(tmp_path)):
        code, _, err = run(train(data, out, "--overwrite"), capsys)
        assert_one_line_error(code, err, "--out")
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "config.json").exists()


def test_overwrite_replaces_a_seqlab_run_once_the_new_run_has_a_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(train(data, out, "--seed", "1"), capsys)[0] == 0
    old = weights(out)
    assert run(train(data, out, "--overwrite", "--seed", "2"), capsys)[0] == 0
    assert not same_weights(old, weights(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no build-beside folder left


def diverge_at(monkeypatch, step: int) -> None:
    """Every training in this process turns a weight NaN at ``step``: a divergence at a known step, which no
    learning rate can promise on every machine."""
    original = Trainer.train_step

    def train_step(self, net, stream, progress, state):
        state = original(self, net, stream, progress, state)
        if progress.step == step:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = math.nan
        return state

    monkeypatch.setattr(Trainer, "train_step", train_step)


def test_a_run_diverging_at_step_2_under_overwrite_leaves_the_old_model(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run(train(data, out), capsys)[0] == 0
    old, files = weights(out), sorted(p.name for p in out.iterdir())
    diverge_at(monkeypatch, 2)
    code, _, err = run(train(data, out, "--overwrite", "--eval-every", "50"), capsys)
    assert_one_line_error(code, err, "training stopped at step 2", "no checkpoint had been written yet")
    assert err.strip().endswith("try a lower --lr")  # the Trainer names the field, the command line its option
    assert same_weights(old, weights(out)) and same_weights(old, weights(out / "last"))
    assert sorted(p.name for p in out.iterdir()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.slow  # a training process; in process: test_faults_run_directory.py
def test_a_second_concurrent_training_into_the_same_out_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = train(data, out, "--eval-every", "1000000")
    argv[argv.index("--steps") + 1] = "1000000"
    first = subprocess.Popen(
        [sys.executable, "-m", "seqlab", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:  # until the first one holds the lock, however long a busy machine takes to start it (no deadline: it
        # either writes its PID there or ends, and the test fails as soon as it ends)
        while not (out / LOCK_FILE).exists() or not (out / LOCK_FILE).read_text().strip():
            assert first.poll() is None, "the first training ended before it claimed the folder"
            time.sleep(0.05)
        code, _, err = run(train(data, out), capsys)
        assert_one_line_error(code, err, "already holds a run")
        for args in (train(data, out, "--overwrite"), ["train", "--resume", "--out", str(out)]):
            code, _, err = run(args, capsys)
            assert_one_line_error(code, err, f"in use by another seqlab process (PID {first.pid})")
        assert first.poll() is None  # the first one trains on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_out_an_existing_file_a_symlink_or_under_a_file_is_one_line(data, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    real = tmp_path / "real"
    assert run(train(data, real), capsys)[0] == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    for out, fragment in ((afile, "is a file"), (link, "symlink"), (afile / "run", "cannot create")):
        for extra in ([], ["--overwrite"]):
            code, _, err = run(train(data, out, *extra), capsys)
            assert_one_line_error(code, err, str(out), fragment)
    assert afile.read_text() == "mine" and link.is_symlink() and (real / "config.json").exists()


def test_a_missing_parent_folder_of_out_is_created(data, tmp_path, capsys):
    out = tmp_path / "missing" / "parent" / "run"
    assert run(train(data, out), capsys)[0] == 0
    assert io.load(out).kind == "latent_ar"


def test_resume_first_recovers_a_checkpoint_swap_a_kill_left_half_done(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(train(data, out), capsys)[0] == 0
    dead = 2**22 + 12345  # above the default pid_max: no live process has it
    (out / "last").rename(out / f".last.old-{dead}")  # killed between the two renames of a checkpoint swap
    code, _, err = run(["train", "--resume", "--out", str(out), "--steps", "4"], capsys)
    assert code == 0, err
    assert (out / "last").is_dir() and not (out / f".last.old-{dead}").exists()


def test_overwrite_and_resume_keep_the_users_files_inside_last(data, tmp_path, capsys):
    """The issue's reproduction: a file and a folder of the user's inside last/ survive --overwrite and --resume."""
    out = tmp_path / "r"
    assert run(train(data, out, "--eval-every", "1"), capsys)[0] == 0
    (out / "last" / "mine.txt").write_text("mine\n")
    (out / "last" / "analysis").mkdir()
    (out / "last" / "analysis" / "plot.py").write_text("x\n")
    for argv in (train(data, out, "--overwrite"), ["train", "--resume", "--out", str(out), "--steps", "5"]):
        code, _, err = run(argv, capsys)
        assert_one_line_error(code, err, "holds files seqlab did not write (last/analysis, last/mine.txt)")
    assert (out / "last" / "mine.txt").read_text() == "mine\n"
    assert (out / "last" / "analysis" / "plot.py").read_text() == "x\n"


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda saved: saved.update(extra=1), "unknown key 'extra'"),
        (lambda saved: saved["trainer_config"].update(lr=math.nan), "lr must be a finite number, got nan"),
    ],
    ids=["extra-key", "lr-nan"],
)
def test_resume_from_an_edited_trainer_json_is_one_line_naming_it(data, tmp_path, capsys, edit, fragment):
    out = tmp_path / "run"
    assert run(train(data, out), capsys)[0] == 0
    path = out / "last" / "trainer.json"
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))
    code, _, err = run(["train", "--resume", "--out", str(out), "--steps", "4"], capsys)
    assert_one_line_error(code, err, f"{path}: damaged or unexpected content", fragment)
    assert code == 1


@pytest.mark.parametrize("option", ["--clip", "--weight-decay"])
def test_a_setting_that_is_not_a_finite_number_is_refused(data, tmp_path, capsys, option):
    out = tmp_path / "run"
    code, _, err = run(train(data, out, option, "nan"), capsys)
    assert_one_line_error(code, err, f"{option} must be a finite number, got nan")
    assert not out.exists()  # refused before anything was written


def test_info_on_a_training_json_that_lags_its_weights_is_one_line(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(train(data, out, "--eval-every", "1"), capsys)[0] == 0
    weights_file = out / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:-1] + b" ")  # new weights, the old record beside them
    code, _, err = run(["info", str(out)], capsys)
    assert_one_line_error(code, err, "training.json: describes the weights of an earlier validation")
