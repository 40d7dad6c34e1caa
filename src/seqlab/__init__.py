"""seqlab: probabilistic sequence modelling under one chain rule, P(x_1..x_T) = prod_s P(x_s | x_<s)."""

from seqlab.base import SequenceModel
from seqlab.errors import SeqlabError
from seqlab.io import load, save
from seqlab.recurrent import Recurrent

__all__ = ["Recurrent", "SequenceModel", "SeqlabError", "load", "save"]
__version__ = "0.1.0"
