"""``explore``: one self-contained HTML page to look inside a trained text model.

The page (``explore_page/``: a template, its script and its style, inlined; no network request of any kind)
shows the model's own numbers on a held-out text:

    surprise     bits_s = -log2 P(x_s | x_<s) from ``log_prob``, and the top-10 of P(. | x_<s) from ``step``
    units        every quantity of every layer (RNN h; LSTM i f o g c h; GRU r z n h) on each character,
                 computed in the page by its JavaScript step from the embedded weights, and the units ranked
                 by |r|, Pearson's correlation with simple features of the text (``FEATURES``)
    saturation   per gate and unit, the share of characters with the gate < 0.1 and > 0.9 (Karpathy et al. 2015)
    against      bits_s(other model) - bits_s(this model), per character
    sampler      the JavaScript step (``StreamingSampler``'s tables: embedding and first input projection folded,
                 cells, head) with temperature and top-k

The value of a unit shown on character s is the state after reading it: ``H_{s+1} = Net(H_s, x_s)``. The page's
step is checked against ``LatentAR.step`` in a real browser (tests/test_explore_browser.py).
"""

from __future__ import annotations

import base64
import functools
import json
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from seqlab import io
from seqlab.atomic import check_parent_dir, replace_into
from seqlab.base import SequenceModel
from seqlab.cells import CELL_VALUES, NUM_GATES
from seqlab.data.dataset import data_kind
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.token_store import open_store
from seqlab.errors import InternalError, SeqlabError
from seqlab.experiments.gates import CLOSED, OPEN
from seqlab.models.latent_ar import LatentAR
from seqlab.runs import checkpoints, run_data
from seqlab.runs.evaluate import same_file
from seqlab.streaming import StreamingSampler

DEFAULT_CHARS = 5000
MAX_CHARS = 20_000
PAGE_LIMIT_BYTES = 24 * 2**20  # the default 1 x 512 LSTM on 5,000 characters takes about 7 MB, a 2 x 512 one 19 MB
VALUES_LIMIT_BYTES = 256 * 2**20  # the page keeps every quantity of every unit on every character (float32)
TOP_K = 10  # the next-character distribution shown per character
RANKED_UNITS = 12  # units listed per feature
GATES = {"lstm": ("i", "f", "o"), "gru": ("r", "z")}  # the sigmoid gates of the saturation view
TEXT_ONLY = "the explore page is for text models (for now)"


@dataclass
class ExploreSpec:
    model_dir: Path
    out: Path
    data: DataSpec | None = None  # None: the held-out part of the data the model was trained on
    chars: int = DEFAULT_CHARS
    against: Path | None = None


@dataclass
class ExploreResult:
    out: Path
    bytes: int
    chars: int
    bits_per_char: float
    against_bits_per_char: float | None = None
    views: list[str] = field(default_factory=list)


# -- the text ---------------------------------------------------------------------------------------------------
def text_model(model: SequenceModel, directory: Path) -> None:
    """Refuse anything but a model of characters, in one line."""
    if model.element_name != "characters" or not model.head.discrete:
        raise SeqlabError(f"{directory}: {TEXT_ONLY}; this is {model.describe()}")


def explored_text(model: SequenceModel, spec: ExploreSpec) -> tuple[str, str]:
    """(text, where it came from): the first ``chars`` characters of a file named by ``--data`` (whole file), or of
    the held-out part of the model's training data (as ``seqlab evaluate`` picks it)."""
    saved = checkpoints.data_spec(spec.model_dir, model)
    if spec.data is not None and spec.data.kind == "text" and not same_file(spec.data.source, saved):
        store = open_store(spec.data.source, spec.data.encoding or "utf-8")  # encoded once, read in part
        text, source = store.part(0, min(len(store), spec.chars)), spec.data.source
    else:
        if saved is None and spec.data is None:
            raise SeqlabError(f"{spec.model_dir}: no record of its training data; give the text with --data")
        if spec.data is None:
            data_spec = run_data.readable_data(saved, spec.model_dir)
        else:
            encoding = spec.data.encoding or (saved.encoding if saved else None)  # given, else as it was trained
            data_spec = replace(saved, source=spec.data.source, encoding=encoding) if saved else spec.data
        if (kind := data_kind(data_spec.source)) != "text":  # by its name, before a WAV's analysis
            raise SeqlabError(f"{data_spec.source}: {kind} data; {TEXT_ONLY}")
        dataset = load_dataset(data_spec)
        text, source = dataset.valid, f"{dataset.spec.source} (validation part)"
    text = str(text[: spec.chars])  # a TextPart of a token store: only these characters are read
    if len(text) < 2:
        raise SeqlabError(f"{source}: fewer than 2 characters to explore")
    return text, source


def text_features(text: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Simple features of each character, name -> (values (T,), mask (T,) of where the feature is defined).

    inside quotes       1 between a double quote and the next (the quotes included), else 0
    inside brackets     1 inside [...] or (...) (the brackets included), else 0
    position in line    characters since the last newline
    position in word    letters since the last non-letter (0 off words)
    speaker's name      1 on a line in capitals that ends with "." (a speaker's name in a play), else 0
    vowel               1 on a vowel, 0 on a consonant; letters only
    capital             1 on an upper-case letter, 0 on a lower-case one; letters only
    space               1 on a space or newline, else 0
    """
    T = len(text)
    quote, bracket, line_pos, word_pos, speaker = (np.zeros(T) for _ in range(5))
    inside_quote, depth, column, run = False, 0, 0, 0
    line_start = 0
    for s, ch in enumerate(text):
        if ch == '"':
            inside_quote = not inside_quote
        quote[s] = 1.0 if inside_quote or ch == '"' else 0.0
        if ch in "[(":
            depth += 1
        bracket[s] = 1.0 if depth > 0 else 0.0
        if ch in "])":
            depth = max(0, depth - 1)
        line_pos[s] = column
        column = 0 if ch == "\n" else column + 1
        run = run + 1 if ch.isalpha() else 0
        word_pos[s] = run
        if ch == "\n" or s == T - 1:
            line = text[line_start : s + 1].strip()
            if line and line.isupper() and line.endswith("."):
                speaker[line_start : s + 1] = 1.0
            line_start = s + 1
    letters = np.array([ch.isalpha() for ch in text])
    every = np.ones(T, dtype=bool)
    vowel = np.array([ch.lower() in "aeiou" for ch in text], dtype=float)
    capital = np.array([ch.isupper() for ch in text], dtype=float)
    space = np.array([ch in " \n" for ch in text], dtype=float)
    return {
        "inside quotes": (quote, every),
        "inside brackets": (bracket, every),
        "position in line": (line_pos, every),
        "position in word": (word_pos, every),
        "speaker's name": (speaker, every),
        "vowel": (vowel, letters),
        "capital": (capital, letters),
        "space": (space, every),
    }


def correlations(values: np.ndarray, feature: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pearson's r of each column of ``values`` (T, H) with ``feature`` (T,) over the rows in ``mask``: (H,),
    0 where either side is constant."""
    v, f = values[mask].astype(np.float64), feature[mask]
    if len(f) < 2:
        return np.zeros(values.shape[1])
    v = v - v.mean(0)
    f = f - f.mean()
    denominator = np.sqrt((v * v).sum(0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v * f[:, None]).sum(0) / denominator
    return np.where(denominator > 0, r, 0.0)


# -- the model's numbers ----------------------------------------------------------------------------------------
def streaming_step(model: SequenceModel):
    """``step(x_prev) -> params`` with the state kept inside: ``model.step`` (``x_prev=None``: the start)."""
    state = model.initial_state()

    def step(x_prev):
        nonlocal state
        params, state = model.step(x_prev, state)
        return params

    return step


@torch.no_grad()
def next_distributions(step, ids: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The top-``TOP_K`` of P(. | x_<s) for every s, from a fresh ``step(x_prev) -> params`` (``streaming_step``,
    or a latent model's ``StreamingSampler.step``, the same numbers in NumPy): (ids (T, K), probabilities (T, K))."""
    params = step(None)
    top_ids, top_p = [], []
    for s in range(len(ids)):
        # logits or log-probabilities: softmax gives the distribution either way
        p = torch.softmax(torch.as_tensor(params).double().flatten(), dim=0)
        best = torch.topk(p, min(TOP_K, p.numel()))
        top_ids.append(best.indices.numpy())
        top_p.append(best.values.numpy())
        if s + 1 < len(ids):
            params = step(ids[s])
    return np.stack(top_ids), np.stack(top_p)


def unit_values(tables: StreamingSampler, ids: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """(layer, quantity) -> (T, H) float32: every quantity of ``seqlab.cells`` (``CELL_VALUES``) after reading
    each character x_s, that is at step s + 1 of the model (H_{s+1} = Net(H_s, x_s)), from H_0 = 0 and the start
    symbol: the streaming sampler's NumPy recurrence, its ``advance`` hook recording each layer's quantities.

    The first layer reads ``x`` as a one-hot through the folded table ``W_ih . e(v) + b_ih`` (the streaming
    sampler's ``input_table``): the same numbers as the embedding followed by ``W_ih``."""
    names = CELL_VALUES[tables.cell]
    trace = {(k, q): np.empty((len(ids), tables.H), dtype=np.float32) for k in range(tables.L) for q in names}

    def record(t: int, k: int, values: dict) -> None:  # row t: after reading ids[t]
        for q in names:
            trace[k, q][t] = values[q]

    tables.reset_state()
    tables.advance(tables.input_table[tables.start])  # step 0 reads the start symbol: nothing to show
    for t, v in enumerate(ids.tolist()):
        tables.advance(tables.input_table[v], functools.partial(record, t))
    return trace


def unit_statistics(trace: dict[tuple[int, str], np.ndarray], text: str, cell: str) -> dict:
    """The ranked units per feature and the saturation of every gate (for the page, and for people)."""
    features = text_features(text)
    ranked = {}
    for name, (feature, mask) in features.items():
        if not mask.any() or np.ptp(feature[mask]) == 0:
            continue  # constant on this text (no quotes, say): nothing to track
        rows = []
        for (k, q), values in trace.items():
            r = correlations(values, feature, mask)
            for u in np.argsort(-np.abs(r))[:RANKED_UNITS]:
                rows.append({"layer": k, "quantity": q, "unit": int(u), "r": round(float(r[u]), 4)})
        ranked[name] = sorted(rows, key=lambda row: -abs(row["r"]))[:RANKED_UNITS]
    saturation = {
        f"{k}:{q}": {
            "left": np.round((values < CLOSED).mean(0), 4).tolist(),  # share of characters with the gate < 0.1
            "right": np.round((values > OPEN).mean(0), 4).tolist(),  # and > 0.9
        }
        for (k, q), values in trace.items()
        if q in GATES.get(cell, ())
    }
    return {"ranked": ranked, "saturation": saturation, "closed": CLOSED, "open": OPEN}


def float32_base64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def step_weights(tables: StreamingSampler) -> dict:
    """The JavaScript step's weights, float32 little-endian in base64, with their shapes."""
    arrays = {"input_table": tables.input_table, "out_h": tables.out_h, "output_table": tables.output_table}
    for k in range(tables.L):
        arrays[f"weight_hh_{k}"] = tables.weight_hh[k]
        arrays[f"bias_hh_{k}"] = tables.bias_hh[k]
        if k > 0:
            arrays[f"weight_ih_{k}"] = tables.weight_ih[k]
            arrays[f"bias_ih_{k}"] = tables.bias_ih[k]
    return {name: {"shape": list(a.shape), "data": float32_base64(a)} for name, a in arrays.items()}


def estimated_bytes(model: SequenceModel, chars: int, against: bool) -> int:
    """About what the page will take, before any work: weights in base64, and per character its text, bits and
    top-10 (ids and probabilities as JSON numbers)."""
    weights = 0
    if isinstance(model, LatentAR):
        c = model.config
        V = len(model.vocabulary)
        G = NUM_GATES[c.cell] * c.hidden_size
        floats = (V + 1) * G + V * c.hidden_size + (V + 1) * V + c.num_layers * (G * c.hidden_size + G)
        floats += (c.num_layers - 1) * (G * c.hidden_size + G)
        weights = floats * 4 * 4 // 3  # float32 in base64
    per_char = 16 + TOP_K * 12 + (10 if against else 0)  # JSON: the character, its bits, the top-10
    return weights + chars * per_char + 200_000  # the page's script, style and the ranked lists


# -- the page ---------------------------------------------------------------------------------------------------
def render_page(data: dict) -> str:
    """The template with its script, style and the data inlined; the data's ``</`` escaped (``<\\/`` in JSON) so
    that no text of the user's closes the script element."""
    page = resources.files("seqlab.runs") / "explore_page"
    html = (page / "page.html").read_text(encoding="utf-8")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    script = (page / "page.js").read_text(encoding="utf-8")
    matvec = (page / "matvec.wasm").read_bytes()  # its text form: matvec.wat
    if "</script" in script.lower():
        raise InternalError("explore_page/page.js must not hold </script: it would end the inline script")
    return (
        html.replace("/*STYLE*/", (page / "page.css").read_text(encoding="utf-8"))
        .replace("/*SCRIPT*/", script.replace("/*MATVEC_WASM*/", base64.b64encode(matvec).decode("ascii")))
        .replace("/*DATA*/", payload)
        .replace("<!--TITLE-->", data["title"].replace("&", "&amp;").replace("<", "&lt;"))
    )


def explore(spec: ExploreSpec) -> ExploreResult:
    if not 2 <= spec.chars <= MAX_CHARS:
        raise SeqlabError(f"--chars must be between 2 and {MAX_CHARS:,}, got {spec.chars}")
    check_parent_dir(spec.out)
    model = io.load(spec.model_dir)
    text_model(model, spec.model_dir)
    other = io.load(spec.against) if spec.against is not None else None
    if other is not None:
        text_model(other, spec.against)
    size = estimated_bytes(model, spec.chars, other is not None)
    if size > PAGE_LIMIT_BYTES:
        raise SeqlabError(
            f"the page would take about {size / 2**20:.1f} MB (limit {PAGE_LIMIT_BYTES // 2**20} MB): lower --chars "
            f"(now {spec.chars:,}) or explore a smaller model"
        )
    if isinstance(model, LatentAR):
        c = model.config
        values = 4 * spec.chars * c.num_layers * c.hidden_size * len(CELL_VALUES[c.cell])
        if values > VALUES_LIMIT_BYTES:
            raise SeqlabError(
                f"the page would keep {values / 2**20:.0f} MB of unit values in the browser (limit "
                f"{VALUES_LIMIT_BYTES // 2**20} MB): lower --chars (now {spec.chars:,})"
            )
    text, source = explored_text(model, spec)
    ids = model.encode(text, unknown="map", source=source)
    log_p = model.log_prob(ids).double().numpy()
    bits = -log_p / math.log(2)
    tables = StreamingSampler(model) if isinstance(model, LatentAR) else None
    top_ids, top_p = next_distributions(tables.step if tables else streaming_step(model), ids)
    data = {
        "title": f"seqlab explore: {model.describe()}",
        "model": model.describe(),
        "source": source,
        "chars": list(text),
        "vocabulary": [model.decode(torch.tensor([i])) for i in range(len(model.vocabulary))],
        "unknown_id": model.vocabulary.unknown_id,
        "bits": np.round(bits, 5).tolist(),
        "top_ids": top_ids.tolist(),
        "top_p": np.round(top_p, 5).tolist(),
        "views": ["surprise"],
    }
    result = ExploreResult(spec.out, 0, len(text), float(bits.mean()))
    if tables is not None:
        tables.reset_state()
        trace = unit_values(tables, ids.numpy())
        data["cell"] = {
            "kind": tables.cell,
            "reset": tables.reset,
            "layers": tables.L,
            "hidden": tables.H,
            "quantities": list(CELL_VALUES[tables.cell]),
            "gates": list(GATES.get(tables.cell, ())),
            "start": tables.start,
        }
        data["weights"] = step_weights(tables)
        data["units"] = unit_statistics(trace, text, tables.cell)
        data["views"] += ["units", "saturation", "sampler"] if tables.cell in GATES else ["units", "sampler"]
    else:
        data["note"] = (
            f"{type(model).__name__} has no latent state: the units, saturation and sampler views are for "
            "recurrent models (RNN, LSTM, GRU)"
        )
    if other is not None:
        other_bits = -other.log_prob(other.encode(text, unknown="map", source=source)).double().numpy() / math.log(2)
        data["against"] = {"model": other.describe(), "bits": np.round(other_bits, 5).tolist()}
        data["views"].append("against")
        result.against_bits_per_char = float(other_bits.mean())
    html = render_page(data)
    encoded = html.encode("utf-8")
    if len(encoded) > PAGE_LIMIT_BYTES:
        raise SeqlabError(
            f"the page would take {len(encoded) / 2**20:.1f} MB (limit {PAGE_LIMIT_BYTES // 2**20} MB): lower "
            f"--chars (now {spec.chars:,}) or explore a smaller model"
        )
    replace_into(Path(spec.out), lambda p: p.write_bytes(encoded))
    result.bytes, result.views = len(encoded), data["views"]
    return result
