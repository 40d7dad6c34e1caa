"""One training data set of any kind, split into training and held-out parts, described by JSON-able options.

The options (``meta``) are saved with a trained model, so ``--resume``, ``evaluate`` and ``forecast`` rebuild
exactly the same split. The kind follows the file: ``.csv`` is a series, ``.wav`` (and other sound files)
audio, anything else text.

- text: the bundled Shakespeare holds out its last play; other files their last ``valid_fraction``;
- series: every series is transformed (``--transform``, fitted on the training parts) and its last
  ``valid_fraction`` (default 0.2) held out; several series are joined with a NaN between them;
- audio: resampled to ``sample_rate`` if given; the last ``valid_fraction`` held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqlab.data.audio import load_audio
from seqlab.data.bundled_data import resolve
from seqlab.data.files import load_text
from seqlab.data.series import Series, load_series
from seqlab.data.text import split_text
from seqlab.errors import SeqlabError
from seqlab.transforms import Transform

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
DEFAULT_VALID_FRACTION = {"text": 0.1, "series": 0.2, "audio": 0.1}
DEFAULT_TRANSFORM = "log_return"  # prices: model the daily log returns
AUDIO_ENCODINGS = ("mu_law", "raw")
ELEMENT_NAMES = {"text": "characters", "series": "values", "audio": "samples"}


def data_kind(data: str) -> str:
    suffix = resolve(data)[0].suffix.lower()
    return "series" if suffix == ".csv" else "audio" if suffix in AUDIO_SUFFIXES else "text"


@dataclass
class Dataset:
    kind: str  # "text", "series" or "audio"
    train: str | torch.Tensor  # text, or the elements: joined transformed series (float), audio samples
    valid: str | torch.Tensor
    meta: dict  # the options that rebuild this split, and its sizes
    transform: Transform | None = None
    series: list[Series] | None = None
    rate: int | None = None  # audio sample rate

    @property
    def elements(self) -> str:
        return ELEMENT_NAMES[self.kind]


def load_dataset(meta: dict) -> Dataset:
    """``meta``: ``data`` (path or bundled name) and the options of its kind (see ``train``'s flags)."""
    data = meta["data"]
    kind = data_kind(data)
    path, bundled = resolve(data)
    fraction = meta.get("valid_fraction") or DEFAULT_VALID_FRACTION[kind]
    if not 0.0 < fraction < 1.0:
        raise SeqlabError(f"--valid-fraction must be in (0, 1), got {fraction}")
    meta = {**meta, "data": data if bundled else str(path.resolve()), "kind": kind, "valid_fraction": fraction}
    if kind == "text":
        train, valid = split_text(load_text(path), fraction, bundled.valid_from if bundled else None)
        return Dataset(kind, train, valid, {**meta, "train_chars": len(train), "valid_chars": len(valid)})
    if kind == "audio":
        encoding = meta.setdefault("audio_encoding", "mu_law")
        if encoding not in AUDIO_ENCODINGS:
            raise SeqlabError(f"unknown audio encoding {encoding!r}; choose one of {', '.join(AUDIO_ENCODINGS)}")
        samples, rate = load_audio(path, meta.get("sample_rate"))
        cut = int(len(samples) * (1 - fraction))
        x = torch.from_numpy(samples)
        meta.update(sample_rate=rate, train_samples=cut, valid_samples=len(samples) - cut)
        return Dataset(kind, x[:cut], x[cut:], meta, rate=rate)
    return _series_dataset(path, meta, fraction)


def _series_dataset(path: Path, meta: dict, fraction: float) -> Dataset:
    series = load_series(
        path,
        meta.get("column"),
        meta.get("date_column"),
        meta.get("id_column"),
        meta.get("fill"),
        meta.get("covariates"),
    )
    transform = Transform.parse(meta.setdefault("transform", DEFAULT_TRANSFORM))
    cuts = [int(len(s) * (1 - fraction)) for s in series]
    for s, cut in zip(series, cuts, strict=True):
        if cut - transform.lost < 2 or len(s) - cut < 1:
            raise SeqlabError(
                f"{s.source}: {len(s)} rows are too few to hold out {fraction:g} of them and model the rest "
                f"(after --transform {transform}); give a longer series or a different --valid-fraction"
            )
    transform.fit([s.values[:cut] for s, cut in zip(series, cuts, strict=True)])
    train = [transform.apply(s.values[:cut], s.source, s.lines[:cut]) for s, cut in zip(series, cuts, strict=True)]
    # the held-out part starts where the training part ends: its first transformed value needs the last ones
    valid = [
        transform.apply(s.values[cut - transform.lost :], s.source, s.lines[cut - transform.lost :])
        for s, cut in zip(series, cuts, strict=True)
    ]
    if meta.get("covariates"):  # beside each transformed value, the covariates of its row
        lost = transform.lost
        train = [np.column_stack([y, s.covariates[lost:cut]]) for y, s, cut in zip(train, series, cuts, strict=True)]
        valid = [np.column_stack([y, s.covariates[cut:]]) for y, s, cut in zip(valid, series, cuts, strict=True)]
    meta.update(
        series=[s.name for s in series],
        column=",".join(dict.fromkeys(s.column for s in series)),
        train_values=int(sum(map(len, train))),
        valid_values=int(sum(map(len, valid))),
    )
    return Dataset("series", join_series(train), join_series(valid), meta, transform, series)


def join_series(pieces: list[np.ndarray]) -> torch.Tensor:
    """Several series as one float tensor with a NaN between them (the models read NaN as a gap)."""
    gap = np.full((1, *pieces[0].shape[1:]), np.nan) if pieces else np.full(1, np.nan)
    parts = [p for piece in pieces for p in (gap, piece)][1:]
    return torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(0, dtype=torch.float64)
