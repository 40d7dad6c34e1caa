"""Run directories that cannot eat user data: marked, locked, overwritten only when safe and only after the new
run has its first checkpoint, and never through a symlink or onto the working directory."""

import json
import math
import os
import signal

import pytest
import torch
from helpers import SMALL_TEXT

from seqlab import SeqlabError, atomic
from seqlab.data import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs.directory import LOCK_FILE, MARKER_FILE, RunDirectory, is_marked
from seqlab.training import Trainer, TrainerConfig, TrainingDiverged

TEXT = SMALL_TEXT[:2_000]


def make_run(path, version: int) -> None:
    """A finished run: marked, with a best model and a last/ checkpoint that name their version."""
    with RunDirectory.create(path) as run:
        atomic.write_json(run.work / "config.json", {"version": version})
        atomic.write_dir_atomically(run.work / "last", lambda tmp: atomic.write_json(tmp / "v.json", {"v": version}))


def version(path) -> int:
    return json.loads((path / "config.json").read_text())["version"]


def test_a_new_run_directory_is_created_marked_and_locked(tmp_path):
    path = tmp_path / "missing" / "parents" / "run"
    with RunDirectory.create(path) as run:
        assert run.work == path and is_marked(path)
        marker = json.loads((path / MARKER_FILE).read_text())
        assert marker["format"] == "seqlab-run" and marker["format_version"] == 1
        assert (path / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_a_second_process_is_refused_with_the_pid_of_the_first(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    with RunDirectory.create(path, resume=True):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a second process tries the same run
            os.close(read_end)
            try:
                RunDirectory.create(path, resume=True)
                message = "no error"
            except SeqlabError as e:
                message = str(e)
            os.write(write_end, message.encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        message = os.read(read_end, 4096).decode()
        assert message == f"--out {path}: in use by another seqlab process (PID {os.getpid()})"
        with pytest.raises(SeqlabError, match=f"in use by another seqlab process \\(PID {os.getpid()}\\)"):
            RunDirectory.create(path, overwrite=True)  # in this process too: a new open file, a new lock
    with RunDirectory.create(path, resume=True):  # released by close()
        pass


def test_overwrite_refuses_a_folder_holding_files_seqlab_did_not_write(tmp_path):
    path = tmp_path / "thesis"
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "thesis.tex").write_text("years of work")
    (path / "src").mkdir()
    with pytest.raises(SeqlabError, match=r"holds files seqlab did not write \(src, thesis.tex\)"):
        RunDirectory.create(path, overwrite=True)
    assert sorted(os.listdir(path)) == ["config.json", "src", "thesis.tex"]


def test_overwrite_refuses_an_unmarked_folder(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text("{}")  # a seqlab name, but nothing says seqlab wrote it
    with pytest.raises(SeqlabError, match="replaces only marked runs"):
        RunDirectory.create(path, overwrite=True)
    assert os.listdir(path) == ["config.json"]


@pytest.mark.parametrize("out", [".", "", "cwd", "parent"])
def test_never_the_working_directory_or_a_parent(tmp_path, monkeypatch, out):
    work = tmp_path / "project"
    work.mkdir()
    (work / MARKER_FILE).write_text(json.dumps({"format": "seqlab-run", "format_version": 1}))
    monkeypatch.chdir(work)
    target = {"cwd": str(work), "parent": str(tmp_path)}.get(out, out)
    with pytest.raises(SeqlabError, match="--out"):
        RunDirectory.create(target, overwrite=True)
    assert sorted(os.listdir(work)) == [MARKER_FILE]


def test_never_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    make_run(real, 1)
    link = tmp_path / "link"
    link.symlink_to(real)
    for options in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(SeqlabError, match="is a symlink"):
            RunDirectory.create(link, **options)
    assert version(real) == 1 and link.is_symlink()


def test_an_existing_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    with pytest.raises(SeqlabError, match="exists and is a file"):
        RunDirectory.create(path, overwrite=True)
    assert path.read_text() == "mine"


def test_without_overwrite_a_run_is_not_replaced(tmp_path):
    make_run(tmp_path / "run", 1)
    with pytest.raises(SeqlabError, match="already holds a run; use --resume to continue it or --overwrite"):
        RunDirectory.create(tmp_path / "run")


def test_overwrite_keeps_the_old_run_until_the_new_one_commits(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    run = RunDirectory.create(path, overwrite=True)
    assert run.work != path and run.work.parent == path.parent
    atomic.write_json(run.work / "config.json", {"version": 2})
    assert version(path) == 1  # nothing of the old run is gone yet
    assert run.commit() == path and run.work == path
    assert version(path) == 2 and not (path / "last").exists()
    run.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_run_that_fails_before_its_first_checkpoint_leaves_the_old_one(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    with pytest.raises(RuntimeError), RunDirectory.create(path, overwrite=True) as run:
        atomic.write_json(run.work / "config.json", {"version": 2})
        raise RuntimeError("diverged at step 2")
    assert version(path) == 1 and (path / "last" / "v.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("step", ["rename-old", "rename-new", "remove-old"])
def test_sigkill_during_commit_leaves_the_old_or_the_new_run(tmp_path, step):
    path = tmp_path / "run"
    make_run(path, 1)
    pid = os.fork()
    if pid == 0:
        try:
            run = RunDirectory.create(path, overwrite=True)
            atomic.write_json(run.work / "config.json", {"version": 2})
            atomic.fault_hook = lambda at: os.kill(os.getpid(), signal.SIGKILL) if at == step else None
            run.commit()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    atomic.recover(path)
    assert version(path) == (1 if step == "rename-old" else 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with RunDirectory.create(path, resume=True):  # the dead process's lock is gone with it
        pass


def test_the_next_run_finds_a_run_whose_overwrite_was_killed_between_the_renames(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    pid = os.fork()
    if pid == 0:
        try:
            run = RunDirectory.create(path, overwrite=True)
            atomic.write_json(run.work / "config.json", {"version": 2})
            atomic.fault_hook = lambda at: os.kill(os.getpid(), signal.SIGKILL) if at == "rename-new" else None
            run.commit()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == signal.SIGKILL
    assert not path.exists()  # the moment the issue describes: neither name in place
    with RunDirectory.create(path, resume=True) as run:  # no explicit recover: create() does it
        assert version(run.path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _trainer_into(run: RunDirectory, steps: int = 4):
    """The wiring phase 2 puts into ``seqlab train``: train into ``run.work``, commit at the first checkpoint."""
    torch.manual_seed(0)
    vocab = Vocabulary.from_text(TEXT)
    model = LatentAR(vocab, LatentARConfig(cell="gru", hidden_size=6, embedding_dim=3))
    config = TrainerConfig(steps=steps, batch_size=2, window=8, eval_every=2, eval_chars=100, progress=False)
    trainer = Trainer(model, config, out=run.work)
    trainer.after_checkpoint = lambda t: setattr(t, "out", run.commit())
    return trainer, vocab.encode(TEXT)


def test_an_overwriting_training_commits_at_its_first_checkpoint(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    with RunDirectory.create(path, overwrite=True) as run:
        trainer, ids = _trainer_into(run)
        trainer.fit(ids[:1500], ids[1500:])
    assert json.loads((path / "last" / "trainer.json").read_text())["progress"]["step"] == 4
    assert is_marked(path) and "version" not in json.loads((path / "config.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_overwriting_training_that_diverges_before_its_first_checkpoint_keeps_the_old_run(tmp_path):
    path = tmp_path / "run"
    make_run(path, 1)
    with pytest.raises(TrainingDiverged), RunDirectory.create(path, overwrite=True) as run:
        trainer, ids = _trainer_into(run)

        def diverge(trainer, step, loss):
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = math.inf

        trainer.fit(ids[:1500], ids[1500:], on_step=diverge)
    assert version(path) == 1 and (path / "last" / "v.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
