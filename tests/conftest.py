import os
import signal

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
