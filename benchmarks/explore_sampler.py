"""The explore page's live sampler: characters per second of its JavaScript step in headless Chromium.

The page (``seqlab explore``) is written for a model (by default the main job's shape, a 1 x 512 LSTM over the
bundled text's 81 symbols, with random weights: speed does not depend on them), opened in the distribution's
Chromium through Selenium (tests/explore_browser.py), and asked for ``--chars`` greedy characters after a prompt,
timed inside the page (``seqlab.benchmark``: the step and the draw), for each engine of its matrix-vector
product: WebAssembly SIMD (what the page uses) and plain JavaScript (its fallback). Target: >= 1,000
characters/s for the default model.

    python benchmarks/explore_sampler.py                      # about a minute
    python benchmarks/explore_sampler.py --model runs/lstm    # a trained model
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch

import seqlab
from seqlab.data import load_text
from seqlab.data.text import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.runs import explore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from explore_browser import NO_BROWSER, browser, open_page  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved text model (default: the main job's shape, random weights)")
    parser.add_argument("--chars", type=int, default=3000, help="characters per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if NO_BROWSER:
        sys.exit(f"explore_sampler: {NO_BROWSER}")
    text = load_text("shakespeare")
    with tempfile.TemporaryDirectory(prefix="seqlab-explore-bench-") as tmp:
        model_dir = Path(args.model) if args.model else Path(tmp) / "model"
        if not args.model:
            torch.manual_seed(0)
            seqlab.save(LatentAR(Vocabulary.from_text(text), LatentARConfig()), model_dir)
        data = Path(tmp) / "text.txt"
        data.write_text(text[-3000:], encoding="utf-8")
        page = Path(tmp) / "page.html"
        result = explore.explore(explore.ExploreSpec(model_dir, page, seqlab.DataSpec(str(data)), chars=200))
        print(f"# {seqlab.load(model_dir).describe()}; page {result.bytes / 2**20:.1f} MB")
        print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; headless")
        with browser() as driver:
            open_page(driver, page)
            print(f"# browser: {driver.capabilities.get('browserVersion')}")
            for engine in ("wasm-simd", "js"):
                driver.execute_script("seqlab.engine(arguments[0])", engine)
                driver.execute_script("return seqlab.benchmark('ROMEO.', 200)")  # warm-up
                rates = [
                    args.chars
                    / driver.execute_script("return seqlab.benchmark('ROMEO.', arguments[0]).seconds", args.chars)
                    for _ in range(args.repeats)
                ]
                print(
                    f"{engine:10s} median {statistics.median(rates):8,.0f} characters/s "
                    f"(min {min(rates):,.0f}, max {max(rates):,.0f}; {args.repeats} runs of {args.chars:,})"
                )


if __name__ == "__main__":
    main()
