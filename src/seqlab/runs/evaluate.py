"""``evaluate``: NLL per element of a trained model on a text, or on the held-out part of its training data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from seqlab import io
from seqlab.data.files import load_text
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.runs import rundir


@dataclass
class EvaluateSpec:
    model_dir: Path
    data: DataSpec | None = None  # a text file is scored whole; other data: its held-out part
    unknown: str = "error"  # characters outside the vocabulary: "error" or "map" (to the unknown symbol)


@dataclass
class EvaluateResult:
    source: str
    elements: str  # "characters", "values", "samples"
    scores: dict  # seqlab.metrics.likelihood_scores (+ unknown_tokens when mapped)
    discrete: bool


def evaluate(spec: EvaluateSpec) -> EvaluateResult:
    model = io.load(spec.model_dir)
    if spec.data is not None and spec.data.kind == "text":
        data, source, elements = load_text(spec.data.source), spec.data.source, "characters"
    else:  # the held-out part, read as the model was trained
        saved = rundir.data_spec(spec.model_dir, model)
        if saved is None and spec.data is None:
            raise SeqlabError(f"{spec.model_dir}: no record of its training data; give the data to score")
        data_spec = saved if spec.data is None else (replace(saved, source=spec.data.source) if saved else spec.data)
        dataset = load_dataset(data_spec)
        data, source, elements = dataset.valid, f"{dataset.spec.source} (validation part)", dataset.elements
    x = model.encode(data, unknown=spec.unknown if isinstance(data, str) else "error", source=source)
    if len(x) == 0:
        raise SeqlabError(f"{source}: nothing to score")
    scores = likelihood_scores(model.log_prob(x))
    if spec.unknown == "map" and isinstance(data, str):
        scores["unknown_tokens"] = int((x == model.vocabulary.unknown_id).sum())
    return EvaluateResult(source, elements, scores, model.head.discrete)
