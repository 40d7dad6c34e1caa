"""The model families; each is a ``SequenceModel``."""

from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.models.linear_ar import LinearAR
from seqlab.models.markov import MarkovChain
from seqlab.models.ngram import NGram

MODELS = {model.kind: model for model in (LatentAR, NGram, MarkovChain, LinearAR)}

__all__ = ["LatentAR", "LatentARConfig", "LinearAR", "MarkovChain", "NGram", "MODELS"]
