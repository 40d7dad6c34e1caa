"""Training throughput (characters per second) of seqlab's LSTM language model, side by side in one run:

- ``seqlab``: ``LatentAR(lstm)`` trained by ``seqlab.training.Trainer`` (backend "torch");
- ``bare``: the same shapes in a plain ``nn.LSTM`` loop written out below (embedding, LSTM, a linear head
  on ``[h_t, e(x_{t-1})]``, AdamW, clipping, truncated BPTT over the same windows);
- ``seqlab-reference``: the Trainer with ``backend="reference"`` (the Python loop over seqlab's cells).

Cases alternate (bare, seqlab, bare, seqlab, ...) so that machine noise hits both; the table reports the
median of the repeats and the ratio to ``bare``.

    python benchmarks/train_throughput.py            # about 2 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from seqlab.data import BUNDLED, Vocabulary, load_text, split_text
from seqlab.models import LatentAR, LatentARConfig
from seqlab.training import Trainer, TrainerConfig, WindowStream


def seqlab_case(train_ids, vocab, args, backend: str, steps: int) -> float:
    torch.manual_seed(0)
    config = LatentARConfig("lstm", args.hidden, args.layers, args.embedding, backend=backend)
    model = LatentAR(vocab, config)
    marks = {}

    def on_step(trainer, progress):
        if progress.step in (args.warmup, args.warmup + steps):
            marks[progress.step] = time.perf_counter()

    config = TrainerConfig(
        steps=args.warmup + steps, batch_size=args.batch, window=args.window, eval_every=10**9
    )
    Trainer(model, config, callbacks=[on_step]).fit(train_ids, None)  # no validation, no checkpoints: the loop
    return steps * args.batch * args.window / (marks[args.warmup + steps] - marks[args.warmup])


def bare_case(train_ids, vocab, args, steps: int) -> float:
    """A plain nn.LSTM training loop of the same shapes."""
    torch.manual_seed(0)
    V, E, H = len(vocab), args.embedding, args.hidden
    embed, lstm, head = nn.Embedding(V + 1, E), nn.LSTM(E, H, args.layers, batch_first=True), nn.Linear(H + E, V)
    params = [*embed.parameters(), *lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=4e-3)
    stream = WindowStream(train_ids, args.batch, args.window, seed=0)
    state = None
    for step in range(args.warmup + steps):
        if step == args.warmup:
            start = time.perf_counter()
        batch, epoch_start = stream.window(step)
        if epoch_start:
            state = None
        e = embed(batch[:, :-1])
        h, state = lstm(e, state)
        logits = head(torch.cat([h, e], dim=-1))
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        state = tuple(s.detach() for s in state)
    return steps * args.batch * args.window / (time.perf_counter() - start)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-steps", type=int, default=5, help="timed steps of the reference backend")
    args = parser.parse_args()

    text = load_text("shakespeare")
    train, _ = split_text(text, valid_from=BUNDLED["shakespeare"].valid_from)
    vocab = Vocabulary.from_text(train)
    train_ids = vocab.encode(train)

    results: dict[str, list[float]] = {"bare": [], "seqlab": []}
    for r in range(args.repeats):
        results["bare"].append(bare_case(train_ids, vocab, args, args.steps))
        results["seqlab"].append(seqlab_case(train_ids, vocab, args, "torch", args.steps))
        print(
            f"repeat {r + 1}: bare {results['bare'][-1]:,.0f}, seqlab {results['seqlab'][-1]:,.0f} chars/s", flush=True
        )
    results["seqlab-reference"] = [seqlab_case(train_ids, vocab, args, "reference", args.reference_steps)]

    bare = statistics.median(results["bare"])
    print(f"\nmachine: {machine()}")
    print(
        f"LSTM {args.layers} x {args.hidden}, embedding {args.embedding}, batch {args.batch} x window {args.window}, "
        f"median of {args.repeats} repeats of {args.steps} steps (reference: {args.reference_steps} steps)\n"
    )
    print("| case | characters/s | ratio to bare nn.LSTM loop |")
    print("|---|---:|---:|")
    for name, values in results.items():
        value = statistics.median(values)
        print(f"| {name} | {value:,.0f} | {value / bare:.3f} |")


if __name__ == "__main__":
    main()
