"""The data a saved run names: which file it may read (``readable_data``: bundled data, or a local file only when
the user names it too), its recorded spec checked (``recorded_data``, ``recorded_kind``), and the fingerprint
(size and SHA-256) that a resumed run's data must match."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from seqlab import io
from seqlab.atomic import file_sha256
from seqlab.data.bundled_data import BUNDLED, BUNDLED_PREFIX, resolve
from seqlab.data.dataset import kind_of_name
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, SeqlabError


def recorded_data(meta, model, path: Path) -> DataSpec:
    """The data record ``meta`` of ``path`` (training.json, last/trainer.json) for ``model``, every field checked
    as config.json's is (``io.data_record``)."""
    return io.data_record(meta, model.to_config(), path, "meta")


def recorded_kind(spec: DataSpec | None) -> str | None:
    """The kind of data a checkpoint records, also when its file is gone (then from the name's suffix)."""
    if spec is None:
        return None
    try:
        return spec.kind
    except SeqlabError:
        return kind_of_name(spec.source)


def readable_data(spec: DataSpec, directory: str | Path) -> DataSpec:
    """The trust rule for the data a checkpoint records: bundled data is read (as ``bundled:NAME``, never a local
    file of that name); a local path is never read unless the user names it (``source`` given), since a
    checkpoint from elsewhere could name any file on this machine."""
    name = spec.source.removeprefix(BUNDLED_PREFIX)
    if spec.source.startswith(BUNDLED_PREFIX) or (name in BUNDLED and "/" not in name):
        return replace(spec, source=BUNDLED_PREFIX + name)
    raise OptionError(
        f"{directory}: was trained on the local file {spec.source}; seqlab reads a file a checkpoint names only "
        "when you name it too: give {0} with the data to use",
        "source",
    )


def data_fingerprint(spec: DataSpec) -> dict:
    """``{"data_bytes", "data_sha256"}`` of the file ``spec`` reads: recorded by a run, checked by its resume."""
    path, _ = resolve(spec.source)
    return {"data_bytes": os.path.getsize(path), "data_sha256": file_sha256(path)}


def check_fingerprint(meta: dict, spec: DataSpec, out: Path) -> None:
    """Refuse to resume on data that changed since the run started: its size first (no read), then its hash.
    A run recorded before fingerprints existed is not checked."""
    if "data_sha256" not in meta:
        return
    path, _ = resolve(spec.source)
    if os.path.getsize(path) != meta.get("data_bytes") or file_sha256(path) != meta["data_sha256"]:
        raise SeqlabError(
            f"{out}: its data {spec.source} changed since the run started (size or SHA-256 differs from the "
            "record); resume only on the data it was trained on, or start a new run"
        )
