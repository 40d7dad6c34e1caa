"""The model families; each is a ``SequenceModel``."""

from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.markov import MarkovChain
from seqlab.models.ngram import NGram

MODELS = {model.kind: model for model in (LatentAR, NGram, MarkovChain)}

__all__ = ["LatentAR", "LatentARConfig", "MarkovChain", "NGram", "MODELS"]
