"""ONNX export of every neural model's ``step`` (``seqlab.export``), checked through onnxruntime against the model's
own ``step`` (the reference) over 500 steps; the metadata a caller needs; the ``seqlab export`` command."""

import ast
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import relative_error
from helpers import assert_one_line_error, run_cli

import seqlab
from seqlab.base import SequenceModel
from seqlab.data.audio import MuLaw
from seqlab.data.spec import DataSpec
from seqlab.data.text import Vocabulary
from seqlab.errors import Unsupported
from seqlab.export import METADATA_KEY, NGramBackoffStep, NGramStep, export_onnx, ngram_table, step_graph
from seqlab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    InfiniGram,
    LatentAR,
    LatentARConfig,
    LinearAR,
    MarkovChain,
    NeuralAR,
    NeuralARConfig,
    NGram,
    RandomWalk,
)
from seqlab.models.global_ar import GlobalAR, GlobalARConfig
from seqlab.runs.sample import GROUP_TEMPERATURES
from seqlab.transforms import Transform

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra: pip install -e '.[test]'")

STEPS = 500
PARITY = 1e-5  # relative_error per step (max |a - e| / max |e|), float32 onnxruntime against float32 torch
TEXT = "the quick brown fox jumps over the lazy dog. "


def scrambled(model):
    """``model`` with every parameter redrawn from N(0, 0.4^2) (seed 0): a continuous head starts at zero output
    (``zero_output``), which would make its parameters ignore the state; in inference mode."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model.eval()


def session_of(model, **extra):
    session = ort.InferenceSession(export_onnx(model, extra), providers=["CPUExecutionProvider"])
    return session, json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])


def initial_feeds(meta, batch=1):
    """Every state input at its initial value, as the metadata describes it (what a caller without seqlab does)."""
    feeds = {}
    for port in meta["inputs"][1:]:
        shape = [batch if d == "batch" else d for d in port["shape"]]
        fill = np.nan if port["initial"] == "nan" else port["initial"]
        feeds[port["name"]] = np.full(shape, fill, dtype=port["dtype"])
    return feeds


def element_array(meta, x):
    """One element (a torch tensor, or None for the start) as a batch-1 ``x_prev``."""
    port = meta["inputs"][0]
    if x is None:
        fill = np.nan if port["initial"] == "nan" else port["initial"]
        return np.full([1] + port["shape"][1:], fill, dtype=port["dtype"])
    return np.asarray(x.numpy(), dtype=port["dtype"]).reshape([1] + port["shape"][1:])


def state_tensors(model, state):
    """``step``'s state as the graph's state outputs hold it (batch 1): (h[, c]), (window,), (cache, filled)."""
    if isinstance(model, LatentAR):
        return tuple(state) if isinstance(state, tuple) else (state,)
    if isinstance(model, NeuralAR):
        return (state,)
    return state  # the transformer's per-layer caches, compared against the graph's real slots


def nan_aware_error(actual, expected):
    """``relative_error`` where both are finite; NaN (and infinities) must sit in the same places."""
    a, e = torch.as_tensor(np.asarray(actual, dtype=np.float64)), expected.double()
    assert torch.equal(a.isnan(), e.isnan()) and torch.equal(a.isinf(), e.isinf())
    finite = torch.isfinite(e)
    return relative_error(a[finite], e[finite]) if finite.any() else 0.0


def compare_states(model, state, outputs):
    """The worst relative error between ``step``'s state and the graph's (NaN where NaN). A classical model's
    state is a tuple of its last elements (fewer at the start): the window's last ones."""
    worst = 0.0
    if isinstance(model, GlobalAR):  # (rnn state, history, t) against (history, t, h[, c])
        rnn, history, t = state
        assert int(outputs[1][0]) == int(t[0])
        worst = nan_aware_error(outputs[0][0], history[0])
        rnn = () if rnn is None else rnn if isinstance(rnn, tuple) else (rnn,)
        for expected, actual in zip(rnn, outputs[2:], strict=False):
            worst = max(worst, nan_aware_error(actual, expected))
        return worst
    if isinstance(model, CLASSICAL):
        if not outputs:  # a graph without a state (the unigram, a random walk on increments): step reads none
            return 0.0
        window, *filled = outputs
        if filled:  # LinearAR
            assert int(filled[0][0]) == len(state)
        real = window[0, window.shape[1] - len(state) :] if state else window[0, :0]
        return nan_aware_error(real, torch.tensor(state, dtype=torch.float64)) if state else 0.0
    if isinstance(model, CausalTransformer):
        cache, filled = outputs
        S = state[0].shape[1] if state else 0
        assert int(filled[0]) == S
        for k, layer in enumerate(state if S else ()):
            worst = max(worst, relative_error(torch.from_numpy(cache[k, :, cache.shape[2] - S :]), layer.float()))
        return worst
    for expected, actual in zip(state_tensors(model, state), outputs, strict=True):
        worst = max(worst, nan_aware_error(actual, expected))
    return worst


def fed_back(meta, feeds, out):
    """The next call's inputs: every output ``s_next`` as the input ``s``; the other inputs as they were."""
    return feeds | {o["name"].removesuffix("_next"): v for o, v in zip(meta["outputs"][1:], out[1:], strict=True)}


def parity(model, elements, **extra):
    """Run ``step`` and the exported graph side by side over ``elements``, each carrying its own state; the worst
    relative error of the params and of the states over all steps."""
    session, meta = session_of(model, **extra)
    names = [p["name"] for p in meta["inputs"]]
    feeds = initial_feeds(meta)
    params, state = model.step(None, model.initial_state())
    worst_params = worst_state = 0.0
    for x in [None, *elements]:
        if x is not None:
            params, state = model.step(x, state)
        out = session.run(None, {names[0]: element_array(meta, x), **feeds})
        worst_params = max(worst_params, nan_aware_error(out[0][0], params))
        worst_state = max(worst_state, compare_states(model, state, out[1:]))
        feeds = fed_back(meta, feeds, out)
    return worst_params, worst_state


def text_model(family, **config):
    vocabulary = Vocabulary.from_text(TEXT)
    if family == "latent_ar":
        c = LatentARConfig(hidden_size=12, embedding_dim=6) if not config else LatentARConfig(**config)
        return scrambled(LatentAR(vocabulary, c))
    if family == "neural_ar":
        return scrambled(NeuralAR(vocabulary, NeuralARConfig(window=5, hidden_size=16, embedding_dim=4)))
    return scrambled(CausalTransformer(vocabulary, CausalTransformerConfig(context=6, d_model=8, num_heads=2)))


def text_ids(n, seed=0):
    ids = np.random.default_rng(seed).integers(0, len(Vocabulary.from_text(TEXT)) - 1, n)  # never the unknown id
    return [torch.tensor(int(v)) for v in ids]


def series_values(n, covariates=0, seed=0):
    """Values around 100 with one gap (NaN) in the middle; (n,) or with covariates (n, 1 + C)."""
    rng = np.random.default_rng(seed)
    x = 100 + np.cumsum(rng.normal(size=(n, 1 + covariates)), axis=0)
    x[n // 2] = np.nan
    x = torch.from_numpy(x).float()
    return [v if covariates else v[0] for v in x]


LATENT_VARIANTS = [
    ("rnn", "after", 1),
    ("rnn", "after", 2),
    ("lstm", "after", 1),
    ("lstm", "after", 2),
    ("gru", "after", 1),
    ("gru", "after", 2),
    ("gru", "before", 1),
    ("gru", "before", 2),
]


@pytest.mark.slow
@pytest.mark.parametrize("cell, reset, layers", LATENT_VARIANTS)
def test_latent_ar_text_step_equals_onnxruntime_over_500_steps(cell, reset, layers):
    model = text_model("latent_ar", cell=cell, reset=reset, num_layers=layers, hidden_size=12, embedding_dim=6)
    worst_params, worst_state = parity(model, text_ids(STEPS))
    assert worst_params < PARITY and worst_state < PARITY


def test_latent_ar_lstm_two_layers_text_parity_quick():
    """In the default selection: 200 steps of a 2-layer LSTM (the slow tests run 500 steps of every variant)."""
    config = {"cell": "lstm", "num_layers": 2, "hidden_size": 12, "embedding_dim": 6}
    worst_params, worst_state = parity(text_model("latent_ar", **config), text_ids(200))
    assert worst_params < PARITY and worst_state < PARITY


@pytest.mark.slow
@pytest.mark.parametrize(
    "cell, reset, layers, head, covariates",
    [
        ("gru", "after", 2, "gaussian", 0),
        ("gru", "before", 1, "studentt", 0),
        ("lstm", "after", 2, "studentt", 0),
        ("rnn", "after", 1, "mixture", 0),
        ("lstm", "after", 1, "gaussian", 2),
    ],
)
def test_latent_ar_series_step_equals_onnxruntime_over_500_steps(cell, reset, layers, head, covariates):
    values = series_values(STEPS, covariates)
    config = LatentARConfig(
        cell=cell, reset=reset, num_layers=layers, hidden_size=12, embedding_dim=6, head=head, covariates=covariates
    )
    model = scrambled(LatentAR.for_series(torch.stack(values), config))
    worst_params, worst_state = parity(model, values)
    assert worst_params < PARITY and worst_state < PARITY


def test_latent_ar_series_gaussian_parity_quick():
    values = series_values(STEPS)
    model = scrambled(LatentAR.for_series(torch.stack(values), LatentARConfig(cell="gru", hidden_size=12)))
    worst_params, worst_state = parity(model, values)
    assert worst_params < PARITY and worst_state < PARITY


@pytest.mark.slow
@pytest.mark.parametrize("family", ["neural_ar", "transformer"])
def test_text_step_equals_onnxruntime_over_500_steps(family):
    worst_params, worst_state = parity(text_model(family), text_ids(STEPS))
    assert worst_params < PARITY and worst_state < PARITY


@pytest.mark.slow
@pytest.mark.parametrize("family", ["neural_ar", "transformer"])
@pytest.mark.parametrize("head", ["studentt", "mixture"])
def test_series_step_equals_onnxruntime_over_500_steps(family, head):
    values = series_values(STEPS)
    if family == "neural_ar":
        config = NeuralARConfig(window=4, hidden_size=16, embedding_dim=4, head=head)
        model = NeuralAR.for_series(torch.stack(values), config)
    else:
        config = CausalTransformerConfig(context=5, d_model=8, num_heads=2, head=head)
        model = CausalTransformer.for_series(torch.stack(values), config)
    worst_params, worst_state = parity(scrambled(model), values)
    assert worst_params < PARITY and worst_state < PARITY


def test_transformer_of_context_one_has_one_masked_slot():
    model = scrambled(CausalTransformer(Vocabulary.from_text(TEXT), CausalTransformerConfig(context=1, d_model=8)))
    worst_params, worst_state = parity(model, text_ids(40))
    assert worst_params < PARITY and worst_state < PARITY


def batch_model(family):
    if family in ("latent_ar", "neural_ar", "transformer"):
        return text_model(family)
    if family == "ngram":
        return NGram(order=2).fit(TEXT)
    if family == "linear_ar":
        return LinearAR(order=3).fit(ar_series(200))
    return RandomWalk(differenced=False, season=2).fit(ar_series(200))


@pytest.mark.parametrize("family", ["latent_ar", "neural_ar", "transformer", "ngram", "linear_ar", "random_walk"])
def test_the_batch_dimension_is_dynamic(family):
    """Three sequences at once equal three runs of ``step`` (the graph was traced at batch 2)."""
    model = batch_model(family)
    session, meta = session_of(model)
    names = [p["name"] for p in meta["inputs"]]
    if model.head.discrete:
        sequences = [text_ids(20, seed) for seed in range(3)]
    else:
        sequences = [[torch.tensor(v) for v in ar_series(20, seed)] for seed in range(3)]
    feeds = initial_feeds(meta, batch=3)
    expected = []
    for seq in sequences:
        params, state = model.step(None, model.initial_state())
        for x in seq:
            params, state = model.step(x, state)
        expected.append(params)
    port = meta["inputs"][0]
    x_prev = np.full(3, np.nan if port["initial"] == "nan" else port["initial"], dtype=port["dtype"])
    for t in range(21):
        out = session.run(None, {names[0]: x_prev, **feeds})
        feeds = fed_back(meta, feeds, out)
        if t < 20:
            x_prev = np.array([seq[t].item() for seq in sequences], dtype=port["dtype"])
    assert relative_error(torch.from_numpy(out[0]).double(), torch.stack(expected).double()) < PARITY


def test_metadata_says_what_a_caller_needs():
    model = text_model("latent_ar", cell="lstm", num_layers=2, hidden_size=12, embedding_dim=6)
    _, meta = session_of(model)
    vocabulary = Vocabulary.from_text(TEXT)
    assert meta["format"] == "seqlab-onnx" and meta["model"] == "latent_ar" and meta["graph"] == "step"
    assert meta["elements"] == {
        "kind": "text",
        "vocabulary": vocabulary.to_json(),
        "start": len(vocabulary),
        "never_drawn": vocabulary.unknown_id,
    }
    assert meta["head"]["kind"] == "categorical" and meta["head"]["num_params"] == len(vocabulary)
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "h", "c"]
    assert [p["name"] for p in meta["outputs"]] == ["params", "h_next", "c_next"]
    assert meta["inputs"][1] == {
        "name": "h",
        "shape": [2, "batch", 12],
        "dtype": "float32",
        "meaning": "hidden state of every layer",
        "feedback": "h_next",
        "initial": 0,
    }


def test_series_metadata_records_standardisation_and_transform():
    values = series_values(50)
    model = LatentAR.for_series(torch.stack(values), LatentARConfig(cell="gru", hidden_size=8, head="studentt"))
    _, meta = session_of(model)
    assert meta["elements"]["kind"] == "series" and meta["elements"]["start"] == "nan"
    assert meta["elements"]["location"] == pytest.approx(float(model.elements.location))
    assert meta["head"]["kind"] == "studentt" and meta["head"]["params"] == "mu, log_sigma, nu_raw"
    assert meta["inputs"][0]["dtype"] == "float32" and meta["inputs"][0]["shape"] == ["batch"]


def test_mu_law_metadata():
    model = LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=8, embedding_dim=4))
    _, meta = session_of(model)
    assert meta["elements"] == {"kind": "mu_law", "levels": 256, "sample_rate": 8000, "start": 256}


def test_a_model_without_a_graph_is_refused_in_one_line():
    with pytest.raises(Unsupported, match="InfiniGram has no ONNX graph"):
        export_onnx(InfiniGram(vocabulary=Vocabulary.from_text(TEXT)))


def test_export_leaves_the_model_as_it_was():
    model = text_model("latent_ar").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model)
    assert model.training and model.rnn.backend == "auto"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_file_is_a_valid_onnx_model_with_its_metadata():
    """The metadata appended to the serialized ModelProto parses with the onnx package and passes its checker."""
    onnx = pytest.importorskip("onnx", reason="onnx is in the test extra: pip install -e '.[test]'")
    proto = onnx.load_model_from_string(export_onnx(text_model("neural_ar")))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert list(props) == [METADATA_KEY] and json.loads(props[METADATA_KEY])["model"] == "neural_ar"


# -- the command ------------------------------------------------------------------------------------------------


def saved(model, directory):
    seqlab.save(model, directory)
    return str(directory)


def test_export_command_writes_a_file_onnxruntime_runs(tmp_path, capsys):
    model_dir = saved(
        text_model("latent_ar", cell="gru", reset="before", hidden_size=8, embedding_dim=4), tmp_path / "m"
    )
    out = tmp_path / "model.onnx"
    code, stdout, _ = run_cli(["export", model_dir, "--out", str(out)], capsys)
    assert code == 0 and f"wrote {out}" in stdout and "inputs x_prev, h; outputs params, h_next" in stdout
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert meta["model"] == "latent_ar" and meta["description"].startswith("LatentAR(gru, reset=before")


def test_export_command_refuses_a_model_without_a_graph_and_keeps_the_old_file(tmp_path, capsys):
    model_dir = saved(InfiniGram().fit(TEXT), tmp_path / "infinigram")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"an earlier export")
    code, _, err = run_cli(["export", model_dir, "--out", str(out), "--overwrite"], capsys)
    assert_one_line_error(code, err, model_dir, "InfiniGram has no ONNX graph")
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["infinigram", "model.onnx"]  # no temporary file left


def test_export_command_replaces_an_existing_file_only_with_overwrite(tmp_path, capsys):
    model_dir = saved(text_model("neural_ar"), tmp_path / "m")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the user's file")
    code, _, err = run_cli(["export", model_dir, "--out", str(out)], capsys)
    assert_one_line_error(code, err, f"{out} exists; give --overwrite to replace it")
    assert out.read_bytes() == b"the user's file"
    code, _, _ = run_cli(["export", model_dir, "--out", "/dev/null"], capsys)  # a device is written into
    assert code == 0 and Path("/dev/null").is_char_device()
    code, stdout, _ = run_cli(["export", model_dir, "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and f"wrote {out}" in stdout and out.read_bytes()[:2] != b"th"
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def test_export_command_bad_output_and_model(tmp_path, capsys):
    code, _, err = run_cli(["export", str(tmp_path / "none"), "--out", str(tmp_path / "m.onnx")], capsys)
    assert_one_line_error(code, err, "no such model directory")
    model_dir = saved(text_model("neural_ar"), tmp_path / "m")
    code, _, err = run_cli(["export", model_dir, "--out", str(tmp_path / "missing" / "m.onnx")], capsys)
    assert_one_line_error(code, err, "does not exist")


# -- examples/onnx_sample.py: numpy and onnxruntime only --------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_sample.py"


def test_example_needs_neither_seqlab_nor_torch():
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"argparse", "json", "sys", "numpy", "onnxruntime"}
    assert len(EXAMPLE.read_text(encoding="utf-8").splitlines()) <= 80


@pytest.mark.parametrize("cell, reset", [("lstm", "after"), ("gru", "before")])
def test_example_samples_the_text_seqlab_samples_for_the_same_seed(tmp_path, cell, reset, run_example):
    """A LatentAR's sampler (``StreamingSampler``) draws one uniform number per character from numpy's
    default_rng(seed) and inverts the softmax's CDF: the example does the same on onnxruntime's logits."""
    model = text_model("latent_ar", cell=cell, reset=reset, num_layers=2, hidden_size=12, embedding_dim=6)
    path = tmp_path / "text.onnx"
    path.write_bytes(export_onnx(model))
    printed = run_example(path, "--prompt", "the ", "--length", 300, "--temperature", 0.8, "--seed", 7)
    assert printed == "the " + model.sample("the ", 300, 0.8, seed=7) + "\n"


def test_example_forecasts_a_series_as_seqlab_does(tmp_path, run_example):
    """The same distribution, not the same draws (seqlab's come from torch's generator): with 4000 paths each,
    every quantile within a fifth of the 80 % interval's width, on the data's scale through a log-return transform."""
    rng = np.random.default_rng(3)
    prices = 50 * np.exp(np.cumsum(0.01 * rng.standard_normal(300)))
    transform = Transform.parse("log_return")
    returns = torch.from_numpy(transform.apply(prices))
    model = scrambled(LatentAR.for_series(returns, LatentARConfig(cell="gru", hidden_size=8, head="studentt")))
    with torch.no_grad():  # a milder head than the scrambled one: tails that do not overflow exp in 3 steps
        model.out.weight.mul_(0.2)
        model.out.bias.mul_(0.2)
    model.transform = transform
    csv = tmp_path / "prices.csv"
    csv.write_text("Day,Close\n" + "".join(f"{d},{p:.17g}\n" for d, p in enumerate(prices)), encoding="utf-8")
    path = tmp_path / "series.onnx"
    path.write_bytes(export_onnx(model))
    printed = run_example(path, "--series", csv, "--horizon", 3, "--paths", 4000, "--seed", 0).splitlines()
    assert printed[0] == "step,q0.1,median,q0.9,mean" and len(printed) == 4
    table = np.array([[float(v) for v in row.split(",")] for row in printed[1:]])
    expected = model.forecast(prices, 3, num_samples=4000, quantiles=(0.1, 0.5, 0.9), seed=0)
    width = expected.quantiles[0.9] - expected.quantiles[0.1]
    for column, q in zip((1, 2, 3), (0.1, 0.5, 0.9), strict=True):
        assert np.all(np.abs(table[:, column] - expected.quantiles[q]) < 0.2 * width)


@pytest.mark.slow
def test_example_forecasts_a_global_model_on_log_values_as_its_steps_do(tmp_path, run_example):
    """A log-t head: the example draws log x and takes exp, as ``step``'s sampling (``SequenceModel.sample_paths``
    through ``step`` at ``series_scale``, from the series' start) does; quantiles within a fifth of the 80 %
    interval's width, with 4000 paths each."""
    model = global_model("gru", 1, "studentt")
    model.config = replace(model.config, transform="log")
    with torch.no_grad():  # a milder head than the scrambled one
        model.out.weight.mul_(0.1)
        model.out.bias.mul_(0.1)
    values = np.array([float(v) for v in panel_series(40)])
    csv = tmp_path / "sales.csv"
    csv.write_text("month,y\n" + "".join(f"{d},{v:.17g}\n" for d, v in enumerate(values)), encoding="utf-8")
    path = tmp_path / "global.onnx"
    path.write_bytes(export_onnx(model))
    printed = run_example(path, "--series", csv, "--horizon", 3, "--paths", 4000, "--seed", 0).splitlines()
    table = np.array([[float(v) for v in row.split(",")] for row in printed[1:]])
    paths = SequenceModel.sample_paths(model, torch.from_numpy(values), 3, 4000, seed=0).numpy()
    expected = np.quantile(paths, [0.1, 0.5, 0.9], axis=0)
    assert (paths > 0).all() and (table[:, 1:4] > 0).all()
    width = expected[2] - expected[0]
    for column in (1, 2, 3):
        assert np.all(np.abs(table[:, column] - expected[column - 1]) < 0.2 * width)


def test_example_refuses_what_it_cannot_do_in_one_line(tmp_path):
    path = tmp_path / "text.onnx"
    path.write_bytes(export_onnx(text_model("neural_ar")))
    done = subprocess.run([sys.executable, str(EXAMPLE), str(path), "--prompt", "~"], capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "never saw" in done.stderr


# -- frames (vocoder features; several price columns) ------------------------------------------------------------


def frames(n, seed=0):
    """Frames of 3 values, the last binary (voicing), with one gap (a row of NaN) in the middle."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.cumsum(rng.normal(size=(n, 2)), 0), rng.integers(0, 2, n)]).astype(np.float32)
    x[n // 2] = np.nan
    return torch.from_numpy(x)


def frame_model(family, head):
    x = frames(200)
    if family == "latent_ar":
        config = LatentARConfig(cell="gru", num_layers=2, hidden_size=12, embedding_dim=6, head=head, components=2)
        return scrambled(LatentAR.for_frames(x, config, binary=[2], groups={"f0": [0, 1], "voicing": [2]}))
    if family == "neural_ar":
        config = NeuralARConfig(window=4, hidden_size=16, embedding_dim=4, head=head, components=2)
        return scrambled(NeuralAR.for_frames(x, config, binary=[2]))
    config = CausalTransformerConfig(context=5, d_model=8, num_heads=2, head=head, components=2)
    return scrambled(CausalTransformer.for_frames(x, config, binary=[2]))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["latent_ar", "neural_ar", "transformer"])
@pytest.mark.parametrize("head", ["gaussian", "mixture"])
def test_frames_step_equals_onnxruntime_over_500_steps(family, head):
    worst_params, worst_state = parity(frame_model(family, head), list(frames(STEPS, seed=1)))
    assert worst_params < PARITY and worst_state < PARITY


def test_frames_parity_quick():
    worst_params, worst_state = parity(frame_model("latent_ar", "mixture"), list(frames(100, seed=1)))
    assert worst_params < PARITY and worst_state < PARITY


def test_frames_metadata_holds_layout_standardisation_clamps_and_temperatures(tmp_path, capsys):
    """What sampling a frame needs beside the graph: the layout, the head's parameter layout, each dimension's
    training range (draws are clamped to it) and, for vocoder frames, seqlab sample's temperature per group."""
    model = frame_model("latent_ar", "mixture")
    model.data_spec = DataSpec("speech", audio_encoding="vocoder")
    out = tmp_path / "frames.onnx"
    code, _, _ = run_cli(["export", saved(model, tmp_path / "m"), "--out", str(out)], capsys)
    assert code == 0
    meta = json.loads(ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map[METADATA_KEY])
    e = meta["elements"]
    assert e["kind"] == "frames" and e["layout"] == {"dims": 3, "binary": [2], "groups": {"f0": [0, 1], "voicing": [2]}}
    for name in ("low", "high", "location", "scale"):
        assert e[name] == pytest.approx(getattr(model.elements, name).tolist())
    assert meta["head"]["kind"] == "frames" and meta["head"]["continuous"] == [0, 1] and meta["head"]["binary"] == [2]
    assert meta["head"]["per_dimension"]["kind"] == "mixture" and meta["head"]["num_params"] == 2 * 6 + 1
    assert meta["temperatures"] == GROUP_TEMPERATURES and meta["data"]["audio_encoding"] == "vocoder"
    assert meta["inputs"][0]["shape"] == ["batch", 3] and meta["inputs"][0]["initial"] == "nan"


# -- the classical models: a table or a formula as an ONNX graph ---------------------------------------------------

CLASSICAL = (NGram, LinearAR, RandomWalk)
CLASSICAL_PARITY = 1e-12  # float64 on both sides; LinearAR's params rebuilt from step at unit vectors


@pytest.mark.parametrize(
    "model",
    [
        MarkovChain(k=0.5),
        NGram(order=0, smoothing="kneser_ney"),
        NGram(order=2, smoothing="kneser_ney"),
        NGram(order=2, smoothing="witten_bell"),
        NGram(order=2, smoothing="lidstone", gamma=0.1),
    ],
    ids=["markov", "unigram", "kneser-ney order 2", "witten-bell order 2", "lidstone order 2"],
)
def test_ngram_step_equals_onnxruntime_over_500_steps(model):
    model.fit(TEXT * 3)
    worst_params, worst_state = parity(model, text_ids(STEPS))
    assert worst_params < CLASSICAL_PARITY and worst_state == 0.0


def ar_series(n, seed=0):
    """An AR(2) around 5, no gaps."""
    rng, x = np.random.default_rng(seed), [5.0, 5.0]
    for _ in range(n):
        x.append(5 + 0.5 * (x[-1] - 5) + 0.3 * (x[-2] - 5) + rng.normal())
    return np.array(x[2:])


@pytest.mark.parametrize(
    "model",
    [
        LinearAR(order=0),
        LinearAR(order=1),
        LinearAR(order=3),
        LinearAR(order=2, head="studentt"),
        LinearAR(order=2, head="mixture", components=2),
    ],
    ids=["order 0", "order 1", "order 3", "order 2, studentt", "order 2, mixture"],
)
def test_linear_ar_step_equals_onnxruntime_over_500_steps(model):
    y = ar_series(STEPS)
    model.fit(ar_series(300, seed=1))
    worst_params, worst_state = parity(model, [torch.tensor(v) for v in y])
    assert worst_params < CLASSICAL_PARITY and worst_state == 0.0


@pytest.mark.parametrize("differenced, season", [(True, 1), (False, 1), (False, 4)])
def test_random_walk_step_equals_onnxruntime_over_500_steps(differenced, season):
    model = RandomWalk(differenced, season).fit(ar_series(100))
    values = [torch.tensor(v) for v in ar_series(STEPS, seed=2)]
    values[STEPS // 2] = torch.tensor(float("nan"))  # a gap: NaN, as step carries it
    worst_params, worst_state = parity(model, values)
    assert worst_params < CLASSICAL_PARITY and worst_state == 0.0


def test_an_ngram_too_large_for_a_dense_table_takes_the_backoff_form():
    """Past ``MAX_TABLE`` the dense table is refused and the graph holds the backoff form instead
    (``tests/test_export_classical.py`` checks its parity)."""
    model = NGram(order=4).fit(TEXT)
    with pytest.raises(Unsupported, match="= 30\\^4 x 29 = 23,490,000 probabilities; ONNX export takes at most"):
        ngram_table(model)
    assert isinstance(step_graph(model).module, NGramBackoffStep)
    assert isinstance(step_graph(NGram(order=2).fit(TEXT)).module, NGramStep)


def test_classical_metadata():
    _, meta = session_of(MarkovChain(k=0.5).fit(TEXT))
    assert meta["model"] == "markov" and meta["elements"]["kind"] == "text" and meta["head"]["kind"] == "categorical"
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "window"] and meta["inputs"][1]["initial"] == 29
    _, meta = session_of(LinearAR(order=2, head="studentt").fit(ar_series(200)))
    assert meta["elements"] == {"kind": "series", "start": "nan", "covariates": 0}
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "window", "filled"]
    assert meta["inputs"][0]["dtype"] == "float64" and meta["head"]["kind"] == "studentt"


# -- the global panel model (DeepAR) ----------------------------------------------------------------------------------


def global_model(cell, layers, head, season=4):
    config = GlobalARConfig(cell=cell, num_layers=layers, hidden_size=10, head=head, components=2, season=season)
    model = scrambled(GlobalAR(config))
    with torch.no_grad():
        model.series_scale.fill_(37.5)  # step's scale: the graph takes it as its input "scale"
    return model


def panel_series(n, seed=0):
    """A positive seasonal series around 40 (a panel has no gaps)."""
    rng = np.random.default_rng(seed)
    return [torch.tensor(v) for v in 40 + 5 * np.sin(np.arange(n) * np.pi / 2) + rng.normal(size=n)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "cell, layers, head",
    [("lstm", 2, "studentt"), ("gru", 1, "gaussian"), ("rnn", 2, "mixture"), ("lstm", 1, "gaussian")],
)
def test_global_ar_step_equals_onnxruntime_over_500_steps(cell, layers, head):
    worst_params, worst_state = parity(global_model(cell, layers, head), panel_series(STEPS))
    assert worst_params < PARITY and worst_state < PARITY


def test_global_ar_parity_quick():
    worst_params, worst_state = parity(global_model("lstm", 2, "studentt", season=1), panel_series(100))
    assert worst_params < PARITY and worst_state < PARITY


def test_global_ar_on_log_values_exports_its_log_t_head():
    """transform="log": the graph takes log(x_prev / s) and gives the log-t head's params of log x, as step does;
    the metadata names the head and its base."""
    model = global_model("lstm", 1, "studentt")
    model.config = replace(model.config, transform="log")
    worst_params, worst_state = parity(model, panel_series(100))
    assert worst_params < PARITY and worst_state < PARITY
    session, meta = session_of(model)
    assert meta["head"]["kind"] == "log-studentt" and meta["head"]["base"]["kind"] == "studentt"
    assert meta["head"]["sampling"].startswith("x = exp(y)")


def test_global_ar_takes_each_series_scale_and_phase():
    """One graph for a panel: a batch of two series at scales 37.5 and 2 x 37.5 (the second twice the first)
    gives the second's params on twice the scale (the model is scale-free); the phase is an input too."""
    model = global_model("gru", 1, "gaussian")
    session, meta = session_of(model)
    assert [p["name"] for p in meta["inputs"]] == ["x_prev", "scale", "phase", "history", "t", "h"]
    assert meta["panel"] == {"season": 4, "context_length": 8, "series_scale": 37.5}
    feeds = initial_feeds(meta, batch=2) | {"scale": np.array([37.5, 75.0]), "phase": np.array([1, 1])}
    x_prev = np.full(2, np.nan)
    for v in panel_series(30):
        out = session.run(None, {"x_prev": x_prev, **feeds})
        feeds, x_prev = fed_back(meta, feeds, out), np.array([float(v), 2 * float(v)])
    mu, log_sigma = out[0][:, 0], out[0][:, 1]
    assert mu[1] == pytest.approx(2 * mu[0], rel=1e-5) and log_sigma[1] == pytest.approx(log_sigma[0] + np.log(2))


def test_a_float64_model_exports_in_float64():
    model = text_model("latent_ar", cell="gru", reset="before", num_layers=2, hidden_size=12, embedding_dim=6).double()
    worst_params, worst_state = parity(model, text_ids(100))
    assert worst_params < CLASSICAL_PARITY and worst_state < CLASSICAL_PARITY
