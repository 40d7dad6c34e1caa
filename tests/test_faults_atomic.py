"""Faults in the checkpoint swap: a crash, a Ctrl-C, a SIGTERM or a SIGKILL at every step and at every rename
and fsync leaves a checkpoint the next reader finds whole (the old one or the new one, never a mix, never none).

Three ways to crash: a test hook that raises between steps (in process), a forked child killed with SIGKILL at
each step, and a real process that strace kills at its Nth rename or fsync system call."""

import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest
import torch
from helpers import tiny_latent_ar

import seqlab
from seqlab import SeqlabError, atomic
from seqlab.data import Vocabulary

STEPS = ("write", "complete", "rename-old", "rename-new", "remove-old")
OLD_STAYS = ("write", "complete", "rename-old")  # a crash there: the old checkpoint is still the one in place
VOCAB = Vocabulary.from_text("abc")


tiny_model = partial(tiny_latent_ar, VOCAB, cell="gru", hidden_size=3, embedding_dim=2)  # seeded by the version


def write_version(version: int):
    """A checkpoint as the Trainer writes one: a model (two files) plus two JSON files naming the version."""

    def write(tmp: Path) -> None:
        seqlab.io.save(tiny_model(version), tmp)
        atomic.write_json(tmp / "a.json", {"version": version})
        atomic.write_json(tmp / "b.json", {"version": version})

    return write


def read_version(path: Path) -> int:
    """What the next run finds: a model that loads and two JSON files that agree."""
    model = seqlab.load(path)  # recovers an interrupted swap first
    a, b = (json.loads((path / name).read_text())["version"] for name in ("a.json", "b.json"))
    assert a == b, f"a mix of two checkpoints: a.json {a}, b.json {b}"
    expected = tiny_model(a).state_dict()
    assert all(torch.equal(expected[k], v) for k, v in model.state_dict().items()), "weights of another version"
    return a


def assert_no_leftovers(path: Path) -> None:
    """After the next reader (``seqlab.load``) nothing but the checkpoint is left beside it."""
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("exception", [KeyboardInterrupt, OSError])
def test_a_crash_between_any_two_steps_leaves_a_whole_checkpoint(tmp_path, monkeypatch, step, exception):
    path = tmp_path / "last"
    atomic.write_dir_atomically(path, write_version(1))

    def crash(at: str) -> None:
        if at == step:
            raise exception(f"crash at {at}")

    monkeypatch.setattr(atomic, "fault_hook", crash)
    with pytest.raises(exception):
        atomic.write_dir_atomically(path, write_version(2))
    monkeypatch.setattr(atomic, "fault_hook", None)
    # until the old copy is moved aside it stays the checkpoint; from then on the new, complete one is
    assert read_version(path) == (1 if step in OLD_STAYS else 2)
    assert_no_leftovers(path)
    atomic.write_dir_atomically(path, write_version(3))  # and the next run writes on as usual
    assert read_version(path) == 3


def _killed_child(path: Path, step: str, first: bool) -> None:
    """Fork a child that writes version 1 (unless ``first``, where it is the first write) then version 2 and
    kills itself with SIGKILL at ``step`` of its last write."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, only the writes
        try:
            if not first:
                atomic.write_dir_atomically(path, write_version(1))
            atomic.fault_hook = lambda at: os.kill(os.getpid(), signal.SIGKILL) if at == step else None
            atomic.write_dir_atomically(path, write_version(2))
        finally:
            os._exit(0)  # reached only if the kill did not happen
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"the child was not killed at {step}"


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("first", [False, True], ids=["replacing", "first-write"])
def test_sigkill_at_any_step_leaves_a_whole_checkpoint(tmp_path, step, first):
    path = tmp_path / "last"
    _killed_child(path, step, first)
    if first and step == "write":
        assert not atomic.recover(path)  # nothing complete was ever written: nothing to find, nothing left over
        assert list(tmp_path.iterdir()) == []
        return
    # the first write has no old copy: once complete, the new one is restored even before its rename
    assert read_version(path) == (2 if first or step not in OLD_STAYS else 1)
    assert_no_leftovers(path)


# -- a real process, killed by strace at its Nth system call ----------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_faults_atomic import write_version
    from seqlab import SeqlabError, atomic
    path = Path(sys.argv[1])
    atomic.write_dir_atomically(path, write_version(1))
    atomic.write_dir_atomically(path, write_version(2))
    """
)


STRACE = ["-f", "-qq", "-o", os.devnull]  # a later "-o" overrides the log file; no --seccomp-bpf: it drops inject


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    command = ["strace", *STRACE, "-e", "inject=getpid:error=EPERM", "true"]
    return subprocess.run(command, capture_output=True).returncode == 0


needs_strace = pytest.mark.skipif(not _strace_works(), reason="strace is missing or ptrace is not permitted here")


def _run_writer(tmp_path: Path, inject: str | None) -> subprocess.CompletedProcess:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    command = [sys.executable, str(script), str(tmp_path / "run" / "last"), str(Path(__file__).parent)]
    if inject is not None:
        command = ["strace", *STRACE, "-e", f"inject={inject}", *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)  # no deadline


@pytest.fixture(scope="module")
def syscall_counts(tmp_path_factory) -> dict[str, int]:
    """How many renames and fsyncs one writer run makes (so the sweep covers every one)."""
    tmp_path = tmp_path_factory.mktemp("count")
    log = tmp_path / "strace.log"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    subprocess.run(
        ["strace", *STRACE, "-o", str(log), "-e", "trace=rename", sys.executable, str(script),
         str(tmp_path / "count" / "last"), str(Path(__file__).parent)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    calls = [line.split("(")[0].split()[-1] for line in log.read_text().splitlines() if "(" in line]
    return {"rename": calls.count("rename")}


SYSCALLS = ("rename", "replace", "fsync")  # the calls that move a checkpoint forward: each one a kill point


def _count_calls(monkeypatch, kill_at: tuple[str, int] | None = None) -> dict[str, int]:
    """Wrap os.rename, os.replace and os.fsync to count their calls; SIGKILL at call ``kill_at``."""
    counts = dict.fromkeys(SYSCALLS, 0)
    for name in SYSCALLS:
        real = getattr(os, name)

        def wrapped(*args, _name=name, _real=real):
            counts[_name] += 1
            if kill_at == (_name, counts[_name]):
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args)

        monkeypatch.setattr(os, name, wrapped)
    return counts


def test_sigkill_at_every_rename_and_fsync_leaves_a_whole_checkpoint(tmp_path, monkeypatch):
    """A forked child writes two checkpoints and is killed at its Nth rename / replace / fsync, for every N."""
    with monkeypatch.context() as m:
        counts = _count_calls(m)
        atomic.write_dir_atomically(tmp_path / "dry" / "last", write_version(1))
        first = dict(counts)  # the calls of the first checkpoint: a kill there may leave nothing at all
        atomic.write_dir_atomically(tmp_path / "dry" / "last", write_version(2))
    assert counts["rename"] + counts["replace"] >= 11 and counts["fsync"] >= 8, counts
    found = set()
    for syscall, n in [(name, n) for name, total in counts.items() for n in range(1, total + 1)]:
        path = tmp_path / f"{syscall}-{n}" / "last"
        pid = os.fork()
        if pid == 0:
            try:
                _count_calls(monkeypatch, kill_at=(syscall, n))
                atomic.write_dir_atomically(path, write_version(1))
                atomic.write_dir_atomically(path, write_version(2))
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL, f"not killed at {syscall} {n}"
        try:
            found.add(read_version(path))
        except SeqlabError:
            assert n <= first[syscall], f"killed at {syscall} {n}, after the first checkpoint: none found"
            found.add(0)
            assert list(path.parent.iterdir()) == [], "leftovers of a dead writer"
            continue
        assert_no_leftovers(path)
    assert found == {0, 1, 2}  # the sweep hit every phase: before the first checkpoint, between, after the swap


@pytest.mark.slow  # a Python process importing torch under strace (ptrace on every system call)
@needs_strace
@pytest.mark.parametrize("when", [-1, 0], ids=["old-aside", "new-in-place"])
def test_strace_sigkill_at_the_swap_renames_leaves_a_whole_checkpoint(tmp_path, syscall_counts, when):
    """strace kills a real writer process at the two renames of its second swap (old aside, new in place)."""
    n = syscall_counts["rename"] + when
    done = _run_writer(tmp_path, f"rename:signal=KILL:when={n}")
    assert done.returncode == -signal.SIGKILL, (n, done.returncode, done.stderr[-500:])
    path = tmp_path / "run" / "last"
    assert read_version(path) == 2 if when == 0 else read_version(path) in (1, 2)
    assert_no_leftovers(path)


@pytest.mark.slow  # a Python process importing torch under strace (ptrace on every system call)
@needs_strace
@pytest.mark.parametrize("signame", ["INT", "TERM"])
def test_a_signal_between_the_two_swap_renames_waits_for_the_swap(tmp_path, syscall_counts, signame):
    """Ctrl-C or SIGTERM delivered at the rename that moves the old copy aside (the new one not yet in place):
    the process still stops, but only after the swap, and the new checkpoint is whole."""
    old_aside = syscall_counts["rename"] - 1  # the second checkpoint's rename last -> .last.old-PID
    done = _run_writer(tmp_path, f"rename:signal={signame}:when={old_aside}")
    assert done.returncode != 0  # the signal did stop the process
    path = tmp_path / "run" / "last"
    assert read_version(path) == 2
    assert_no_leftovers(path)


def test_signals_wait_for_the_end_of_a_deferred_block():
    with pytest.raises(KeyboardInterrupt):
        with atomic.deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            reached = True  # the interrupt did not land inside the block
    assert reached


@pytest.mark.slow  # a Python process importing torch
def test_the_environment_hook_kills_a_real_process_at_a_named_step(tmp_path):
    """``SEQLAB_TEST_KILL_AT=STEP@N``: how a command-line run can be killed at a swap step without strace."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", atomic.FAULT_ENV: "rename-new@2"}  # the second swap, old aside
    path = tmp_path / "run" / "last"
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(Path(__file__).parent)], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-500:]
    assert not path.exists()  # killed with neither copy under the real name
    assert read_version(path) == 2  # the next reader puts the complete new copy back
    assert_no_leftovers(path)


# -- a full disk (issue 24, item 4): an OSError naming the user's file, the old version kept ---------------------


def _full_disk(self, *args, **kwargs):
    raise OSError(28, "No space left on device")  # as Python's own write reports it: no file name


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic.write_json(p, {"version": 2}),
        lambda p: atomic.write_safetensors(p, {"w": torch.zeros(3)}),
        lambda p: atomic.write_torch(p, {"step": torch.tensor(2)}),
    ],
    ids=["json", "safetensors", "torch"],
)
def test_a_full_disk_in_any_writer_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, write):
    path = tmp_path / "file"
    path.write_bytes(b"old")
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    monkeypatch.setattr(Path, "write_text", _full_disk)
    with pytest.raises(OSError) as caught:
        write(path)
    assert caught.value.errno == 28 and caught.value.filename == str(path)
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["file"]


def test_a_full_disk_inside_a_checkpoint_names_its_file_not_the_temporary_folder(tmp_path, monkeypatch):
    path = tmp_path / "last"
    atomic.write_dir_atomically(path, write_version(1))
    monkeypatch.setattr(Path, "write_bytes", _full_disk)
    with pytest.raises(OSError) as caught:
        atomic.write_dir_atomically(path, write_version(2))
    assert caught.value.filename == str(path / "model.safetensors"), caught.value.filename
    assert read_version(path) == 1
    assert_no_leftovers(path)


def test_a_folder_where_a_file_is_written_is_named_not_the_temporary_file(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        atomic.write_json(tmp_path / "out.csv", {})
    assert caught.value.filename == str(tmp_path / "out.csv") and ".tmp-" not in str(caught.value)


FULL_DISK_RUN = """
set -e
mount -t tmpfs -o size=420k tmpfs "$T"
set +e
"$PY" -m seqlab train --data "$DATA" --out "$T/m" --hidden 16 --steps 6 --eval-every 1 --no-progress 2> "$ERR"
echo "train exit $?"
"$PY" -c "import sys, seqlab; [seqlab.load(d).log_prob('the ') for d in sys.argv[1:]]; print('loaded')" \
    "$T/m" "$T/m/last"
"""


@pytest.mark.slow  # two Python processes importing torch, one training
def test_a_full_disk_while_training_says_so_and_keeps_the_last_checkpoint(tmp_path):
    """A real full disk: a 420 KiB tmpfs in a user and mount namespace (``unshare -rm``). The first checkpoint
    fits, a later one does not; torch's zip writer used to report "unexpected pos" as a bug in seqlab."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command: cannot mount a small tmpfs without root")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"])
    if probe.returncode != 0:
        pytest.skip("user and mount namespaces are not allowed here (unshare -rm failed)")
    data = tmp_path / "small.txt"
    symbols = string.ascii_letters + string.digits + ".,;:!?'- \n"  # 72 symbols: a 64 KB model, as in the issue
    data.write_text("".join(random.Random(0).choices(symbols, k=50_000)))
    (tmp_path / "T").mkdir()
    env = {**os.environ, "T": str(tmp_path / "T"), "PY": sys.executable, "DATA": str(data)}
    env |= {"ERR": str(tmp_path / "err"), "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(["unshare", "-rm", "sh", "-c", FULL_DISK_RUN], env=env, capture_output=True, text=True)
    err = (tmp_path / "err").read_text()
    assert "train exit 1" in run.stdout, (run.stdout, run.stderr, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the disk is full" in lines[0] and "internal error" not in err, err
    assert f"{tmp_path / 'T' / 'm'}/" in lines[0] and ".tmp-" not in lines[0], lines[0]
    assert "loaded" in run.stdout, (run.stdout, run.stderr)  # the best model and last/ both whole
