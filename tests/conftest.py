import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|e|, tiny): the one error measure the parity tests use."""
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()
