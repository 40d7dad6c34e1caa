"""The figures of ``seqlab experiment``: one function per experiment, drawn from its ``ExperimentResult``."""

from __future__ import annotations

from pathlib import Path

from seqlab.experiments.common import ExperimentResult
from seqlab.experiments.long_range import SOLVED_FRACTION, TASKS
from seqlab.experiments.order import SHUFFLES
from seqlab.plots import CELL_COLOURS, pyplot, save

# the LSTM's forget-gate variants ("lstm:zero", "lstm:1", "lstm:chrono") in shades of its blue, the GRU's
# update-gate variants in shades of its green
VARIANT_COLOURS = {
    "lstm:zero": "#9ab3d9",
    "lstm:1": "#4c72b0",
    "lstm:chrono": "#1f3d73",
    "gru:1": "#3b7a4b",
    "gru:chrono": "#1e4d2b",
}


def variant_colour(name: str) -> str | None:
    return VARIANT_COLOURS.get(name) or CELL_COLOURS.get(name.split(":")[0])


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    save(fig, path, dpi=110)  # atomic: an interrupted run never leaves half a PNG
    return path


def long_range_figure(result: ExperimentResult, out: Path) -> list[Path]:
    plt = pyplot()

    tasks = list(dict.fromkeys(r["task"] for r in result.rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for cell in dict.fromkeys(r["cell"] for r in result.rows):
            rows = [r for r in result.rows if r["task"] == task and r["cell"] == cell]
            T = [r["T"] for r in rows]
            mean = [r["loss_over_baseline"] for r in rows]
            low = [r["test_loss_min"] / r["baseline"] for r in rows]
            high = [r["test_loss_max"] / r["baseline"] for r in rows]
            colour = variant_colour(cell)
            ax.plot(T, mean, "o-", color=colour, label=f"{cell} (H={rows[0]['hidden']}, {rows[0]['params']:,} params)")
            ax.fill_between(T, low, high, color=colour, alpha=0.15)
        ax.axhline(1.0, color="grey", ls="--", lw=1, label="memoryless baseline")
        ax.axhline(SOLVED_FRACTION, color="grey", ls=":", lw=1, label=f"solved ({SOLVED_FRACTION:g} x baseline)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("test loss / baseline (lower is better)")
        ax.set_title(TASKS[task].title)
        ax.legend(fontsize=7)
    return [_save(fig, out / "long_range.png")]


def gradients_figure(result: ExperimentResult, out: Path) -> list[Path]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = [("jacobian_rms", "||d h_T / d h_t||_F / sqrt(H)"), ("input_gradient", "||d loss / d e_t||")]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for name, curves in result.curves.items():
            cell, stage = name.split()
            ax.plot(curves[key], color=variant_colour(cell), ls="-" if stage == "trained" else "--", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("distance T - t (characters)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    steps = result.config["train_steps"]
    fig.suptitle(f"gradient through time: dashed at initialisation, solid after {steps} training steps", fontsize=9)
    return [_save(fig, out / "gradients.png")]


def cost_figure(result: ExperimentResult, out: Path) -> list[Path]:
    plt = pyplot()
    panels = [
        ("params", "parameters"),
        ("macs_per_step_counted", "multiply-adds per step"),
        ("forward_backward_us_per_step_torch", "fwd+bwd us/step (torch)"),
        ("forward_backward_us_per_step_reference", "fwd+bwd us/step (reference)"),
        ("saved_bytes_per_step_reference", "saved bytes/step (reference)"),
    ]
    settings = list(dict.fromkeys(r["setting"] for r in result.rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (key, label) in zip(axes, panels, strict=True):
        for s, setting in enumerate(settings):
            rows = [r for r in result.rows if r["setting"] == setting]
            for c, r in enumerate(rows):
                ax.bar(
                    s * (len(rows) + 1) + c,
                    r[key],
                    color=CELL_COLOURS.get(r["cell"]),
                    label=r["cell"] if s == 0 else None,
                )
        width = len(result.rows) // len(settings) + 1  # bars per setting and a gap
        ax.set_xticks([s * width + (width - 2) / 2 for s in range(len(settings))], settings, fontsize=8)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    return [_save(fig, out / "cost.png")]


def gates_figures(result: ExperimentResult, out: Path) -> list[Path]:
    plt = pyplot()
    text = result.curves["text"]
    paths = []
    for cell, gates in result.curves.items():
        if cell == "text":
            continue
        units, gates = gates["units"], {name: g for name, g in gates.items() if name != "units"}
        fig, axes = plt.subplots(len(gates), 1, figsize=(14, 2.6 * len(gates) + 0.6), squeeze=False)
        for ax, (name, g) in zip(axes[:, 0], gates.items(), strict=True):
            image = ax.imshow(g.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_ylabel(f"{name} gate: unit", fontsize=8)
            ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=5)
            chars = text[: g.shape[1]]
            ax.set_xticks(range(len(chars)), [c if c != "\n" else "⏎" for c in chars], fontsize=6, family="monospace")
            fig.colorbar(image, ax=ax, pad=0.01)
        axes[0, 0].set_title(
            f"{cell} gate activations over held-out characters: the top {result.config['top_units']} memory units "
            f"(keep gate open across speech line breaks), then units 0, 1, ...",
            fontsize=9,
        )
        paths.append(_save(fig, out / f"gates_{cell}.png"))
    return paths


def order_figure(result: ExperimentResult, out: Path) -> list[Path]:
    plt = pyplot()

    rows = result.rows[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    height = 0.8 / len(SHUFFLES)
    for k, name in enumerate(SHUFFLES):
        values = [r[f"increase_{name}"] for r in rows]
        ax.barh([y + k * height for y in range(len(rows))], values, height, label=f"{name} shuffled")
    ax.set_yticks([y + height for y in range(len(rows))], [r["model"] for r in rows], fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("NLL of shuffled minus original held-out text (nats/char)")
    ax.legend(fontsize=8)
    return [_save(fig, out / "order.png")]


FIGURES = {
    "long-range": long_range_figure,
    "gradients": gradients_figure,
    "cost": cost_figure,
    "gates": gates_figures,
    "order": order_figure,
}


def save_figures(result: ExperimentResult, out: Path) -> list[Path]:
    """Write the figures of ``result`` into ``out``; returns their paths."""
    return FIGURES[result.name](result, out)
