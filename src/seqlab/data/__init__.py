"""Data: the bundled data sets and loaders for text, CSV series (``series.py``) and audio (``audio.py``);
``spec.py``: ``DataSpec``, the typed description of a data set, and ``load_dataset(spec)``, its one reader.

``seqlab.data.load(name_or_path)`` takes a bundled name (``"shakespeare"``, ``"msft"``, ``"speech"``)
or a path, and returns text as ``str``, a CSV as a list of ``Series``, audio as ``(samples, rate)``.
"""

from seqlab.data.audio import load_audio
from seqlab.data.bundled_data import BUNDLED, resolve
from seqlab.data.dataset import load
from seqlab.data.files import load_text
from seqlab.data.series import Series, load_series
from seqlab.data.text import Vocabulary, split_text

__all__ = [
    "BUNDLED",
    "resolve",
    "load",
    "load_text",
    "load_series",
    "load_audio",
    "Series",
    "Vocabulary",
    "split_text",
]
