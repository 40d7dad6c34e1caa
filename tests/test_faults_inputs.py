"""Hostile and surprising input files: a local file always wins over a bundled name, special and huge files are
refused before any read, a BOM is not a symbol, dates with time zones parse, a float WAV holding NaN is refused
at its sample, and a constant series gets a clear error."""

import os
import shlex
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_MODEL, TINY_TRAINING, assert_one_line_error, run_cli

from seqlab import SeqlabError, io
from seqlab.cli import main
from seqlab.data import Vocabulary, bundled_data, load_audio, load_series, load_text, resolve
from seqlab.data.audio import MuLaw, write_wav
from seqlab.models import LatentAR, LatentARConfig, LinearAR

LOCAL_CSV = "Date,Close\n" + "".join(f"2020-01-{d:02d},{100 + d}\n" for d in range(1, 11))


def test_a_local_file_wins_over_the_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "msft.csv").write_text(LOCAL_CSV)
    (tmp_path / "shakespeare.txt").write_text("my own play\n")
    [series] = load_series("msft.csv")
    assert len(series) == 10 and series.values[0] == 101
    assert load_text("shakespeare.txt") == "my own play\n"
    assert len(load_series("msft")[0]) > 1000  # the bare name is the bundled data set


def test_the_bundled_prefix_names_bundled_data_even_beside_a_local_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "msft").write_text("not a csv")
    path, entry = resolve("bundled:msft")
    assert entry is not None and path == bundled_data.BUNDLED["msft"].path
    assert resolve("msft") == (Path("msft"), None)  # a local file named like a bundled set wins
    with pytest.raises(SeqlabError, match="no bundled data set 'nope'"):
        resolve("bundled:nope")


def test_a_missing_file_named_like_a_bundled_one_is_an_error_not_bundled_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeqlabError, match="no such data file: msft.csv .*did you mean the bundled 'msft'"):
        resolve("msft.csv")


def test_a_fifo_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def unblock_a_reader() -> None:  # if a regression opens the FIFO, give it an end instead of a hang
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=unblock_a_reader, daemon=True).start()
    with pytest.raises(SeqlabError, match="is a FIFO, not a regular file"):
        load_text(fifo)


def test_a_device_is_refused_before_reading():
    with pytest.raises(SeqlabError, match="/dev/zero is a device, not a regular file"):
        resolve("/dev/zero")  # load_text would read it until memory runs out


def test_a_file_over_the_size_limit_is_refused_naming_the_limit(tmp_path, monkeypatch):
    assert bundled_data.MAX_DATA_BYTES == 2 * 2**30
    monkeypatch.setattr(bundled_data, "MAX_DATA_BYTES", 2**20)  # 1 MiB, so the test file stays small
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (2**20 + 1))
    with pytest.raises(SeqlabError, match="1,048,577 bytes is over seqlab's limit of 1,048,576 bytes"):
        load_text(big)


def test_a_utf8_bom_is_not_a_character_of_the_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello\n".encode())
    assert load_text(path) == "hello\n"
    only = tmp_path / "only-bom.txt"
    only.write_bytes("\ufeff".encode())
    with pytest.raises(SeqlabError, match="empty"):
        load_text(only)


def test_dates_with_time_zones(tmp_path):
    path = tmp_path / "tz.csv"
    rows = ["2020-01-01T09:30:00-05:00", "2020-01-01T16:00:00+01:00", "2020-01-02T09:30:00-05:00"]
    path.write_text("Date,Close\n" + "".join(f"{d},{i + 1}\n" for i, d in enumerate(rows)))
    [series] = load_series(path)
    assert series.dates.dtype == np.dtype("datetime64[ns]")  # in UTC: 14:30, 15:00, 14:30 the next day
    assert [str(d)[:16] for d in series.dates] == ["2020-01-01T14:30", "2020-01-01T15:00", "2020-01-02T14:30"]


def test_dates_that_collide_in_utc_are_named(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("Date,Close\n2020-01-01T10:00:00-05:00,1\n2020-01-01T16:00:00+01:00,2\n")
    with pytest.raises(SeqlabError, match="line 3: date .* repeats"):
        load_series(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_float_wav_with_a_non_finite_sample_is_refused_at_that_sample(tmp_path, bad):
    import soundfile

    samples = np.zeros(100, dtype=np.float32)
    samples[37] = bad
    path = tmp_path / "bad.wav"
    soundfile.write(str(path), samples, 8000, subtype="FLOAT")
    with pytest.raises(SeqlabError, match=r"sample 37 \(channel 0, at 0.005 s\) is (nan|inf)"):
        load_audio(path)


@pytest.mark.parametrize("order", [1, 3, "aic"])
def test_a_constant_series_is_a_clear_error_in_linear_ar(order):
    with pytest.raises(SeqlabError, match="constant"):
        LinearAR(order=order).fit(np.full(60, 2.5))


def test_a_deterministic_series_is_a_clear_error_in_linear_ar():
    with pytest.raises(SeqlabError, match="degenerate"):
        LinearAR(order=2).fit(np.arange(60.0))


# -- advice that works and options that mean something (issue 24, item 6) --------------------------------------


@pytest.fixture(scope="module")
def prices_run(tmp_path_factory):
    """A neural model of a local CSV, trained through the command line, and what train printed."""
    directory = tmp_path_factory.mktemp("prices")
    close = 20 * np.exp(np.cumsum(0.02 * np.random.default_rng(0).standard_normal(200)))
    days = np.datetime64("2001-01-01") + np.arange(200)
    csv = directory / "my prices.csv"  # a space: the printed command must quote it
    csv.write_text("Date,Close\n" + "".join(f"{d},{c:.4f}\n" for d, c in zip(days, close, strict=True)))
    argv = ["train", "--data", str(csv), "--out", str(directory / "model"), *TINY_MODEL, *TINY_TRAINING]
    code = main([*argv, "--steps", "2"])
    assert code == 0
    return directory, csv


def test_the_forecast_printed_after_training_on_a_local_csv_runs(prices_run, capsys, monkeypatch):
    directory, csv = prices_run
    argv = ["train", "--data", str(csv), "--out", str(directory / "again"), *TINY_MODEL, *TINY_TRAINING]
    capsys.readouterr()
    assert main([*argv, "--steps", "1"]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if "forecast with:" in x]
    command = shlex.split(line.split("forecast with: ", 1)[1])
    assert command[0] == "seqlab" and "--data" in command, command
    monkeypatch.chdir(directory)  # its --plot forecast.png lands here
    code, out, err = run_cli(command[1:], capsys)
    assert code == 0, err
    assert (directory / "forecast.png").exists()


def test_sample_advice_names_what_sample_can_do(capsys):
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch:
        model = LatentAR(Vocabulary.from_text("hello world"), LatentARConfig(hidden_size=4, embedding_dim=2))
        io.save(model, Path(scratch) / "m")
        code, _, err = run_cli(["sample", str(Path(scratch) / "m"), "--prompt", "héllo", "--length", "3"], capsys)
    assert_one_line_error(code, err, "--prompt", "'é'", "leave them out")
    assert "--unknown" not in err  # sample takes no --unknown


@pytest.mark.parametrize("command", ["sample", "forecast"])
def test_an_output_that_names_a_folder_is_refused_naming_it(prices_run, tmp_path, capsys, command):
    directory, csv = prices_run
    folder = tmp_path / "existing"
    folder.mkdir()
    if command == "sample":
        model = LatentAR(MuLaw(8000), LatentARConfig(hidden_size=4, embedding_dim=2))
        io.save(model, tmp_path / "audio")
        argv = ["sample", str(tmp_path / "audio"), "--seconds", "0.01", "--out", str(folder)]
    else:
        argv = ["forecast", str(directory / "model"), "--data", str(csv), "--horizon", "2", "--out", str(folder)]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, f"{folder}: is a directory")
    assert ".tmp-" not in err and folder.is_dir() and list(folder.iterdir()) == []


def test_a_folder_as_the_target_of_a_late_write_is_named_not_the_temporary_file(tmp_path):
    folder = tmp_path / "table.csv"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_wav(folder, np.zeros(10, dtype=np.float32), 8000)
    assert caught.value.filename == str(folder)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", ""],
        ["train", "--data", " "],
        ["evaluate", "runs/x", "--data", ""],
        ["forecast", "", "--horizon", "2"],
        ["sample", "runs/x", "--out", ""],
        ["train", "--lr", "nan"],  # --clip and --weight-decay nan: TrainerConfig refuses them (test_faults_cli_train)
        ["forecast", "runs/x", "--quantiles", "nan"],
    ],
)
def test_empty_names_and_non_finite_numbers_are_refused(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    assert_one_line_error(code, err)
    assert code == 2 and "expected" in err and out == ""
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written
