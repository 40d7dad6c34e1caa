import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Triton decides between compiling and interpreting when a kernel is defined, that is when seqlab.kernels is
# first imported: without CUDA, ask for the interpreter before any test imports it. Only triton reads this.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

# A test run started in the background by a script (`pytest &`, no job control) inherits SIGINT ignored, and so
# would every command the tests start: the Ctrl-C tests would send signals that nobody receives (a child then
# trains until its step budget) and the handlers the tests check would be SIG_IGN. Take SIGINT as a terminal
# delivers it to an interactive user: Python's own handler here, the default disposition in every child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def a_cache_of_the_tests_own(tmp_path_factory):
    """Token stores and suffix-array indexes the tests derive go to a folder of this run (the commands they start
    inherit it), never into the user's ~/.cache/seqlab."""
    os.environ["SEQLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("seqlab-cache"))


@pytest.fixture(autouse=True)
def an_idle_cpu(monkeypatch):
    """The machine's load is no input of a test: on busy cores (other jobs, a parallel build) a training with torch
    on 2 threads (OMP_NUM_THREADS=2, or the default on 2 cores) adds seqlab's busy-CPU notice to stderr, and the
    tests that expect one line there would fail by the load alone. The notice's own test sets its load."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0), raising=False)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|e|, tiny): the one error measure the parity tests use."""
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()


ONNX_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_sample.py"
BARE_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}  # nothing of ours leaks in


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """The interpreter of a virtual environment that holds numpy and onnxruntime only: no torch, no seqlab (links
    to the installed packages, so nothing is downloaded)."""
    import onnxruntime

    root = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120)
    packages = root / "packages"
    packages.mkdir()
    for module in (np, onnxruntime):
        directory = Path(module.__file__).parent
        for path in [directory, *directory.parent.glob(f"{directory.name}.libs")]:  # the wheels' shared libraries
            (packages / path.name).symlink_to(path)
    python = root / "venv" / "bin" / "python"
    where = "import site; print(site.getsitepackages()[0])"
    site = subprocess.run([python, "-c", where], capture_output=True, text=True, check=True, env=BARE_ENV)
    (Path(site.stdout.strip()) / "bare.pth").write_text(f"{packages}\n", encoding="utf-8")
    for missing in ("torch", "seqlab"):
        done = subprocess.run(
            [python, "-c", f"import {missing}"], capture_output=True, text=True, cwd=root, env=BARE_ENV
        )
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, missing
    return python


@pytest.fixture
def run_example(bare_python):
    """``examples/onnx_sample.py`` with ``argv`` in the bare environment; its standard output."""

    def run(*argv):
        command = [bare_python, str(ONNX_EXAMPLE), *map(str, argv)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=ONNX_EXAMPLE.parent, env=BARE_ENV
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run
