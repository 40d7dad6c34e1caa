"""Text or a series' forecast from a `seqlab export [--chunk K]` file, with numpy and onnxruntime only (docs/export.md):
python examples/onnx_sample.py MODEL.onnx [--prompt TEXT] [--length 200] [--temperature 1.0] [--seed 0]
python examples/onnx_sample.py MODEL.onnx --series FILE.csv [--column NAME] [--horizon 20] [--paths 1000]"""

import argparse
import json
import sys

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model")
OPTIONS = {"prompt": (str, ""), "length": (int, 200), "temperature": (float, 1.0), "seed": (int, None)}
OPTIONS |= {"series": (str, None), "column": (str, None), "horizon": (int, 20), "paths": (int, 1000)}
for name, (kind, default) in OPTIONS.items():
    parser.add_argument("--" + name, type=kind, default=default)
args = parser.parse_args()
session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
meta = json.loads(session.get_modelmeta().custom_metadata_map["seqlab"])  # docs/export.md: every key
x_port, elements, head, symbols = meta["inputs"][0], meta["elements"], meta["head"], meta["elements"].get("vocabulary")
states = [p for p in meta["inputs"][1:] if "initial" in p]  # not a chunk graph's random numbers and temperature
rng, t, T = np.random.default_rng(args.seed), args.temperature, np.full(1, args.temperature)


def full(port, v):  # batch 1
    return np.full([1 if d == "batch" else d for d in port["shape"]], np.nan if v == "nan" else v, port["dtype"])


def step(x, state, **more):  # the previous element of each sequence -> the head's params of the next, the next state
    out = session.run(None, {x_port["name"]: np.asarray(x, x_port["dtype"]), **state, **more})  # a chunk graph: ids
    return out[0], state | {o["name"][:-5]: v for o, v in zip(meta["outputs"][1:], out[1:], strict=True)}  # s_next


x, state = full(x_port, elements["start"]), {p["name"]: full(p, p["initial"]) for p in states}
if elements["kind"] == "text":
    if set(args.prompt) - set(symbols):
        sys.exit(f"onnx_sample: the prompt holds characters the model never saw: {set(args.prompt) - set(symbols)}")
    K, n = meta.get("chunk", 1), len(args.prompt) + args.length
    given = np.array([[symbols.index(c) for c in args.prompt] + [-1] * (args.length + K)])  # padded to whole chunks
    u = np.concatenate([np.zeros(len(args.prompt)), rng.random(args.length), np.zeros(K)])[None]  # as seqlab does
    for i in range(0, n, K):  # the prompt given, the rest drawn by inverting the CDF of softmax(logits / T) at u
        if meta["graph"] == "chunk":  # a generation graph: K ids per call, drawn in the graph (docs/export.md)
            drawn, state = step(x, state, given=given[:, i : i + K], uniforms=u[:, i : i + K], temperature=T)
        else:  # a step graph: one id per call, drawn here
            logits, state = step(x, state)
            logits[0, elements["never_drawn"]] = -np.inf  # the unknown symbol (U+FFFD) is never drawn
            cdf = np.cumsum(np.exp(logits[0] / t - (logits[0] / t).max()))
            index = min(int(np.searchsorted(cdf, u[0, i] * cdf[-1], side="right")), len(cdf) - 1)
            drawn = np.where(given[:, i : i + 1] >= 0, given[:, i : i + 1], index)
        x = drawn[:, -1]  # each chunk printed as it comes
        print("".join(symbols[v] for v in drawn[0, : n - i]), end="\n" if i + K >= n else "", flush=True)
elif elements["kind"] == "series" and not elements["covariates"] and args.series:
    header = open(args.series, encoding="utf-8").readline().strip().split(",")
    names = [c for c in (args.column, (meta["data"] or {}).get("column"), "Close", "y", "value") if c in header]
    tf, base = meta["transform"] or {"steps": [], "location": 0.0, "scale": 1.0}, head.get("base", head)
    y = np.genfromtxt(args.series, delimiter=",", skip_header=1, usecols=header.index([*names, header[-1]][0]))
    levels = [y[~np.isnan(y)]]  # the series at the input of each step of the model's transform
    for s in tf["steps"]:
        levels.append({"log": np.log, "diff": np.diff}.get(s, lambda v: (v - tf["location"]) / tf["scale"])(levels[-1]))
    for v in [x, *levels[-1]]:  # the start, the series, then every path from there at once, as one batch
        params, state = step(np.reshape(v, x.shape), state)
    state = {s["name"]: np.repeat(state[s["name"]], args.paths, axis=s["shape"].index("batch")) for s in states}
    params, paths, rows, K = np.repeat(params, args.paths, 0), [], np.arange(args.paths), base.get("components")
    for _ in range(args.horizon):
        mu, sigma, nu = params[:, 0], np.exp(params[:, 1]), 2 + np.logaddexp(0, params[:, -1])  # nu: a t head's
        if base["kind"] == "mixture":  # K logits, K means, K log sigmas: a component, then its Gaussian
            w = np.cumsum(np.exp(params[:, :K] - params[:, :K].max(1, keepdims=True)), 1)
            k = np.minimum((w < rng.random((args.paths, 1)) * w[:, -1:]).sum(1), K - 1)
            mu, sigma = params[rows, K + k], np.exp(params[rows, 2 * K + k])
        z = rng.standard_t(nu) if base["kind"] == "studentt" else rng.standard_normal(len(rows))
        paths.append(np.exp(mu + t * sigma * z) if base is not head else mu + t * sigma * z)  # a head of log x: exp
        params, state = step(paths[-1], state)
    y, undo = np.stack(paths, 1), {"log": lambda y, v: np.exp(y), "diff": lambda y, v: v[-1] + np.cumsum(y, 1)}
    for s, level in zip(reversed(tf["steps"]), reversed(levels[:-1]), strict=True):  # back to the data's scale
        y = undo.get(s, lambda y, v: y * tf["scale"] + tf["location"])(y, level)
    table = np.column_stack([np.arange(1, args.horizon + 1), np.quantile(y, [0.1, 0.5, 0.9], 0).T, y.mean(0)])
    np.savetxt(sys.stdout, table, "%.6g", ",", header="step,q0.1,median,q0.9,mean", comments="")
else:
    sys.exit(f"onnx_sample: text, or --series for a series without covariates; this is {meta['description']}")
