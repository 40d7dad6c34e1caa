"""One data set of any kind, split into training and held-out parts (``seqlab.data.spec.load_dataset`` makes it),
and ``load``: read a file or bundled name by its kind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from seqlab.data.audio import load_audio
from seqlab.data.bundled_data import resolve
from seqlab.data.files import load_text
from seqlab.data.series import Series, load_series
from seqlab.data.text import TextPart
from seqlab.errors import SeqlabError
from seqlab.transforms import Transform

if TYPE_CHECKING:  # spec and token_store import this module
    from seqlab.data.spec import DataSpec
    from seqlab.data.token_store import TokenStore

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
# each way a data set's elements are encoded (decided once, by the loader ``load_dataset``): what one element is
ELEMENT_NAMES = {"text": "characters", "series": "values", "raw": "samples", "mu_law": "samples", "vocoder": "frames"}


def kind_of_name(path: str | Path) -> str:
    """The kind of data a file name says: ``.csv`` a series, an audio suffix audio, anything else text."""
    suffix = Path(path).suffix.lower()
    return "series" if suffix == ".csv" else "audio" if suffix in AUDIO_SUFFIXES else "text"


def data_kind(data: str | Path) -> str:
    return kind_of_name(resolve(data)[0])


@dataclass
class Dataset:
    kind: str  # "text", "series" or "audio": what the file is
    encoding: str  # how its elements are encoded (ELEMENT_NAMES): text, series, raw, mu_law or vocoder
    train: TextPart | torch.Tensor  # text (ids in a token store), or joined transformed series (float), samples
    valid: TextPart | torch.Tensor
    meta: dict  # the spec as JSON and the sizes of the split (training.json's record)
    transform: Transform | None = None
    series: list[Series] | None = None
    rate: int | None = None  # audio sample rate
    spec: DataSpec | None = None  # the resolved spec that rebuilds this split
    store: TokenStore | None = None  # text: the token store the parts are views of

    def __post_init__(self) -> None:
        if self.encoding not in ELEMENT_NAMES:
            raise SeqlabError(f"unknown encoding {self.encoding!r}; choose one of {', '.join(ELEMENT_NAMES)}")

    @property
    def elements(self) -> str:
        """What one element is: characters, values, samples or frames."""
        return ELEMENT_NAMES[self.encoding]

    def check_one_series(self, model: str) -> None:
        """Refuse several series (a wide CSV's value columns, a long one's ids), naming them: ``model`` fits one."""
        if self.series is not None and len(self.series) > 1:
            names = ", ".join(s.name for s in self.series)
            raise SeqlabError(
                f"{self.spec.source}: {model} fits one series and the data hold {len(self.series)} ({names}); "
                "give one value column"
            )


def join_series(pieces: list[np.ndarray]) -> torch.Tensor:
    """Several series as one float tensor with a NaN between them (the models read NaN as a gap)."""
    gap = np.full((1, *pieces[0].shape[1:]), np.nan) if pieces else np.full(1, np.nan)
    parts = [p for piece in pieces for p in (gap, piece)][1:]
    return torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(0, dtype=torch.float64)


def load(name_or_path: str | Path):
    """Load a bundled name or a path by its kind: a CSV -> list of ``Series``, audio -> (samples, rate), else text."""
    kind = data_kind(str(name_or_path))
    if kind == "series":
        return load_series(name_or_path)
    if kind == "audio":
        return load_audio(name_or_path)
    return load_text(name_or_path)
