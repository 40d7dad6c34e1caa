"""The one report writer (seqlab.runs.report): Markdown with chosen or all columns, CSV, JSON."""

import csv
import json

from seqlab.runs.report import Column, markdown_table, write_report

ROWS = [
    {"model": "a|b", "nll": 1.23456, "params": 12345, "note": "two\nlines"},
    {"model": "c", "nll": 0.5, "params": 7},
]


def test_markdown_with_all_columns_and_with_chosen_ones():
    table = markdown_table(ROWS)
    lines = table.splitlines()
    assert lines[0] == "| model | nll | params | note |" and lines[1] == "|---|---:|---:|---|"
    assert lines[2] == "| a\\|b | 1.235 | 12,345 | two⏎lines |"  # pipes escaped, floats to 4 digits, thousands
    chosen = markdown_table(ROWS, [Column("model", "model"), Column("nll", "NLL", "{:.2f}")])
    assert chosen.splitlines()[3] == "| c | 0.50 |"
    assert markdown_table([]) == "(no rows)\n"


def test_write_report_writes_markdown_csv_and_json(tmp_path):
    paths = write_report(tmp_path / "out", "thing", ROWS, {"rows": ROWS, "n": 2}, title="Title", footer="end\n")
    assert [p.name for p in paths] == ["thing.md", "thing.csv", "thing.json"]
    assert paths[0].read_text().startswith("Title\n\n| model |") and paths[0].read_text().endswith("end\n")
    with open(paths[1], newline="") as f:
        assert list(csv.DictReader(f))[0] == {"model": "a|b", "nll": "1.23456", "params": "12345", "note": "two\nlines"}
    assert json.loads(paths[2].read_text())["n"] == 2
