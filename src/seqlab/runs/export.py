"""``export``: a saved model as one file that runs without seqlab or torch (docs/export.md).

A model of a kind in ``seqlab.export.ONNX_KINDS`` becomes an ONNX graph of its ``step`` with the JSON a caller needs
in the file's metadata; the file is written atomically (a reader never sees half of it, an old file stays whole
on failure). Models of frames of vocoder features also record the sampling temperature of each group of features
that ``seqlab sample`` uses (times its ``--temperature``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqlab import io
from seqlab.atomic import STDOUT_NAME, check_parent_dir, write_bytes
from seqlab.base import SequenceModel
from seqlab.data.spec import DataSpec
from seqlab.errors import OptionError, Unsupported
from seqlab.export import chunk_graph, export_onnx, step_graph
from seqlab.runs import checkpoints
from seqlab.runs.sample import GROUP_TEMPERATURES, is_vocoder


@dataclass
class ExportSpec:
    model_dir: Path
    out: Path  # the file written ("-": standard output)
    chunk: int | None = None  # the generation graph of this many steps instead of the step graph
    overwrite: bool = False  # replace an existing file (a FIFO, a device or "-" is written into, never replaced)


@dataclass
class ExportResult:
    out: Path
    bytes: int
    description: str  # the model, in one line
    inputs: list[str]  # the graph's input names, in order
    outputs: list[str]


def export(spec: ExportSpec) -> ExportResult:
    """Load the model in ``spec.model_dir`` and write its ONNX step graph (or its generation graph of
    ``spec.chunk`` steps) to ``spec.out``; a model without one is refused in one line (``Unsupported``) before
    anything is written, and so is an existing file without ``spec.overwrite``."""
    check_parent_dir(spec.out)
    # before loading: a long export must not end in this refusal
    if not spec.overwrite and str(spec.out) != STDOUT_NAME and spec.out.is_file():
        raise OptionError(f"{spec.out} exists; give {{0}} to replace it", "overwrite")
    model = io.load(spec.model_dir)
    try:
        graph = step_graph(model) if spec.chunk is None else chunk_graph(model, spec.chunk)
    except Unsupported as e:
        raise Unsupported(f"{spec.model_dir}: {e}") from None
    data_spec = checkpoints.data_spec(spec.model_dir, model)
    data = export_onnx(model, extra_metadata(model, data_spec), spec.chunk)
    write_bytes(spec.out, data)
    names = [p.name for p in graph.inputs], [p.name for p in graph.outputs]
    return ExportResult(spec.out, len(data), model.describe(), *names)


def extra_metadata(model: SequenceModel, data_spec: DataSpec | None) -> dict:
    """What the run directory knows beyond the model: the data record of an older run, the vocoder temperatures."""
    extra: dict = {}
    if data_spec is not None:
        extra["data"] = data_spec.to_json()
    if is_vocoder(data_spec):
        extra["temperatures"] = dict(GROUP_TEMPERATURES)
    return extra
