"""The generation graph (``seqlab export --chunk K``, ``seqlab.export.chunk_graph``): K steps and their draws per
onnxruntime call from random numbers the caller gives. Checked against the step graph fed the same elements and
the same numbers, drawn in NumPy as the metadata says (ids equal, frames to 1e-5, states to 1e-5), and for a
LatentAR against seqlab's own NumPy samplers (the elements ``seqlab sample`` draws for the same seed)."""

import json

import numpy as np
import pytest
import torch
from conftest import relative_error
from helpers import assert_one_line_error, run_cli
from test_export import (
    PARITY,
    TEXT,
    fed_back,
    frame_model,
    frames,
    initial_feeds,
    saved,
    scrambled,
    series_values,
    text_model,
)

from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError, Unsupported
from seqlab.export import MAX_CHUNK, METADATA_KEY, export_onnx
from seqlab.models import LatentAR, LatentARConfig, NGram
from seqlab.streaming import FrameSampler, StreamingSampler, draw

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra: pip install -e '.[test]'")

K = 7  # not a divisor of the lengths below: the last call's extra elements are dropped


def sessions(model, chunk=K):
    """(step session, its metadata), (chunk session, its metadata)."""
    out = []
    for c in (None, chunk):
        session = ort.InferenceSession(export_onnx(model, chunk=c), providers=["CPUExecutionProvider"])
        out.append((session, json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])))
    return out


def state_names(meta):
    return [p["name"] for p in meta["inputs"] if "feedback" in p]


def full(port, value, batch):
    shape = [batch if d == "batch" else d for d in port["shape"]]
    return np.full(shape, np.nan if value == "nan" else value, port["dtype"])


def run_chunks(session, meta, batch, numbers):
    """Every call of the chunk graph from the start (batch sequences): ``numbers(i) -> {input: array}`` for the
    call at position i; yields (drawn (batch, K, ...), the state after it (the graph's outputs))."""
    x_port = meta["inputs"][0]
    feeds = {p["name"]: full(p, p["initial"], batch) for p in meta["inputs"] if "feedback" in p}
    x = full(x_port, x_port["initial"], batch)
    i = 0
    while True:
        drawn, *new = session.run(None, {"x_prev": x, **feeds, **numbers(i)})
        feeds = dict(zip(state_names(meta), new, strict=True))
        yield drawn, feeds
        x, i = drawn[:, -1].astype(x_port["dtype"]), i + meta["chunk"]


def step_reference(session, meta, elements_in):
    """The step graph (batch 1) fed ``elements_in`` (the start first): each step's params and the final state."""
    feeds, params = initial_feeds(meta), []
    for x in elements_in:
        out = session.run(None, {"x_prev": np.asarray(x, meta["inputs"][0]["dtype"])[None], **feeds})
        params.append(out[0][0])
        feeds = fed_back(meta, feeds, out)
    return params, {name: feeds[name] for name in state_names(meta)}


def state_error(actual: dict, expected: dict) -> float:
    worst = 0.0
    for name, value in expected.items():
        if value.dtype.kind == "f":
            worst = max(worst, relative_error(torch.from_numpy(actual[name]), torch.from_numpy(value)))
        else:
            assert np.array_equal(actual[name], value), name
    return worst


# -- models of ids ------------------------------------------------------------------------------------------------


def ngram():
    return NGram(order=2, smoothing="lidstone", gamma=0.3).fit(TEXT * 3)


ID_MODELS = {
    "latent_ar lstm 2 layers": lambda: text_model("latent_ar", cell="lstm", num_layers=2, hidden_size=12),
    "latent_ar gru reset before 2 layers": lambda: text_model(
        "latent_ar", cell="gru", reset="before", num_layers=2, hidden_size=12
    ),
    "latent_ar gru reset after": lambda: text_model("latent_ar", cell="gru", reset="after", hidden_size=12),
    "latent_ar rnn": lambda: text_model("latent_ar", cell="rnn", hidden_size=12),
    "neural_ar": lambda: text_model("neural_ar"),
    "transformer": lambda: text_model("transformer"),
    "ngram order 2": ngram,
}


@pytest.mark.parametrize("name", list(ID_MODELS))
def test_chunk_graph_draws_the_ids_the_step_graph_draws_from_the_same_uniforms(name):
    """Two sequences at once, each with its own prompt, uniforms and temperature; every id must equal the step
    graph's run of that sequence alone with the draw of ``seqlab.streaming`` (the unknown symbol never drawn), and
    the state after every call the step graph's after the same ids."""
    model = ID_MODELS[name]()
    (step_session, step_meta), (chunk_session, chunk_meta) = sessions(model)
    never = step_meta["elements"]["never_drawn"]
    length, prompts, temperatures = 40, [[3, 1, 4, 1, 5], [9, 2]], [0.8, 1.3]
    given = np.full((2, length + K), -1)
    for b, prompt in enumerate(prompts):
        given[b, : len(prompt)] = prompt
    uniforms = np.random.default_rng(1).random((2, length + K))
    temperature = np.array(temperatures)

    def numbers(i):
        return {"given": given[:, i : i + K], "uniforms": uniforms[:, i : i + K], "temperature": temperature}

    calls = run_chunks(chunk_session, chunk_meta, 2, numbers)
    drawn, states = [], []
    while sum(d.shape[1] for d in drawn) < length:
        ids, state = next(calls)
        drawn.append(ids)
        states.append(state)
    drawn = np.concatenate(drawn, 1)
    assert drawn.dtype == np.int64 and drawn.shape == (2, len(states) * K)
    for b in range(2):
        expected, x, feeds = [], step_meta["elements"]["start"], initial_feeds(step_meta)
        for i in range(drawn.shape[1]):
            out = step_session.run(None, {"x_prev": np.array([x]), **feeds})
            feeds = fed_back(step_meta, feeds, out)
            logits = out[0][0].copy()
            if never is not None:
                logits[never] = -np.inf
            x = given[b, i] if given[b, i] >= 0 else draw(logits, temperatures[b], None, uniforms[b, i])
            expected.append(x)
            if (i + 1) % K == 0:  # the chunk's state: after its last element's step (that element not yet fed)
                chunk_state = {n: np.take(v, [b], axis=_batch_axis(step_meta, n)) for n, v in states[i // K].items()}
                assert state_error(chunk_state, {n: feeds[n] for n in state_names(step_meta)}) < PARITY
        assert drawn[b].tolist() == expected
        assert drawn[b, : len(prompts[b])].tolist() == prompts[b]
        assert never is None or never not in drawn[b]
    assert len(set(drawn[0, 5:].tolist())) > 3  # drawn, not a constant


def _batch_axis(meta, name):
    return next(p["shape"].index("batch") for p in meta["inputs"] if p["name"] == name)


@pytest.mark.parametrize("cell, reset", [("lstm", "after"), ("gru", "before")])
def test_latent_ar_chunk_graph_draws_what_seqlab_samples(cell, reset):
    """The uniforms as ``StreamingSampler`` (what ``seqlab sample`` runs) draws them, all first from
    ``default_rng(seed)``: the same ids, the prompt given in the graph."""
    model = text_model("latent_ar", cell=cell, reset=reset, num_layers=2, hidden_size=12, embedding_dim=6)
    _, (session, meta) = sessions(model, chunk=16)
    prompt, length = [5, 0, 7], 300
    expected = StreamingSampler(model).generate(prompt, length, 0.8, seed=7)
    n = len(prompt) + length
    given = np.array([prompt + [-1] * (length + 16)])
    uniforms = np.concatenate([np.zeros(len(prompt)), np.random.default_rng(7).random(length), np.zeros(16)])[None]

    def numbers(i):
        return {"given": given[:, i : i + 16], "uniforms": uniforms[:, i : i + 16], "temperature": np.array([0.8])}

    calls, drawn = run_chunks(session, meta, 1, numbers), []
    while sum(len(d) for d in drawn) < n:
        drawn.append(next(calls)[0][0])
    drawn = np.concatenate(drawn)[:n]
    assert drawn[: len(prompt)].tolist() == prompt and np.array_equal(drawn[len(prompt) :], expected)


def test_chunk_graph_metadata_and_ports():
    model = text_model("latent_ar", cell="lstm", hidden_size=12)
    _, (session, meta) = sessions(model, chunk=5)
    assert meta["graph"] == "chunk" and meta["chunk"] == 5
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "h", "c", "given", "uniforms", "temperature"]
    assert [p["name"] for p in meta["outputs"]] == ["ids", "h_next", "c_next"]
    assert [i.name for i in session.get_inputs()] == [p["name"] for p in meta["inputs"]]
    assert meta["inputs"][4]["dtype"] == "float64" and meta["outputs"][0]["shape"] == ["batch", 5]
    assert "initial" not in meta["inputs"][3] and meta["inputs"][1]["feedback"] == "h_next"


# -- models of frames ---------------------------------------------------------------------------------------------


def draw_frame(meta, params, normals, uniforms, coins, temperature):
    """A frame from the step graph's ``params`` (P,) as the metadata describes the draw, in float64."""
    head, e = meta["head"], meta["elements"]
    continuous, binary, p = head["continuous"], head["binary"], head["per_dimension"]["num_params"]
    theta = params[: len(continuous) * p].astype(np.float64).reshape(len(continuous), p)
    if head["per_dimension"]["kind"] == "mixture":
        c = head["per_dimension"]["components"]
        w = np.exp(theta[:, :c] - theta[:, :c].max(1, keepdims=True))
        k = np.minimum((np.cumsum(w, 1) / w.sum(1, keepdims=True) < uniforms[:, None]).sum(1), c - 1)
        mu, log_sigma = theta[np.arange(len(continuous)), c + k], theta[np.arange(len(continuous)), 2 * c + k]
    else:
        mu, log_sigma = theta[:, 0], theta[:, 1]
    x = np.empty(head["dims"])
    x[continuous] = mu + temperature[continuous] * np.exp(log_sigma) * normals
    logits = params[len(continuous) * p :].astype(np.float64) / temperature[binary]
    x[binary] = coins < 1 / (1 + np.exp(-logits))
    return np.clip(x, e["low"], e["high"])


FRAME_MODELS = [
    ("latent_ar", "gaussian"),
    ("latent_ar", "mixture"),
    ("latent_ar gru before", "mixture"),
    ("latent_ar lstm", "gaussian"),
    ("neural_ar", "mixture"),
    ("transformer", "gaussian"),
]


def frames_model(family, head):
    if family.startswith("latent_ar "):
        cell, *reset = family.split()[1:]
        config = LatentARConfig(cell=cell, reset=(reset or ["after"])[0], hidden_size=12, head=head, components=2)
        return scrambled(LatentAR.for_frames(frames(200), config, binary=[2], groups={"f0": [0, 1], "voicing": [2]}))
    return frame_model(family, head)


@pytest.mark.parametrize("family, head", FRAME_MODELS)
def test_chunk_graph_draws_the_frames_the_step_graph_draws_from_the_same_numbers(family, head):
    """Two sequences with their own numbers and temperatures per dimension; each frame must equal the draw (as
    the metadata says) from the step graph's params after the same frames (fed the chunk's own), to 1e-5."""
    model = frames_model(family, head)
    (step_session, step_meta), (chunk_session, chunk_meta) = sessions(model)
    rng, n, Dc = np.random.default_rng(2), 3 * K, 2
    normals, uniforms, coins = rng.standard_normal((2, n, Dc)), rng.random((2, n, Dc)), rng.random((2, n, 1))
    temperature = np.array([[0.7, 1.2, 0.9], [1.0, 0.5, 1.4]])
    mixture = head == "mixture"
    assert [p["name"] for p in chunk_meta["inputs"] if "feedback" not in p][1:] == (
        ["normals", "uniforms", "coins", "temperature"] if mixture else ["normals", "coins", "temperature"]
    )

    def numbers(i):
        out = {"normals": normals[:, i : i + K], "coins": coins[:, i : i + K], "temperature": temperature}
        return out | ({"uniforms": uniforms[:, i : i + K]} if mixture else {})

    calls = run_chunks(chunk_session, chunk_meta, 2, numbers)
    chunks = [next(calls) for _ in range(n // K)]
    drawn = np.concatenate([c[0] for c in chunks], 1)  # (2, n, 3)
    assert drawn.shape == (2, n, 3) and drawn.dtype == np.float64
    for b in range(2):
        fed = [None, *drawn[b, :-1]]  # the start, then the chunk's own frames
        params, _ = step_reference(step_session, step_meta, [np.full(3, np.nan) if x is None else x for x in fed])
        expected = np.stack(
            [
                draw_frame(step_meta, p, normals[b, i], uniforms[b, i], coins[b, i], temperature[b])
                for i, p in enumerate(params)
            ]
        )
        assert relative_error(torch.from_numpy(drawn[b]), torch.from_numpy(expected)) < PARITY
        assert np.array_equal(drawn[b, :, 2], expected[:, 2]) and set(np.unique(drawn[b, :, 2])) <= {0.0, 1.0}
        _, state = step_reference(step_session, step_meta, [np.full(3, np.nan), *drawn[b, : 2 * K - 1]])
        chunk_state = {name: np.take(v, [b], axis=_batch_axis(step_meta, name)) for name, v in chunks[1][1].items()}
        assert state_error(chunk_state, state) < PARITY
    assert np.all(drawn >= np.array(step_meta["elements"]["low"]) - 1e-12)
    assert np.all(drawn <= np.array(step_meta["elements"]["high"]) + 1e-12)


@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_latent_ar_frame_chunk_graph_draws_what_seqlab_samples(head):
    """The numbers in ``FrameSampler.draw``'s order from ``default_rng(seed)``: the frames of seqlab's sampler
    (what ``seqlab sample`` runs, without the watchdog), to 1e-5, at the vocoder's temperature per dimension."""
    model = frames_model("latent_ar", head)
    _, (session, meta) = sessions(model)
    t = np.array([0.6, 1.0, 0.8])
    expected = FrameSampler(model).generate(None, 4 * K, temperature=t.tolist(), seed=3)
    rng = np.random.default_rng(3)

    def numbers(i):
        normals, uniforms, coins = np.empty((1, K, 2)), np.empty((1, K, 2)), np.empty((1, K, 1))
        for k in range(K):
            normals[0, k] = rng.standard_normal(2)
            if head == "mixture":
                uniforms[0, k] = rng.random(2)
            coins[0, k] = rng.random(1)
        out = {"normals": normals, "coins": coins, "temperature": t[None]}
        return out | ({"uniforms": uniforms} if head == "mixture" else {})

    calls = run_chunks(session, meta, 1, numbers)
    drawn = np.concatenate([next(calls)[0][0] for _ in range(4)])
    assert relative_error(torch.from_numpy(drawn), torch.from_numpy(expected)) < PARITY


# -- what cannot be a generation graph ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [0, -3, MAX_CHUNK + 1, 2.5, True])
def test_a_bad_chunk_length_is_refused_in_one_line(chunk):
    with pytest.raises(SeqlabError, match=f"chunk length must be an integer from 1 to {MAX_CHUNK}") as e:
        export_onnx(text_model("latent_ar"), chunk=chunk)
    assert "\n" not in str(e.value)


def test_a_series_model_has_no_generation_graph():
    model = scrambled(LatentAR.for_series(torch.stack(series_values(50)), LatentARConfig(hidden_size=8)))
    with pytest.raises(Unsupported, match="draws ids .* or frames") as e:
        export_onnx(model, chunk=8)
    assert "\n" not in str(e.value)


def test_export_command_writes_the_chunk_graph_and_refuses_a_bad_one(tmp_path, capsys):
    model_dir = saved(text_model("latent_ar", cell="gru", hidden_size=8, embedding_dim=4), tmp_path / "m")
    out = tmp_path / "chunk.onnx"
    code, stdout, _ = run_cli(["export", model_dir, "--out", str(out), "--chunk", "12"], capsys)
    assert code == 0 and "12 steps and their draws per call" in stdout
    assert "inputs x_prev, h, given, uniforms, temperature; outputs ids, h_next" in stdout
    meta = json.loads(ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert meta["graph"] == "chunk" and meta["chunk"] == 12
    code, _, err = run_cli(["export", model_dir, "--out", str(tmp_path / "bad.onnx"), "--chunk", "0"], capsys)
    assert_one_line_error(code, err, "chunk length must be an integer")
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.slow  # the example in its bare environment: the step graph's runs in the default suite
@pytest.mark.parametrize("cell, reset", [("lstm", "after"), ("gru", "before")])
def test_example_samples_seqlabs_text_from_the_chunk_graph(tmp_path, cell, reset, run_example):
    model = text_model("latent_ar", cell=cell, reset=reset, num_layers=2, hidden_size=12, embedding_dim=6)
    path = tmp_path / "chunk.onnx"
    path.write_bytes(export_onnx(model, chunk=32))
    printed = run_example(path, "--prompt", "the ", "--length", 300, "--temperature", 0.8, "--seed", 7)
    assert printed == "the " + model.sample("the ", 300, 0.8, seed=7) + "\n"
    assert len(Vocabulary.from_text(TEXT)) == model.elements.start  # the ids the example prints are the model's
