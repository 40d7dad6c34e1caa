"""Small shared fixtures: a short slice of the bundled text and a tiny model configuration."""

from pathlib import Path

from seqlab.data import load_text

SMALL_TEXT = load_text("shakespeare")[:20_000]
TINY_MODEL = ["--hidden", "8", "--layers", "1", "--embedding", "4"]
TINY_TRAINING = ["--batch-size", "2", "--window", "16", "--no-progress", "--sample-length", "20"]


def write_small_text(directory: Path) -> Path:
    path = directory / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path
