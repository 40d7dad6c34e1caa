"""Character vocabularies and train/validation splits for text."""

from __future__ import annotations

import numpy as np
import torch

from seqlab.errors import OptionError, SeqlabError

UNKNOWN = "\ufffd"  # the Unicode replacement character: the explicit unknown symbol


class Vocabulary:
    """The characters of a training text, sorted; id ``i`` is ``symbols[i]``.

    The last id is the explicit unknown symbol ``UNKNOWN``: training text never contains it, and
    ``encode(..., unknown="map")`` sends characters the vocabulary lacks to it (a large but finite
    cost); the default ``unknown="error"`` refuses them, naming the character and its position.
    """

    def __init__(self, symbols: list[str]) -> None:
        if UNKNOWN not in symbols:
            symbols = [*symbols, UNKNOWN]
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.unknown_id = self.index[UNKNOWN]

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(sorted(set(text) - {UNKNOWN}))

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str, unknown: str = "error", source: str = "text") -> torch.Tensor:
        """str -> (T,) int64 ids. ``unknown="error"`` raises on a character not in the vocabulary."""
        if unknown not in ("error", "map"):
            raise ValueError(f"unknown must be 'error' or 'map', got {unknown!r}")
        get = self.index.get
        ids = [get(ch, -1) for ch in text]
        if -1 in ids:
            if unknown == "error":
                pos = ids.index(-1)
                line = text.count("\n", 0, pos) + 1
                column = pos - (text.rfind("\n", 0, pos) + 1) + 1
                missing = sorted(set(text) - set(self.index))
                raise OptionError(
                    f"{source}: character {text[pos]!r} (U+{ord(text[pos]):04X}) at line {line}, column {column} "
                    f"is not in the model's vocabulary ({len(missing)} unknown characters in all); "
                    "give {0} map to score it as the unknown symbol",
                    "unknown",
                )
            ids = [self.unknown_id if i < 0 else i for i in ids]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.symbols[int(i)] for i in ids)

    def to_json(self) -> list[str]:
        return self.symbols

    @classmethod
    def from_json(cls, symbols: list[str]) -> Vocabulary:
        """A saved vocabulary: unique single characters, or a one-line error (a tampered file)."""
        if not isinstance(symbols, list):
            raise SeqlabError(f"vocabulary: expected a list of characters, got a {type(symbols).__name__}")
        for i, s in enumerate(symbols):
            if not isinstance(s, str) or len(s) != 1:
                raise SeqlabError(f"vocabulary entry {i}: {s!r} is not a single character")
        if len(set(symbols)) != len(symbols):
            twice = sorted({s for s in symbols if symbols.count(s) > 1})
            raise SeqlabError(f"vocabulary: {twice[0]!r} appears more than once")
        return cls(list(symbols))


def encode_symbols(data, vocabulary: Vocabulary | None, model: str, unknown: str = "error", source: str = "data"):
    """Text (through ``vocabulary``) or integer symbol ids -> (T,) int64 ids; refuses continuous values."""
    if not isinstance(data, str):
        array = np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor) else data)
        if array.dtype.kind not in "iu":
            raise SeqlabError(f"{model} is a model of discrete data (symbols); got {array.dtype} values ({source})")
        return torch.as_tensor(array, dtype=torch.long)
    if vocabulary is None:
        raise SeqlabError(f"{model} has no vocabulary yet: fit it on text or pass vocabulary=...")
    return vocabulary.encode(data, unknown=unknown, source=source)


def split_text(text: str, valid_fraction: float = 0.1, valid_from: str | None = None) -> tuple[str, str]:
    """Split into (train, valid): at the marker ``valid_from`` when it occurs (a held-out document),
    else the last ``valid_fraction`` of the text, moved back to the start of a line."""
    if not 0.0 < valid_fraction < 1.0:
        raise SeqlabError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    cut = text.find(valid_from) + 1 if valid_from else 0
    if cut <= 0:
        cut = int(len(text) * (1.0 - valid_fraction))
        newline = text.rfind("\n", 0, cut)
        if newline > len(text) // 2:
            cut = newline + 1
    return text[:cut], text[cut:]
