"""Data: the bundled data sets and loaders for text (and, minimally, CSV series and WAV audio).

``seqlab.data.load(name_or_path)`` takes a bundled name (``"shakespeare"``, ``"msft"``, ``"speech"``)
or a path, and returns text as ``str``, a CSV as a dict of columns, a WAV as ``(samples, rate)``.
"""

from seqlab.data.bundled_data import BUNDLED, resolve
from seqlab.data.files import load, load_csv, load_text, load_wav
from seqlab.data.text import Vocabulary, split_text

__all__ = ["BUNDLED", "resolve", "load", "load_text", "load_csv", "load_wav", "Vocabulary", "split_text"]
