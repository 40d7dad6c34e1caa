"""NGram speed on the bundled Shakespeare, and nltk.lm on the same kind of work, side by side in one run.

- seqlab: ``NGram(order=6, kneser_ney)`` (7-grams) fitted on the whole 1.07 MB text; scoring = ``log_prob`` of
  the whole text; and the latency of one next-symbol distribution over the vocabulary.
- nltk: ``KneserNeyInterpolated(7)`` fitted on a slice (nltk holds every n-gram as a Python tuple; the whole
  text takes minutes and gigabytes) and scoring a few hundred 7-grams; rates are per character, so the
  ratio compares the same work per character.

    python benchmarks/ngram_speed.py          # about a minute
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from seqlab.data import load_text
from seqlab.models import NGram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=6)
    parser.add_argument("--nltk-chars", type=int, default=100_000, help="size of the slice nltk fits")
    parser.add_argument("--nltk-scores", type=int, default=200, help="n-grams nltk scores")
    args = parser.parse_args()
    text = load_text("shakespeare")

    start = time.perf_counter()
    model = NGram(order=args.order, smoothing="kneser_ney").fit(text)
    fit_seconds = time.perf_counter() - start
    x = model.encode(text)
    start = time.perf_counter()
    log_prob = model.log_prob(x)
    score_rate = len(x) / (time.perf_counter() - start)
    contexts = [x[i : i + args.order].numpy() for i in range(0, 200_000, 200)]
    start = time.perf_counter()
    for ctx in contexts:
        model.next_distribution(ctx)
    next_ms = (time.perf_counter() - start) / len(contexts) * 1e3
    print(
        f"seqlab NGram(order={args.order}): fit {len(text):,} chars in {fit_seconds:.2f} s "
        f"({len(text) / fit_seconds:,.0f} chars/s); log_prob {score_rate:,.0f} chars/s "
        f"(training-text NLL {float(-log_prob.mean()) / np.log(2):.3f} bits/char); "
        f"next-symbol distribution {next_ms:.3f} ms"
    )

    try:
        from nltk.lm import KneserNeyInterpolated
        from nltk.util import everygrams
    except ImportError:
        print("nltk is not installed (pip install -e '.[test]'): no comparison")
        return
    n = args.order + 1
    piece = list(text[: args.nltk_chars])
    start = time.perf_counter()
    lm = KneserNeyInterpolated(n, discount=0.75)
    lm.fit([list(everygrams(piece, max_len=n))], vocabulary_text=piece)
    nltk_fit_rate = len(piece) / (time.perf_counter() - start)
    grams = list(everygrams(list(text[args.nltk_chars : args.nltk_chars + args.nltk_scores + n]), min_len=n, max_len=n))
    grams = grams[: args.nltk_scores]
    start = time.perf_counter()
    for gram in grams:
        try:
            lm.score(gram[-1], gram[:-1])
        except ZeroDivisionError:
            pass
    nltk_score_rate = len(grams) / (time.perf_counter() - start)
    fit_rate = len(text) / fit_seconds
    print(
        f"nltk KneserNeyInterpolated({n}): fit {nltk_fit_rate:,.0f} chars/s (on {len(piece):,} chars); "
        f"score {nltk_score_rate:,.1f} chars/s (on {len(grams)} {n}-grams)\n"
    )
    print("| work | seqlab chars/s | nltk chars/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| fit | {fit_rate:,.0f} | {nltk_fit_rate:,.0f} | {fit_rate / nltk_fit_rate:,.0f}x |")
    print(f"| score | {score_rate:,.0f} | {nltk_score_rate:,.1f} | {score_rate / nltk_score_rate:,.0f}x |")


if __name__ == "__main__":
    main()
