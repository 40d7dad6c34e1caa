"""``sample``: generate text, or seconds of audio into a WAV file, from a trained model (its fastest exact path:
``SequenceModel.sample_elements``, the streaming sampler for discrete latent models)."""

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
from seqlab.data.audio import MuLaw, load_audio, write_wav
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import OptionError, SeqlabError, Unsupported
from seqlab.limits import check_output_size
from seqlab.plots import spectrograms
from seqlab.runs import run_directory

TEXT_BYTES_PER_CHARACTER = 16  # an int64 id and up to 4 bytes of text, with room for the decoded copy
AUDIO_BYTES_PER_SAMPLE = 16  # an int64 id (or a float64 value) and the float32 sample written


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
    spectrogram: Path | None = None  # audio: real against generated audio, as a PNG
    data: str | None = None  # audio: the real audio of the spectrogram (default: the model's, if bundled)


@dataclass
class SampleResult:
    text: str | None = None  # the prompt and its continuation (text models)
    wav: Path | None = None  # audio models: what was written
    seconds: float = 0.0
    rate: int = 0
    samples_per_second: float = 0.0
    raw: bool = False  # audio from a continuous (raw-sample) model: one torch step per sample
    spectrogram: Path | None = None


def is_audio(model: SequenceModel, spec_kind: str | None) -> bool:
    return isinstance(getattr(model, "vocabulary", None), MuLaw) or (spec_kind == "audio")


MIN_TEMPERATURE = 1e-3  # below it logits / temperature can overflow to inf: use top_k 1 for greedy decoding


def sample(spec: SampleSpec) -> SampleResult:
    if spec.temperature < MIN_TEMPERATURE:
        raise OptionError(
            f"{{0}} {spec.temperature:g} is too small (at least {MIN_TEMPERATURE:g}; {{1}} 1 is greedy)",
            "temperature",
            "top_k",
        )
    model = io.load(spec.model_dir)
    data_spec = run_directory.data_spec(spec.model_dir, model)
    kind = run_directory.recorded_kind(data_spec)
    if is_audio(model, kind):
        if spec.prompt:
            raise OptionError(
                f"{spec.model_dir}: an audio model takes {{0}} (a WAV file), not {{1}}", "prompt_audio", "prompt"
            )
        return sample_audio(model, spec)
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


def sample_audio(model: SequenceModel, spec: SampleSpec) -> SampleResult:
    """``spec.seconds`` of audio from a mu-law (streaming) or raw-sample model into ``spec.out``."""
    data_spec = run_directory.data_spec(spec.model_dir, model)
    discrete = model.head.discrete
    rate = model.vocabulary.sample_rate if discrete else (data_spec.sample_rate if data_spec else None)
    if not rate:
        raise SeqlabError(f"{spec.model_dir}: no record of the sample rate it was trained at")
    n = int(round(spec.seconds * rate)) if math.isfinite(spec.seconds) else spec.seconds
    check_output_size("--seconds x sample rate", (max(n, 1),), AUDIO_BYTES_PER_SAMPLE)  # before any work
    for path in (spec.out, spec.spectrogram):
        check_parent_dir(path)
    prompt = np.zeros(0, dtype=np.float32)
    if spec.prompt_audio:
        prompt, _ = load_audio(spec.prompt_audio, rate)
    t0 = time.perf_counter()
    if discrete:
        ids = model.sample_elements(model.encode(prompt), n, spec.temperature, spec.top_k, spec.seed)
        audio = model.decode(ids)
    else:
        x = model.sample_elements(torch.from_numpy(prompt.astype(np.float64)), n, spec.temperature, None, spec.seed)
        audio = x.float().numpy()
    seconds = time.perf_counter() - t0
    write_wav(spec.out, audio, rate)
    result = SampleResult(wav=spec.out, seconds=n / rate, rate=rate, samples_per_second=n / seconds, raw=not discrete)
    if spec.spectrogram:
        real = prompt
        if not len(real):
            if data_spec is None and spec.data is None:
                raise SeqlabError(f"{spec.model_dir}: no record of its training audio to compare with; give a prompt")
            if spec.data is None:
                # a recorded local path only when named
                real_spec = run_directory.readable_data(data_spec, spec.model_dir)
            else:
                real_spec = replace(data_spec, source=spec.data) if data_spec else DataSpec(spec.data)
            real = load_dataset(real_spec).valid.numpy()[:n]
        spectrograms(real, audio, rate, spec.spectrogram)
        result.spectrogram = spec.spectrogram
    return result
