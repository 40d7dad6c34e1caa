"""The model families; each is a ``SequenceModel`` and registers itself in ``MODELS`` (``seqlab.base``) by
declaring its ``kind``: importing its module here is all a new family needs."""

from seqlab.base import MODELS
from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.models.global_ar import GlobalAR, GlobalARConfig
from seqlab.models.infinigram import InfiniGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.markov import MarkovChain
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.ngram import NGram
from seqlab.models.pool import Pool
from seqlab.models.random_walk import RandomWalk
from seqlab.models.transformer import CausalTransformer, CausalTransformerConfig

__all__ = [
    "CausalTransformer",
    "CausalTransformerConfig",
    "ETS",
    "ETSConfig",
    "GARCH",
    "GARCHConfig",
    "GlobalAR",
    "GlobalARConfig",
    "InfiniGram",
    "LatentAR",
    "LatentARConfig",
    "LinearAR",
    "MarkovChain",
    "NGram",
    "NeuralAR",
    "NeuralARConfig",
    "Pool",
    "RandomWalk",
    "MODELS",
]
