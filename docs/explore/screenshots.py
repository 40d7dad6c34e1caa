"""The figures and numbers of docs/explore.md, from a page written by ``seqlab explore``.

Opens PAGE in the distribution's headless Chromium (tests/explore_browser.py, the test harness), takes the
screenshots of each view at a laptop's 1440 x 900, and prints what the page holds: the most interpretable units,
gate saturation per gate type, and where the model beats and loses to the model it is compared with.

    seqlab explore /tmp/explore-lstm --against /tmp/explore-ngram6 --out /tmp/explore-main.html
    python docs/explore/screenshots.py /tmp/explore-main.html --out docs/explore
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from explore_browser import NO_BROWSER, browser, open_page  # noqa: E402


def page_data(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="seqlab-data">(.*?)</script>', html, re.S).group(1))


def classes(chars: list[str]) -> dict[str, np.ndarray]:
    """Kinds of character, for where one model beats the other."""
    T = len(chars)
    prev = [""] + chars[:-1]
    kinds = {
        "newline": [c == "\n" for c in chars],
        "space": [c == " " for c in chars],
        "first letter of a word": [c.isalpha() and not p.isalpha() for c, p in zip(chars, prev, strict=True)],
        "later letter of a word": [c.isalpha() and p.isalpha() for c, p in zip(chars, prev, strict=True)],
        "capital letter": [c.isupper() for c in chars],
        "punctuation": [not c.isalnum() and c not in " \n" for c in chars],
    }
    return {k: np.array(v, dtype=bool) for k, v in kinds.items() if len(v) == T}


def report(data: dict) -> None:
    bits = np.array(data["bits"])
    print(f"model: {data['model']}\ntext: {data['source']}, {len(bits):,} characters, {bits.mean():.3f} bits/char")
    units = data.get("units")
    if units:
        print("\nmost interpretable units (Pearson's r with a feature of the character just read):")
        for feature, rows in units["ranked"].items():
            best = ", ".join(f"{r['quantity']}[{r['layer']}:{r['unit']}] {r['r']:+.3f}" for r in rows[:3])
            print(f"  {feature:18s} {best}")
        print(f"\ngate saturation (share of characters < {units['closed']} / > {units['open']}, over units):")
        for key, sat in units["saturation"].items():
            left, right = np.array(sat["left"]), np.array(sat["right"])
            print(
                f"  layer {key}: mean left {left.mean():.3f}, right {right.mean():.3f}; units left-saturated over "
                f"half the time {(left > 0.5).sum()}, right {(right > 0.5).sum()}, never saturated "
                f"{((left == 0) & (right == 0)).sum()} of {len(left)}"
            )
    against = data.get("against")
    if against:
        other = np.array(against["bits"])
        diff = other - bits
        print(
            f"\nagainst {against['model']}: {other.mean():.3f} bits/char; this model better on {(diff > 0).mean():.1%}"
        )
        for kind, mask in classes(data["chars"]).items():
            print(
                f"  {kind:24s} {mask.sum():5d} chars: this {bits[mask].mean():.3f}, other {other[mask].mean():.3f}, "
                f"other - this {diff[mask].mean():+.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/explore"))
    parser.add_argument("--char", type=int, default=1210, help="the character selected in the screenshots")
    args = parser.parse_args()
    data = page_data(args.page)
    report(data)
    if NO_BROWSER:
        sys.exit(f"screenshots: {NO_BROWSER}")
    args.out.mkdir(parents=True, exist_ok=True)
    with browser(1440, 900) as driver:
        open_page(driver, args.page, timeout=300)
        shot = lambda name: driver.save_screenshot(str(args.out / f"{name}.png"))  # noqa: E731
        driver.execute_script("seqlab.select(arguments[0])", args.char)
        shot("surprise")
        if "against" in data["views"]:
            driver.execute_script("seqlab.setView('against'); seqlab.select(arguments[0])", args.char)
            shot("against")
        if "units" in data["views"]:
            best = data["units"]["ranked"]["position in line"][0]
            driver.execute_script(
                "seqlab.selectUnit(arguments[0], arguments[1], arguments[2]); seqlab.select(arguments[3]);"
                "document.getElementById('feature').value = 'position in line';"
                "document.getElementById('feature').dispatchEvent(new Event('change'))",
                best["layer"],
                best["quantity"],
                best["unit"],
                args.char,
            )
            shot("units")
            best = data["units"]["ranked"]["speaker's name"][0]
            driver.execute_script(
                "seqlab.selectUnit(arguments[0], arguments[1], arguments[2]); seqlab.select(600)",
                best["layer"],
                best["quantity"],
                best["unit"],
            )
            shot("units-speaker")
        if "saturation" in data["views"]:
            driver.execute_script("seqlab.setView('saturation')")
            shot("saturation")
        if "sampler" in data["views"]:
            driver.execute_script(
                "seqlab.setView('sampler'); document.getElementById('prompt').value = 'ROMEO.\\n';"
                "document.getElementById('length').value = 600; document.getElementById('generate').click()"
            )
            while not driver.execute_script("return !!seqlab.state.lastSample"):
                time.sleep(0.2)
            shot("sampler")
    print(f"\nwrote {', '.join(sorted(p.name for p in args.out.glob('*.png')))} in {args.out}")


if __name__ == "__main__":
    main()
