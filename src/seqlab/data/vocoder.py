"""Vocoder frames: a waveform analysed into 5 ms frames of speech parameters, and frames synthesised back.

The WORLD vocoder (Morise, Yokomori & Ozawa 2016; the ``pyworld`` wrapper, MIT) splits speech into

- f0, the fundamental frequency (Harvest, Morise 2017), 0 where a frame is unvoiced;
- the spectral envelope ``sp`` (CheapTrick), coded to ``envelope`` mel-cepstrum-like coefficients
  (WORLD's ``CodeSpectralEnvelope``: the log envelope on a mel scale, then a DCT);
- the aperiodicity ``ap`` (D4C), coded to band aperiodicities in dB (one band per 3 kHz above 3 kHz).

A frame, the element the model sees, is the vector (statistical parametric synthesis, Zen & Senior 2014)

    [ voiced,  log f0,  e_0 .. e_{E-1},  b_0 .. b_{A-1} ]                       (D = 2 + E + A,)

with ``voiced`` in {0, 1} and log f0 interpolated linearly through unvoiced frames (and held at both ends), so
it is continuous and a model can predict it everywhere; synthesis uses ``f0 = voiced * exp(log f0)``. A
``VocoderLayout`` names the columns and their groups and is saved with the model as JSON, so ``seqlab sample``
can resynthesise without the training data. WORLD needs at least 16 kHz for one aperiodicity band: audio is
analysed at ``analysis_rate(file rate)`` (16 kHz below it, 24 kHz above it, the file's rate between).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import numbers
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from seqlab.atomic import write_bytes
from seqlab.data.audio import resample
from seqlab.data.token_store import cache_root
from seqlab.errors import OptionError, SeqlabError

# pyworld 0.3.5 imports pkg_resources (hence setuptools < 81), which warns "pkg_resources is deprecated as an
# API" on every run of an audio command: that one warning is silenced, any other from the import still shows.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import pyworld

FRAME_PERIOD_MS = 5.0
ENVELOPE_COEFFICIENTS = 40
MIN_RATE, MAX_RATE = 16_000, 24_000  # WORLD codes no aperiodicity band below 16 kHz; above 24 kHz costs time
F0_FLOOR, F0_CEIL = 60.0, 500.0  # Hz: the pitch range Harvest searches (speech)
SYNTHESIS_FFT = 1024
# Bounds of a recorded layout (a checkpoint's say-so), within which WORLD neither crashes nor asks for more than
# a few times the memory of the default: 1e-6 Hz crashed Harvest, an f0 floor above WORLD's default f0 of
# unvoiced frames (500 Hz) gives an FFT shorter than CheapTrick's window for them (heap corruption), and a period
# of 0 ms is no frame at all.
MIN_FRAME_PERIOD_MS, MAX_FRAME_PERIOD_MS = 1.0, 20.0
MIN_F0_FLOOR, MAX_F0_FLOOR = 40.0, 500.0  # Hz; 40 is WORLD's lowest f0 (StoneMask's floor)
MAX_F0_CEIL = 1600.0  # Hz: above the highest sung pitch
ENVELOPE_PER_FFT = 4  # WORLD codes at most fft_size / 4 + 1 envelope coefficients (its DCT's spectrum); more
# read past the array (a 10^6 envelope crashed)


def analysis_rate(rate: int) -> int:
    """The rate audio at ``rate`` Hz is analysed at: the file's, kept within [16, 24] kHz."""
    return int(min(max(rate, MIN_RATE), MAX_RATE))


@dataclass(frozen=True)
class VocoderLayout:
    """What each column of a frame is: saved beside the model (``to_json``) to synthesise from frames."""

    sample_rate: int  # Hz, the rate frames are analysed at and synthesised to
    frame_period_ms: float = FRAME_PERIOD_MS
    envelope: int = ENVELOPE_COEFFICIENTS  # coded spectral envelope coefficients
    f0_floor: float = F0_FLOOR
    f0_ceil: float = F0_CEIL

    @property
    def aperiodicity(self) -> int:
        return int(pyworld.get_num_aperiodicities(self.sample_rate))

    @property
    def fft_size(self) -> int:
        return int(pyworld.get_cheaptrick_fft_size(self.sample_rate, self.f0_floor))

    @property
    def max_envelope(self) -> int:
        """The most envelope coefficients WORLD codes at this rate and f0 floor."""
        return self.fft_size // ENVELOPE_PER_FFT

    @property
    def synthesis_fft_size(self) -> int:
        """The FFT of synthesis: 1024 points hold a 43-64 ms impulse response, and cost half of 2048 (22-24 kHz)."""
        return min(self.fft_size, SYNTHESIS_FFT)

    @property
    def dim(self) -> int:
        return 2 + self.envelope + self.aperiodicity

    @property
    def columns(self) -> list[str]:
        return (
            ["voiced", "log_f0"]
            + [f"envelope_{i}" for i in range(self.envelope)]
            + [f"aperiodicity_{i}" for i in range(self.aperiodicity)]
        )

    @property
    def groups(self) -> dict[str, list[int]]:
        """Column indices of each group: voicing (binary), f0, envelope, aperiodicity (continuous)."""
        e = 2 + self.envelope
        return {"voicing": [0], "f0": [1], "envelope": list(range(2, e)), "aperiodicity": list(range(e, self.dim))}

    @property
    def frames_per_second(self) -> float:
        return 1000.0 / self.frame_period_ms

    def describe(self) -> str:
        return (
            f"WORLD vocoder frames of {self.frame_period_ms:g} ms at {self.sample_rate} Hz: voicing, log f0, "
            f"{self.envelope} envelope and {self.aperiodicity} aperiodicity coefficients (D = {self.dim})"
        )

    def to_json(self) -> dict:
        return {"vocoder": "world", **asdict(self), "columns": self.columns, "groups": self.groups}

    @classmethod
    def from_json(cls, data: dict, where: str = "vocoder") -> VocoderLayout:
        """The layout a checkpoint records (``where`` names it there, e.g. ``data.vocoder``), every field checked
        against the bounds above before WORLD or an array sees it: one line naming the field."""
        if not isinstance(data, dict):
            raise SeqlabError(f"{where} = {data!r}: expected an object (a frame layout)")
        if data.get("vocoder") != "world":
            raise SeqlabError(f"{where}.vocoder = {data.get('vocoder')!r}: an unknown vocoder, expected 'world'")
        defaults = {**asdict(cls(MIN_RATE)), "sample_rate": None}  # the rate has no default
        value = {name: data.get(name, default) for name, default in defaults.items()}

        def refuse(name: str, expected: str) -> SeqlabError:
            return SeqlabError(f"{where}.{name} = {value[name]!r}: expected {expected}")

        def real_in(name: str, low: float, high: float) -> bool:
            v = value[name]
            return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high

        if type(value["sample_rate"]) is not int or not MIN_RATE <= value["sample_rate"] <= MAX_RATE:
            raise refuse("sample_rate", f"a whole number of Hz in [{MIN_RATE}, {MAX_RATE}] (the analysis rates)")
        if not real_in("frame_period_ms", MIN_FRAME_PERIOD_MS, MAX_FRAME_PERIOD_MS):
            raise refuse("frame_period_ms", f"a number of ms in [{MIN_FRAME_PERIOD_MS:g}, {MAX_FRAME_PERIOD_MS:g}]")
        if not real_in("f0_floor", MIN_F0_FLOOR, MAX_F0_FLOOR):
            raise refuse("f0_floor", f"a number of Hz in [{MIN_F0_FLOOR:g}, {MAX_F0_FLOOR:g}]")
        if not real_in("f0_ceil", value["f0_floor"], MAX_F0_CEIL) or value["f0_ceil"] == value["f0_floor"]:
            raise refuse(
                "f0_ceil", f"a number of Hz above f0_floor ({value['f0_floor']:g}) and at most {MAX_F0_CEIL:g}"
            )
        bounded = cls(**{**value, "envelope": 1})  # fft_size is arithmetic on bounded fields now
        envelope = value["envelope"]
        if type(envelope) is not int or not 1 <= envelope <= bounded.max_envelope:
            why = f"at {value['sample_rate']} Hz with f0_floor {value['f0_floor']:g} Hz"
            raise refuse("envelope", f"a whole number in [1, {bounded.max_envelope}] (what WORLD codes {why})")
        layout = cls(**value)
        for name in ("columns", "groups"):  # derived from the settings: a copy that differs was edited
            if name in data and data[name] != getattr(layout, name):
                raise SeqlabError(
                    f"{where}.{name}: do not match its settings (envelope {envelope}, {layout.sample_rate} Hz)"
                )
        return layout


# WORLD's Harvest holds several arrays of the whole signal per f0 candidate: 10 min of 16 kHz audio in one call
# peaked at 13 GB. Analysed in chunks of 30 s (with 1 s of context either side, whose frames are dropped), each
# chunk's spectra coded before the next, memory is that of 32 s whatever the length, plus the coded frames (D
# values a frame); a file up to a chunk long is analysed in one call, as before.
ANALYSIS_CHUNK_S = 30.0
ANALYSIS_CONTEXT_S = 1.0
# Audio at least this long keeps its frames in the cache (``cache_root("vocoder")``, keyed by the samples, the
# layout and WORLD's version), so evaluate, --resume and --spectrogram do not analyse it again; shorter audio
# is analysed in seconds. ANALYSIS_VERSION changes whenever analyse's output would.
CACHE_MIN_S = 10.0
ANALYSIS_VERSION = 1


def analyse(
    samples: np.ndarray,
    rate: int,
    source: str = "audio",
    layout: VocoderLayout | None = None,
    progress: Callable[[float, float], None] | None = None,
) -> np.ndarray:
    """Frames (T, D) float64 of mono ``samples`` (N,) at ``rate`` Hz, with ``T = N / (rate * period) + 1``.

    Resamples to ``layout.sample_rate`` (default ``analysis_rate(rate)``), then analyses ``ANALYSIS_CHUNK_S`` at a
    time (``progress(seconds analysed, seconds in all)`` after each chunk). Raises ``SeqlabError`` naming
    ``source`` when no frame is voiced (silence, noise): a frame model of speech has no pitch to learn.
    """
    layout = layout or VocoderLayout(analysis_rate(rate))
    x = np.asarray(samples, dtype=np.float64)
    if rate != layout.sample_rate:
        x = resample(x, rate, layout.sample_rate).astype(np.float64)
    x = np.ascontiguousarray(x)
    fs, period = layout.sample_rate, layout.frame_period_ms
    if len(x) < fs * period / 1000 * 2:
        raise SeqlabError(f"{source}: {len(x)} samples are too short for the vocoder (at least two frames)")
    total = int(1000.0 * len(x) / fs / period) + 1  # WORLD's frame count for the whole signal
    cached = cache_file(x, layout) if len(x) >= CACHE_MIN_S * fs else None
    if cached is not None and (frames := read_cached(cached, (total, layout.dim))) is not None:
        if progress is not None:
            progress(len(x) / fs, len(x) / fs)
        return frames
    per_chunk = max(1, round(ANALYSIS_CHUNK_S * 1000 / period))
    context = round(ANALYSIS_CONTEXT_S * 1000 / period)
    parts = []
    for first in range(0, total, per_chunk):
        last = min(first + per_chunk, total)  # frames first .. last - 1 from this chunk
        start = max(0, first - context) if total > per_chunk else 0
        begin = round(start * period / 1000 * fs)  # the sample of frame `start`
        end = len(x) if last + context >= total else round((last + context) * period / 1000 * fs)
        f0, sp, ap = world_analysis(np.ascontiguousarray(x[begin:end]), layout, source)
        # the chunk's frames first .. last - 1; a chunk's start rounded to a sample can leave it a frame short at the
        # end of the signal: that frame repeats the one before
        kept = [a[first - start : last - start] for a in (f0, sp, ap)]
        if len(kept[0]) < last - first:
            short = last - first - len(kept[0])
            kept = [np.pad(a, [(0, short)] + [(0, 0)] * (a.ndim - 1), mode="edge") for a in kept]
        # coded at once: a chunk's envelope and aperiodicity spectra (fft_size / 2 + 1 values a frame each, 1 GB
        # for 10 min at 16 kHz) are not kept past it, only their D columns
        f0, sp, ap = kept
        parts.append((f0, pyworld.code_spectral_envelope(sp, fs, layout.envelope), pyworld.code_aperiodicity(ap, fs)))
        del sp, ap, kept
        if progress is not None:
            progress(min(last * period / 1000, len(x) / fs), len(x) / fs)
    f0 = np.concatenate([p[0] for p in parts])
    voiced = f0 > 0
    if not voiced.any():
        raise NoVoicedFrame(f"{source}: no voiced frame ({len(f0)} frames of {period:g} ms; silence or noise)")
    envelope = np.concatenate([p[1] for p in parts])
    aperiodicity = np.concatenate([p[2] for p in parts])
    frames = np.column_stack([voiced.astype(np.float64), interpolated_log_f0(f0), envelope, aperiodicity])
    if not np.isfinite(frames).all():
        bad = int(np.flatnonzero(~np.isfinite(frames).all(axis=1))[0])
        at = bad * period / 1000
        raise SeqlabError(f"{source}: the vocoder could not analyse it (non-finite features at {at:.3f} s)")
    if cached is not None:
        buffer = io.BytesIO()
        np.save(buffer, frames)
        with contextlib.suppress(OSError):  # a cache that cannot be written costs the next run time, nothing else
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(cached, buffer.getvalue())
    return frames


class NoVoicedFrame(OptionError):
    """Audio with no voiced frame (``found`` says which and how many frames): the advice is training's (another
    ``--audio-encoding``); a command that does not take that option says its own (``sample --prompt-audio``)."""

    def __init__(self, found: str) -> None:
        self.found = found
        super().__init__(
            f"{found}: the vocoder representation models speech; use {{0}} mu_law for other sound", "audio_encoding"
        )


def cache_file(x: np.ndarray, layout: VocoderLayout) -> Path:
    """Where the frames of samples ``x`` (at the layout's rate) are cached."""
    key = hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    key.update(json.dumps([ANALYSIS_VERSION, pyworld.__version__, asdict(layout)], sort_keys=True).encode())
    return cache_root("vocoder") / f"{key.hexdigest()[:40]}.npy"


def read_cached(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached frames at ``path`` if they are there, whole and of ``shape``; else None (analysed again)."""
    try:
        frames = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if frames.shape != shape or frames.dtype != np.float64 or not np.isfinite(frames).all():
        return None
    return frames


def world_analysis(x: np.ndarray, layout: VocoderLayout, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """WORLD's f0 (Harvest), spectral envelope (CheapTrick) and aperiodicity (D4C) of ``x`` at the layout's rate."""
    fs, period = layout.sample_rate, layout.frame_period_ms
    try:
        f0, t = pyworld.harvest(x, fs, f0_floor=layout.f0_floor, f0_ceil=layout.f0_ceil, frame_period=period)
        sp = pyworld.cheaptrick(x, f0, t, fs, f0_floor=layout.f0_floor)
        ap = pyworld.d4c(x, f0, t, fs)
    except Exception as e:  # WORLD's C++ raises its own errors on input it cannot take
        raise SeqlabError(f"{source}: the vocoder could not analyse it ({type(e).__name__}: {e})") from None
    return f0, sp, ap


def interpolated_log_f0(f0: np.ndarray) -> np.ndarray:
    """log f0 (T,) with unvoiced frames (f0 = 0) filled by linear interpolation in log f0, ends held."""
    voiced = np.flatnonzero(f0 > 0)
    log_f0 = np.log(f0[voiced])
    return np.interp(np.arange(len(f0)), voiced, log_f0)


def synthesise(frames: np.ndarray, layout: VocoderLayout) -> np.ndarray:
    """Samples (N,) float32 at ``layout.sample_rate`` from frames (T, D): WORLD's synthesis.

    A frame is voiced when its voicing column is above 0.5; log f0 is clamped to the layout's pitch range.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != layout.dim:
        raise SeqlabError(f"frames of shape {frames.shape} do not match the layout (T, {layout.dim})")
    groups = layout.groups
    voiced = frames[:, 0] > 0.5
    f0 = np.where(voiced, np.exp(np.clip(frames[:, 1], np.log(layout.f0_floor), np.log(layout.f0_ceil))), 0.0)
    fs, n_fft = layout.sample_rate, layout.synthesis_fft_size
    envelope = np.ascontiguousarray(frames[:, groups["envelope"]])
    aperiodicity = np.ascontiguousarray(np.minimum(frames[:, groups["aperiodicity"]], 0.0))  # dB <= 0
    sp = pyworld.decode_spectral_envelope(envelope, fs, n_fft)
    ap = pyworld.decode_aperiodicity(aperiodicity, fs, n_fft)
    y = pyworld.synthesize(np.ascontiguousarray(f0), sp, ap, fs, layout.frame_period_ms)
    return y.astype(np.float32)


def smooth_trajectories(frames: np.ndarray, layout: VocoderLayout, width: int) -> np.ndarray:
    """Frames (T, D) with the envelope and aperiodicity columns replaced by their centred moving average over
    ``width`` frames (odd; the first and last frames repeated at the ends); voicing and f0 untouched.

        y_t = (1 / width) sum_{|j| <= width // 2} x_{clip(t + j, 0, T - 1)}

    Generated frames are drawn independently given the state, so these trajectories jitter from frame to frame
    where speech moves smoothly; statistical parametric synthesis smooths them with delta features and MLPG
    (Tokuda et al. 2000); this moving average is the simple stand-in (docs/audio.md measures what it does)."""
    frames = np.asarray(frames, dtype=np.float64)
    if width <= 1 or not len(frames):
        return frames
    if width % 2 == 0:
        raise SeqlabError(f"the smoothing width must be odd, got {width}")
    columns = layout.groups["envelope"] + layout.groups["aperiodicity"]
    half = width // 2
    padded = np.pad(frames[:, columns], ((half, half), (0, 0)), mode="edge")  # (T + width - 1, C)
    sums = np.concatenate([np.zeros((1, len(columns))), np.cumsum(padded, axis=0)])  # (T + width, C)
    out = frames.copy()
    out[:, columns] = (sums[width:] - sums[:-width]) / width
    return out


# Generation that has left speech (docs/audio.md, "The same voice every time"): the frame model, sampled at the
# low temperatures of seqlab.runs.sample, can fall into an attractor and stay there: a drone (one vowel held for
# seconds, the predicted envelope still) or noise (voicing off for seconds). The bundled speech has no 1 s window
# under 49 % voiced and no unvoiced stretch over 0.4 s; its envelope is never still.
WATCH_WINDOW_S = 1.0  # the span the voicing is judged over
MIN_VOICED_SHARE = 0.1  # ... fewer voiced draws in it: left speech
STILL_WINDOW_S = 0.2  # the movement of the predicted envelope, averaged over this span
STILL_SHARE = 0.1  # ... under this share of its 90th percentile so far (not the median: a drone that starts
STILL_PERCENTILE = 90  # in the first second soon is the median, and never falls under a share of itself)
STILL_FOR_S = 1.0  # ... for this long beyond the window: a drone (a held vowel recovers within 0.9 s)


class Watchdog:
    """``watchdog(predicted, drawn) -> bool``, asked after every drawn frame (``FrameSampler.generate``'s
    ``restart``): True when generation has left speech, and the sampler then starts the recurrence afresh, as a
    new phrase. Two rules, on frames of ``layout`` standardised by ``scale`` (D,) (the model's):

    - noise: fewer than ``MIN_VOICED_SHARE`` of the draws of the last ``WATCH_WINDOW_S`` voiced;
    - a drone: the predicted envelope (its mean, not the draw) moves, averaged over ``STILL_WINDOW_S``, less than
      ``STILL_SHARE`` of the ``STILL_PERCENTILE``th percentile of that average so far in this generation, for
      ``STILL_FOR_S`` on end.

    Both thresholds are far outside speech (the comment above), so speech is never cut; ``restarts`` counts the
    restarts made."""

    def __init__(self, layout: VocoderLayout, scale: np.ndarray) -> None:
        per_s = layout.frames_per_second
        self.envelope = np.array(layout.groups["envelope"])
        self.scale = np.asarray(scale, dtype=np.float64)[self.envelope]
        self.voiced: deque[bool] = deque(maxlen=max(1, round(WATCH_WINDOW_S * per_s)))
        self.moves: deque[float] = deque(maxlen=max(1, round(STILL_WINDOW_S * per_s)))
        self.still_for = max(1, round(STILL_FOR_S * per_s))
        self.averages: list[float] = []  # the windowed movement, every frame of this generation
        self.previous: np.ndarray | None = None
        self.still = 0
        self.restarts = 0

    def __call__(self, predicted: np.ndarray, drawn: np.ndarray) -> bool:
        self.voiced.append(bool(drawn[0] > 0.5))
        envelope = predicted[self.envelope] / self.scale
        if self.previous is not None:
            self.moves.append(float(np.mean(np.abs(envelope - self.previous))))
        self.previous = envelope
        if len(self.moves) == self.moves.maxlen:
            average = sum(self.moves) / len(self.moves)
            self.averages.append(average)
            reference = float(np.percentile(self.averages, STILL_PERCENTILE))
            self.still = self.still + 1 if average < STILL_SHARE * reference else 0
        noise = len(self.voiced) == self.voiced.maxlen and sum(self.voiced) < MIN_VOICED_SHARE * len(self.voiced)
        if not (noise or self.still >= self.still_for):
            return False
        self.restarts += 1
        self.voiced.clear()
        self.moves.clear()
        self.previous, self.still = None, 0
        return True
