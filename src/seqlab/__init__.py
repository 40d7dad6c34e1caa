"""seqlab: probabilistic sequence modelling under one chain rule, P(x_1..x_T) = prod_s P(x_s | x_<s).

The public names below are imported on first use (PEP 562), all together: ``import seqlab`` itself imports
nothing heavy, so the command line (``python -m seqlab``, ``seqlab.__main__``) can install its Ctrl-C handling
before torch loads. Using any name imports ``seqlab.models``, which registers every model kind that ``load``
reads (``seqlab.base.MODELS``).
"""

from __future__ import annotations

import importlib

PUBLIC = {
    "DataSpec": "seqlab.data.spec",
    "Forecast": "seqlab.base",
    "Recurrent": "seqlab.recurrent",
    "SequenceModel": "seqlab.base",
    "SeqlabError": "seqlab.errors",
    "Unsupported": "seqlab.errors",
    "load": "seqlab.io",
    "load_dataset": "seqlab.data.spec",
    "save": "seqlab.io",
}
__all__ = [*PUBLIC, "models"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in PUBLIC and name != "models":
        raise AttributeError(f"module 'seqlab' has no attribute {name!r}")
    models = importlib.import_module("seqlab.models")  # every model family registers its kind
    for public, module in PUBLIC.items():
        globals()[public] = getattr(importlib.import_module(module), public)
    globals()["models"] = models
    return globals()[name]
