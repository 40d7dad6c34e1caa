"""Time and peak memory of seqlab's text pipeline against corpus size (issue 31): docs/scale.md's table.

The corpus (``--corpus``): copies of the bundled plays' eight training plays (945,940 characters of Project
Gutenberg Shakespeare, public domain) concatenated up to each size, or their words drawn at random (``words``,
for a realistic number of distinct n-grams). Held-out text repeats the training text: the times and memory are
what this measures, not what more data buys (bits per character are printed only as a check; what data buys is
``benchmarks/bits_vs_size.py``, on the King James Bible). Query histories come from the ninth play, Much Ado
About Nothing, which is not in the corpus.

Each measurement runs in a fresh process (its peak RSS is its own ``ru_maxrss``), with OMP_NUM_THREADS=1 and a
fresh cache folder under ``--out``:

- encode: ``open_store`` with no cache (two streaming passes), then again with the cache (the hash only);
- train: ``LatentAR`` (the default configuration) through the Trainer for ``--steps`` steps on the memory-mapped
  corpus, the time to the first step from the process start, and the held-out score (sampled above 1M);
- ngram: ``NGram(order=5, kneser_ney)`` fitted on the training part (``count_grams``);
- infinigram: the index built (libdivsufsort), its size on disk, the median time of 1,000 ``count`` queries
  (10 characters) and of 1,000 ``next_counts`` and ``distribution`` queries after 1,000 characters of history;
- command: ``seqlab train --data CORPUS --steps STEPS`` itself, twice, the first time with an empty cache and
  the second with the token store cached: its wall time, peak RSS (``wait4``), the time from the start to the
  first step (the progress bar is drawn by the first step's callback) and the held-out score it prints.

    OMP_NUM_THREADS=1 python benchmarks/corpus_scale.py --sizes 1 10 100 --out /tmp/scale
    python benchmarks/corpus_scale.py --only infinigram --sizes 10       # one part
    OMP_NUM_THREADS=1 python benchmarks/corpus_scale.py --only command --sizes 1000 --steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

STARTED = time.perf_counter()
PARTS = ("encode", "train", "ngram", "infinigram", "command")


def make_corpus(path: Path, megabytes: float, kind: str = "copies") -> None:
    """``copies``: the training plays again and again. ``words``: the plays' words (spaces and line breaks
    kept with them) drawn at random with their frequencies, 64 KB at a time from a seeded generator: text whose
    long n-grams are almost all new, as a large real text's are (copies have none: the distinct n-grams of a
    100 MB text of copies are those of 1 MB), so counting memory is measured against a realistic number of them."""
    from seqlab.data import BUNDLED, load_text, split_text

    if path.exists() and path.stat().st_size == int(megabytes * 1e6):
        return
    train, _ = split_text(load_text("shakespeare"), valid_from=BUNDLED["shakespeare"].valid_from)
    size = int(megabytes * 1e6)
    if kind == "words":
        import re

        words = re.findall(r"\S+\s+", train)
        rng = np.random.default_rng(0)
        with open(path, "wb") as f:
            while size > 0:
                block = "".join(rng.choice(words, size=12_000)).encode("ascii")[:size]
                f.write(block)
                size -= len(block)
        return
    block = train.encode("ascii")
    with open(path, "wb") as f:
        while size > 0:
            f.write(block[:size])
            size -= len(block)


def queries() -> str:
    from seqlab.data import BUNDLED, load_text, split_text

    return split_text(load_text("shakespeare"), valid_from=BUNDLED["shakespeare"].valid_from)[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_encode(corpus: Path) -> dict:
    from seqlab.data.token_store import open_store

    t = time.perf_counter()
    store = open_store(corpus)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    open_store(corpus)
    warm = time.perf_counter() - t
    mb = corpus.stat().st_size / 1e6
    return {"encode_s": cold, "encode_mb_s": mb / cold, "cached_open_s": warm, "symbols": len(store.vocabulary)}


def part_train(corpus: Path, steps: int) -> dict:
    import torch

    from seqlab.data.spec import DataSpec, load_dataset
    from seqlab.models.latent_ar import LatentAR, LatentARConfig
    from seqlab.training import Trainer, TrainerConfig, score_held_out

    torch.manual_seed(0)
    dataset = load_dataset(DataSpec(str(corpus)))
    model = LatentAR.for_dataset(dataset, LatentARConfig())
    train = model.encode(dataset.train)
    valid = model.encode(dataset.valid, unknown="map")
    first = []
    trainer = Trainer(
        model,
        TrainerConfig(steps=steps, eval_every=steps),
        callbacks=[lambda tr, p: first.append(time.perf_counter() - STARTED) if not first else None],
    )
    t = time.perf_counter()
    result = trainer.fit(train, valid)
    fit = time.perf_counter() - t
    t = time.perf_counter()
    scores = score_held_out(model, valid)
    return {
        "first_step_after_start_s": first[0],
        "steps": result.steps,
        "train_s": fit,
        "score_s": time.perf_counter() - t,
        "valid_bits": scores["bits_per_char"],
        "valid_se_bits": scores.get("nll_standard_error", 0.0) / np.log(2),
        "scored": scores["tokens"],
        "valid_chars": len(valid),
    }


def part_ngram(corpus: Path) -> dict:
    from seqlab.data.spec import DataSpec, load_dataset
    from seqlab.models import NGram

    dataset = load_dataset(DataSpec(str(corpus)))
    t = time.perf_counter()
    model = NGram(order=5, smoothing="kneser_ney").fit(dataset.train)
    fit = time.perf_counter() - t
    probe = queries()[:20_000]
    bits = float(-model.log_prob(model.encode(probe, unknown="map")).mean()) / np.log(2)
    grams = sum(len(level.grams) for level in model.levels)
    return {"fit_s": fit, "distinct_grams": grams, "much_ado_bits": bits}


def part_infinigram(corpus: Path) -> dict:
    from seqlab.data.spec import DataSpec, load_dataset
    from seqlab.models import InfiniGram

    dataset = load_dataset(DataSpec(str(corpus)))
    t = time.perf_counter()
    model = InfiniGram().fit(dataset.train)
    build = time.perf_counter() - t
    disk = sum(f.stat().st_size for f in model.index.directory.iterdir())
    text = queries()
    x = model.encode(text, unknown="map").numpy()
    rng = np.random.default_rng(0)
    positions = rng.integers(1000, len(x) - 10, size=1000)

    def median_ms(call) -> float:
        times = []
        for p in positions:
            t = time.perf_counter()
            call(int(p))
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    count_ms = median_ms(lambda p: model.count(x[p : p + 10]))
    next_ms = median_ms(lambda p: model.next_counts(x[p - 1000 : p]))
    distribution_ms = median_ms(lambda p: model.distribution(x[p - 1000 : p]))
    t = time.perf_counter()
    bits = float(-model.log_prob(x[:2000]).mean()) / np.log(2)
    return {
        "build_s": build,
        "disk_bytes_per_char": disk / model.index.n,
        "count_median_ms": count_ms,
        "next_counts_median_ms": next_ms,
        "distribution_median_ms": distribution_ms,
        "log_prob_chars_s": 2000 / (time.perf_counter() - t),
        "much_ado_bits": bits,
    }


def part_command(corpus: Path, steps: int, env: dict, work: Path) -> dict:
    """``seqlab train`` on the corpus, cold and then with the cache: see the module's docstring."""
    result: dict = {"steps": steps}
    env = {**env, "SEQLAB_CACHE_DIR": str(work / "cache-command")}
    shutil.rmtree(work / "cache-command", ignore_errors=True)
    for run in ("cold", "cached"):
        command = [sys.executable, "-m", "seqlab", "train", "--data", str(corpus), "--steps", str(steps)]
        command += ["--out", str(work / "command-run"), "--overwrite"]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first, stderr = None, b""
        while chunk := os.read(process.stderr.fileno(), 1 << 16):
            if first is None and f"/{steps} [".encode() in chunk:  # the bar, drawn after the first step
                first = time.perf_counter() - started
            stderr += chunk
        stdout = process.stdout.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise RuntimeError(f"seqlab train failed ({process.returncode}):\n{stderr.decode()[-2000:]}")
        held = [line for line in stdout.splitlines() if "held-out" in line]
        result[run] = {
            "wall_s": time.perf_counter() - started,
            "first_step_after_start_s": first,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "held_out": held[0] if held else "",
        }
    shutil.rmtree(work / "cache-command", ignore_errors=True)
    shutil.rmtree(work / "command-run", ignore_errors=True)
    result["peak_rss_mb"] = max(result[run]["peak_rss_mb"] for run in ("cold", "cached"))
    return result


def child(part: str, corpus: Path, steps: int) -> None:
    run = {"encode": part_encode, "ngram": part_ngram, "infinigram": part_infinigram}
    result = part_train(corpus, steps) if part == "train" else run[part](corpus)
    result["peak_rss_mb"] = peak_mb()
    print("RESULT " + json.dumps(result))


def learning_curve(sizes: tuple[int, ...] = (100_000, 300_000, 945_940), probe: int = 20_000) -> None:
    """Held-out bits per character of KN (order 5) and InfiniGram against the training text's size, within the
    bundled plays (their first ``size`` characters; scored on the first ``probe`` of Much Ado About Nothing):
    what more data buys below 1 MB, the only real text at hand."""
    from seqlab.data.spec import DataSpec, load_dataset
    from seqlab.models import InfiniGram, NGram

    plays = load_dataset(DataSpec("shakespeare"))
    vocabulary = plays.store.vocabulary
    valid = vocabulary.encode(plays.valid[:probe], unknown="map")
    print("| training characters | KN 5-gram bits/char | InfiniGram bits/char |\n|---:|---:|---:|")
    for size in sizes:
        train = vocabulary.encode(plays.train[:size])
        bits = []
        for model in (NGram(order=5, vocabulary=vocabulary), InfiniGram(vocabulary=vocabulary)):
            model.fit(train)
            bits.append(float(-model.log_prob(valid).mean()) / np.log(2))
        print(f"| {size:,} | {bits[0]:.3f} | {bits[1]:.3f} |", flush=True)


def plot(record: Path, out: Path) -> None:
    """Seconds and peak RSS of each part against corpus size (log-log), from ``results.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
    seconds = {"encode": "encode_s", "train": "train_s", "ngram": "fit_s", "infinigram": "build_s"}
    labels = {
        "encode": "token store encoding",
        "train": "LSTM, 20 steps",
        "ngram": "KN 5-gram fit",
        "infinigram": "suffix array build",
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for part, key in seconds.items():
        for corpus, marker in (("copies", "o-"), ("words", "s--")):
            points = sorted(
                (r["size_mb"], r[key], r["peak_rss_mb"])
                for r in rows
                if r["part"] == part and r.get("corpus", "copies") == corpus and r.get("steps") in (None, 20)
            )
            if not points:
                continue
            size, sec, rss = zip(*points, strict=True)
            label = labels[part] + (" (random words)" if corpus == "words" else "")
            axes[0].plot(size, sec, marker, label=label)
            axes[1].plot(size, rss, marker, label=label)
    for ax, title in zip(axes, ("time (s)", "peak RSS (MB)"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("corpus (MB)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 100], help="corpus sizes in MB")
    parser.add_argument("--only", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--corpus", choices=("copies", "words"), default="copies", help="see make_corpus")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/corpus_scale"))
    parser.add_argument("--plot", type=Path, help="only draw OUT/results.jsonl into this PNG")
    parser.add_argument("--curve", action="store_true", help="only the learning curve within the plays")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plot:
        plot(args.out / "results.jsonl", args.plot)
        return
    if args.curve:
        learning_curve()
        return
    if args.child:
        child(args.child[0], Path(args.child[1]), args.steps)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    record = args.out / "results.jsonl"
    for size in args.sizes:
        corpus = args.out / f"corpus-{args.corpus}-{size:g}MB.txt"
        make_corpus(corpus, size, args.corpus)
        cache = args.out / f"cache-{size:g}MB"
        shutil.rmtree(cache, ignore_errors=True)  # a cold cache for every size
        env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQLAB_CACHE_DIR": str(cache)}
        for part in args.only:
            if part == "command":  # its own subprocesses
                t = time.perf_counter()
                result = {"size_mb": size, "corpus": args.corpus, "part": part}
                result.update(part_command(corpus, args.steps, env, args.out))
                result["process_s"] = time.perf_counter() - t
                print(json.dumps(result), flush=True)
                with open(record, "a", encoding="utf-8") as f:
                    f.write(json.dumps(result) + "\n")
                continue
            command = [sys.executable, __file__, "--child", part, str(corpus), "--steps", str(args.steps)]
            t = time.perf_counter()
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                print(f"{size:g} MB {part}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            result = {"size_mb": size, "corpus": args.corpus, "part": part, "process_s": wall}
            result.update(json.loads(lines[-1][7:]))
            print(json.dumps(result), flush=True)
            with open(record, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
