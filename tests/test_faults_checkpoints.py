"""Tampered checkpoints are refused with one line before anything they describe is allocated or used: format
version, config field types and ranges, tensor names / shapes / dtypes against the config, vocabulary entries,
deeply nested or huge config.json, non-finite weights (evaluate and sample through the command line)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqlab import SeqlabError, io
from seqlab.cli import main
from seqlab.data import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.models.elements import MAX_FRAME_DIMS

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

    monkeypatch.setattr(io, "load_file", no_loading)
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
