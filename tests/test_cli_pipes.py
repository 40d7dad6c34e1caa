"""Output into a pipe whose reader has gone (``seqlab forecast ... --out /dev/stdout | head -1``, issue 35): one
line on stderr naming the output, exit 1, no traceback and no "Exception ignored" at the interpreter's exit."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import run_cli as cli

from seqlab.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pipes")
    prices = directory / "prices.csv"
    closes = 20 * np.exp(np.cumsum(0.01 * np.random.default_rng(0).standard_normal(120)))
    prices.write_text("Close\n" + "".join(f"{c:.6f}\n" for c in closes), encoding="utf-8")
    out = directory / "ar"
    assert main(["train", "--data", str(prices), "--model", "linear_ar", "--out", str(out)]) == 0
    return out, prices


@pytest.mark.slow  # a process of its own: torch's import, seconds on a loaded machine
@pytest.mark.parametrize("target", ["/dev/stdout", "-"])
def test_a_closed_pipe_ends_in_one_line(model, target):
    out, prices = model
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write fails with EPIPE
    argv = ["forecast", str(out), "--data", str(prices), "--out", target, "--horizon", "3", "--samples", "10"]
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "seqlab", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        os.close(write_end)
    lines = finished.stderr.strip().splitlines()
    assert finished.returncode == 1 and len(lines) == 1, finished.stderr
    assert lines[0].startswith("seqlab forecast: error: ") and "Broken pipe" in lines[0], lines


def test_the_same_forecast_into_a_file_is_whole(model, tmp_path, capsys):
    """The control: with a reader, the table written is the one printed."""
    out, prices = model
    table = tmp_path / "f.csv"
    argv = ["forecast", str(out), "--data", str(prices), "--out", str(table), "--horizon", "3", "--samples", "10"]
    code, stdout, err = cli(argv, capsys)
    assert code == 0 and table.read_text().splitlines()[0] == stdout.splitlines()[1], err
