"""Streaming audio generation speed: batch 1, one sample at a time, as ``seqlab sample --seconds`` runs it.

Side by side in one run, for a mu-law (256 levels) latent model at 16 kHz:

- ``numpy``: ``seqlab.streaming.StreamingSampler``, the fast path ``seqlab sample`` uses;
- ``torch-step``: the generic ``SequenceModel.sample_elements``, one ``model.step`` (a torch forward of T = 1)
  per sample: the reference the fast path is tested against.

The weights are random (speed does not depend on them). Target: >= 20,000 samples/s for the GRU 1 x 256.

And for the vocoder-frame model ``seqlab sample`` runs by default (``vocoder`` rows): 10 s of 5 ms frames drawn
one at a time through the streaming frame sampler of ``LatentAR(lstm 1 x 128)`` (trained as
``seqlab train --data speech`` builds it, random weights), then WORLD synthesis at 16 kHz. Target: at least
20x real time, frames and synthesis together.

    python benchmarks/audio_streaming.py              # about 40 s
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from seqlab.data.audio import MuLaw, load_audio
from seqlab.data.vocoder import VocoderLayout, analyse, synthesise
from seqlab.experiments.cost import median_seconds
from seqlab.models import LatentAR, LatentARConfig
from seqlab.streaming import StreamingSampler

CASES = [("gru", "after", 256), ("gru", "before", 256), ("lstm", "after", 256), ("rnn", "after", 256)]


def rate(run, n: int, repeats: int) -> float:
    """Median samples per second over ``repeats`` runs of ``run(n)``, after one warm-up run."""
    return n / median_seconds(lambda: run(n), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32_000, help="samples per fast-path run (2 s of audio)")
    parser.add_argument("--reference-samples", type=int, default=2_000, help="samples per torch-step run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocoder-seconds", type=float, default=10.0, help="audio seconds per vocoder run")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, numpy {np.__version__}"
    )
    rows = []
    for cell, reset, hidden in CASES:
        model = LatentAR(MuLaw(16_000), LatentARConfig(cell=cell, reset=reset, hidden_size=hidden)).eval()
        sampler = StreamingSampler(model)
        fast = rate(lambda n, s=sampler: s.generate([], n, seed=0), args.samples, args.repeats)
        empty = torch.zeros(0, dtype=torch.long)
        slow = rate(lambda n, m=model, e=empty: m.sample_elements(e, n, seed=0), args.reference_samples, args.repeats)
        name = f"{cell}" + (f" reset={reset}" if cell == "gru" else "") + f" 1x{hidden}"
        rows.append((name, fast, slow))
    vocoder_rows = vocoder_speed(args.vocoder_seconds, args.repeats)
    print("\n| model (batch 1, mu-law 256) | numpy samples/s | torch-step samples/s | speed-up | real time at 16 kHz |")
    print("|---|---|---|---|---|")
    for name, fast, slow in rows:
        print(f"| {name} | {fast:,.0f} | {slow:,.0f} | {fast / slow:.1f}x | {fast / 16_000:.2f}x |")
    print("\n| vocoder model (batch 1) | frames s | WORLD synthesis s | samples/s | real time |")
    print("|---|---|---|---|---|")
    for name, frames_s, synth_s, seconds, hz in vocoder_rows:
        total = frames_s + synth_s
        print(f"| {name} | {frames_s:.3f} | {synth_s:.3f} | {seconds * hz / total:,.0f} | {seconds / total:.1f}x |")


def vocoder_speed(seconds: float, repeats: int) -> list[tuple]:
    """(name, seconds drawing frames, seconds synthesising, audio seconds, rate): medians of ``repeats`` runs."""
    samples, rate = load_audio("speech")
    layout = VocoderLayout(rate)
    frames = analyse(samples[: rate * 4], rate, layout=layout)  # for the model's standardisation and clamp range
    rows = []
    for cell, hidden in (("lstm", 128), ("lstm", 256), ("gru", 256)):
        groups = layout.groups
        config = LatentARConfig(cell=cell, hidden_size=hidden)
        model = LatentAR.for_frames(frames, config, binary=groups["voicing"], groups=groups).eval()
        n = int(seconds * layout.frames_per_second)
        empty = torch.zeros(0, layout.dim)
        draw = median_seconds(lambda m=model, n=n, e=empty: m.sample_elements(e, n, 1.0, None, 0), repeats)
        drawn = model.sample_elements(torch.zeros(0, layout.dim), n, 1.0, None, 0).double().numpy()
        synth = median_seconds(lambda d=drawn: synthesise(d, layout), repeats)
        rows.append((f"{cell} 1x{hidden}, {layout.dim} features at {rate} Hz", draw, synth, seconds, rate))
    return rows


if __name__ == "__main__":
    main()
