"""The data sets shipped inside the package (provenance in ``bundled/README.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import SeqlabError

BUNDLED_DIR = Path(__file__).parent / "bundled"


@dataclass(frozen=True)
class Bundled:
    filename: str
    description: str
    # Text data sets: validation starts at the first occurrence of this marker (a held-out document).
    valid_from: str | None = None

    @property
    def path(self) -> Path:
        return BUNDLED_DIR / self.filename


BUNDLED: dict[str, Bundled] = {
    "shakespeare": Bundled(
        "shakespeare.txt",
        "nine Shakespeare plays, 1.07 MB of ASCII; the last play (Much Ado About Nothing) is held out",
        valid_from="\nMUCH ADO ABOUT NOTHING\n",
    ),
    "msft": Bundled("msft.csv", "Microsoft daily prices 1986-2017 (Date, Open, High, Low, Close, Volume)"),
    "speech": Bundled("speech.wav", "16.6 s of English speech, 16 kHz 16-bit mono"),
}


def resolve(name_or_path: str | Path) -> tuple[Path, Bundled | None]:
    """A bundled name (with or without its extension) or an existing path -> (path, bundled entry or None)."""
    key = str(name_or_path)
    for name, entry in BUNDLED.items():
        if key in (name, entry.filename):
            return entry.path, entry
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise SeqlabError(f"no such data file: {key} (bundled names: {', '.join(BUNDLED)})")
    if path.is_dir():
        raise SeqlabError(f"{key} is a directory, expected a data file")
    return path, None
