"""Audio: reading WAV files (through libsndfile), resampling, mu-law quantisation, writing WAV.

mu-law companding (ITU-T G.711; the WaveNet and SampleRNN recipe) with mu = 255 maps a sample x in [-1, 1] to

    f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu),     id = round((f(x) + 1) / 2 * mu)   in 0 .. 255

so quiet sounds get finer levels than loud ones, and the model is a 256-way ``Categorical``; the inverse is
``x = sign(f) ((1 + mu)^|f| - 1) / mu`` with ``f = 2 id / mu - 1``.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from seqlab.atomic import write_bytes
from seqlab.data.bundled_data import resolve
from seqlab.errors import Notice, SeqlabError
from seqlab.limits import check_output_size

MU_LAW_LEVELS = 256
MAX_SAMPLE_RATE = 384_000  # Hz: the highest rate audio is recorded at; 1e9 resampled 1 s of audio to 4 GB
# Hz: the lowest file rate read (telephone speech is 8 kHz); a 40 KB WAV at 1 Hz was resampled to 3.2e8 samples
MIN_FILE_RATE = 1_000


def load_audio(name_or_path: str | Path, rate: int | None = None, quiet: bool = False) -> tuple[np.ndarray, int]:
    """Samples (T,) float32 in [-1, 1] and the sample rate: any WAV libsndfile reads (8-, 16-, 24-, 32-bit
    integer, float). Several channels are averaged to mono (with a notice); ``rate`` resamples."""
    import soundfile  # imported here: only the audio commands need libsndfile

    path, _ = resolve(name_or_path)
    if rate is not None and rate <= 0:
        raise SeqlabError(f"the sample rate must be positive, got {rate}")
    if rate is not None and rate > MAX_SAMPLE_RATE:
        raise SeqlabError(f"the sample rate must be at most {MAX_SAMPLE_RATE} Hz, got {rate}")
    try:
        info = soundfile.info(str(path))
        if 0 < info.samplerate < MIN_FILE_RATE or info.samplerate > MAX_SAMPLE_RATE:  # before any sample is read
            raise SeqlabError(
                f"{path}: the header gives a sample rate of {info.samplerate:,} Hz; seqlab reads audio at "
                f"{MIN_FILE_RATE:,}-{MAX_SAMPLE_RATE:,} Hz"
            )
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as e:
        if _wav_header_rate(path) == 0:  # libsndfile only says "SF_INFO struct incomplete"
            raise SeqlabError(f"{path}: the header gives a sample rate of 0") from None
        raise SeqlabError(f"{path}: not a readable audio file ({e})") from None
    if file_rate <= 0:
        raise SeqlabError(f"{path}: the header gives a sample rate of {file_rate}")
    if len(samples) == 0:
        raise SeqlabError(f"{path}: holds no samples ({info.subtype_info}, {file_rate} Hz)")
    finite = np.isfinite(samples)
    if not finite.all():  # only float WAVs can hold them
        index, channel = np.argwhere(~finite)[0]
        value = samples[index, channel]
        raise SeqlabError(
            f"{path}: sample {index:,} (channel {channel}, at {index / file_rate:.3f} s) is {value}, "
            f"expected a finite value ({int((~finite).sum()):,} non-finite samples in all)"
        )
    if samples.shape[1] > 1 and not quiet:
        warnings.warn(f"{path.name}: {samples.shape[1]} channels mixed down to mono", Notice, stacklevel=2)
    mono = samples.mean(axis=1)
    if rate is not None and rate != file_rate:
        resampled = math.ceil(len(mono) * rate / file_rate)  # resample_poly works in float64, beside the input
        check_output_size(f"{path.name} resampled to {rate} Hz", (resampled,), 16)
        mono = resample(mono, file_rate, rate)
    return mono.astype(np.float32), rate or file_rate


def _wav_header_rate(path: Path) -> int | None:
    """The sample rate in a RIFF/WAVE file's fmt chunk, or None if there is none to read."""
    import struct

    with open(path, "rb") as f:
        raw = f.read(4096)  # the header only
    at = raw.find(b"fmt ")
    if not raw.startswith(b"RIFF") or at < 0 or len(raw) < at + 16:
        return None
    return struct.unpack("<I", raw[at + 12 : at + 16])[0]


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``: an anti-aliasing FIR filter, then decimation)."""
    from scipy.signal import resample_poly

    g = math.gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM WAV, written as ``atomic.write_bytes`` writes (a temporary file, then a rename; a device, FIFO or
    "-" streamed into). Encoded in memory first: libsndfile writing a file itself reports a folder it cannot
    write in as a RuntimeError naming the temporary file, not an ``OSError`` naming ``path``."""
    import soundfile

    buffer = io.BytesIO()
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    soundfile.write(buffer, clipped, rate, subtype="PCM_16", format="WAV")
    write_bytes(Path(path), buffer.getvalue())


class MuLaw:
    """The codec of mu-law audio: 256 levels, and the sample rate the model was trained at."""

    def __init__(self, sample_rate: int, levels: int = MU_LAW_LEVELS) -> None:
        if sample_rate <= 0:
            raise SeqlabError(f"the sample rate must be positive, got {sample_rate}")
        self.sample_rate, self.levels = int(sample_rate), int(levels)
        self.mu = self.levels - 1

    def __len__(self) -> int:
        return self.levels

    def encode(self, samples) -> torch.Tensor:
        """Samples in [-1, 1] -> ids (T,) in 0 .. levels - 1."""
        if isinstance(samples, str):
            raise SeqlabError("a mu-law audio model takes samples, not text")
        x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
        f = np.sign(x) * np.log1p(self.mu * np.abs(x)) / math.log1p(self.mu)
        return torch.from_numpy(np.rint((f + 1) / 2 * self.mu).astype(np.int64))

    def decode(self, ids) -> np.ndarray:
        """ids -> samples (T,) float32 in [-1, 1]."""
        f = 2.0 * np.asarray(ids, dtype=np.float64) / self.mu - 1.0
        return (np.sign(f) * ((1.0 + self.mu) ** np.abs(f) - 1.0) / self.mu).astype(np.float32)

    def describe(self) -> str:
        return f"mu-law audio, {self.levels} levels at {self.sample_rate} Hz"

    def to_json(self) -> dict:
        return {"mu_law": self.levels, "sample_rate": self.sample_rate}

    @classmethod
    def from_json(cls, data: dict) -> MuLaw:
        return cls(data["sample_rate"], data["mu_law"])
