"""The one report writer: result rows as a Markdown table, CSV and JSON (compare, backtest, experiments, forecast).

``Column(key, title, format)`` picks and formats columns; without columns every key of the rows is shown,
numbers right-aligned and floats to 4 significant digits.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from seqlab import atomic


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    format: str = "{}"


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return f"{value:g}"
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "⏎")


def markdown_table(rows: list[dict], columns: list[Column] | None = None) -> str:
    """Rows as a Markdown table."""
    if not rows:
        return "(no rows)\n"
    keys = [c.key for c in columns] if columns else list(rows[0])
    titles = [c.title for c in columns] if columns else keys
    numeric = [all(isinstance(r.get(k), int | float | None) for r in rows) for k in keys]
    lines = ["| " + " | ".join(titles) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for r in rows:
        if columns:
            cells = ["" if r.get(c.key) is None else escape(c.format.format(r[c.key])) for c in columns]
        else:
            cells = [cell_text(r.get(k, "")) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))  # every key, first-seen order
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    atomic.replace_into(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_report(
    out: Path,
    stem: str,
    rows: list[dict],
    record: dict,
    title: str = "",
    columns: list[Column] | None = None,
    footer: str = "",
) -> list[Path]:
    """``out/STEM.md`` (title, table, footer), ``out/STEM.csv`` (the rows) and ``out/STEM.json`` (``record``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = (f"{title}\n\n" if title else "") + markdown_table(rows, columns) + footer
    paths = [out / f"{stem}.md", out / f"{stem}.csv", out / f"{stem}.json"]
    write_text(paths[0], markdown)
    write_text(paths[1], csv_text(rows))
    # JSON has no NaN or infinity: a number left undefined (a measure of a constant series) is written as null
    atomic.write_json(paths[2], json.loads(json.dumps(record, default=float), parse_constant=lambda _: None))
    return paths
