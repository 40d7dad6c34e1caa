"""Tampered checkpoints are refused with one line before anything they describe is allocated or used: format
version, config field types and ranges, tensor names / shapes / dtypes against the config, vocabulary entries,
deeply nested or huge config.json, non-finite weights (evaluate and sample through the command line)."""

import io as io_module
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqlab import SeqlabError, atomic, io
from seqlab.base import MODELS
from seqlab.cli import main
from seqlab.data import Vocabulary
from seqlab.data.audio import MuLaw
from seqlab.models import (
    CausalTransformer,
    CausalTransformerConfig,
    LatentAR,
    LatentARConfig,
    NeuralAR,
    NeuralARConfig,
)
from seqlab.models.element_codecs import MAX_FRAME_DIMS

TEXT = "the cat sat on the mat. " * 20


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(hidden_size=8, embedding_dim=4))
    io.save(model, tmp_path / "model")
    return tmp_path / "model"


def edit_config(directory, change):
    path = directory / io.CONFIG_FILE
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def edit_weights(directory, change):
    path = directory / io.WEIGHTS_FILE
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def refused(directory, *fragments):
    with pytest.raises(SeqlabError) as caught:
        io.load(directory)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_the_untampered_checkpoint_loads(saved):
    assert io.load(saved).config.hidden_size == 8


@pytest.mark.parametrize("version", [2, "1", True, None])
def test_an_unknown_format_version_is_refused(saved, version):
    edit_config(saved, lambda c: c.__setitem__("format_version", version))
    refused(saved, "format_version")


@pytest.mark.parametrize(
    "value, fragment",
    [
        (1e9, "hidden_size"),  # a float where an int belongs
        (10**9, "hidden_size"),  # over MAX_CONFIG_INT
        (2**20, "GiB of weights, over the limit"),  # in range, but the model would need terabytes: refused on meta
        (-3, "hidden_size"),
        (True, "hidden_size"),
        ("8", "hidden_size"),
    ],
)
def test_config_sizes_are_checked_before_any_allocation(saved, value, fragment):
    edit_config(saved, lambda c: c["config"].__setitem__("hidden_size", value))
    refused(saved, "config.json", fragment)


@pytest.mark.parametrize(
    "field, value", [("dropout", float("nan")), ("dropout", "0.1"), ("cell", 3), ("num_layers", 1.5)]
)
def test_config_field_types_and_finiteness(saved, field, value):
    edit_config(saved, lambda c: c["config"].__setitem__(field, value))
    refused(saved, "config.json", field)


def test_a_tensor_of_another_dtype_is_refused(saved):
    edit_weights(saved, lambda t: t.__setitem__("out.weight", t["out.weight"].double()))
    refused(saved, "out.weight", "F64", "F32")


def test_the_shapes_are_compared_with_the_header_before_loading(saved, monkeypatch):
    edit_weights(saved, lambda t: t.__setitem__("out.weight", torch.zeros(3, 3)))

    def no_loading(*args, **kwargs):
        raise AssertionError("tensors were loaded before the header was checked")

    monkeypatch.setattr(atomic, "load_file", no_loading)
    refused(saved, "out.weight", "[3, 3]")


@pytest.mark.parametrize(
    "vocabulary, fragment",
    [
        (["a", "a", "b"], "more than once"),
        (["a", "bc"], "not a single character"),
        (["a", ""], "not a single character"),
        (["a", 7], "not a single character"),
        ("abc", "expected a list"),
    ],
)
def test_a_tampered_vocabulary_is_refused(saved, vocabulary, fragment):
    edit_config(saved, lambda c: c.__setitem__("vocabulary", vocabulary))
    refused(saved, "config.json", fragment)


@pytest.mark.parametrize(
    "frames, fragment",
    [
        ({"dims": "3", "binary": [2]}, "a frame holds 1 to"),
        ({"dims": MAX_FRAME_DIMS + 1, "binary": []}, "a frame holds 1 to"),
        ({"dims": 3, "binary": [3]}, "binary: dimensions must be distinct integers in [0, 3)"),
        ({"dims": 3, "binary": [2], "groups": {"f0": [0, 0]}}, "group 'f0'"),
        ({"dims": 3, "binary": [2], "groups": [0, 1]}, "groups must map names"),
        ([3], "frames must be an object"),
        ({"dims": 4, "binary": [2]}, "elements.location"),  # a frame of 4 against weights for 3
    ],
)
def test_a_tampered_frame_layout_is_refused(tmp_path, frames, fragment):
    model = LatentAR.for_frames(torch.rand(50, 3).round(), LatentARConfig(hidden_size=4), binary=[2])
    io.save(model, tmp_path / "frames")
    assert torch.equal(io.load(tmp_path / "frames").elements.high, model.elements.high)
    edit_config(tmp_path / "frames", lambda c: c.__setitem__("frames", frames))
    refused(tmp_path / "frames", fragment)


def test_a_deeply_nested_config_is_one_line(saved):
    (saved / io.CONFIG_FILE).write_text('{"format": "seqlab-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(saved, "nested too deeply")


def test_a_huge_config_is_refused_before_reading(saved, monkeypatch):
    monkeypatch.setattr(io, "MAX_CONFIG_BYTES", 1000)
    edit_config(saved, lambda c: c.__setitem__("padding", "x" * 2000))
    refused(saved, "over the limit")


def test_non_finite_weights_are_refused_by_evaluate_and_sample(saved, tmp_path, capsys):
    edit_weights(saved, lambda t: t["out.weight"].__setitem__((0, 0), float("nan")))
    refused(saved, "out.weight", "NaN")
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    for argv in (["evaluate", str(saved), "--data", str(text)], ["sample", str(saved), "--length", "5"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "NaN" in err[0], err


# -- bounded validation: a 1 KB config asking for a million layers (issue 24, item 3) -------------------------


def implied_and_real(model):
    """(implied by arithmetic from the saved config, counted in the real state dict)."""
    config = {"model": model.kind, **model.to_config()}
    state = model.state_dict()
    return io.implied_weights(type(model), config, io.Path("config.json")), (
        len(state),
        sum(t.numel() for t in state.values()),
    )


def neural_models():
    vocabulary = Vocabulary.from_text(TEXT)
    series = torch.linspace(0.0, 1.0, 40).double()
    covariate_series = torch.stack([series, series.flip(0)], dim=1)
    yield LatentAR(vocabulary, LatentARConfig(cell="lstm", hidden_size=6, num_layers=3, embedding_dim=5))
    yield LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=4, num_layers=2, embedding_dim=3))
    yield LatentAR.for_series(series, LatentARConfig(cell="rnn", hidden_size=4, head="mixture", components=2))
    yield LatentAR.for_series(covariate_series, LatentARConfig(hidden_size=4, covariates=1, head="studentt"))
    yield NeuralAR(vocabulary, NeuralARConfig(window=3, hidden_size=5, num_layers=3, embedding_dim=2))
    yield NeuralAR.for_series(covariate_series, NeuralARConfig(window=2, hidden_size=4, num_layers=1, covariates=1))
    yield CausalTransformer(vocabulary, CausalTransformerConfig(context=4, d_model=8, num_layers=3, num_heads=2))
    yield CausalTransformer.for_series(series, CausalTransformerConfig(context=4, d_model=4, num_layers=1))
    frames = torch.stack([series, series.flip(0), (series > 0.5).double()], dim=1).numpy()  # (T, 3), last binary
    data = {"text": "abcabcab", "series": series.numpy(), "frames": frames}
    for kind in ("latent_ar", "neural_ar", "causal_transformer"):
        for case in MODELS[kind].conformance_cases():
            yield case.build(data[case.data])


def test_the_arithmetic_size_of_every_neural_model_is_its_state_dict():
    """``io.implied_weights`` against the real models (a model changed without its rule fails here), and every
    nn.Module kind has a rule."""
    for model in neural_models():
        implied, real = implied_and_real(model)
        assert implied == real, (model.describe(), implied, real)
    modules = {kind for kind, cls in MODELS.items() if issubclass(cls, torch.nn.Module)}
    assert modules == set(io.IMPLIED_WEIGHTS)


@pytest.fixture
def module_spy(monkeypatch):
    """Counts nn.Module constructions; past 10,000 it fails the test (the old code built a million layers)."""
    built = []
    original = torch.nn.Module.__init__

    def spy(self, *args, **kwargs):
        built.append(type(self).__name__)
        if len(built) > 10_000:
            raise AssertionError("more than 10,000 modules built to check one config")
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__init__", spy)
    return built


@pytest.mark.parametrize("layers", [10**6, 2**24, 2])
def test_a_million_layers_is_refused_without_building_a_module(saved, module_spy, layers):
    """Refused by the tensor count, or by the memory budget first on a small machine: both before any module."""
    edit_config(saved, lambda c: c["config"].__setitem__("num_layers", layers))
    refused(saved, "config.json")
    assert module_spy == []


def test_every_neural_kind_is_refused_without_building_a_module(tmp_path, module_spy):
    models = [
        NeuralAR(Vocabulary.from_text(TEXT), NeuralARConfig(window=2, hidden_size=4, num_layers=1, embedding_dim=2)),
        CausalTransformer(Vocabulary.from_text(TEXT), CausalTransformerConfig(context=4, d_model=4, num_heads=1)),
    ]
    module_spy.clear()
    for i, model in enumerate(models):
        io.save(model, tmp_path / str(i))
        edit_config(tmp_path / str(i), lambda c: c["config"].__setitem__("num_layers", 10**6))
        refused(tmp_path / str(i), "config.json")
    assert module_spy == []


def test_a_million_layers_is_one_line_from_every_command(saved, capsys, module_spy):
    edit_config(saved, lambda c: c["config"].__setitem__("num_layers", 10**6))
    for argv in (["info", str(saved)], ["sample", str(saved), "--length", "5"], ["evaluate", str(saved)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "config.json" in err[0], err
    assert module_spy == []


# -- every file of a run folder damaged or replaced: one line naming it, from every command (issue 24, item 4) ----

RUN_FILES = ("config.json", "model.safetensors", "training.json")
RUN_FILES += tuple(f"last/{name}" for name in (*RUN_FILES[:2], "trainer.json", "optimizer.pt", "carried.safetensors"))


def zip_pickle() -> bytes:
    buffer = io_module.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    return buffer.getvalue()


def wrong_type_keys(path) -> list[str]:
    """A JSON file's keys (and its objects' keys, one level down), every one to be given a list."""
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ["progress"]
    return [*data, *(k for v in data.values() if isinstance(v, dict) for k in v)]


DAMAGE = {
    "zip-pickle": lambda path: path.write_bytes(zip_pickle()),
    "json-list": lambda path: path.write_text("[1, 2]"),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "empty": lambda path: path.write_bytes(b""),
    "wrong-types": lambda path: path.write_text(json.dumps(dict.fromkeys(wrong_type_keys(path), [1]))),
    "a-folder": lambda path: (path.unlink(), path.mkdir()),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    (root / "text.txt").write_text(TEXT * 5)
    argv = ["train", "--data", str(root / "text.txt"), "--out", str(root / "run"), "--hidden", "4", "--embedding", "2"]
    argv += ["--batch-size", "4", "--window", "16", "--steps", "2", "--eval-every", "1", "--no-progress"]
    assert main(argv) == 0
    return root


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", RUN_FILES)
def test_a_damaged_file_anywhere_in_a_run_folder_is_one_line_naming_it(trained_run, tmp_path, capsys, name, damage):
    run = tmp_path / "run"
    shutil.copytree(trained_run / "run", run)
    (run / ".seqlab-lock").unlink(missing_ok=True)
    DAMAGE[damage](run / name)
    text = str(trained_run / "text.txt")
    commands = [["info", str(run)], ["sample", str(run), "--length", "3"], ["evaluate", str(run), "--data", text]]
    commands += [["info", str(run / "last")], ["train", "--resume", "--out", str(run), "--steps", "3", "--no-progress"]]
    capsys.readouterr()
    failed = 0
    for argv in commands:
        code = main([*argv, "--sample-length", "0"] if argv[0] == "train" else argv)
        err = capsys.readouterr().err
        assert code in (0, 1) and "internal error" not in err, (argv, err)
        if code == 1:
            failed += 1
            lines = err.strip().splitlines()
            assert len(lines) == 1 and Path(name).name in lines[0], (argv, err)
    assert failed > 0  # every file is read by at least one command


# -- a pool's neural members are checked like a neural model of their own (issue 25) ----------------------------


@pytest.fixture
def saved_pool(tmp_path):
    from helpers import garch_returns

    from seqlab.runs.contenders import SeriesOptions, series_contender

    y = garch_returns(60, seed=1)
    options = SeriesOptions(pool_members=("random_walk", "gru"), hidden=4, steps=2)
    pool = series_contender("pool", y, options).model.fit(y)
    io.save(pool, tmp_path / "pool")
    return tmp_path / "pool"


def test_a_saved_pool_loads_with_its_members(saved_pool):
    pool = io.load(saved_pool)
    assert pool.names == ["random_walk", "gru"] and pool.members[1].config.hidden_size == 4


@pytest.mark.parametrize("layers", [10**6, 2**24])
def test_a_pool_member_of_a_million_layers_is_refused_without_building_a_module(saved_pool, module_spy, layers):
    edit_config(saved_pool, lambda c: c["members"][1]["config"].__setitem__("num_layers", layers))
    refused(saved_pool, "config.json")
    assert module_spy == []


def test_a_pool_member_whose_weights_do_not_match_is_refused(saved_pool):
    edit_config(saved_pool, lambda c: c["members"][1]["config"].__setitem__("hidden_size", 5))
    refused(saved_pool, "model.safetensors", "member1.")
    edit_config(saved_pool, lambda c: c["members"][1]["config"].__setitem__("hidden_size", 4))
    edit_config(saved_pool, lambda c: c["members"].__setitem__(1, {**c["members"][1], "model": "pool"}))
    refused(saved_pool, "config.json", "'pool'")


# -- a frame model's vocoder record: every field bounded before WORLD or an array sees it (issue 35, item 2) -------

# (where in the data record, field, tampered value, what the one line names)
VOCODER_TAMPERING = [
    ("vocoder", "f0_floor", 1e-6, "vocoder.f0_floor"),  # crashed Harvest (SIGSEGV, no message)
    ("vocoder", "f0_floor", 600.0, "vocoder.f0_floor"),  # an FFT shorter than CheapTrick's window: heap corruption
    ("vocoder", "f0_floor", "60", "vocoder.f0_floor"),
    ("vocoder", "f0_ceil", 60.0, "vocoder.f0_ceil"),  # not above the floor
    ("vocoder", "f0_ceil", 1e9, "vocoder.f0_ceil"),
    ("vocoder", "envelope", 10**6, "vocoder.envelope"),  # 4.5 GiB of coefficients, read past WORLD's arrays
    ("vocoder", "envelope", 40.0, "vocoder.envelope"),
    ("vocoder", "envelope", 39, "vocoder describes frames of 42 values"),  # in range, not the model's frames
    ("vocoder", "frame_period_ms", 0, "vocoder.frame_period_ms"),  # an internal error (negative dimensions)
    ("vocoder", "frame_period_ms", 10**6, "vocoder.frame_period_ms"),  # blamed on the user's WAV (too short)
    ("vocoder", "frame_period_ms", True, "vocoder.frame_period_ms"),
    ("vocoder", "sample_rate", 10**9, "vocoder.sample_rate"),  # 22 GiB resampled
    ("vocoder", "sample_rate", 22050, "vocoder.sample_rate"),  # not the rate 16 kHz audio is analysed at
    ("vocoder", "vocoder", "straight", "unknown vocoder"),
    ("vocoder", "columns", ["voiced"], "vocoder.columns"),
    ("data", "sample_rate", 10**9, ".sample_rate = 1000000000"),  # 11 GiB; was blamed on --sample-rate
    ("data", "sample_rate", "16000", ".sample_rate = '16000'"),  # an internal error (TypeError)
    ("data", "vocoder", "world", ".vocoder = 'world'"),  # an internal error (AttributeError)
    ("data", "audio_encoding", 7, ".audio_encoding = 7"),
    ("data", "valid_fraction", 2, ".valid_fraction = 2"),
    ("data", "source", ["glide.wav"], ".source = ['glide.wav']"),
]
WORLD_CALLS = ("harvest", "dio", "cheaptrick", "d4c", "code_spectral_envelope", "code_aperiodicity", "synthesize")
WORLD_CALLS += ("decode_spectral_envelope", "decode_aperiodicity")


@pytest.fixture(scope="module")
def vocoder_run(tmp_path_factory):
    """A tiny LatentAR run on 3 s of a harmonic glide at 16 kHz (WORLD frames of 43 values)."""
    import numpy as np
    import soundfile

    root = tmp_path_factory.mktemp("vocoder")
    t = np.arange(3 * 16000) / 16000
    phase = 2 * np.pi * np.cumsum(120 * 2 ** (4 / 12 * np.sin(2 * np.pi * 0.5 * t))) / 16000
    soundfile.write(str(root / "glide.wav"), 0.2 * sum(np.sin(k * phase) / k for k in range(1, 30)), 16000)
    argv = ["train", "--data", str(root / "glide.wav"), "--out", str(root / "run"), "--hidden", "4", "--embedding"]
    argv += ["2", "--batch-size", "2", "--window", "16", "--steps", "2", "--sample-length", "0", "--no-progress"]
    assert main(argv) == 0
    return root


@pytest.fixture
def no_world(monkeypatch):
    """WORLD and the audio reader fail the test if reached: a tampered record must be refused before them."""
    import pyworld

    from seqlab.data import spec
    from seqlab.runs import sample

    def reached(*args, **kwargs):
        raise AssertionError("a tampered vocoder record reached WORLD or the audio file")

    for name in WORLD_CALLS:
        monkeypatch.setattr(pyworld, name, reached)
    monkeypatch.setattr(spec, "load_audio", reached)
    monkeypatch.setattr(sample, "load_audio", reached)


def tamper_data_record(run, name: str, where: str, field: str, value) -> None:
    """Set ``field`` of the data record (``where``: the spec itself or its vocoder layout) in ``run/name``: in
    config.json's ``data``, or in training.json's ``meta`` (config.json's ``data`` then removed, as in a run saved
    before models carried their spec, so the record is read from training.json)."""
    if name == "training.json":
        edit_config(run, lambda c: c.pop("data"))
    path = run / name
    saved = json.loads(path.read_text())
    record = saved["data" if name == io.CONFIG_FILE else "meta"]
    target = record["vocoder"] if where == "vocoder" else record
    if where == "vocoder" and field not in ("columns", "groups"):  # the settings alone, as a hand edit leaves them
        target.pop("columns")
        target.pop("groups")
    target[field] = value
    path.write_text(json.dumps(saved))


@pytest.mark.parametrize("name", [io.CONFIG_FILE, "training.json"])
@pytest.mark.parametrize("where, field, value, fragment", VOCODER_TAMPERING)
def test_a_tampered_vocoder_record_is_one_line_before_world(
    vocoder_run, tmp_path, capsys, no_world, name, where, field, value, fragment
):
    run = tmp_path / "run"
    shutil.copytree(vocoder_run / "run", run)
    tamper_data_record(run, name, where, field, value)
    capsys.readouterr()
    code = main(["evaluate", str(run), "--data", str(vocoder_run / "glide.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    record = "data" if name == io.CONFIG_FILE else "meta"
    assert f"{run / name}: invalid data record ({record}" in err[0] and fragment in err[0], err


def test_a_tampered_vocoder_record_is_one_line_from_every_command(vocoder_run, tmp_path, capsys, no_world):
    run = tmp_path / "run"
    shutil.copytree(vocoder_run / "run", run)
    for name in (io.CONFIG_FILE, f"last/{io.CONFIG_FILE}"):
        edit_config(run / Path(name).parent, lambda c: c["data"].__setitem__("sample_rate", 10**9))
    wav = str(vocoder_run / "glide.wav")
    commands = [
        ["evaluate", str(run), "--data", wav],
        ["evaluate", str(run), "--voice", "--data", wav, "--seconds", "1"],
        ["sample", str(run), "--seconds", "1", "--out", str(tmp_path / "x.wav")],
        ["info", str(run)],
        ["train", "--resume", "--out", str(run), "--steps", "3", "--no-progress"],
    ]
    capsys.readouterr()
    for argv in commands:
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and "data.sample_rate = 1000000000" in err[0], (argv, err)
    assert not (tmp_path / "x.wav").exists()


def test_a_resumed_run_checks_the_record_in_trainer_json(vocoder_run, tmp_path, capsys, no_world):
    run = tmp_path / "run"
    shutil.copytree(vocoder_run / "run", run)
    edit_config(run / "last", lambda c: c.pop("data"))  # the record is then last/trainer.json's
    trainer = run / "last" / "trainer.json"
    saved = json.loads(trainer.read_text())
    saved["meta"]["vocoder"]["frame_period_ms"] = 0
    trainer.write_text(json.dumps(saved))
    capsys.readouterr()
    code = main(["train", "--resume", "--out", str(run), "--steps", "3", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and f"{trainer}: invalid data record (meta.vocoder.frame_period_ms" in err[0]


@pytest.mark.parametrize(
    "rate, period, floor, ceil",
    [(16000, 1.0, 40.0, 1600.0), (24000, 20.0, 40.0, 41.0), (16000, 1.0, 500.0, 1600.0), (24000, 5.0, 500.0, 501.0)],
)
def test_layouts_at_the_bounds_are_accepted(rate, period, floor, ceil):
    """The corners of the bounds (each analysed and synthesised by WORLD under glibc's heap checks, MALLOC_CHECK_=3,
    when they were chosen) with the most envelope coefficients WORLD codes there."""
    from seqlab.data.vocoder import VocoderLayout

    layout = VocoderLayout(rate, period, 1, floor, ceil)
    layout = VocoderLayout(rate, period, layout.max_envelope, floor, ceil)
    assert VocoderLayout.from_json(json.loads(json.dumps(layout.to_json()))) == layout


# -- a saved pool: at most MAX_MEMBERS members, loaded in time linear in them (issue 35, item 5) -------------------


def trivial_pool(count: int):
    """A fitted pool of ``count`` random walks (named m0, m1, ...) with equal weights, built without fitting it."""
    import numpy as np

    from seqlab.models.pool import Pool
    from seqlab.models.random_walk import RandomWalk

    member = RandomWalk().fit(np.random.default_rng(0).standard_normal(50))
    pool = Pool([f"m{i}" for i in range(count)])
    pool.members, pool.reads_covariates = [member] * count, [False] * count
    pool.weights = torch.full((count,), 1.0 / count, dtype=torch.float64)
    return pool


class CountingDict(dict):
    """A dict that counts the passes over it (iteration over its keys, values or items)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()

    def keys(self):
        self.passes += 1
        return super().keys()

    def values(self):
        self.passes += 1
        return super().values()

    def items(self):
        self.passes += 1
        return super().items()


def test_a_pool_of_too_many_members_is_one_line_before_any_member_is_built(tmp_path, capsys, monkeypatch):
    from seqlab.models.pool import MAX_MEMBERS, Pool
    from seqlab.models.random_walk import RandomWalk

    with pytest.raises(SeqlabError, match=f"at most {MAX_MEMBERS:,} members"):
        Pool([f"m{i}" for i in range(MAX_MEMBERS + 1)])
    io.save(trivial_pool(2), tmp_path / "pool")
    edit_config(tmp_path / "pool", lambda c: c["members"].extend([c["members"][0]] * (MAX_MEMBERS - 1)))
    built = []
    monkeypatch.setattr(RandomWalk, "__init__", lambda self, *a, **k: built.append(1))
    refused(tmp_path / "pool", "config.json", f"a pool holds at most {MAX_MEMBERS:,} members, got {MAX_MEMBERS + 1:,}")
    assert main(["info", str(tmp_path / "pool")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json" in err[0] and f"at most {MAX_MEMBERS:,} members" in err[0], err
    assert built == []


@pytest.mark.parametrize("count", [8, 256])
def test_loading_a_pool_passes_over_its_tensors_a_constant_number_of_times(tmp_path, count):
    """The header check and the loading sort every tensor to its member in one pass: passes over all tensors do
    not grow with the members (one pass per member made loading quadratic: 8,000 members took 28 s, now 0.5 s)."""
    from seqlab.models.pool import Pool

    pool = trivial_pool(count)
    io.save(pool, tmp_path / "pool")
    config = json.loads((tmp_path / "pool" / io.CONFIG_FILE).read_text())
    header = CountingDict(io.weights_header(tmp_path / "pool" / io.WEIGHTS_FILE))
    weights = tmp_path / "pool" / io.WEIGHTS_FILE
    io.check_before_building(Pool, config, header, tmp_path / "pool" / io.CONFIG_FILE, weights)
    assert header.passes <= 2, header.passes
    tensors = CountingDict(pool.state_dict())
    loaded = Pool.from_config(config)
    loaded.load_state_dict(tensors)
    assert tensors.passes <= 2, tensors.passes
    assert loaded.names == pool.names and torch.equal(loaded.weights, pool.weights)


def test_a_pool_of_the_most_members_loads(tmp_path):
    from seqlab.models.pool import MAX_MEMBERS

    io.save(trivial_pool(MAX_MEMBERS), tmp_path / "pool")
    loaded = io.load(tmp_path / "pool")
    assert len(loaded.members) == MAX_MEMBERS and loaded.names[-1] == f"m{MAX_MEMBERS - 1}"
    assert float(loaded.weights.sum()) == pytest.approx(1.0)
