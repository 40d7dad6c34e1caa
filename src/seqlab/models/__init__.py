"""The model families; each is a ``SequenceModel``."""

from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.models.infinigram import InfiniGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.markov import MarkovChain
from seqlab.models.neural_ar import NeuralAR, NeuralARConfig
from seqlab.models.ngram import NGram
from seqlab.models.transformer import CausalTransformer, CausalTransformerConfig

MODELS = {
    model.kind: model
    for model in (LatentAR, NGram, MarkovChain, LinearAR, NeuralAR, InfiniGram, CausalTransformer, GARCH)
}

__all__ = [
    "CausalTransformer",
    "CausalTransformerConfig",
    "GARCH",
    "GARCHConfig",
    "InfiniGram",
    "LatentAR",
    "LatentARConfig",
    "LinearAR",
    "MarkovChain",
    "NGram",
    "NeuralAR",
    "NeuralARConfig",
    "MODELS",
]
