"""A panel: N series of their own lengths and start dates, held as one array of values plus offsets.

statsforecast's layout: ``values`` (sum of lengths,) float64 and ``offsets`` (N + 1,) int64, series ``i`` being
``values[offsets[i]:offsets[i + 1]]``; no frame per series. Two CSV layouts:

- long: ``id_column`` names the series of each row, ``column`` its value, ``date_column`` its date (M4 and
  neuralforecast's ``unique_id, ds, y``); rows of one series in any order, sorted by date here;
- wide: a date column and one column per series; a series runs from its first to its last filled cell.

The season length comes from the dates (the median gap: monthly 12, quarterly 4, weekly 52, daily 7, yearly 1)
or is given (``season``). A series that is too short, constant, or holds a cell that is not a finite number is
listed in ``left_out`` with its reason and skipped; it never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqlab.data.bundled_data import resolve
from seqlab.data.series import DEFAULT_COLUMNS, DEFAULT_DATE_COLUMNS
from seqlab.errors import SeqlabError

# (largest median gap in days, season length): daily 7, weekly 52, monthly 12, quarterly 4, yearly 1
SEASONS_BY_GAP = ((1.5, 7), (10.0, 52), (45.0, 12), (135.0, 4), (400.0, 1))
MAX_SEASON = 400  # a season longer than this is no season anyone fits


@dataclass
class Panel:
    ids: list[str]  # (N,) in the order of their first row
    values: np.ndarray  # (sum of lengths,) float64
    offsets: np.ndarray  # (N + 1,) int64
    season: int  # values per season (1: none)
    source: str
    starts: list[str] = field(default_factory=list)  # (N,) the first date of each series ("" without dates)
    left_out: dict[str, str] = field(default_factory=dict)  # id -> why it is not in the panel

    def __len__(self) -> int:
        return len(self.ids)

    def series(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def season_from_gap(gap_days: float) -> int:
    """The season length of data whose dates are ``gap_days`` apart (SEASONS_BY_GAP); 1 past a year."""
    return next((m for top, m in SEASONS_BY_GAP if gap_days <= top), 1)


def parse_dates(cells) -> np.ndarray:
    """datetime64 of a column of dates: ISO 8601 in one vectorised pass, else each cell's own format (slower);
    a cell that is no date is NaT."""
    import pandas as pd

    try:
        return pd.to_datetime(cells, format="ISO8601").to_numpy()
    except (ValueError, TypeError):
        return pd.to_datetime(cells, errors="coerce", format="mixed").to_numpy()


def _pick(columns: list[str], given: str | None, defaults: tuple[str, ...], what: str, path: str) -> str:
    if given is not None:
        if given not in columns:
            raise SeqlabError(f"{path}: no {what} column {given!r}; columns are {', '.join(columns)}")
        return given
    found = next((c for c in defaults if c in columns), None)
    if found is None:
        option = "--column" if what == "value" else f"--{what}-column"
        raise SeqlabError(f"{path}: no {what} column ({' or '.join(defaults)}); name it with {option}")
    return found


def load_panel(
    path: str | Path,
    id_column: str | None = None,
    column: str | None = None,
    date_column: str | None = None,
    season: int | None = None,
    min_length: int = 3,
) -> Panel:
    """Every series of a long (``id_column``) or wide CSV file as one ``Panel``; see the module docstring.
    ``min_length``: fewer values than this and a series is left out (a holdout needs its horizon plus a fit)."""
    import pandas as pd  # a heavy import, needed only here

    path, _ = resolve(path)
    name = str(path)
    try:
        header = list(pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise SeqlabError(f"{name}: cannot read it as CSV ({e})") from None
    if season is not None and not 1 <= season <= MAX_SEASON:
        raise SeqlabError(f"--season must be in 1..{MAX_SEASON}, got {season}")
    date = (
        _pick(header, date_column, DEFAULT_DATE_COLUMNS, "date", name)
        if date_column or any(c in header for c in DEFAULT_DATE_COLUMNS)
        else None
    )
    if id_column is not None:
        ident = _pick(header, id_column, (), "id", name)
        value = _pick(header, column, DEFAULT_COLUMNS, "value", name)
        usecols = [ident, value] + ([date] if date else [])
        # ids as categories and values as floats straight from the parser: no Python string per cell (a file with
        # a cell that is not a number is read again as text, so that the series holding it is named and left out)
        read = {"usecols": usecols, "encoding": "utf-8-sig", "dtype": {ident: "category"}}
        try:
            try:
                frame = pd.read_csv(path, **read | {"dtype": {ident: "category", value: "float64"}})
            except ValueError:
                frame = pd.read_csv(path, **read | {"dtype": {ident: "category", value: str}})
                frame[value] = pd.to_numeric(frame[value], errors="coerce")
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise SeqlabError(f"{name}: cannot read it as CSV ({e})") from None
        codes, uniques = pd.factorize(frame[ident], sort=False)
        numbers = frame[value].to_numpy(dtype=np.float64)
        dates = parse_dates(frame[date]) if date else None
        order = np.lexsort((dates.astype("int64"), codes) if dates is not None else (np.arange(len(codes)), codes))
        codes, numbers = codes[order], numbers[order]
        dates = dates[order] if dates is not None else None
        counts = np.bincount(codes, minlength=len(uniques))
        ids = [str(u) for u in uniques]
    else:
        try:
            frame = pd.read_csv(path, encoding="utf-8-sig")
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise SeqlabError(f"{name}: cannot read it as CSV ({e})") from None
        columns = [c for c in frame.columns if c != date] if column is None else column.split(",")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SeqlabError(f"{name}: no column {missing[0]!r}; columns are {', '.join(map(str, frame.columns))}")
        all_dates = parse_dates(frame[date]) if date else None
        parts, part_dates, ids, counts = [], [], [], []
        for c in columns:
            cells = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
            filled = np.flatnonzero(frame[c].notna().to_numpy())
            first, last = (filled[0], filled[-1] + 1) if len(filled) else (0, 0)
            parts.append(cells[first:last])
            part_dates.append(all_dates[first:last] if all_dates is not None else None)
            ids.append(str(c))
            counts.append(last - first)
        numbers = np.concatenate(parts) if parts else np.zeros(0)
        dates = np.concatenate(part_dates) if all_dates is not None and parts else None
        counts = np.array(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return _keep_good(ids, numbers, offsets, dates, season, min_length, name)


def uneven(dates: np.ndarray) -> str:
    """Why a series' sorted dates cannot be read as one value per period ("" if they can): a date given twice, or a
    gap over 1.5 times the usual step (a missing value the panel would close up, shifting the season)."""
    steps = np.diff(dates).astype("timedelta64[s]").astype(float)
    if not len(steps):
        return ""
    if (steps == 0).any():
        return f"date {str(dates[1:][steps == 0][0])[:10]} is given twice"
    usual = float(np.median(steps))
    if steps.max() > 1.5 * usual:
        k = int(np.argmax(steps))
        return f"a gap from {str(dates[k])[:10]} to {str(dates[k + 1])[:10]} (missing values)"
    return ""


def _keep_good(ids, numbers, offsets, dates, season, min_length, name) -> Panel:
    """The panel of the series that can be forecast; the others in ``left_out`` with their reason."""
    keep, left_out, gaps = [], {}, []
    for i, ident in enumerate(ids):
        y = numbers[offsets[i] : offsets[i + 1]]
        if len(y) < min_length:
            left_out[ident] = f"{len(y)} values, fewer than {min_length}"
        elif not np.isfinite(y).all():
            left_out[ident] = f"value {int(np.flatnonzero(~np.isfinite(y))[0]) + 1} is not a finite number"
        elif np.ptp(y) == 0:
            left_out[ident] = f"constant ({y[0]:g})"
        elif dates is not None and np.isnat(dates[offsets[i] : offsets[i + 1]]).any():
            left_out[ident] = (
                f"date {int(np.flatnonzero(np.isnat(dates[offsets[i] : offsets[i + 1]]))[0]) + 1} is not a date"
            )
        elif dates is not None and (why := uneven(dates[offsets[i] : offsets[i + 1]])):
            left_out[ident] = why
        else:
            keep.append(i)
            if dates is not None and len(gaps) < 1000:  # the season from a sample of series is as good as all
                gaps.append(
                    np.median(np.diff(dates[offsets[i] : offsets[i + 1]]).astype("timedelta64[s]").astype(float))
                )
    if not keep:
        why = "; ".join(f"{k}: {v}" for k, v in list(left_out.items())[:3])
        raise SeqlabError(f"{name}: no series can be forecast ({why})")
    if season is None:
        season = season_from_gap(float(np.median(gaps)) / 86400) if gaps else 1
    lengths = np.diff(offsets)[keep]
    values = np.concatenate([numbers[offsets[i] : offsets[i + 1]] for i in keep])
    starts = [str(dates[offsets[i]])[:10] if dates is not None else "" for i in keep]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Panel([ids[i] for i in keep], values, new_offsets, int(season), name, starts, left_out)
