"""Small shared fixtures: a short slice of the bundled text, a tiny model configuration, and the CLI run in process."""

import math
import tracemalloc
from pathlib import Path

import numpy as np

from seqlab.cli import main
from seqlab.data import load_text
from seqlab.runs.checkpoints import RunCheckpoints
from seqlab.runs.run_directory import RunDirectory

SMALL_TEXT = load_text("shakespeare")[:20_000]
TINY_MODEL = ["--hidden", "8", "--layers", "1", "--embedding", "4"]
TINY_TRAINING = ["--batch-size", "2", "--window", "16", "--no-progress", "--sample-length", "20"]


def write_small_text(directory: Path) -> Path:
    path = directory / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


def stepped_log_probs(model, x):
    """log P(x_t | x_<t) for every t, obtained by streaming through ``step`` one element at a time:
    the chain rule as a sampler sees it, to compare with the model's own ``log_prob``."""
    import torch

    state, out = model.initial_state(), []
    params, state = model.step(None, state)
    for x_t in x:
        out.append(-model.head.nll(params, torch.as_tensor(x_t)))
        params, state = model.step(x_t, state)
    return torch.stack(out)


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of ``seqlab argv``, in process."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err, *fragments, internal: bool = False):
    """Exit 1 (or 2, argparse's refusal of an option's value) with one line on stderr that says error, has no
    traceback and holds every fragment; an internal error (a bug, exit 2) only where ``internal`` says so."""
    assert code in (1, 2), (code, err)
    assert ("internal error" in err) == internal, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tiny_latent_ar(vocabulary, seed: int = 0, scale: float = 1.0, **config):
    """A small ``LatentAR`` (``config``: ``LatentARConfig`` fields) with weights drawn from ``seed``, multiplied by
    ``scale``: above 1 the gates saturate and the logits spread, as in a trained model."""
    import torch

    from seqlab.models import LatentAR, LatentARConfig

    torch.manual_seed(seed)
    model = LatentAR(vocabulary, LatentARConfig(**config))
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model


def checkpoints_in(path):
    """The Trainer's checkpointer for the run folder ``path`` (made if missing), without claiming it: what a
    torchrun worker other than the main one gets, here for tests that train into a folder of their own."""
    return RunCheckpoints(RunDirectory(Path(path), Path(path)), {})


def garch_returns(n: int, seed: int = 0) -> np.ndarray:
    """A GARCH(1, 1) path with Student-t(6) noise of unit variance: omega 2e-6, alpha 0.1, beta 0.88."""
    rng = np.random.default_rng(seed)
    r, s2 = np.empty(n), 1e-4
    for i in range(n):
        r[i] = np.sqrt(s2) * rng.standard_t(6) / np.sqrt(1.5)
        s2 = 2e-6 + 0.1 * r[i] ** 2 + 0.88 * s2
    return r


def simulated_egarch_path(n: int, seed: int) -> np.ndarray:
    """Monthly-looking EGARCH(1,1,1) returns with t(5) noise: omega -0.4, alpha 0.15, gamma -0.1, beta 0.93."""
    rng = np.random.default_rng(seed)
    y, ln_s, z_prev = np.empty(n), math.log(0.003), 0.0
    for t in range(n):
        ln_s = -0.4 + 0.15 * (abs(z_prev) - math.sqrt(2 / math.pi)) - 0.1 * z_prev + 0.93 * ln_s
        z_prev = rng.standard_t(5) / math.sqrt(5 / 3)
        y[t] = 0.005 + math.exp(ln_s / 2) * z_prev
    return y


def traced_peak_mb(function, *args) -> float:
    """The most memory ``function(*args)`` held at once in NumPy arrays and Python objects (tracemalloc: every
    allocation counted, by size, not by time), in MB."""
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
