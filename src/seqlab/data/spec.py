"""``DataSpec``: what a model is trained on, typed; ``load_dataset(spec)``: the one way to read it.

A spec is saved in ``config.json`` beside every model (``seqlab.save`` included), so ``evaluate``,
``sample``, ``forecast`` and ``train --resume`` rebuild exactly the same split, and a checkpoint can say what
it was trained on. The kind follows the file: ``.csv`` is a series, ``.wav`` (and other sound files) audio,
anything else text.

- text: the bundled Shakespeare holds out its last play; other files their last ``valid_fraction`` (0.1); the
  file is read through its token store (``seqlab.data.token_store``: encoded once, memory-mapped), read as
  ``encoding`` (UTF-8 by default), and the parts are ``TextPart`` views of it;
- series: every series is transformed (``transform``, fitted on the training parts; default ``log_return``)
  and its last ``valid_fraction`` (0.2) held out; several series are joined with a NaN between them;
- audio: resampled to ``sample_rate`` if given, encoded as ``audio_encoding``: ``vocoder`` (the default: 5 ms
  WORLD frames of voicing, log f0, envelope and aperiodicity, ``seqlab.data.vocoder``; the frame layout is kept
  in the spec's ``vocoder`` field), ``mu_law`` or ``raw`` samples; the last ``valid_fraction`` (0.1) held out.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from seqlab.data.audio import MAX_SAMPLE_RATE, load_audio
from seqlab.data.bundled_data import resolve
from seqlab.data.dataset import Dataset, data_kind, join_series
from seqlab.data.series import FILL_POLICIES, Series, load_series
from seqlab.data.token_store import codec_name, open_store, split_store
from seqlab.data.vocoder import VocoderLayout, analyse, analysis_rate
from seqlab.errors import OptionError, SeqlabError
from seqlab.transforms import Transform

DEFAULT_VALID_FRACTION = {"text": 0.1, "series": 0.2, "audio": 0.1}
DEFAULT_TRANSFORM = "log_return"  # prices: model the daily log returns
AUDIO_ENCODINGS = ("vocoder", "mu_law", "raw")
MIN_VOCODER_FRAMES = 40  # 0.2 s of 5 ms frames: fewer leave nothing for a frame model to learn or score
SERIES_FIELDS = ("column", "date_column", "id_column", "fill", "transform", "covariates", "features")
AUDIO_FIELDS = ("audio_encoding", "sample_rate")
TEXT_FIELDS = ("encoding",)
RECORDED_FIELDS = ("vocoder",)  # set when the data is read (the frame layout), never given as an option
STRING_FIELDS = ("source", *SERIES_FIELDS, "audio_encoding", *TEXT_FIELDS)  # a recorded spec's fields that hold text
# How values are encoded for a model (None: the kind's default); a trained model reads its data so encoded.
# Audio: vocoder frames by default; a model trained when mu-law was the default records its "mu_law" in its spec.
ENCODING_DEFAULTS = {"transform": DEFAULT_TRANSFORM, "audio_encoding": "vocoder"}


@dataclass(frozen=True)
class DataSpec:
    """The data a command reads: ``source`` (a path or a bundled name) and the options of its kind."""

    source: str = "shakespeare"
    valid_fraction: float | None = None  # held-out share at the end; None: the kind's default
    column: str | None = None  # CSV: value column(s), comma-separated for several series
    date_column: str | None = None  # CSV: the date column
    id_column: str | None = None  # CSV in long form: the column naming each row's series
    fill: str | None = None  # CSV: ffill, interpolate or drop missing values (None: refuse them)
    transform: str | None = None  # CSV: log, diff, log_return, standardize, none (comma-chained)
    covariates: str | None = None  # CSV: past covariate column(s), extra inputs of the neural models
    features: str | None = None  # CSV: derived past covariates after those (range: Parkinson's variance)
    audio_encoding: str | None = None  # audio: vocoder frames (the default), mu_law levels or raw values
    sample_rate: int | None = None  # audio: resample to this rate in Hz
    vocoder: dict | None = None  # audio_encoding vocoder: the frame layout (set when the data is read)
    encoding: str | None = None  # text: the file's character encoding (None: UTF-8; latin-1 reads any bytes)

    @property
    def kind(self) -> str:
        return data_kind(self.source)

    def validate(self) -> None:
        if self.valid_fraction is not None and not 0.0 < self.valid_fraction < 1.0:
            raise OptionError(f"{{0}} must be in (0, 1), got {self.valid_fraction}", "valid_fraction")
        if self.fill is not None and self.fill not in FILL_POLICIES:
            raise OptionError(f"unknown {{0}} {self.fill!r}; choose one of {', '.join(FILL_POLICIES)}", "fill")
        if self.sample_rate is not None and not 0 < self.sample_rate <= MAX_SAMPLE_RATE:
            why = (
                f"at most {MAX_SAMPLE_RATE} Hz (the highest rate audio is recorded at)"
                if self.sample_rate > 0
                else "a positive rate"
            )
            raise OptionError(f"{{0}} {self.sample_rate}: expected {why}", "sample_rate")
        if self.audio_encoding is not None and self.audio_encoding not in AUDIO_ENCODINGS:
            choices = ", ".join(AUDIO_ENCODINGS)
            raise OptionError(f"unknown {{0}} {self.audio_encoding!r}; choose one of {choices}", "audio_encoding")
        kind = self.kind
        wrong = [f for f in SERIES_FIELDS if kind != "series" and getattr(self, f) is not None]
        wrong += [f for f in AUDIO_FIELDS if kind != "audio" and getattr(self, f) is not None]
        wrong += [f for f in TEXT_FIELDS if kind != "text" and getattr(self, f) is not None]
        if self.encoding is not None:
            codec_name(self.encoding)
        if self.vocoder is not None and self.audio_encoding not in (None, "vocoder"):
            raise SeqlabError(f"a frame layout is recorded for {self.audio_encoding} audio, which has frames")
        if wrong:
            raise OptionError(f"{self.source}: {kind} data takes no {{all}} (a {_owner(wrong[0])} option)", *wrong)

    def resolved(self) -> DataSpec:
        """The same spec with the kind's defaults filled in and a local path made absolute."""
        path, bundled = resolve(self.source)
        kind = self.kind
        spec = replace(
            self,
            source=self.source if bundled else str(path.resolve()),
            valid_fraction=self.valid_fraction or DEFAULT_VALID_FRACTION[kind],
        )
        if kind == "series":
            spec = replace(spec, transform=self.transform or ENCODING_DEFAULTS["transform"])
        if kind == "audio":
            spec = replace(spec, audio_encoding=self.audio_encoding or ENCODING_DEFAULTS["audio_encoding"])
        return spec

    def check_encoding(self, given: dict) -> None:
        """This spec is what a model was trained on, ``given`` (DataSpec fields) what a command was told: other
        files, columns and rates may be given, but not another encoding (``ENCODING_DEFAULTS``: the transform of a
        series, the audio encoding), which the model's inputs are built on."""
        for name, default in ENCODING_DEFAULTS.items():
            recorded = getattr(self, name) or default
            if given.get(name) is not None and given[name] != recorded:
                raise OptionError(f"{{0}} {given[name]}: the model was trained with {{0}} {recorded}", name)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict, where: str = "data") -> DataSpec:
        """From ``to_json`` (or the ``meta`` of a training.json written before specs: ``data`` names the source).
        ``data`` is a checkpoint's record (``where`` names it there: ``data`` in config.json, ``meta`` in
        training.json), so every field is checked (``check_recorded``) before it is used."""
        if not isinstance(data, dict):
            raise SeqlabError(f"{where} = {data!r:.40}: expected an object (a data spec)")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "source" not in values and "data" in data:
            values["source"] = data["data"]
        if "source" not in values:
            raise SeqlabError(f"{where}: no source (a data spec needs one)")
        spec = cls(**values)
        spec.check_recorded(where)
        return spec

    def check_recorded(self, where: str) -> None:
        """The types and ranges of a recorded spec's fields, each refused in one line naming ``where.FIELD`` and
        what was expected (an option's own check, ``validate``, would blame an option the user never gave), and
        its vocoder layout (``VocoderLayout.from_json``) with the rate it is analysed at."""

        def refuse(name: str, expected: str) -> SeqlabError:
            return SeqlabError(f"{where}.{name} = {getattr(self, name)!r:.40}: expected {expected}")

        for name in STRING_FIELDS:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise refuse(name, "a string")
        if not self.source:
            raise refuse("source", "a path or the name of bundled data")
        v = self.valid_fraction
        if v is not None and not (isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < 1):
            raise refuse("valid_fraction", "a number in (0, 1)")
        if self.fill not in (None, *FILL_POLICIES):
            raise refuse("fill", f"one of {', '.join(FILL_POLICIES)}")
        if self.audio_encoding not in (None, *AUDIO_ENCODINGS):
            raise refuse("audio_encoding", f"one of {', '.join(AUDIO_ENCODINGS)}")
        rate = self.sample_rate
        if rate is not None and (type(rate) is not int or not 0 < rate <= MAX_SAMPLE_RATE):
            raise refuse("sample_rate", f"a whole number of Hz in [1, {MAX_SAMPLE_RATE}]")
        if self.vocoder is None:
            return
        if self.audio_encoding not in (None, "vocoder"):
            raise refuse("vocoder", f"no frame layout ({self.audio_encoding} audio has no frames)")
        layout = VocoderLayout.from_json(self.vocoder, f"{where}.vocoder")
        if rate is not None and analysis_rate(rate) != layout.sample_rate:
            raise SeqlabError(
                f"{where}.vocoder.sample_rate = {layout.sample_rate}: expected {analysis_rate(rate)}, the rate audio "
                f"at {where}.sample_rate {rate} Hz is analysed at"
            )

    def describe(self) -> str:
        options = ", ".join(f"{k} {v}" for k, v in self.to_json().items() if k != "source")
        return self.source + (f" ({options})" if options else "")


def _owner(name: str) -> str:
    return "CSV" if name in SERIES_FIELDS else "text" if name in TEXT_FIELDS else "audio"


def load_dataset(
    spec: DataSpec | dict, progress: Callable[[float, float], None] | None = None, series: str | None = None
) -> Dataset:
    """Read ``spec``'s data and split it into training and held-out parts (see the module docstring);
    ``progress(seconds analysed, seconds in all)`` as the vocoder analyses audio (``vocoder.analyse``); ``series``:
    of a CSV with several series, that one alone (the others are neither checked nor split)."""
    spec = spec if isinstance(spec, DataSpec) else DataSpec.from_json(spec)
    spec.validate()
    spec = spec.resolved()
    path, bundled = resolve(spec.source)
    kind, fraction = spec.kind, spec.valid_fraction
    meta = {"data": spec.source, "kind": kind, **spec.to_json()}
    if kind == "text":  # parts of the token store: ids on disk, never the text in memory
        store = open_store(path, spec.encoding or "utf-8")
        cut = split_store(store, fraction, bundled.valid_from if bundled else None)
        train, valid = store.part(0, cut), store.part(cut, len(store))
        meta.update(train_chars=len(train), valid_chars=len(valid))
        return Dataset(kind, "text", train, valid, meta, spec=spec, store=store)
    if kind == "audio" and spec.audio_encoding == "vocoder":
        return _vocoder_dataset(path, spec, meta, progress)
    if kind == "audio":
        samples, rate = load_audio(path, spec.sample_rate)
        spec = replace(spec, sample_rate=rate)
        cut = int(len(samples) * (1 - fraction))
        x = torch.from_numpy(samples)
        meta.update(sample_rate=rate, train_samples=cut, valid_samples=len(samples) - cut)
        return Dataset(kind, spec.audio_encoding, x[:cut], x[cut:], meta, rate=rate, spec=spec)
    return _series_dataset(path, spec, meta, series)


def _vocoder_dataset(path: Path, spec: DataSpec, meta: dict, progress=None) -> Dataset:
    """WORLD frames (T, D) of the whole file, split at ``1 - valid_fraction``; the layout recorded in the spec."""
    samples, rate = load_audio(path, spec.sample_rate)
    layout = VocoderLayout.from_json(spec.vocoder) if spec.vocoder else VocoderLayout(analysis_rate(rate))
    frames = analyse(samples, rate, source=str(path), layout=layout, progress=progress)
    cut = int(len(frames) * (1 - spec.valid_fraction))
    if cut < MIN_VOCODER_FRAMES or len(frames) == cut:
        seconds = len(samples) / rate
        need = (MIN_VOCODER_FRAMES + 1) / (1 - spec.valid_fraction) * layout.frame_period_ms / 1000
        raise SeqlabError(
            f"{path}: {seconds:.3f} s of audio ({len(frames)} frames of {layout.frame_period_ms:g} ms) is too short: "
            f"a vocoder model needs {MIN_VOCODER_FRAMES} training frames and a held-out part (about {need:.2f} s)"
        )
    spec = replace(spec, sample_rate=rate, vocoder=layout.to_json())
    x = torch.from_numpy(frames)
    meta.update(
        sample_rate=rate,
        vocoder=layout.to_json(),
        train_frames=cut,
        valid_frames=len(frames) - cut,
        voiced_fraction=round(float(frames[:, 0].mean()), 4),
    )
    return Dataset("audio", "vocoder", x[:cut], x[cut:], meta, rate=layout.sample_rate, spec=spec)


def read_series(spec: DataSpec) -> list[Series]:
    """Every series of a CSV spec, whole (untransformed, unsplit): what a forecast conditions on."""
    return load_series(
        spec.source, spec.column, spec.date_column, spec.id_column, spec.fill, spec.covariates, spec.features
    )


def _series_dataset(path: Path, spec: DataSpec, meta: dict, only: str | None = None) -> Dataset:
    fraction = spec.valid_fraction
    series = read_series(spec)
    if only is not None:
        if not any(s.name == only for s in series):
            raise SeqlabError(f"no series {only!r}; the data holds: {', '.join(s.name for s in series)}")
        series = [s for s in series if s.name == only]
    transform = Transform.parse(spec.transform)
    cuts = [int(len(s) * (1 - fraction)) for s in series]
    for s, cut in zip(series, cuts, strict=True):
        if cut - transform.lost < 2 or len(s) - cut < 1:
            raise SeqlabError(
                f"{s.source}: {len(s)} rows are too few to hold out {fraction:g} of them and model the rest "
                f"(after transform {transform}); give a longer series or a smaller validation fraction"
            )
    transform.fit([s.values[:cut] for s, cut in zip(series, cuts, strict=True)])
    train = [transform.apply(s.values[:cut], s.source, s.lines[:cut]) for s, cut in zip(series, cuts, strict=True)]
    # the held-out part starts where the training part ends: its first transformed value needs the last ones
    valid = [
        transform.apply(s.values[cut - transform.lost :], s.source, s.lines[cut - transform.lost :])
        for s, cut in zip(series, cuts, strict=True)
    ]
    if spec.covariates or spec.features:  # beside each transformed value, the covariates of its row
        lost = transform.lost
        train = [np.column_stack([y, s.covariates[lost:cut]]) for y, s, cut in zip(train, series, cuts, strict=True)]
        valid = [np.column_stack([y, s.covariates[cut:]]) for y, s, cut in zip(valid, series, cuts, strict=True)]
    meta.update(
        series=[s.name for s in series],
        column=",".join(dict.fromkeys(s.column for s in series)),
        train_values=int(sum(map(len, train))),
        valid_values=int(sum(map(len, valid))),
    )
    return Dataset("series", "series", join_series(train), join_series(valid), meta, transform, series, spec=spec)
