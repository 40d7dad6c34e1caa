"""Run directories that cannot eat user data: compared at every depth against what seqlab writes, marked, locked,
overwritten only when safe and only after the new run has its first checkpoint, never through a symlink or onto
the working directory; seqlab's own temporary files cleaned, a training.json that lags its weights detected."""

import json
import math
import os
import signal

import pytest
import torch
from helpers import SMALL_TEXT

from seqlab import SeqlabError, atomic
from seqlab.data import Vocabulary
from seqlab.errors import OptionError
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs.checkpoints import RunCheckpoints, training_record
from seqlab.runs.run_directory import LOCK_FILE, MARKER_FILE, RunDirectory, is_marked
from seqlab.training import Trainer, TrainerConfig, TrainingDiverged

TEXT = SMALL_TEXT[:2_000]


def spelled(error: OptionError) -> str:
    """The message as the CLI shows it: each setting named as its option (``out`` -> ``--out``)."""
    return error.render(lambda name: "--" + name.replace("_", "-"))


def make_run(path, version: int) -> None:
    """A finished run: marked, with a best model and a last/ checkpoint that name their version."""
    with RunDirectory.create(path) as run:
        atomic.write_json(run.work / "config.json", {"version": version})
        atomic.write_dir_atomically(
            run.work / "last", lambda tmp: atomic.write_json(tmp / "trainer.json", {"v": version})
        )


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
            except OptionError as e:
                message = spelled(e)
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
    with pytest.raises(OptionError) as refused:
        RunDirectory.create(target, overwrite=True)
    assert spelled(refused.value).startswith("--out ")
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
    with pytest.raises(OptionError, match="already holds a run; use resume to continue it or overwrite"):
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
    assert version(path) == 1 and (path / "last" / "trainer.json").exists()
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
    config = TrainerConfig(steps=steps, batch_size=2, window=8, eval_every=2, eval_elements=100)
    return Trainer(model, config, RunCheckpoints(run, {})), vocab.encode(TEXT)


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

        def diverge(trainer, progress):
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = math.inf

        trainer.callbacks.append(diverge)
        trainer.fit(ids[:1500], ids[1500:])
    assert version(path) == 1 and (path / "last" / "trainer.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def trained_run(path) -> None:
    """A real run folder: a best model, training.json and last/, as ``seqlab train`` leaves it."""
    with RunDirectory.create(path) as run:
        trainer, ids = _trainer_into(run, steps=2)
        trainer.fit(ids[:1500], ids[1500:])


def every_file(path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "plant, named",
    [
        (lambda run: (run / "last" / "mine.txt").write_text("mine"), "last/mine.txt"),
        (
            lambda run: (run / "last" / "analysis").mkdir() or (run / "last/analysis/plot.py").write_text("x"),
            "last/analysis",
        ),
        (lambda run: (run / "last" / "trainer.json.bak").write_text("{}"), "last/trainer.json.bak"),
        (
            lambda run: (run / ".last.tmp-123").mkdir() or (run / ".last.tmp-123/notes.txt").write_text("x"),
            ".last.tmp-123/notes.txt",
        ),
        (
            lambda run: (run / "last" / "optimizer.pt").unlink() or (run / "last/optimizer.pt").mkdir(),
            "last/optimizer.pt",
        ),
        (lambda run: (run / "last" / "link").symlink_to(run / "config.json"), "last/link"),
        (lambda run: (run / ".notes.tmp-123").write_text("x"), ".notes.tmp-123"),
    ],
    ids=[
        "file-in-last",
        "folder-in-last",
        "unknown-name",
        "inside-a-leftover",
        "folder-for-a-file",
        "symlink",
        "tmp-name",
    ],
)
@pytest.mark.parametrize("options", [{"overwrite": True}, {"resume": True}], ids=["overwrite", "resume"])
def test_files_seqlab_did_not_write_at_any_depth_are_refused_and_kept(tmp_path, plant, named, options):
    path = tmp_path / "run"
    trained_run(path)
    plant(path)
    before = every_file(path)
    with pytest.raises(SeqlabError, match=f"holds files seqlab did not write \\({named}\\)"):
        RunDirectory.create(path, **options)
    assert every_file(path) == before  # refused before anything was replaced, removed or written


def test_seqlab_files_at_every_depth_are_its_own(tmp_path):
    path = tmp_path / "run"
    trained_run(path)
    (path / ".last.old-123").mkdir()  # a checkpoint swap's leftover, holding only checkpoint files
    (path / ".last.old-123" / "trainer.json").write_text("{}")
    (path / "last" / ".trainer.json.tmp-123").write_text("{}")
    with RunDirectory.create(path, resume=True):
        pass


def test_seqlab_temporary_files_a_kill_left_at_the_top_are_removed_when_the_run_is_claimed(tmp_path):
    path = tmp_path / "run"
    trained_run(path)
    dead_and_alive = [f".config.json.tmp-{2**22 + 1}", f".training.json.tmp-{os.getpid()}", ".model.safetensors.tmp-1"]
    for name in dead_and_alive:  # the lock says no seqlab process writes here now, whatever the PID
        (path / name).write_text("half a file")
    with RunDirectory.create(path, resume=True):
        assert not any((path / name).exists() for name in dead_and_alive)
    assert (path / "config.json").exists() and (path / "last").is_dir()


def test_a_training_json_that_lags_its_weights_is_detected(tmp_path):
    """A kill between the writes of a new best model (model.safetensors, then training.json) left a record of
    the previous best beside the new weights: the reader says so instead of showing the wrong score."""
    path = tmp_path / "run"
    trained_run(path)
    assert training_record(path)["progress"]["step"] == 2  # consistent: read as written
    weights = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes((path / "last" / "model.safetensors").read_bytes()[:-1] + b" ")
    with pytest.raises(SeqlabError, match="training.json: describes the weights of an earlier validation"):
        training_record(path)
    (path / "model.safetensors").write_bytes(weights)
    assert training_record(path)["progress"]["step"] == 2
