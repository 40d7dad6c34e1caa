"""User arrays as the float64 series the continuous models read, with errors that name the row."""

from __future__ import annotations

import numpy as np
import torch

from seqlab.errors import SeqlabError


def as_series(data, model: str = "LinearAR", source: str = "series") -> np.ndarray:
    """1-D float64 array from a list, array or tensor; refuses text, NaN and infinities (naming the row)."""
    if isinstance(data, str):
        raise SeqlabError(f"{model} is a model of continuous data; got text ({source})")
    x = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if x.dtype.kind not in "fiu":
        raise SeqlabError(f"{model} is a model of continuous data; got {x.dtype} values ({source})")
    x = x.astype(np.float64).reshape(-1) if x.ndim <= 1 or x.shape[1:] == (1,) * (x.ndim - 1) else None
    if x is None:
        raise SeqlabError(f"{model} takes one series (a 1-D array), got shape {np.shape(data)} ({source})")
    bad = np.flatnonzero(~np.isfinite(x))
    if len(bad):
        raise SeqlabError(f"{source}: row {bad[0]} is {x[bad[0]]} ({len(bad)} non-finite values); clean or fill them")
    return x
