"""Reading data files with errors that say which file and where."""

from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np

from seqlab.data.bundled_data import resolve
from seqlab.errors import SeqlabError


def load_text(name_or_path: str | Path) -> str:
    """Read a UTF-8 text file (or a bundled name); refuse empty, binary and non-UTF-8 files."""
    path, _ = resolve(name_or_path)
    raw = path.read_bytes()
    if not raw:
        raise SeqlabError(f"{path}: the file is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _line_column(raw, nul)
        raise SeqlabError(f"{path}: looks binary (NUL byte at line {line}, column {column}), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = _line_column(raw, e.start)
        raise SeqlabError(
            f"{path}: not valid UTF-8 at line {line}, column {column} (byte 0x{raw[e.start]:02x}); "
            "convert it to UTF-8 first"
        ) from None
    return text.replace("\r\n", "\n")


def _line_column(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def load_csv(name_or_path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV with a header row: numeric columns become float64 arrays, others stay strings."""
    path, _ = resolve(name_or_path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise SeqlabError(f"{path}: expected a header row and at least one data row")
    header, body = rows[0], rows[1:]
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [row[j] if j < len(row) else "" for row in body]
        try:
            columns[name] = np.array([float(v) for v in values])
        except ValueError:
            columns[name] = np.array(values)
    return columns


def load_wav(name_or_path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV as float32 samples in [-1, 1] (channels averaged) and its sample rate."""
    path, _ = resolve(name_or_path)
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise SeqlabError(f"{path}: not a readable WAV file ({e})") from None
    if width != 2:
        raise SeqlabError(f"{path}: {8 * width}-bit WAV; only 16-bit PCM is read so far")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


def load(name_or_path: str | Path):
    """Load a bundled name or a path by its extension: .csv -> columns, .wav -> (samples, rate), else text."""
    path, _ = resolve(name_or_path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return load_csv(path)
    if suffix == ".wav":
        return load_wav(path)
    return load_text(path)
