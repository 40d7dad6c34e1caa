"""The commands under absurd options and a failing disk: sizes checked before allocation (seqlab.limits), one line
for every OSError naming the path, --valid-fraction 0, --prompt on audio, --seed -1, a temperature whose
probabilities would underflow, and text samples that never contain the unknown symbol U+FFFD."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, TINY_TRAINING, write_small_text
from helpers import run_cli as run

from seqlab import io
from seqlab.data import Vocabulary
from seqlab.data.audio import MuLaw
from seqlab.models import LatentAR, LatentARConfig
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.runs import sample

TEXT = "the cat sat on the mat; a dog ran far. " * 10


def assert_one_line_error(code, err, *fragments):
    assert code in (1, 2), err  # 2: argparse's refusal of an option's value
    assert "internal error" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained text (LatentAR, NeuralAR), mu-law audio and series models: the unknown symbol is as likely as
    any other character, so an unmasked sampler emits it within a few hundred characters."""
    directory = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    vocabulary = Vocabulary.from_text(TEXT)
    io.save(LatentAR(vocabulary, LatentARConfig(hidden_size=8, embedding_dim=4)), directory / "text")
    io.save(NeuralAR(vocabulary, NeuralARConfig(hidden_size=8, embedding_dim=4, num_layers=1)), directory / "neural")
    io.save(LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=8, embedding_dim=4)), directory / "audio")
    series = torch.from_numpy(0.01 * np.random.default_rng(0).standard_normal(200))
    io.save(LatentAR.for_series(series, LatentARConfig(cell="gru", hidden_size=4)), directory / "series")
    prices = directory / "prices.csv"
    prices.write_text("Close\n" + "".join(f"{p}\n" for p in 50 * np.exp(np.cumsum(series.numpy()))))
    return directory, prices


@pytest.mark.parametrize("kind", ["text", "neural"])
def test_a_text_sample_never_contains_the_unknown_symbol(models, capsys, kind):
    directory, _ = models
    code, out, err = run(["sample", str(directory / kind), "--length", "600", "--seed", "3"], capsys)
    assert code == 0, err
    assert len(out.rstrip("\n")) == 600 and "\ufffd" not in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["sample", "{text}", "--length", "1000000000000"], ["--length", "over the limit"]),
        (["sample", "{audio}", "--seconds", "1e12", "--out", "{tmp}/g.wav"], ["--seconds", "over the limit"]),
        (["sample", "{text}", "--temperature", "1e-30"], ["--temperature", "--top-k 1"]),
        (["sample", "{audio}", "--prompt", "hello", "--out", "{tmp}/g.wav"], ["--prompt-audio", "--prompt"]),
        (["sample", "{audio}", "--out", "{tmp}/missing/g.wav"], ["missing/g.wav", "does not exist"]),
        (["sample", "{text}", "--seed", "-1"], ["--seed"]),
        (
            ["forecast", "{series}", "--data", "{prices}", "--samples", "1000000000", "--horizon", "1000"],
            ["--samples x --horizon", "over the limit"],
        ),
        (
            ["forecast", "{series}", "--data", "{prices}", "--horizon", "2", "--plot", "{tmp}/missing/f.png"],
            ["missing/f.png", "does not exist"],
        ),
        (["forecast", "{series}", "--data", "{prices}", "--seed", "-1"], ["--seed"]),
        (["backtest", "--samples", "1000000000", "--folds", "50", "--horizon", "100"], ["over the limit"]),
    ],
)
def test_absurd_options_are_one_line_before_any_work(models, tmp_path, capsys, argv, fragments):
    directory, prices = models
    names = {k: str(directory / k) for k in ("text", "audio", "series")} | {"prices": str(prices), "tmp": tmp_path}
    code, _, err = run([a.format(**names) for a in argv], capsys)
    assert_one_line_error(code, err, *fragments)


def test_valid_fraction_zero_is_refused_not_silently_the_default(tmp_path, capsys):
    data = write_small_text(tmp_path)
    argv = ["train", "--data", str(data), "--steps", "1", "--valid-fraction", "0", *TINY_MODEL, *TINY_TRAINING]
    code, _, err = run([*argv, "--out", str(tmp_path / "run")], capsys)
    assert_one_line_error(code, err, "--valid-fraction", "(0, 1)")
    assert not (tmp_path / "run").exists()


def test_an_oserror_while_writing_is_one_line_naming_the_path(models, monkeypatch, capsys):
    directory, _ = models

    def full_disk(spec):
        raise OSError(errno.ENOSPC, "No space left on device", "/mnt/full/generated.wav")

    monkeypatch.setattr(sample, "sample", full_disk)
    code, _, err = run(["sample", str(directory / "audio")], capsys)
    assert_one_line_error(code, err, "/mnt/full/generated.wav: cannot write it: the disk is full")


# -- Ctrl-C during start-up (issue 24, item 5) ------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.5, 1.0, 2.0, 3.5])
def test_ctrl_c_while_seqlab_starts_is_quiet_with_exit_code_130(tmp_path, delay):
    """SIGINT at several moments after ``python -m seqlab train`` starts: while torch and seqlab import (the
    early ones, on any machine), or later, while training. Never a traceback; 130 (or death by SIGINT itself if
    it lands before Python's own handler is in place, which a shell reports as 130 too)."""
    data = tmp_path / "text.txt"
    data.write_text(TEXT * 40)
    argv = [sys.executable, "-m", "seqlab", "train", "--data", str(data), "--out", str(tmp_path / "run")]
    argv += ["--hidden", "4", "--embedding", "2", "--batch-size", "4", "--window", "16", "--steps", "10000000"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*argv, "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    assert process.poll() is None, "the command ended before the signal"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=600)
    assert process.returncode in (130, -signal.SIGINT), (process.returncode, out, err)
    assert b"Traceback" not in out + err and b"internal error" not in err, err.decode()
    assert len(err.decode().strip().splitlines()) <= 1, err.decode()
