"""The figures and numbers of docs/explore.md, from a page written by ``seqlab explore``.

Opens PAGE in the distribution's headless Chromium (tests/explore_browser.py, the test harness), takes the
screenshots of each view at a laptop's 1440 x 900, and prints what the page holds: the most interpretable units,
gate saturation per gate type, and where the model beats and loses to the model it is compared with.

    seqlab train --out /tmp/explore-lstm --overwrite --steps 1900   # steps, not seconds: the same on any load
    seqlab explore /tmp/explore-lstm --against /tmp/explore-ngram6 --out /tmp/explore-main.html
    python docs/explore/screenshots.py /tmp/explore-main.html --out docs/explore

(the 6-gram and the rest: docs/explore.md, "What the main job's model shows").
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

from seqlab.runs.explore import text_features  # noqa: E402

TOP_CHARACTERS = 8  # the characters listed where one model helps and loses most
LINE_SPANS = ((0, 1), (1, 10), (10, 30), (30, 50), (50, 1000))  # character positions in the line
UNIT_SHOTS = (  # (screenshot, feature whose best unit it shows, character selected: None for --char)
    ("units", "position in line", None),
    ("units-speaker", "speaker's name", 600),
    ("units-brackets", "inside brackets", 700),
)


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


def line_positions(chars: list[str]) -> np.ndarray:
    """Characters since the last newline, per character (T,)."""
    column, positions = 0, []
    for c in chars:
        positions.append(column)
        column = 0 if c == "\n" else column + 1
    return np.array(positions)


def in_context(chars: list[str], s: int, before: int = 24, after: int = 6) -> str:
    """The text around character s with it in brackets, newlines shown as |."""
    show = lambda text: "".join(text).replace("\n", "|")  # noqa: E731
    return f"{show(chars[max(0, s - before) : s])}[{show(chars[s])}]{show(chars[s + 1 : s + 1 + after])}"


def unit_classes(chars: list[str]) -> dict[str, np.ndarray]:
    """Kinds of character to describe a unit by: where in the line, inside brackets, case, and the speaker lines
    (the features of the page's ranking, ``seqlab.runs.explore.text_features``)."""
    column = line_positions(chars)
    prev = [""] + chars[:-1]
    features = text_features("".join(chars))
    speaker = features["speaker's name"][0] > 0
    kinds = {f"line position {a}-{b - 1}": (column >= a) & (column < b) for a, b in LINE_SPANS}
    kinds["newline"] = np.array([c == "\n" for c in chars])
    kinds["inside brackets"] = features["inside brackets"][0] > 0
    kinds["outside brackets"] = ~kinds["inside brackets"]
    kinds["lower-case letter"] = np.array([c.islower() for c in chars])
    upper_run = np.array([c.isupper() and p.isupper() for c, p in zip(chars, prev, strict=True)])
    kinds["capital after a capital, speaker's line"] = upper_run & speaker
    kinds["capital after a capital, elsewhere"] = upper_run & ~speaker
    full_stop = np.array([c == "." for c in chars])
    kinds["'.' ending a speaker's name"] = full_stop & speaker
    kinds["'.' elsewhere"] = full_stop & ~speaker
    return kinds


def describe_units(data: dict, values: dict[str, np.ndarray]) -> None:
    """The mean value of each shown unit (its values as the page computes them) over kinds of character."""
    kinds = unit_classes(data["chars"])
    print("\nthe units of the screenshots, mean value over kinds of character (n):")
    print(f"  {'':48s}" + "".join(f"{name:>16s}" for name in values))
    for kind, mask in kinds.items():
        if mask.any():
            print(f"  {kind:42s} {mask.sum():5d}" + "".join(f"{v[mask].mean():+16.2f}" for v in values.values()))


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
        column = line_positions(data["chars"])
        spans = {**{str(p): column == p for p in range(5)}, "5-19": (column >= 5) & (column < 20), "20+": column >= 20}
        print("  by position in line: " + ", ".join(f"{k} {diff[m].mean():+.2f}" for k, m in spans.items()))
        newline = np.array([c == "\n" for c in data["chars"]])
        speaker = text_features("".join(data["chars"]))["speaker's name"][0] > 0
        print("  newline ending a line of N characters (n: this, other; after a speaker's name | after other lines):")
        for a, b in LINE_SPANS:
            at = newline & (column >= a) & (column < b)
            parts = [
                f"{m.sum():3d}: {bits[m].mean():.2f}, {other[m].mean():.2f}" if m.any() else "  0"
                for m in (at, at & speaker, at & ~speaker)
            ]
            if at.any():
                print(f"    N {a}-{b - 1:<4d} {parts[0]} ({parts[1]} | {parts[2]})")
        for title, order in (("helps most", np.argsort(-diff)), ("loses most", np.argsort(diff))):
            print(f"  where this model {title} (other - this, bits: this, other):")
            for s in order[:TOP_CHARACTERS]:
                print(f"    {diff[s]:+6.2f} ({bits[s]:.2f}, {other[s]:.2f}) at {s:5d}: {in_context(data['chars'], s)}")


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
            shown = {}
            for name, feature, char in UNIT_SHOTS:
                if feature not in data["units"]["ranked"]:
                    continue  # constant on this text
                best = data["units"]["ranked"][feature][0]
                driver.execute_script(
                    "seqlab.selectUnit(arguments[0], arguments[1], arguments[2]); seqlab.select(arguments[3]);"
                    "document.getElementById('feature').value = arguments[4];"
                    "document.getElementById('feature').dispatchEvent(new Event('change'))",
                    best["layer"],
                    best["quantity"],
                    best["unit"],
                    args.char if char is None else char,
                    feature,
                )
                shot(name)
                label = f"{best['quantity']}[{best['layer']}:{best['unit']}]"
                shown[label] = np.array(
                    driver.execute_script(
                        "return seqlab.unitValues(arguments[0], arguments[1], arguments[2])",
                        best["layer"],
                        best["quantity"],
                        best["unit"],
                    )
                )
            describe_units(data, shown)
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
