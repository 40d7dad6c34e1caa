"""Output files that are not plain files (issue 35, item 1): ``--out`` never swaps what the user named for a new
regular file. A FIFO, a character device or "-" (stdout) is written into, a symlink is followed (its target is
replaced atomically, the link stays), a block device is refused, and a folder where no file can be made (/proc)
is a one-line error naming the user's path, not seqlab's temporary file.

The real /dev/null is never a target here where it could be replaced: as root (who could replace it) the tests
make their own null device in tmp_path; only where /dev is not writable do they write to /dev/null itself."""

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from helpers import SMALL_TEXT, assert_one_line_error, run_cli

from seqlab import SeqlabError, atomic, io
from seqlab.data import Vocabulary
from seqlab.data.audio import MuLaw
from seqlab.models import LatentAR, LatentARConfig


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained mu-law audio, series and text models, and a price CSV for the series one."""
    directory = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    io.save(LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=4, embedding_dim=2)), directory / "audio")
    series = torch.from_numpy(0.01 * np.random.default_rng(0).standard_normal(200))
    io.save(LatentAR.for_series(series, LatentARConfig(cell="gru", hidden_size=4)), directory / "series")
    io.save(
        LatentAR(Vocabulary.from_text(SMALL_TEXT), LatentARConfig(hidden_size=4, embedding_dim=2)), directory / "text"
    )
    (directory / "prices.csv").write_text("Close\n" + "".join(f"{p}\n" for p in 50 * np.exp(np.cumsum(series.numpy()))))
    (directory / "text.txt").write_text(SMALL_TEXT[:300], encoding="utf-8")
    return directory


def command(models: Path, kind: str, out: Path | str) -> list[str]:
    """A cheap run of each command that takes ``--out FILE``."""
    return {
        "sample": ["sample", str(models / "audio"), "--seconds", "0.01", "--seed", "0"],
        "forecast": ["forecast", str(models / "series"), "--data", str(models / "prices.csv"), "--horizon", "2"],
        "explore": ["explore", str(models / "text"), "--data", str(models / "text.txt"), "--chars", "50"],
    }[kind] + ["--out", str(out), *(["--samples", "20"] if kind == "forecast" else [])]


MAGIC = {"sample": b"RIFF", "forecast": b"step,", "explore": b"<!DOCTYPE html>"}


def read_in_thread(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """A reader of ``fifo`` (the writer's open blocks until one opens it); what it read lands in the list."""
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=read, daemon=True)  # daemon: a FIFO never written leaves it blocked
    thread.start()
    return thread, got


@pytest.fixture
def null_device(tmp_path) -> Path:
    """A character device that discards what is written: our own node (1, 3) where we may make one (root, who
    could also replace /dev/null), else /dev/null where /dev is read-only to us (no regression can replace it)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.close(os.open(node, os.O_WRONLY))  # a nodev mount refuses to open it
        return node
    except OSError:
        if os.path.exists("/dev/null") and not os.access("/dev", os.W_OK):
            return Path("/dev/null")
    pytest.skip("cannot make a null device here, and /dev is writable: not writing to the real /dev/null")


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = read_in_thread(fifo)
    atomic.write_bytes(fifo, b"through the pipe")
    thread.join(10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_character_device_is_written_into_not_replaced(null_device):
    atomic.write_bytes(null_device, b"gone")
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)


def test_a_symlink_is_followed_its_target_replaced_and_the_link_kept(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "table.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(Path("real") / "table.csv")
    atomic.write_bytes(link, b"new\n")
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "table.csv")
    assert target.read_bytes() == b"new\n"
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real"] and os.listdir(tmp_path / "real") == ["table.csv"]
    dangling = tmp_path / "new-link"
    dangling.symlink_to(tmp_path / "real" / "made.csv")
    atomic.write_bytes(dangling, b"made\n")  # as the shell's > does: the file the link names is created
    assert dangling.is_symlink() and (tmp_path / "real" / "made.csv").read_bytes() == b"made\n"


def test_dash_is_standard_output(capsysbinary):
    atomic.write_bytes(Path("-"), b"RIFF\x00\x01")
    assert capsysbinary.readouterr().out == b"RIFF\x00\x01"


def test_a_block_device_is_refused_and_kept(tmp_path):
    node = tmp_path / "disk"
    try:  # a device number no driver has: nothing real behind it, whatever a regression does
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(4000, 0))
    except OSError:
        pytest.skip("cannot make a device node here")
    with pytest.raises(SeqlabError, match="block device"):
        atomic.write_bytes(node, b"x")
    assert stat.S_ISBLK(os.lstat(node).st_mode)


@pytest.mark.parametrize("kind", ["sample", "forecast", "explore"])
def test_out_into_a_fifo(models, tmp_path, capsys, kind):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = read_in_thread(fifo)
    code, _, err = run_cli(command(models, kind, fifo), capsys)
    thread.join(10)
    assert code == 0, err
    assert len(got) == 1 and got[0].startswith(MAGIC[kind])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


@pytest.mark.parametrize("kind", ["sample", "forecast", "explore"])
def test_out_through_a_symlink_and_into_a_null_device(models, tmp_path, capsys, kind, null_device):
    target = tmp_path / "target"
    target.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(target)
    code, _, err = run_cli(command(models, kind, link), capsys)
    assert code == 0, err
    assert link.is_symlink() and target.read_bytes().startswith(MAGIC[kind])
    code, _, err = run_cli(command(models, kind, null_device), capsys)
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(null_device).st_mode)


def test_sample_out_dash_writes_the_wav_to_stdout_and_its_lines_to_stderr(models, capsysbinary):
    code, out, err = run_cli(command(models, "sample", "-"), capsysbinary)  # run_cli reads bytes here
    assert code == 0, err
    assert out.startswith(b"RIFF") and len(out) == 44 + 2 * 80  # the header and 80 16-bit samples, nothing else
    assert b"seqlab: wrote -: 0.01 s" in err


def test_forecast_out_dash_writes_the_csv_alone_to_stdout(models, capsys):
    code, out, err = run_cli(command(models, "forecast", "-"), capsys)
    assert code == 0, err
    assert out.startswith("step,") and len(out.splitlines()) == 3  # the header and two steps, nothing else
    assert "seqlab: wrote -" in err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc")
@pytest.mark.parametrize("kind", ["sample", "forecast", "explore"])
def test_out_where_no_file_can_be_made_is_one_line_naming_it(models, capsys, kind):
    code, _, err = run_cli(command(models, kind, "/proc/x.out"), capsys)
    assert_one_line_error(code, err, "/proc/x.out", "cannot write it")
    assert ".tmp-" not in err and not os.path.exists("/proc/x.out")


def test_evaluate_voice_out_into_a_fifo(models, tmp_path, capsys):
    wav = tmp_path / "tone.wav"
    soundfile.write(str(wav), 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000), 8000, subtype="PCM_16")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    thread, got = read_in_thread(fifo)
    argv = ["evaluate", str(models / "audio"), "--voice", "--seconds", "0.2", "--data", str(wav), "--out", str(fifo)]
    code, _, err = run_cli(argv, capsys)
    thread.join(10)
    assert code == 0, err
    assert len(got) == 1 and got[0].startswith(b"RIFF") and stat.S_ISFIFO(os.lstat(fifo).st_mode)
