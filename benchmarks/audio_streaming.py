"""Streaming audio generation speed: batch 1, one sample at a time, as ``seqlab sample --seconds`` runs it.

Side by side in one run, for a mu-law (256 levels) latent model at 16 kHz:

- ``numpy``: ``seqlab.streaming.StreamingSampler``, the fast path ``seqlab sample`` uses;
- ``torch-step``: the generic ``SequenceModel.sample_elements``, one ``model.step`` (a torch forward of T = 1)
  per sample: the reference the fast path is tested against.

The weights are random (speed does not depend on them). Target: >= 20,000 samples/s for the GRU 1 x 256.

    python benchmarks/audio_streaming.py              # about 30 s
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from seqlab.data.audio import MuLaw
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
    print("\n| model (batch 1, mu-law 256) | numpy samples/s | torch-step samples/s | speed-up | real time at 16 kHz |")
    print("|---|---|---|---|---|")
    for name, fast, slow in rows:
        print(f"| {name} | {fast:,.0f} | {slow:,.0f} | {fast / slow:.1f}x | {fast / 16_000:.2f}x |")


if __name__ == "__main__":
    main()
