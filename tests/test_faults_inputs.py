"""Hostile and surprising input files: a local file always wins over a bundled name, special and huge files are
refused before any read, a BOM is not a symbol, dates with time zones parse, a float WAV holding NaN is refused
at its sample, and a constant series gets a clear error."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from seqlab import SeqlabError
from seqlab.data import bundled_data, load_audio, load_series, load_text, resolve
from seqlab.models import LinearAR

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
