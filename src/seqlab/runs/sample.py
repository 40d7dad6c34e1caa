"""``sample``: generate text, or seconds of audio into a WAV file, from a trained model (its fastest exact path:
``SequenceModel.sample_elements``, the streaming samplers of latent models). Audio of a vocoder model is frames
drawn one at a time and synthesised by WORLD (``seqlab.data.vocoder``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from seqlab import io
from seqlab.atomic import check_parent_dir
from seqlab.base import SequenceModel
from seqlab.data.audio import load_audio, write_wav
from seqlab.data.dataset import Dataset
from seqlab.data.spec import DataSpec
from seqlab.data.vocoder import (
    NoVoicedFrame,
    VocoderLayout,
    Watchdog,
    analyse,
    smooth_trajectories,
    synthesise,
)
from seqlab.errors import OptionError, SeqlabError, Unsupported
from seqlab.limits import check_output_size
from seqlab.plots import spectrograms
from seqlab.runs import checkpoints, run_data
from seqlab.streaming import FrameSampler
from seqlab.voice import METRICS, TARGETS, mean_mel_cepstrum, voice_metrics, voice_targets

TEXT_BYTES_PER_CHARACTER = 16  # an int64 id and up to 4 bytes of text, with room for the decoded copy
AUDIO_BYTES_PER_SAMPLE = 16  # an int64 id (or a float64 value) and the float32 sample written
# vocoder frames: the temperature of each group of features (times --temperature), and the width in frames of
# the moving average over time of the generated envelope and aperiodicity; see docs/audio.md
GROUP_TEMPERATURES = {"voicing": 0.5, "f0": 0.7, "envelope": 0.2, "aperiodicity": 1.0}
SMOOTHING_FRAMES = 5  # 25 ms
PEAK = 0.95  # generated speech louder than this is scaled down to it rather than clipped


@dataclass
class SampleSpec:
    model_dir: Path
    prompt: str = ""  # text to continue
    length: int = 500  # characters
    temperature: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    seconds: float = 2.0  # audio: seconds to generate
    out: Path = Path("generated.wav")  # audio: the WAV file written
    prompt_audio: Path | None = None  # audio: a WAV file to continue
    spectrogram: Path | None = None  # audio: real (the prompt, or the start of the training audio) and generated
    data: str | None = None  # audio: the real audio of the spectrogram (default: the model's, if bundled)


@dataclass
class SampleResult:
    text: str | None = None  # the prompt and its continuation (text models)
    wav: Path | None = None  # audio models: what was written
    seconds: float = 0.0
    rate: int = 0
    samples_per_second: float = 0.0
    raw: bool = False  # audio from a continuous (raw-sample) model: one torch step per sample
    vocoder: bool = False  # audio synthesised from generated vocoder frames
    spectrogram: Path | None = None


def is_audio(model: SequenceModel, spec_kind: str | None) -> bool:
    return model.element_name in ("samples", "frames") or spec_kind == "audio"


MIN_TEMPERATURE = 1e-3  # below it logits / temperature can overflow to inf: use top_k 1 for greedy decoding


def sample(spec: SampleSpec) -> SampleResult:
    if spec.temperature < MIN_TEMPERATURE:
        raise OptionError(
            f"{{0}} {spec.temperature:g} is too small (at least {MIN_TEMPERATURE:g}; {{1}} 1 is greedy)",
            "temperature",
            "top_k",
        )
    model = io.load(spec.model_dir)
    data_spec = checkpoints.data_spec(spec.model_dir, model)
    kind = run_data.recorded_kind(data_spec)
    if is_audio(model, kind):
        if spec.prompt:
            raise OptionError(
                f"{spec.model_dir}: an audio model takes {{0}} (a WAV file), not {{1}}", "prompt_audio", "prompt"
            )
        return sample_audio(model, data_spec, spec)
    if model.transform is not None or not model.head.discrete:
        raise Unsupported(f"{spec.model_dir}: a model of a series: draw its futures with forecast, not sample")
    check_output_size("--length", (max(spec.length, 1),), TEXT_BYTES_PER_CHARACTER)
    unseen = sorted(set(spec.prompt) - set(model.vocabulary.index))
    if unseen:  # the model can only continue what it can read: no mapping to the unknown symbol here
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unseen[:5])
        raise OptionError(
            f"{{0}} holds {len(unseen)} character(s) the model never saw in training: {shown}; leave them out or "
            "replace them with characters of its vocabulary",
            "prompt",
        )
    prompt = model.encode(spec.prompt, source="prompt")
    ids = model.sample_elements(prompt, spec.length, spec.temperature, spec.top_k, spec.seed)
    return SampleResult(text=spec.prompt + model.decode(ids))


def sample_audio(model: SequenceModel, data_spec: DataSpec | None, spec: SampleSpec) -> SampleResult:
    """``spec.seconds`` of audio from a vocoder-frame, mu-law (streaming) or raw-sample model into ``spec.out``
    (``data_spec``: what it was trained on, ``checkpoints.data_spec``)."""
    for path in (spec.out, spec.spectrogram):
        check_parent_dir(path)
    if spec.spectrogram and not spec.prompt_audio:  # drawn beside the training audio: refused now if unreadable
        real_audio_spec(data_spec, spec)
    t0 = time.perf_counter()
    audio, rate, prompt = generate_audio(model, data_spec, spec)
    seconds = time.perf_counter() - t0
    write_wav(spec.out, audio, rate)
    result = SampleResult(
        wav=spec.out,
        seconds=len(audio) / rate,
        rate=rate,
        samples_per_second=len(audio) / seconds,
        raw=not model.head.discrete and not is_vocoder(data_spec),
        vocoder=is_vocoder(data_spec),
    )
    if spec.spectrogram:
        real = prompt if len(prompt) else real_audio(data_spec, spec, rate, "training")[: len(audio)]
        spectrograms(real, audio, rate, spec.spectrogram)
        result.spectrogram = spec.spectrogram
    return result


def is_vocoder(data_spec: DataSpec | None) -> bool:
    return data_spec is not None and data_spec.audio_encoding == "vocoder"


def generate_audio(
    model: SequenceModel, data_spec: DataSpec | None, spec: SampleSpec
) -> tuple[np.ndarray, int, np.ndarray]:
    """(samples (N,) float32, their rate, the prompt's samples) of ``spec.seconds`` generated after
    ``spec.prompt_audio``: vocoder frames drawn through ``step`` (``model.sample_elements``) and synthesised by
    WORLD, or mu-law / raw samples."""
    if is_vocoder(data_spec):
        return generate_vocoder_audio(model, data_spec, spec)
    discrete = model.head.discrete
    rate = model.mu_law.sample_rate if discrete else (data_spec.sample_rate if data_spec else None)
    if not rate:
        raise SeqlabError(f"{spec.model_dir}: no record of the sample rate it was trained at")
    n = int(round(spec.seconds * rate)) if math.isfinite(spec.seconds) else spec.seconds
    if n < 1:
        raise OptionError(
            f"{{0}} {spec.seconds:g} gives no sample at {rate} Hz; ask for at least {1 / rate:g} s", "seconds"
        )
    check_output_size("--seconds x sample rate", (n,), AUDIO_BYTES_PER_SAMPLE)  # before any work
    prompt = np.zeros(0, dtype=np.float32)
    if spec.prompt_audio:
        prompt, _ = load_audio(spec.prompt_audio, rate)
    if discrete:
        ids = model.sample_elements(model.encode(prompt), n, spec.temperature, spec.top_k, spec.seed)
        return model.decode(ids), rate, prompt
    x = model.sample_elements(torch.from_numpy(prompt.astype(np.float64)), n, spec.temperature, None, spec.seed)
    return x.float().numpy(), rate, prompt


def generate_vocoder_audio(model: SequenceModel, data_spec: DataSpec, spec: SampleSpec):
    """Frames drawn one at a time (the model's streaming ``step``; clamped to the training range) with the
    temperatures of ``GROUP_TEMPERATURES`` times ``spec.temperature``, their envelope and aperiodicity smoothed
    over ``SMOOTHING_FRAMES`` (``smooth_trajectories``), then WORLD synthesis; a waveform that would clip is
    scaled to a peak of ``PEAK``."""
    layout = VocoderLayout.from_json(data_spec.vocoder)
    rate = layout.sample_rate
    n = int(round(spec.seconds * layout.frames_per_second)) if math.isfinite(spec.seconds) else spec.seconds
    if n < 1:  # WORLD's synthesis of no frame was an IndexError
        period = 1 / layout.frames_per_second
        raise OptionError(
            f"{{0}} {spec.seconds:g} gives no vocoder frame ({1000 * period:g} ms each); ask for at least {period:g} s",
            "seconds",
        )
    check_output_size("--seconds x sample rate", (n, int(rate / layout.frames_per_second)), AUDIO_BYTES_PER_SAMPLE)
    prompt = np.zeros(0, dtype=np.float32)
    prompt_frames = np.zeros((0, layout.dim))
    if spec.prompt_audio:
        prompt, _ = load_audio(spec.prompt_audio, rate)
        try:
            prompt_frames = analyse(prompt, rate, source=str(spec.prompt_audio), layout=layout)
        except NoVoicedFrame as e:  # --audio-encoding is train's option: sample's own advice
            raise OptionError(
                f"{e.found}: a model of vocoder frames continues speech; give {{0}} a recording of a voice, or "
                "sample without one",
                "prompt_audio",
            ) from None
    temperature = {group: t * spec.temperature for group, t in GROUP_TEMPERATURES.items()}
    if FrameSampler.supports(model):  # with the watchdog that restarts a drone or noise (docs/audio.md)
        watchdog = Watchdog(layout, model.elements.scale.double().numpy())
        frames = FrameSampler(model).generate(prompt_frames, n, temperature, spec.seed, restart=watchdog)
    else:
        frames = model.sample_elements(torch.from_numpy(prompt_frames), n, temperature, None, spec.seed).double()
        frames = frames.numpy()
    audio = synthesise(smooth_trajectories(np.asarray(frames, dtype=np.float64), layout, SMOOTHING_FRAMES), layout)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    return (audio * (PEAK / peak) if peak > PEAK else audio), rate, prompt


def real_audio_spec(data_spec: DataSpec | None, spec: SampleSpec) -> DataSpec:
    """The data ``real_audio`` reads: ``spec.data`` or the recorded data (read only when bundled or named: the
    trust rule), resolved, so that a refusal (no record, an unnamed local path, a missing file) comes before any
    audio is generated."""
    if data_spec is None and spec.data is None:
        raise SeqlabError(f"{spec.model_dir}: no record of its training audio to compare with; give a prompt")
    if spec.data is None:
        real_spec = run_data.readable_data(data_spec, spec.model_dir)  # a recorded local path only when named
    else:
        real_spec = replace(data_spec, source=spec.data) if data_spec else DataSpec(spec.data)
    return real_spec.resolved()


def real_audio(data_spec: DataSpec | None, spec: SampleSpec, rate: int, part: str) -> np.ndarray:
    """The model's training audio at ``rate``: its ``part`` ("training" or "held-out", split as the model was
    trained), from ``real_audio_spec``."""
    real_spec = real_audio_spec(data_spec, spec)
    samples, _ = load_audio(real_spec.source, rate, quiet=True)
    cut = int(len(samples) * (1 - real_spec.valid_fraction))
    return samples[:cut] if part == "training" else samples[cut:]


SUMMARY_SECONDS = 3.0  # what `train` generates to show the voice at once (about 0.1 s of frames, 0.1 s of WORLD)
SUMMARY_SEED = 0
MAX_DISTANCE_DB = next(high for key, _, high, _ in TARGETS if key == "mel_cepstrum_distance_db")


def voice_summary(model: SequenceModel, dataset: Dataset, seconds: float = SUMMARY_SECONDS, seed: int = SUMMARY_SEED):
    """One line for the end of ``seqlab train`` on audio: the voiced fraction and the mean mel-cepstrum distance
    of ``seconds`` generated with ``seed`` (as ``seqlab sample`` and ``evaluate --voice`` generate it) beside the
    training audio's, and how many of the eight targets of docs/audio.md these seconds meet. ``None`` for a
    model that is not of vocoder frames: mu-law levels and raw samples take one step per sample (a minute for 3 s
    of a trained model)."""
    if dataset.encoding != "vocoder":
        return None
    spec = SampleSpec(Path("."), seconds=seconds, seed=seed, data=str(dataset.spec.source))
    audio, rate, _ = generate_audio(model, dataset.spec, spec)
    real = real_audio(dataset.spec, spec, rate, "training")
    reference = mean_mel_cepstrum(real, rate)
    data, generated = voice_metrics(real, rate, reference), voice_metrics(audio, rate, reference)
    met = voice_targets(data, generated)
    labels = {key: label for key, label, _ in METRICS}
    missed = [labels[key] for key, ok in met.items() if not ok]
    verdict = f"all {len(met)} voice targets met" if not missed else f"targets missed: {', '.join(missed)}"
    distance = generated["mel_cepstrum_distance_db"]
    spectrum = f"{distance:.2f} dB" if math.isfinite(distance) else "none (no sound)"
    return (
        f"voice of {len(audio) / rate:g} s generated (seed {seed}): {generated['voiced_fraction']:.0%} voiced "
        f"(the data {data['voiced_fraction']:.0%}), mean mel-cepstrum distance from the data's {spectrum} (target "
        f"at most {MAX_DISTANCE_DB:g} dB); {verdict} (docs/audio.md; seqlab evaluate --voice measures more)"
    )
