"""Streaming generation through onnxruntime against seqlab's own NumPy samplers, one element at a time at batch 1,
measured side by side in one run: the default text model (LatentAR, LSTM 1 x 512 on the plays' vocabulary) and the
default speech model (LatentAR, LSTM 1 x 128 over the bundled clip's vocoder frames). Speed does not depend on the
weights, so both models are untrained; each path draws as its sampler does (text: softmax and one uniform per step;
frames: a Gaussian per dimension and the voicing coin, no clamp or watchdog on the ONNX side, which only adds to it).

    OMP_NUM_THREADS=1 python benchmarks/onnx_speed.py [--steps 2000] [--repeats 3]

Prints one JSON line per model: elements/s of each path (best of the repeats) and the ratio onnxruntime / NumPy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from seqlab.data.spec import DataSpec, load_dataset
from seqlab.export import export_onnx
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs.train_neural import KIND_DEFAULTS
from seqlab.streaming import FrameSampler, StreamingSampler


def session_of(model) -> tuple[ort.InferenceSession, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(export_onnx(model))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, json.loads(session.get_modelmeta().custom_metadata_map["seqlab"])


def onnx_generate(session, meta: dict, steps: int, draw) -> float:
    """Seconds for ``steps`` draws through the exported step (batch 1), as examples/onnx_sample.py runs it."""
    x_port, states = meta["inputs"][0], meta["inputs"][1:]

    def full(port, v):
        return np.full([1 if d == "batch" else d for d in port["shape"]], np.nan if v == "nan" else v, port["dtype"])

    names = [o["name"][:-5] for o in meta["outputs"][1:]]  # "<state>_next" -> "<state>"
    state = {s["name"]: full(s, s["initial"]) for s in states}
    x = full(x_port, meta["elements"]["start"])
    t0 = time.perf_counter()
    for _ in range(steps):
        out = session.run(None, {x_port["name"]: x, **state})
        state = dict(zip(names, out[1:], strict=True))
        x = np.asarray(draw(out[0][0]), x_port["dtype"])[None]
    return time.perf_counter() - t0


def text(steps: int, repeats: int) -> dict:
    dataset = load_dataset(DataSpec("shakespeare"))
    torch.manual_seed(0)
    model = LatentAR.for_dataset(dataset, LatentARConfig()).eval()
    session, meta = session_of(model)
    rng = np.random.default_rng(0)
    never = meta["elements"]["never_drawn"]

    def draw(logits):
        logits = logits.copy()
        logits[never] = -np.inf
        cdf = np.cumsum(np.exp(logits - logits.max()))
        return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)

    sampler = StreamingSampler(model)
    numpy_s = min(_timed(lambda: sampler.generate([], steps, seed=0)) for _ in range(repeats))
    onnx_s = min(onnx_generate(session, meta, steps, draw) for _ in range(repeats))
    return _row("text: " + model.describe(), steps, numpy_s, onnx_s)


def speech(steps: int, repeats: int) -> dict:
    dataset = load_dataset(DataSpec("speech"))
    fields = {k: v for k, v in KIND_DEFAULTS["vocoder"].items() if k in LatentARConfig.__dataclass_fields__}
    torch.manual_seed(0)
    model = LatentAR.for_dataset(dataset, LatentARConfig(**fields)).eval()
    session, meta = session_of(model)
    rng = np.random.default_rng(0)
    binary = np.array(model.head.binary)
    continuous = np.array(model.head.continuous)

    def draw(params):  # a Gaussian per continuous dimension (mean, log sd), a coin for voicing
        frame = np.empty(model.head.dims)
        p = params.reshape(-1)
        frame[continuous] = p[: len(continuous)] + np.exp(
            p[len(continuous) : 2 * len(continuous)]
        ) * rng.standard_normal(len(continuous))
        frame[binary] = rng.random(len(binary)) < 0.5
        return frame

    sampler = FrameSampler(model)
    numpy_s = min(_timed(lambda: sampler.generate(None, steps, seed=0)) for _ in range(repeats))
    onnx_s = min(onnx_generate(session, meta, steps, draw) for _ in range(repeats))
    return _row("speech: " + model.describe(), steps, numpy_s, onnx_s)


def _timed(run) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def _row(model: str, steps: int, numpy_s: float, onnx_s: float) -> dict:
    return {
        "model": model,
        "steps": steps,
        "numpy_elements_per_s": round(steps / numpy_s),
        "onnxruntime_elements_per_s": round(steps / onnx_s),
        "onnxruntime_over_numpy": round(numpy_s / onnx_s, 3),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "onnxruntime": ort.__version__,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for measure in (text, speech):
        print(json.dumps(measure(args.steps, args.repeats)), flush=True)
