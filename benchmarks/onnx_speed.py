"""Streaming generation through onnxruntime against seqlab's own NumPy samplers at batch 1, measured side by side
in one run: the default text model (LatentAR, LSTM 1 x 512 on the plays' vocabulary) and the default speech model
(LatentAR, LSTM 1 x 128 over the bundled clip's vocoder frames). Speed does not depend on the weights, so both
models are untrained. Three paths per model, interleaved in every repeat:

    numpy   seqlab.streaming (StreamingSampler / FrameSampler.generate, no watchdog), what `seqlab sample` runs
    step    the exported step graph, one `run` per element, the draw in NumPy (examples/onnx_sample.py's way)
    chunk   the exported generation graph (`seqlab export --chunk K`): K steps and their draws per `run`, the
            random numbers made by numpy as the NumPy sampler makes them (the same stream: the same elements)

    OMP_NUM_THREADS=1 python benchmarks/onnx_speed.py [--steps 4096] [--repeats 5] [--chunk 32]

Prints one JSON line per model: elements/s of each path (best of the repeats), the ratios onnxruntime / NumPy,
whether the chunk graph drew the NumPy sampler's elements, the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import onnxruntime as ort
import torch

from seqlab.data.spec import DataSpec, load_dataset
from seqlab.export import export_onnx
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs.train_neural import KIND_DEFAULTS
from seqlab.streaming import FrameSampler, StreamingSampler

THREADS = int(os.environ.get("OMP_NUM_THREADS", "1"))


def session_of(model, chunk: int | None = None) -> tuple[ort.InferenceSession, dict]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = THREADS
    session = ort.InferenceSession(export_onnx(model, chunk=chunk), options, providers=["CPUExecutionProvider"])
    return session, json.loads(session.get_modelmeta().custom_metadata_map["seqlab"])


def full(port: dict, value) -> np.ndarray:
    """A batch-1 array of ``port`` filled with ``value`` ("nan": NaN)."""
    shape = [1 if d == "batch" else d for d in port["shape"]]
    return np.full(shape, np.nan if value == "nan" else value, port["dtype"])


def initial_state(meta: dict) -> dict:
    return {p["name"]: full(p, p["initial"]) for p in meta["inputs"] if "feedback" in p}


def step_generate(session, meta: dict, steps: int, draw) -> np.ndarray:
    """``steps`` elements through the step graph, one ``run`` each, ``draw(params (P,)) -> element`` in NumPy."""
    x_port, names = meta["inputs"][0], [o["name"].removesuffix("_next") for o in meta["outputs"][1:]]
    state, x, out = initial_state(meta), full(x_port, meta["elements"]["start"]), []
    for _ in range(steps):
        params, *new = session.run(None, {x_port["name"]: x, **state})
        state = dict(zip(names, new, strict=True))
        out.append(draw(params[0]))
        x = np.asarray(out[-1], x_port["dtype"])[None]
    return np.array(out)


def chunk_generate(session, meta: dict, steps: int, numbers) -> np.ndarray:
    """``steps`` elements through the generation graph, ``chunk`` per ``run``; ``numbers(K) -> {input: array}``
    gives each call's random numbers and temperature."""
    x_port, K = meta["inputs"][0], meta["chunk"]
    names = [o["name"].removesuffix("_next") for o in meta["outputs"][1:]]
    state, x, out = initial_state(meta), full(x_port, meta["elements"]["start"]), []
    for _ in range(-(-steps // K)):
        drawn, *new = session.run(None, {x_port["name"]: x, **state, **numbers(K)})
        state = dict(zip(names, new, strict=True))
        out.append(drawn[0])
        x = drawn[:, -1].astype(x_port["dtype"])
    return np.concatenate(out)[:steps]


def text(steps: int, repeats: int, chunk: int) -> dict:
    torch.manual_seed(0)
    model = LatentAR.for_dataset(load_dataset(DataSpec("shakespeare")), LatentARConfig()).eval()
    sampler = StreamingSampler(model)
    step_session, step_meta = session_of(model)
    chunk_session, chunk_meta = session_of(model, chunk)
    never = step_meta["elements"]["never_drawn"]

    def numpy_path(seed):
        return sampler.generate([], steps, seed=seed)

    def step_path(seed):
        rng = np.random.default_rng(seed)
        uniforms, at = rng.random(steps), iter(range(steps))

        def draw(logits):
            logits[never] = -np.inf
            cdf = np.cumsum(np.exp(logits - logits.max()))
            return min(int(np.searchsorted(cdf, uniforms[next(at)] * cdf[-1], side="right")), len(cdf) - 1)

        return step_generate(step_session, step_meta, steps, draw)

    def chunk_path(seed):
        uniforms = np.random.default_rng(seed).random(-(-steps // chunk) * chunk)  # as the NumPy sampler: all first
        given, temperature, calls = np.full((1, chunk), -1), np.ones(1), iter(range(steps))

        def numbers(K):
            i = next(calls) * K
            return {"given": given, "uniforms": uniforms[None, i : i + K], "temperature": temperature}

        return chunk_generate(chunk_session, chunk_meta, steps, numbers)

    return measure("text: " + model.describe(), steps, repeats, chunk, numpy_path, step_path, chunk_path)


def speech(steps: int, repeats: int, chunk: int) -> dict:
    fields = {k: v for k, v in KIND_DEFAULTS["vocoder"].items() if k in LatentARConfig.__dataclass_fields__}
    torch.manual_seed(0)
    model = LatentAR.for_dataset(load_dataset(DataSpec("speech")), LatentARConfig(**fields)).eval()
    sampler = FrameSampler(model)
    step_session, step_meta = session_of(model)
    chunk_session, chunk_meta = session_of(model, chunk)
    head = model.head
    continuous, binary, D, mixture = head.continuous, head.binary, head.dims, head.per_dimension.kind == "mixture"
    ones = np.ones(D)

    def numpy_path(seed):
        return sampler.generate(None, steps, seed=seed)

    def step_path(seed):  # FrameSampler.draw on onnxruntime's params: the same draw and clamp
        rng = np.random.default_rng(seed)
        return step_generate(step_session, step_meta, steps, lambda params: sampler.draw(params, ones, rng))

    def chunk_path(seed):
        rng = np.random.default_rng(seed)
        temperature = np.ones((1, D))

        def numbers(K):  # per element in FrameSampler.draw's order, so the same stream of numbers
            (normals, uniforms), coins = np.empty((2, 1, K, len(continuous))), np.empty((1, K, len(binary)))
            for k in range(K):
                normals[0, k] = rng.standard_normal(len(continuous))
                if mixture:
                    uniforms[0, k] = rng.random(len(continuous))
                coins[0, k] = rng.random(len(binary))
            out = {"normals": normals, "coins": coins, "temperature": temperature}
            return out | ({"uniforms": uniforms} if mixture else {})

        return chunk_generate(chunk_session, chunk_meta, steps, numbers)

    return measure("speech: " + model.describe(), steps, repeats, chunk, numpy_path, step_path, chunk_path)


def measure(name: str, steps: int, repeats: int, chunk: int, numpy_path, step_path, chunk_path) -> dict:
    """The best time of each path over ``repeats`` rounds, the paths interleaved in every round (a change of load
    hits all three); whether the chunk graph drew the NumPy sampler's elements (seed 0)."""
    reference, chunked = numpy_path(0), chunk_path(0)
    same = bool(np.allclose(reference, chunked, rtol=1e-4, atol=1e-6)) if reference.dtype.kind == "f" else None
    same = bool(np.array_equal(reference, chunked)) if same is None else same
    load_before = os.getloadavg()
    best = {"numpy": np.inf, "step": np.inf, "chunk": np.inf}
    for _ in range(repeats):
        for path, run in (("numpy", numpy_path), ("step", step_path), ("chunk", chunk_path)):
            t0 = time.perf_counter()
            run(0)
            best[path] = min(best[path], time.perf_counter() - t0)
    return {
        "model": name,
        "steps": steps,
        "chunk": chunk,
        **{f"{path}_elements_per_s": round(steps / seconds) for path, seconds in best.items()},
        "step_over_numpy": round(best["numpy"] / best["step"], 3),
        "chunk_over_numpy": round(best["numpy"] / best["chunk"], 3),
        "chunk_draws_numpy_elements": same,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "threads": THREADS,
        "onnxruntime": ort.__version__,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=32)
    args = parser.parse_args()
    for model in (text, speech):
        print(json.dumps(model(args.steps, args.repeats, args.chunk)), flush=True)
