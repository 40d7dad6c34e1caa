"""The data sets shipped inside the package (provenance in ``bundled/README.md``)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import SeqlabError

BUNDLED_DIR = Path(__file__).parent / "bundled"
BUNDLED_PREFIX = "bundled:"  # "bundled:msft": the bundled data even where a local file is called msft
MAX_DATA_BYTES = 2 * 2**30  # one data file is read whole into memory: refuse anything larger


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
    """An existing path, or a bundled name -> (path, bundled entry or None).

    A local file always wins: ``msft.csv`` is the file in the working directory. Bundled data is named by its
    bare name (``msft``; no local file of that name) or explicitly (``bundled:msft``). Only regular files of at
    most ``MAX_DATA_BYTES`` pass: a FIFO, a device such as /dev/zero, or a folder is refused before any read."""
    key = str(name_or_path)
    if key.startswith(BUNDLED_PREFIX):
        name = key[len(BUNDLED_PREFIX) :]
        if name not in BUNDLED:
            raise SeqlabError(f"no bundled data set {name!r} (bundled names: {', '.join(BUNDLED)})")
        return BUNDLED[name].path, BUNDLED[name]
    path = Path(name_or_path).expanduser()
    if not os.path.lexists(path):
        if key in BUNDLED:
            return BUNDLED[key].path, BUNDLED[key]
        hint = next((f"; did you mean the bundled {n!r}?" for n, e in BUNDLED.items() if key == e.filename), "")
        raise SeqlabError(f"no such data file: {key} (bundled names: {', '.join(BUNDLED)}){hint}")
    check_data_file(path)
    return path, None


def check_data_file(path: Path) -> None:
    """Refuse what is not a regular file of at most ``MAX_DATA_BYTES``, naming the file and the limit."""
    try:
        info = path.stat()  # follows a symlink: a link to a regular file is fine
    except OSError as e:
        raise SeqlabError(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise SeqlabError(f"{path} is a directory, expected a data file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode) else "special"
        raise SeqlabError(f"{path} is {kind}, not a regular file; seqlab reads data from regular files only")
    if info.st_size > MAX_DATA_BYTES:
        raise SeqlabError(
            f"{path}: {info.st_size:,} bytes is over seqlab's limit of {MAX_DATA_BYTES:,} bytes "
            f"({MAX_DATA_BYTES / 2**30:g} GiB) for one data file"
        )
