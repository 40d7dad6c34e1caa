"""``evaluate``: NLL per element of a trained model on a text, or on the held-out part of its training data;
``evaluate_voice`` (``--voice``): the voice metrics of generated audio beside those of the training audio."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from seqlab import io
from seqlab.atomic import check_parent_dir
from seqlab.data.audio import write_wav
from seqlab.data.bundled_data import BUNDLED, BUNDLED_PREFIX, resolve
from seqlab.data.dataset import data_kind
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.text import TextPart
from seqlab.data.token_store import open_store
from seqlab.errors import OptionError, SeqlabError, Unsupported
from seqlab.metrics import LN2, likelihood_scores
from seqlab.runs import checkpoints, run_data
from seqlab.runs.family import OneGoFamily
from seqlab.runs.sample import SampleSpec, generate_audio, is_audio, real_audio, real_audio_spec
from seqlab.runs.train import FAMILIES  # every family registered
from seqlab.training import SCORE_BLOCKS, SCORE_LIMIT, score_held_out
from seqlab.voice import HOP_S, mean_mel_cepstrum, voice_metrics


@dataclass
class EvaluateSpec:
    model_dir: Path
    # DataSpec fields given (source, column, ...), else the model's: another text file is scored whole, the training
    # text or other data of the model's kind is split as in training and its held-out part scored
    data: dict = field(default_factory=dict)
    unknown: str = "error"  # characters outside the vocabulary: "error" or "map" (to the unknown symbol)
    # score every element; else a part longer than seqlab.training.SCORE_LIMIT is scored on evenly spread blocks,
    # with the standard error of the NLL (bounded time on a large corpus)
    score_all: bool = False


@dataclass
class EvaluateResult:
    source: str
    elements: str  # "characters", "values", "samples"
    scores: dict  # seqlab.metrics.likelihood_scores, named per element (+ unknown_tokens when mapped)
    discrete: bool


def same_file(source: str, saved: DataSpec | None) -> bool:
    """True when ``source`` names the text the model was trained on: then its held-out part is scored. Bundled
    data is the same when ``source`` resolves to that bundled set (``shakespeare`` with no local file of that
    name, or ``bundled:shakespeare``); a local file is compared by its path (no file read)."""
    if saved is None:
        return False
    name = saved.source.removeprefix(BUNDLED_PREFIX)
    if saved.source.startswith(BUNDLED_PREFIX) or name in BUNDLED:
        return resolve(source)[1] is BUNDLED.get(name)
    return Path(source).expanduser().resolve() == Path(saved.source).expanduser().resolve()


def refuse_a_panel_model(model_dir: Path, model) -> None:
    """A global model trained on a panel (``train --model global-lstm``: its training record names the panel) is
    scored on the panel's held-out parts, not here: its one-series ``log_prob`` holds one fixed scale, not each
    series' own. One fitted to a single series (``GlobalAR.fit``) is a model of that series like any other."""
    if model.kind == "global_ar" and checkpoints.training_record(model_dir).get("meta", {}).get("panel"):
        raise SeqlabError(
            f"{model_dir}: a global model is scored on a panel's held-out parts: seqlab backtest --data PANEL.csv "
            "--id-column ID --holdout --models global-lstm (or forecast it with seqlab forecast)"
        )


def evaluate(spec: EvaluateSpec) -> EvaluateResult:
    model = io.load(spec.model_dir)
    refuse_a_panel_model(spec.model_dir, model)
    saved = checkpoints.data_spec(spec.model_dir, model)
    given = spec.data
    if "source" in given and data_kind(given["source"]) == "text" and not same_file(given["source"], saved):
        text_spec = DataSpec(**given)
        text_spec.validate()  # the options a text takes
        store = open_store(resolve(text_spec.source)[0], text_spec.encoding or "utf-8")
        data, source, elements = store.part(0, len(store)), f"{given['source']} (whole file)", "characters"
    else:  # the held-out part, read as the model was trained
        if saved is None and "source" not in given:
            raise SeqlabError(f"{spec.model_dir}: no record of its training data; give the data to score")
        if saved is None:
            data_spec = DataSpec(**given)
        else:
            saved.check_encoding(given)
            if "source" not in given:
                saved = run_data.readable_data(saved, spec.model_dir)  # a recorded local path only when named
            data_spec = replace(saved, **given)
        dataset = load_dataset(data_spec)
        data, source, elements = dataset.valid, f"{dataset.spec.source} (validation part)", dataset.elements
        family = next((f for f in FAMILIES.values() if f.kind == model.kind), None)
        if dataset.kind == "series" and isinstance(family, OneGoFamily) and len(dataset.valid):
            # as train scored it: a filter's state and a model's lags come from the training part before it
            log_probs, _ = family.held_out(model, dataset)
            scores = likelihood_scores(log_probs, elements, model.head.discrete)
            return EvaluateResult(source, elements, scores, model.head.discrete)
    text = isinstance(data, str | TextPart)
    x = model.encode(data, unknown=spec.unknown if text else "error", source=source)
    if len(x) == 0:
        raise SeqlabError(f"{source}: nothing to score")
    limit = None if spec.score_all else SCORE_LIMIT
    scores = score_held_out(model, x, elements, model.head.discrete, limit)  # in chunks, the state carried
    if "sampled_of" in scores:  # said where every interface prints the source
        error = scores["nll_standard_error"]
        source += (
            f"; a sample: {SCORE_BLOCKS} blocks spread over its {scores['sampled_of']:,} {elements}, NLL standard "
            f"error {error:.4f} nats ({error / LN2:.4f} bits)"
        )
    if spec.unknown == "map" and text:
        scores["unknown_tokens"] = _count(x, model.vocabulary.unknown_id)
    return EvaluateResult(source, elements, scores, model.head.discrete)


def _count(x, value: int) -> int:
    """How many of the ids equal ``value``, in chunks (the ids may be a memory-mapped view of a large text)."""
    return sum(int((x[s : s + CHUNK] == value).sum()) for s in range(0, len(x), CHUNK))


CHUNK = 1 << 22


@dataclass
class VoiceSpec:
    model_dir: Path
    data: str | None = None  # the training audio (default: the model's, read when bundled; a local file if named)
    seconds: float = 10.0  # generated: judge on 10 s or more, shorter samples vary a lot by seed
    seed: int = 0
    temperature: float = 1.0
    out: Path | None = None  # also write the generated audio here


@dataclass
class VoiceResult:
    source: str  # the training audio the data column is measured on
    seconds: float  # of generated audio
    data_seconds: float
    rate: int
    data: dict  # seqlab.voice.voice_metrics of the training part
    generated: dict  # the same of the generated audio (mel-cepstrum distance to the training part's mean)


def evaluate_voice(spec: VoiceSpec) -> VoiceResult:
    """Generate ``spec.seconds`` of audio as ``seqlab sample`` does and measure it beside the training part of the
    audio the model learnt from (``seqlab.voice``): does it speak?"""
    if spec.seconds < HOP_S:  # no frame to measure: every number would be of nothing
        raise OptionError(
            f"{{0}} {spec.seconds:g} is shorter than one {1000 * HOP_S:g} ms frame of the voice metrics; ask for at "
            f"least {HOP_S:g} s",
            "seconds",
        )
    model = io.load(spec.model_dir)
    refuse_a_panel_model(spec.model_dir, model)
    saved = checkpoints.data_spec(spec.model_dir, model)
    if not is_audio(model, run_data.recorded_kind(saved)):
        raise Unsupported(f"{spec.model_dir}: not a model of audio; --voice measures generated speech")
    if spec.out is not None:
        check_parent_dir(spec.out)
    sample_spec = SampleSpec(
        spec.model_dir, seconds=spec.seconds, seed=spec.seed, temperature=spec.temperature, data=spec.data
    )
    real_audio_spec(saved, sample_spec)  # the training audio measured beside it: refused now if unreadable
    audio, rate, _ = generate_audio(model, saved, sample_spec)
    if spec.out is not None:
        write_wav(spec.out, audio, rate)
    real = real_audio(saved, sample_spec, rate, "training")
    reference = mean_mel_cepstrum(real, rate)
    source = spec.data or (saved.source if saved else "?")
    return VoiceResult(
        source,
        len(audio) / rate,
        len(real) / rate,
        rate,
        voice_metrics(real, rate, reference),
        voice_metrics(audio, rate, reference),
    )
