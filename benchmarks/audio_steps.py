"""How many training steps does the default speech model need before every seed speaks? (issue 37)

Trains the default vocoder model of ``seqlab train --data speech`` for a fixed number of steps (each run its
own cosine schedule to its own end, as a default of N steps would train it) and with several trainer seeds,
then samples 10 s per sampling seed from each and scores the eight targets of docs/audio.md with
``seqlab.voice`` (``voice_targets``). Three phases, each resumable (a finished run or a scored sample is kept):

    OMP_NUM_THREADS=1 python benchmarks/audio_steps.py train --steps 2000 5000 10000 20000 --train-seeds 0
    OMP_NUM_THREADS=1 python benchmarks/audio_steps.py train --steps 10000 20000 --train-seeds 1 2 3 4
    OMP_NUM_THREADS=1 python benchmarks/audio_steps.py evaluate --seeds 0-19
    python benchmarks/audio_steps.py report            # the markdown table and docs/audio/steps.png

Runs go to ``benchmarks/out/audio_steps/runs/steps{N}-train{S}`` (logs beside them), scores to
``benchmarks/out/audio_steps/scores.jsonl`` (one line per run, sampling seed and sampler). A benchmark, not a
test: a full study is hours of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "audio_steps"
RUNS = OUT / "runs"
SCORES = OUT / "scores.jsonl"
SECONDS = 10.0


def run_dir(steps: int, train_seed: int) -> Path:
    return RUNS / f"steps{steps}-train{train_seed}"


def finished(path: Path) -> bool:
    """A run whose training ended and was scored (``final`` in its training.json)."""
    try:
        return "final" in json.loads((path / "training.json").read_text())
    except (OSError, ValueError):
        return False


def train_one(steps: int, train_seed: int) -> str:
    out = run_dir(steps, train_seed)
    if finished(out):
        return f"{out.name}: kept"
    out.parent.mkdir(parents=True, exist_ok=True)
    log = OUT / "logs" / f"{out.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    seqlab = Path(sys.executable).parent / "seqlab"
    command = [str(seqlab), "train", "--data", "speech", "--steps", str(steps), "--seed", str(train_seed)]
    command += ["--out", str(out), "--overwrite", "--no-progress"]
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    load = os.getloadavg()[0]
    with open(log, "a") as f:
        f.write(f"benchmark: rc {rc}, wall {time.time() - t0:.0f} s, load average at the end {load:.1f}\n")
    return f"{out.name}: rc {rc} in {time.time() - t0:.0f} s (load {load:.1f})"


def cmd_train(args) -> None:
    jobs = [(n, s) for s in args.train_seeds for n in args.steps]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda job: train_one(*job), jobs):
            print(line, flush=True)


def seed_list(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def known_scores() -> dict[tuple, dict]:
    if not SCORES.exists():
        return {}
    rows = [json.loads(line) for line in SCORES.read_text().splitlines() if line.strip()]
    return {(r["run"], r["seed"], r["sampler"]): r for r in rows}


def cmd_evaluate(args) -> None:
    from seqlab import io
    from seqlab.runs import checkpoints, sample
    from seqlab.runs.sample import SampleSpec, generate_audio, real_audio
    from seqlab.voice import mean_mel_cepstrum, voice_metrics, voice_targets

    made = []  # the watchdog of each sample, to count its restarts

    class Counted(sample.Watchdog):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(self)

    # plain: the sampler before issue 37, no watchdog restarts a drone or noise
    sample.Watchdog = (lambda layout, scale: None) if args.sampler == "plain" else Counted
    done = known_scores()
    references: dict[str, tuple] = {}
    runs = sorted(p for p in RUNS.glob("steps*-train*") if finished(p))
    if args.runs:
        runs = [p for p in runs if p.name in args.runs]
    for path in runs:
        model = io.load(path)
        data_spec = checkpoints.data_spec(path, model)
        for seed in seed_list(args.seeds):
            if (path.name, seed, args.sampler) in done:
                continue
            spec = SampleSpec(path, seconds=SECONDS, seed=seed)
            made.clear()
            t0 = time.perf_counter()
            audio, rate, _ = generate_audio(model, data_spec, spec)
            if data_spec.source not in references:
                real = real_audio(data_spec, spec, rate, "training")
                reference = mean_mel_cepstrum(real, rate)
                references[data_spec.source] = (reference, voice_metrics(real, rate, reference))
            reference, data = references[data_spec.source]
            generated = voice_metrics(audio, rate, reference)
            met = voice_targets(data, generated)
            row = {
                "run": path.name,
                "steps": int(path.name.split("-")[0][5:]),
                "train_seed": int(path.name.split("train")[1]),
                "seed": seed,
                "sampler": args.sampler,
                "generated": {k: (None if v != v else v) for k, v in generated.items()},
                "data": data,
                "missed": sorted(k for k, ok in met.items() if not ok),
                "restarts": made[-1].restarts if made else 0,
                "seconds": round(time.perf_counter() - t0, 2),
            }
            with open(SCORES, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{path.name} seed {seed}: missed {row['missed'] or 'none'}", flush=True)


def cmd_report(args) -> None:
    from seqlab.voice import METRICS

    rows = [r for r in known_scores().values() if r["sampler"] == args.sampler]
    rows.sort(key=lambda r: (r["steps"], r["train_seed"], r["seed"]))
    short = {
        "voiced_fraction": "voiced",
        "median_f0_hz": "f0 Hz",
        "f0_range_semitones": "range st",
        "f0_jump_share": "jumps",
        "mean_voiced_run_ms": "run ms",
        "hnr_db": "HNR",
        "loudest_over_median_db": "loudest",
        "mel_cepstrum_distance_db": "MCD",
    }
    print("| steps | training | seeds | all 8 met | " + " | ".join(short[k] for k, _, _ in METRICS) + " | missed |")
    print("|---:|---:|---|---:|" + "---:|" * len(METRICS) + "---|")
    groups: dict[tuple, list] = {}
    for r in rows:
        if seed_list(args.seeds).count(r["seed"]):
            groups.setdefault((r["steps"], r["train_seed"]), []).append(r)
    for (steps, train_seed), group in sorted(groups.items()):
        cells = []
        for key, _, _ in METRICS:
            values = [r["generated"][key] for r in group if r["generated"][key] is not None]
            cells.append(f"{min(values):.3g}-{max(values):.3g}" if values else "-")
        missed = [f"s{r['seed']}: {', '.join(short[m] for m in r['missed'])}" for r in group if r["missed"]]
        ok = sum(not r["missed"] for r in group)
        seeds = f"{group[0]['seed']}-{group[-1]['seed']}"
        print(
            f"| {steps:,} | {train_seed} | {seeds} | {ok}/{len(group)} | "
            + " | ".join(cells)
            + " | "
            + ("; ".join(missed) or "")
            + " |"
        )
    if args.plot:
        plain = [r for r in known_scores().values() if r["sampler"] == "plain" and r["missed"]]
        plot(groups, [r for r in plain if r["seed"] in seed_list(args.seeds)], Path(args.plot))


def plot(groups: dict, plain_missed: list, path: Path) -> None:
    """One panel per metric: a dot per sample of ``groups`` ((steps, training) -> rows), and a red cross for each
    sample of the plain sampler (no watchdog) that missed a target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("voiced_fraction", "voiced fraction / data's", (0.4, 1.4), True),
        ("mean_voiced_run_ms", "mean voiced run (ms)", (60, None), False),
        ("mel_cepstrum_distance_db", "mel-cepstrum distance (dB)", (None, 2.5), False),
        ("f0_range_semitones", "f0 range / data's", (0.4, 2.5), True),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 3.8))
    rng = np.random.default_rng(0)
    for ax, (key, label, (lo, hi), relative) in zip(axes, panels, strict=True):
        for (steps, train_seed), group in groups.items():
            values = []
            for r in group:
                v = r["generated"][key]
                v = np.nan if v is None else v
                values.append(v / r["data"][key] if relative else v)
            x = steps * np.exp(rng.uniform(-0.08, 0.08, len(values)))
            colour = ("C0", "C1", "C2", "C4", "C6", "C7", "C8", "C9")[train_seed % 8]  # no red: red marks a miss
            colours = ["tab:red" if r["missed"] else colour for r in group]
            ax.scatter(x, values, s=10, c=colours, alpha=0.7)
        for r in plain_missed:
            v = r["generated"][key]
            v = np.nan if v is None else (v / r["data"][key] if relative else v)
            ax.scatter([r["steps"]], [v], marker="x", s=40, c="tab:red")
        for bound in (lo, hi):
            if bound is not None:
                ax.axhline(bound, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xticks([2000, 5000, 10000, 20000], ["2k", "5k", "10k", "20k"])
        ax.minorticks_off()
        ax.set_xlabel("training steps")
        ax.set_title(label, fontsize=10)
    fig.suptitle(
        "default speech model: each dot a 10 s sample with the watchdog (colour: training seed); "
        "red x: a sample without it that missed a target"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, nargs="+", default=[2000, 5000, 10000, 20000])
    t.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    t.add_argument("--jobs", type=int, default=1)
    e = sub.add_parser("evaluate")
    e.add_argument("--seeds", default="0-7")
    e.add_argument("--runs", nargs="*")
    e.add_argument("--sampler", default="watchdog", choices=("watchdog", "plain"), help="plain: without the watchdog")
    r = sub.add_parser("report")
    r.add_argument("--seeds", default="0-7")
    r.add_argument("--sampler", default="watchdog", choices=("watchdog", "plain"))
    r.add_argument("--plot")
    args = parser.parse_args()
    {"train": cmd_train, "evaluate": cmd_evaluate, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
