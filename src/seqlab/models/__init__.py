"""The model families; each is a ``SequenceModel``."""

from seqlab.models.latent_ar import LatentAR, LatentARConfig

MODELS = {LatentAR.kind: LatentAR}

__all__ = ["LatentAR", "LatentARConfig", "MODELS"]
