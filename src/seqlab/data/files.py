"""Reading data files with errors that say which file and where."""

from __future__ import annotations

from pathlib import Path

from seqlab.data.bundled_data import resolve
from seqlab.errors import SeqlabError

BOM = "\ufeff"  # a UTF-8 byte-order mark: an encoding signature, not a character of the text


def load_text(name_or_path: str | Path) -> str:
    """Read a UTF-8 text file (or a bundled name); refuse empty, binary and non-UTF-8 files; drop a leading BOM."""
    path, _ = resolve(name_or_path)
    raw = path.read_bytes()
    if not raw:
        raise SeqlabError(f"{path}: the file is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _line_column(raw, nul)
        raise SeqlabError(f"{path}: looks binary (NUL byte at line {line}, column {column}), expected UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, column = _line_column(raw, e.start)
        raise SeqlabError(
            f"{path}: not valid UTF-8 at line {line}, column {column} (byte 0x{raw[e.start]:02x}); "
            "convert it to UTF-8 first"
        ) from None
    text = text.removeprefix(BOM)
    if not text:
        raise SeqlabError(f"{path}: the file is empty (it holds only a byte-order mark)")
    return text.replace("\r\n", "\n")


def _line_column(raw: bytes, offset: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return line, column
