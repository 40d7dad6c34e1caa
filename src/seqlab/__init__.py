"""seqlab: probabilistic sequence modelling under one chain rule, P(x_1..x_T) = prod_s P(x_s | x_<s)."""

from seqlab import models  # every model family registers its kind in seqlab.base.MODELS (what load reads)
from seqlab.base import Forecast, SequenceModel
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.errors import SeqlabError, Unsupported
from seqlab.io import load, save
from seqlab.recurrent import Recurrent

__all__ = [
    "DataSpec",
    "Forecast",
    "Recurrent",
    "SequenceModel",
    "SeqlabError",
    "Unsupported",
    "load",
    "load_dataset",
    "models",
    "save",
]
__version__ = "0.1.0"
