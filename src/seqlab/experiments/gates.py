"""``seqlab experiment gates``: what the gates of a trained LSTM and GRU do on held-out text.

Gates are sigmoids in (0, 1): 0 passes nothing, 1 passes everything. Over the characters x_1..x_N of
the held-out play (first layer, teacher forced as in ``log_prob``):

    LSTM   i_t input, f_t forget (the share of C_{t-1} kept), o_t output        (seqlab.cells.LSTMCell)
    GRU    r_t reset, z_t update (torch's convention: the share of h_{t-1} kept)  (seqlab.cells.GRUCell)

Reported: each gate's mean and saturation (fraction of values < 0.1 and > 0.9), heatmaps (units x
characters), and the memory units: those whose "keep" gate (LSTM f_t, GRU z_t) stays above 0.9 across
line breaks inside a speech, ranked by the fraction of such breaks they hold across, then by their
longest run above 0.9 in characters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from seqlab import io
from seqlab.cells import gru_step, lstm_step
from seqlab.errors import SeqlabError
from seqlab.experiments.char_model import held_out_bits_per_char, shakespeare_split, train_char_model
from seqlab.experiments.common import ExperimentResult, Fitting, progress, torch_threads, unwatched
from seqlab.models.latent_ar import LatentAR

OPEN, CLOSED = 0.9, 0.1
KEEP_GATE = {"lstm": "forget", "gru": "update"}  # the gate that decides how much memory survives a step
HOLD_MARGIN = 10  # a line break is held across when the keep gate stays open this many characters each side


@dataclass
class GatesConfig:
    cells: tuple[str, ...] = field(default=("lstm", "gru"), metadata={"choices": ("lstm", "gru"), "what": "gated cell"})
    models: tuple[str, ...] = field(  # trained model directories; a cell without one is trained here
        default=(), metadata={"option": "model", "help": "trained LSTM or GRU model directories (repeatable)"}
    )
    hidden_size: int = field(default=128, metadata={"option": "hidden"})
    embedding_dim: int = field(default=32, metadata={"option": "embedding"})
    train_steps: int = 600
    chars: int = 3000  # held-out characters read
    heatmap_chars: int = 160
    heatmap_units: int = 32
    top_units: int = 5
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls) -> GatesConfig:
        return cls(hidden_size=32, embedding_dim=16, train_steps=40, chars=600, heatmap_chars=80, heatmap_units=16)


def lstm_gates(
    x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weights: tuple[torch.Tensor, ...]
) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The LSTM's gates at one step ({"input", "forget", "output"} each (B, H)) and the next state.

    The gates are read from the packed pre-activations (rows i, f, C~, o); the state comes from
    ``lstm_step`` itself, so the dynamics are the reference cell's."""
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    h_prev, _ = state
    pre = x_t @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh  # (B, 4H)
    i_pre, f_pre, _, o_pre = pre.chunk(4, dim=-1)
    gates = {"input": torch.sigmoid(i_pre), "forget": torch.sigmoid(f_pre), "output": torch.sigmoid(o_pre)}
    return gates, lstm_step(x_t, state, *weights)


def gru_gates(
    x_t: torch.Tensor, h_prev: torch.Tensor, weights: tuple[torch.Tensor, ...], reset: str
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The GRU's gates at one step ({"reset", "update"} each (B, H)) and the next state (``gru_step``)."""
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    pre = x_t @ weight_ih.T + bias_ih + h_prev @ weight_hh.T + bias_hh  # (B, 3H); r and z rows add both parts
    r_pre, z_pre, _ = pre.chunk(3, dim=-1)
    gates = {"reset": torch.sigmoid(r_pre), "update": torch.sigmoid(z_pre)}
    return gates, gru_step(x_t, h_prev, *weights, reset=reset)


@torch.no_grad()
def record_gates(model: LatentAR, text: str) -> dict[str, torch.Tensor]:
    """Gate name -> (N, H) activations of the first recurrent layer while reading ``text``."""
    ids = model.encode(text, unknown="map")
    x_prev = torch.cat([ids.new_full((1,), model.elements.start), ids[:-1]])
    e = model.elements(x_prev)[:, None]  # (N, 1, E): one sequence, stepped
    layer = model.rnn
    weights = layer.cells[0].weights()
    h = e.new_zeros(1, layer.hidden_size)
    state = (h, h) if layer.cell == "lstm" else h
    trace: dict[str, list[torch.Tensor]] = {}
    for t in range(len(ids)):
        if layer.cell == "lstm":
            gates, state = lstm_gates(e[t], state, weights)
        else:
            gates, state = gru_gates(e[t], state, weights, layer.reset)
        for name, g in gates.items():
            trace.setdefault(name, []).append(g[0])
    return {name: torch.stack(values) for name, values in trace.items()}  # (N, H)


def speech_line_breaks(text: str) -> list[int]:
    """Positions of the newlines inside a speech: the line before is not a speaker's name or a stage
    direction, and a line of the same speech follows (no blank line)."""
    breaks, start = [], 0
    for p, ch in enumerate(text):
        if ch != "\n":
            continue
        line = text[start:p].strip()
        start = p + 1
        following = text[p + 1 : text.find("\n", p + 1)] if "\n" in text[p + 1 :] else ""
        is_speaker = line.isupper() and line.endswith(".")
        if line and not is_speaker and not line.startswith("[") and following.strip():
            breaks.append(p)
    return breaks


def longest_runs(open_: torch.Tensor) -> torch.Tensor:
    """(N, H) booleans -> (H,) the longest run of consecutive True per unit."""
    run = torch.zeros(open_.shape[1], dtype=torch.long)
    best = run.clone()
    for row in open_:
        run = (run + 1) * row
        best = torch.maximum(best, run)
    return best


def memory_units(keep: torch.Tensor, breaks: list[int], top: int) -> list[dict]:
    """The units whose keep gate (N, H) stays > OPEN across the most speech line breaks."""
    open_ = keep > OPEN
    N = keep.shape[0]
    spans = [(p - HOLD_MARGIN, p + HOLD_MARGIN + 1) for p in breaks if p >= HOLD_MARGIN and p + HOLD_MARGIN < N]
    held = torch.stack([open_[a:b].all(0) for a, b in spans]).float().mean(0) if spans else torch.zeros(keep.shape[1])
    runs = longest_runs(open_)
    order = sorted(range(keep.shape[1]), key=lambda u: (-float(held[u]), -int(runs[u]), u))[:top]
    return [
        {
            "unit": u,
            "breaks_held": float(held[u]),
            "longest_open_run": int(runs[u]),
            "mean": float(keep[:, u].mean()),
        }
        for u in order
    ]


def load_gated_model(directory: str) -> LatentAR:
    model = io.load(directory)
    if not isinstance(model, LatentAR) or model.config.cell not in KEEP_GATE:
        raise SeqlabError(
            f"{directory}: the gates experiment reads an LSTM or GRU LatentAR model, got {model.describe()}"
        )
    return model


def run(config: GatesConfig, show_progress: bool = True, fitting: Fitting = unwatched) -> ExperimentResult:
    _, valid = shakespeare_split()
    start = max(0, valid.find("[Enter"))  # skip the title page: read speeches
    text = valid[start : start + config.chars]
    breaks = speech_line_breaks(text)
    loaded = {m.config.cell: m for m in map(load_gated_model, config.models)}
    rows, summary, curves = [], {}, {"text": text}
    cells = list(dict.fromkeys([*config.cells, *loaded]))
    with torch_threads(config.threads), progress(len(cells), "gates", show_progress) as bar:
        for cell in cells:
            if cell not in KEEP_GATE:
                raise SeqlabError(f"the gates experiment reads lstm and gru cells, got {cell!r}")
            model = loaded.get(cell)
            if model is None:
                with fitting() as callbacks:
                    model = train_char_model(
                        cell, config.hidden_size, config.embedding_dim, config.train_steps, config.seed, callbacks
                    )
            trace = record_gates(model, text)
            for name, g in trace.items():
                rows.append(
                    {
                        "cell": cell,
                        "gate": name,
                        "mean": float(g.mean()),
                        "fraction_below_0.1": float((g < CLOSED).float().mean()),
                        "fraction_above_0.9": float((g > OPEN).float().mean()),
                    }
                )
            memory = memory_units(trace[KEEP_GATE[cell]], breaks, config.top_units)
            # the heatmaps show the memory units first, then the lowest-numbered others
            shown = [u["unit"] for u in memory]
            shown += [u for u in range(model.rnn.hidden_size) if u not in shown][
                : max(0, config.heatmap_units - len(shown))
            ]
            curves[cell] = {"units": shown, **{n: g[: config.heatmap_chars, shown].T for n, g in trace.items()}}
            summary[cell] = {
                "model": model.describe(),
                "source": "loaded" if cell in loaded else f"trained here for {config.train_steps} steps",
                "held_out_bits_per_char": held_out_bits_per_char(model),
                "speech_line_breaks": len(breaks),
                "keep_gate": KEEP_GATE[cell],
                "memory_units": memory,
            }
            bar.update(1)
    return ExperimentResult("gates", asdict(config), rows, summary, curves)
