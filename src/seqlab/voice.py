"""Voice metrics: does a waveform sound like speech? A pitch tracker and the numbers built on it.

Everything here is our own NumPy (no GPL code), tested against references we did not write (WORLD's Harvest,
``tests/test_voice.py``):

- ``track_pitch``: YIN (de Cheveigne & Kawahara 2002) on 10 ms hops. With the difference function of a frame
  x_t .. x_{t+W-1} at lag tau,

      d_t(tau) = sum_{j<W} (x_{t+j} - x_{t+j+tau})^2 = e_t(0) + e_{t+tau}(0) - 2 r_t(tau)

  and its cumulative-mean normalisation d'(tau) = d(tau) tau / sum_{k=1..tau} d(k), the period is the first
  lag whose d' dips under ``threshold`` (refined by a parabola); a frame is voiced when it has one and it is
  active: its energy within ``SILENCE_DB`` of the loud frames and above ``SILENCE_FLOOR_DB`` (digital silence
  has d = 0 at every lag, a perfect "period", and passes any gate relative to itself).
- ``hnr_db``: harmonics-to-noise ratio by autocorrelation (Boersma 1993): the normalised autocorrelation of a
  Hann-windowed frame, divided by the window's own, peaks at r_max at the period, and
  HNR = 10 log10(r_max / (1 - r_max)).
- ``mel_cepstra``: c1..c24 of a 40-band mel spectrum in the convention of SPTK's mel-cepstrum, for which the
  mel-cepstral distortion formula is defined: with ln A_n the ln amplitude of band n = 0 .. N-1 at the warped
  frequency w_n = pi (2n + 1) / (2N),

      ln A_n ~ c_0 + 2 sum_{k>=1} c_k cos(k w_n),   c_k = (1 / N) sum_n ln A_n cos(k w_n)

  (a DCT-II scaled by 1 / N, not the orthonormal sqrt(2 / N) of MFCCs, whose coefficients are sqrt(2N) times
  larger). The distance of two mean mel-cepstra in dB is then (10 / ln 10) sqrt(2 sum_k (a_k - b_k)^2), the
  mel-cepstral distortion formula: by Parseval, (10 / ln 10) times the RMS over the warped frequency axis of
  the difference of the two liftered ln-amplitude envelopes.
- ``voice_metrics``: the table ``seqlab evaluate --voice`` prints; ``voice_targets`` checks it against the
  targets of docs/audio.md.
"""

from __future__ import annotations

import math

import numpy as np

HOP_S = 0.010  # 10 ms: the pitch tracker's and the loudness frames' hop
F0_MIN, F0_MAX = 60.0, 500.0  # Hz
YIN_THRESHOLD = 0.3
SILENCE_DB = 40.0  # frames this far below the 95th-percentile frame energy are silent (not active)
# ... and frames under this mean square (dB re full scale, a full-scale square wave = 0 dB) are silent whatever the
# rest of the file: a relative gate alone calls all-silent audio active, and YIN calls it voiced (d = 0 at every
# lag), so a model generating zeros looked 100 % voiced. 16-bit quantisation noise sits near -100 dB, the bundled
# speech's quietest voiced 10 ms frame at -43 dB: -70 dB leaves about 30 dB either side.
SILENCE_FLOOR_DB = -70.0
MEL_BANDS, CEPSTRA = 40, 24
FLOOR = 1e-8
MEL_LOW_HZ = 60.0  # the mel-cepstra leave out hum and rumble below the lowest voice
# the targets of docs/audio.md for generated speech: (metric, low, high), a bound relative to the data's value when
# ``relative`` (the voiced fraction 0.4-1.4x the data's, ...), else absolute; None: no bound on that side
TARGETS = (
    ("voiced_fraction", 0.4, 1.4, True),
    ("median_f0_hz", 0.85, 1.15, True),
    ("f0_range_semitones", 0.4, 2.5, True),
    ("f0_jump_share", None, 0.15, False),
    ("mean_voiced_run_ms", 60.0, None, False),
    ("hnr_db", 3.0, None, False),
    ("loudest_over_median_db", None, 30.0, False),
    ("mel_cepstrum_distance_db", None, 2.5, False),
)
METRICS = (  # name, what it is, unit
    ("voiced_fraction", "voiced fraction", ""),
    ("median_f0_hz", "median f0", "Hz"),
    ("f0_range_semitones", "f0 range 5-95 %", "st"),
    ("f0_jump_share", "10 ms f0 steps > 1 semitone", ""),
    ("mean_voiced_run_ms", "mean voiced run", "ms"),
    ("hnr_db", "mean HNR of voiced frames", "dB"),
    ("loudest_over_median_db", "loudest 10 ms over median active", "dB"),
    ("mel_cepstrum_distance_db", "mean mel-cepstrum distance", "dB"),
)


def frames_of(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(T, length) frames of ``x`` (N,) starting every ``hop`` samples (zero-padded at the end)."""
    n = max(1, int(math.ceil(len(x) / hop)))
    padded = np.concatenate([x, np.zeros(n * hop + length - len(x))])
    index = np.arange(n)[:, None] * hop + np.arange(length)[None, :]
    return padded[index]


# Every metric is computed frame by frame: on BLOCK_FRAMES frames at a time (10 s of 10 ms hops), so the arrays
# of frames, spectra and lags that YIN, the HNR and the mel-cepstra build take the memory of 10 s whatever the
# audio's length (on the whole of 9 min of training audio they took gigabytes at the end of `seqlab train`).
# The numbers are those of all frames at once: each frame is computed on its own row.
BLOCK_FRAMES = 1000


def frame_blocks(x: np.ndarray, length: int, hop: int):
    """``frames_of(x, length, hop)`` in consecutive blocks of at most ``BLOCK_FRAMES`` rows: (first row, block)."""
    n = max(1, int(math.ceil(len(x) / hop)))
    block = max(1, int(BLOCK_FRAMES))
    for first in range(0, n, block):
        rows = min(block, n - first)
        part = x[first * hop : (first + rows - 1) * hop + length]
        frames = frames_of(part, length, hop)[:rows]  # the zero padding of frames_of is the whole signal's
        yield first, frames


def frame_energy_db(x: np.ndarray, rate: int, length_s: float = HOP_S) -> np.ndarray:
    """Mean square of non-overlapping frames of ``length_s`` in dB (T,)."""
    n = max(1, int(round(length_s * rate)))
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([10 * np.log10(np.mean(f**2, axis=1) + 1e-12) for _, f in frame_blocks(x, n, n)])


def active(energy_db: np.ndarray) -> np.ndarray:
    """Frames within ``SILENCE_DB`` of the 95th-percentile energy (robust to one click) and above
    ``SILENCE_FLOOR_DB``: speech, not pauses; none in digital silence."""
    return (energy_db > np.percentile(energy_db, 95) - SILENCE_DB) & (energy_db > SILENCE_FLOOR_DB)


def track_pitch(
    x: np.ndarray, rate: int, f0_min: float = F0_MIN, f0_max: float = F0_MAX, threshold: float = YIN_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """YIN pitch: (f0 in Hz (T,), voiced (T,) bool) for 10 ms hops of ``x`` (N,) at ``rate`` Hz; f0 is 0
    where unvoiced. Frame t covers samples t * hop .. t * hop + W + tau_max with W = tau_max = rate / f0_min."""
    x = np.asarray(x, dtype=np.float64)
    hop = int(round(HOP_S * rate))
    tau_min, tau_max = max(2, int(rate / f0_max)), int(math.ceil(rate / f0_min))
    width = tau_max
    blocks = [
        _yin_block(frames, rate, tau_min, tau_max, threshold) for _, frames in frame_blocks(x, 2 * width + 1, hop)
    ]
    f0, energy = np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
    voiced = (f0 > 0) & active(energy)
    return np.where(voiced, f0, 0.0), voiced


def _yin_block(
    frames: np.ndarray, rate: int, tau_min: int, tau_max: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """YIN's f0 (0: no dip under ``threshold``) and the energy in dB of the window, for frames (T, W + tau_max + 1)."""
    width = tau_max
    n_fft = 1 << int(math.ceil(math.log2(2 * frames.shape[1])))
    head = np.fft.rfft(frames[:, :width], n_fft)
    whole = np.fft.rfft(frames, n_fft)
    r = np.fft.irfft(np.conj(head) * whole, n_fft)[:, : tau_max + 1]  # r_t(tau) = sum_j x_j x_{j+tau}
    squares = np.cumsum(np.concatenate([np.zeros((len(frames), 1)), frames**2], axis=1), axis=1)
    lags = np.arange(tau_max + 1)
    energy_at = squares[:, lags + width] - squares[:, lags]  # e_{t+tau}(0): the window shifted by tau
    d = energy_at[:, :1] + energy_at - 2 * r  # (T, tau_max + 1)
    d[:, 0] = 0.0
    cumulative = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
    below = cmnd[:, tau_min:tau_max] < threshold
    # the first dip under the threshold, followed down to its local minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1) + tau_min, -1)
    f0 = np.zeros(len(frames))
    for t in np.flatnonzero(first >= 0):
        tau = first[t]
        while tau + 1 < tau_max and cmnd[t, tau + 1] < cmnd[t, tau]:
            tau += 1
        a, b, c = cmnd[t, tau - 1], cmnd[t, tau], cmnd[t, tau + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c > 0 else 0.0
        f0[t] = rate / (tau + float(np.clip(shift, -1, 1)))
    energy = 10 * np.log10(np.mean(frames[:, :width] ** 2, axis=1) + 1e-12)
    return f0, energy


def hnr_db(x: np.ndarray, rate: int, voiced: np.ndarray, f0_min: float = F0_MIN, f0_max: float = F0_MAX) -> float:
    """Mean HNR (dB) over the voiced 10 ms frames (Boersma 1993), each a Hann window of 3 periods of f0_min.

    r_max is clipped to [1e-4, 1 - 1e-4] (HNR within -40 .. +40 dB). NaN without a voiced frame."""
    hop = int(round(HOP_S * rate))
    length = int(3 * rate / f0_min)
    window = np.hanning(length)
    n_fft = 1 << int(math.ceil(math.log2(2 * length)))
    r_window = np.fft.irfft(np.abs(np.fft.rfft(window, n_fft)) ** 2, n_fft)[: length // 2]
    lo, hi = int(rate / f0_max), int(rate / f0_min)
    r_max = [np.zeros(0)]
    for first, frames in frame_blocks(np.asarray(x, dtype=np.float64), length, hop):
        frames = frames[np.flatnonzero(voiced[first : first + len(frames)])]
        if not len(frames):
            continue
        frames = (frames - frames.mean(axis=1, keepdims=True)) * window
        r = np.fft.irfft(np.abs(np.fft.rfft(frames, n_fft)) ** 2, n_fft)[:, : length // 2]
        normalised = (r / r_window) / np.maximum(r[:, :1] / r_window[0], 1e-20)
        r_max.append(np.clip(normalised[:, lo : hi + 1].max(axis=1), 1e-4, 1 - 1e-4))
    r_max = np.concatenate(r_max)
    if not len(r_max):
        return math.nan
    return float(np.mean(10 * np.log10(r_max / (1 - r_max))))


def mel_filterbank(rate: int, n_fft: int, bands: int = MEL_BANDS, low: float = MEL_LOW_HZ) -> np.ndarray:
    """(bands, n_fft // 2 + 1) triangular filters evenly spaced on the mel scale low .. rate / 2 (HTK mel)."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(low), mel(rate / 2), bands + 2))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))


def mel_cepstra(x: np.ndarray, rate: int) -> np.ndarray:
    """Mel-cepstra c1..c24 (T, 24) of 25 ms Hann frames every 10 ms: ln amplitude of 40 mel bands, a DCT-II
    scaled by 1 / N (SPTK's convention, see the module docstring); each band floored 80 dB under the frame's
    loudest, so that empty bands do not depend on the level."""
    length = int(0.025 * rate)
    n_fft = 1 << int(math.ceil(math.log2(length)))
    filterbank, window = mel_filterbank(rate, n_fft).T, np.hanning(length)
    k, n = np.arange(CEPSTRA + 1)[:, None], np.arange(MEL_BANDS)[None, :]
    dct = np.cos(np.pi * k * (2 * n + 1) / (2 * MEL_BANDS)) / MEL_BANDS  # (25, bands): c_k of ln A_n
    cepstra = []
    for _, frames in frame_blocks(np.asarray(x, dtype=np.float64), length, int(round(HOP_S * rate))):
        power = np.abs(np.fft.rfft(frames * window, n_fft)) ** 2
        bands = power @ filterbank  # (T, bands)
        floor = FLOOR * bands.max(axis=1, keepdims=True) + 1e-30  # 80 dB under the loudest band: scale-free
        log_amplitude = 0.5 * np.log(bands + floor)
        cepstra.append((log_amplitude @ dct.T)[:, 1:])
    return np.concatenate(cepstra)


def mean_mel_cepstrum(x: np.ndarray, rate: int) -> np.ndarray:
    """The mean of c1..c24 over the active 10 ms frames (24,); NaN without an active frame (silence)."""
    cepstra = mel_cepstra(x, rate)
    energy = frame_energy_db(x, rate)[: len(cepstra)]
    kept = cepstra[: len(energy)][active(energy)]
    return kept.mean(axis=0) if len(kept) else np.full(CEPSTRA, math.nan)


def cepstral_distance_db(a: np.ndarray, b: np.ndarray) -> float:
    """(10 / ln 10) sqrt(2 sum (a_k - b_k)^2): the mel-cepstral distortion of two (24,) mel-cepstra, in dB."""
    return float(10 / math.log(10) * math.sqrt(2 * np.sum((np.asarray(a) - np.asarray(b)) ** 2)))


def voice_metrics(x: np.ndarray, rate: int, reference: np.ndarray | None = None) -> dict:
    """The numbers of ``METRICS`` for samples ``x`` (N,) at ``rate`` Hz; the mel-cepstrum distance is to the
    mean mel-cepstrum ``reference`` (24,) if given (else NaN). f0 statistics are NaN without a voiced frame, the
    loudness and mel-cepstrum numbers without an active one (silence)."""
    x = np.asarray(x, dtype=np.float64)
    f0, voiced = track_pitch(x, rate)
    semitones = 12 * np.log2(f0[voiced]) if voiced.any() else np.zeros(0)
    both = voiced[1:] & voiced[:-1]
    steps = np.abs(12 * np.log2(f0[1:][both] / f0[:-1][both])) if both.any() else np.zeros(0)
    edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    energy = frame_energy_db(x, rate)
    loud = active(energy)
    nan = math.nan
    return {
        "voiced_fraction": float(voiced.mean()),
        "median_f0_hz": float(np.median(f0[voiced])) if voiced.any() else nan,
        "f0_range_semitones": float(np.diff(np.percentile(semitones, [5, 95]))[0]) if len(semitones) else nan,
        "f0_jump_share": float(np.mean(steps > 1.0)) if len(steps) else nan,
        "mean_voiced_run_ms": float(runs.mean() * HOP_S * 1000) if len(runs) else 0.0,
        "hnr_db": hnr_db(x, rate, voiced),
        "loudest_over_median_db": float(energy.max() - np.median(energy[loud])) if loud.any() else nan,
        "mel_cepstrum_distance_db": (
            cepstral_distance_db(mean_mel_cepstrum(x, rate), reference) if reference is not None else nan
        ),
    }


def voice_targets(data: dict, generated: dict) -> dict[str, bool]:
    """Whether each metric of ``generated`` meets its target of ``TARGETS`` (relative ones against ``data``, both
    ``voice_metrics`` dicts). A NaN (no voiced or no active frame) misses its target."""
    met = {}
    for key, low, high, relative in TARGETS:
        value, scale = generated[key], (data[key] if relative else 1.0)
        ok = value is not None and math.isfinite(value) and math.isfinite(scale)
        met[key] = bool(ok and (low is None or value >= low * scale) and (high is None or value <= high * scale))
    return met
