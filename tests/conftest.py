import os

import torch

# Triton decides between compiling and interpreting when a kernel is defined, that is when seqlab.kernels is
# first imported: without CUDA, ask for the interpreter before any test imports it. Only triton reads this.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|e|, tiny): the one error measure the parity tests use."""
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()
