"""The trust boundary: a path a checkpoint records is never read unless the user names it too (bundled data is
read as bundled data, never a local file of that name), and --resume refuses data that changed since the run."""

import json

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, TINY_TRAINING, write_small_text
from helpers import run_cli as run

from seqlab import io
from seqlab.data import Vocabulary, load_text
from seqlab.data.spec import DataSpec
from seqlab.models import LatentAR, LatentARConfig

SECRET = "hunter2 is the password\n" * 50


def text_model(directory, source: str, text: str):
    torch.manual_seed(0)
    model = LatentAR(Vocabulary.from_text(text), LatentARConfig(hidden_size=8, embedding_dim=4))
    model.data_spec = DataSpec(source)
    io.save(model, directory)
    return directory


def test_evaluate_never_reads_a_local_file_a_checkpoint_names(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    model = text_model(tmp_path / "m", str(secret), "abc")  # a checkpoint from elsewhere, naming a local file
    code, out, err = run(["evaluate", str(model)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--data" in err and "hunter2" not in out + err and "'h'" not in err


def test_a_named_local_file_is_read(tmp_path, capsys):
    data = write_small_text(tmp_path)
    model = text_model(tmp_path / "m", str(data), load_text(str(data)))
    code, out, err = run(["evaluate", str(model), "--data", str(data), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["data"].endswith("(validation part)")


def test_another_text_is_scored_whole_even_when_the_recorded_file_is_gone(tmp_path, capsys):
    data = write_small_text(tmp_path)
    model = text_model(tmp_path / "m", str(tmp_path / "deleted.txt"), load_text(str(data)))
    code, out, err = run(["evaluate", str(model), "--data", str(data), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["tokens"] == len(load_text(str(data)))
    assert json.loads(out)["data"] == f"{data} (whole file)"
    code, out, err = run(["sample", str(model), "--length", "5", "--seed", "0"], capsys)
    assert code == 0 and len(out.rstrip("\n")) == 5, err


def test_recorded_bundled_data_is_the_bundled_data_not_a_local_file_of_that_name(tmp_path, monkeypatch, capsys):
    model = text_model(tmp_path / "m", "shakespeare", load_text("shakespeare"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shakespeare").write_text(SECRET.upper())  # characters the model has never seen
    code, out, err = run(["evaluate", str(model), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["data"] == "bundled:shakespeare (validation part)"


@pytest.mark.parametrize("named", ["shakespeare", "bundled:shakespeare"])
def test_the_bundled_training_text_named_again_is_scored_on_its_held_out_part(tmp_path, capsys, named):
    """Naming the bundled text the model was trained on scores its held-out part, not the whole file (which would
    include the training part)."""
    model = text_model(tmp_path / "m", "shakespeare", load_text("shakespeare"))
    code, out, err = run(["evaluate", str(model), "--json"], capsys)
    held_out = json.loads(out)
    code, out, err = run(["evaluate", str(model), "--data", named, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["data"].endswith("(validation part)")
    assert json.loads(out)["tokens"] == held_out["tokens"] < len(load_text("shakespeare")) / 5


def test_forecast_needs_the_data_named_when_the_checkpoint_names_a_local_csv(tmp_path, capsys):
    prices = tmp_path / "prices.csv"
    values = 50 * np.exp(np.cumsum(0.01 * np.random.default_rng(0).standard_normal(200)))
    prices.write_text("Close\n" + "".join(f"{p}\n" for p in values))
    series = torch.from_numpy(np.diff(np.log(values)))
    model = LatentAR.for_series(series, LatentARConfig(cell="gru", hidden_size=4))
    model.data_spec = DataSpec(str(prices), transform="log_return")
    io.save(model, tmp_path / "m")
    code, _, err = run(["forecast", str(tmp_path / "m"), "--horizon", "2", "--samples", "4"], capsys)
    assert code == 1 and "--data" in err and len(err.strip().splitlines()) == 1
    argv = ["forecast", str(tmp_path / "m"), "--data", str(prices), "--horizon", "2", "--samples", "4"]
    code, out, err = run(argv, capsys)
    assert code == 0, err


@pytest.mark.parametrize("change", ["append", "same size"])
def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path, capsys, change):
    data = write_small_text(tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--steps", "2", *TINY_MODEL, *TINY_TRAINING, "--out", str(out)]
    assert run(argv, capsys)[0] == 0
    text = data.read_text()
    data.write_text(text + "more" if change == "append" else text[::-1])
    code, _, err = run(["train", "--resume", "--out", str(out), "--steps", "4", "--no-progress"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "changed since the run started" in err


def test_resume_on_unchanged_data_continues(tmp_path, capsys):
    data = write_small_text(tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--steps", "2", *TINY_MODEL, *TINY_TRAINING, "--out", str(out)]
    assert run(argv, capsys)[0] == 0
    code, _, err = run(["train", "--resume", "--out", str(out), "--steps", "4", "--no-progress"], capsys)
    assert code == 0, err
