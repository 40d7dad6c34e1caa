"""Time series from CSV files (through pandas), one or several at once, with errors that name the line.

Layouts:

- wide: a date column and one or more value columns (``column="Close"`` or ``"A,B"``): one series per column;
- long: ``id_column`` names the series of each row (neuralforecast's ``unique_id, ds, y``): one series per id.

Dates (``date_column``) are parsed one by one, so ``2017-11-10`` and ``Jan 1 2000`` both work; within a
series they must increase strictly. Missing cells are an error naming the line unless a ``fill`` policy
is chosen: ``ffill`` (carry the last value forward), ``interpolate`` (linear) or ``drop`` (skip the row).
Cells that are not numbers are always an error: they are corrupt data, not gaps.

Past covariates are columns named in ``covariates``, then the derived ``features`` after them:

- ``range``: Parkinson's (1980) estimator of the day's variance from its high and low prices,
  ``sigma_P^2 = (ln High - ln Low)^2 / (4 ln 2)`` (unbiased for the variance of the log price over the day under
  a driftless Brownian motion; in the units of squared log returns), from the ``High`` and ``Low`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlab.data.bundled_data import resolve
from seqlab.errors import OptionError, SeqlabError

FILL_POLICIES = ("ffill", "interpolate", "drop")
FEATURES = ("range",)  # covariates derived from other columns (see the module docstring)
HIGH_LOW_COLUMNS = (("High", "Low"), ("high", "low"), ("HIGH", "LOW"))
DEFAULT_COLUMNS = ("Close", "close", "y", "value")  # tried in order when no column is named
DEFAULT_DATE_COLUMNS = ("Date", "date", "ds", "timestamp")
HEADER_LINES = 1  # line numbers in errors count the header: the first data row is line 2


@dataclass
class Series:
    name: str
    values: np.ndarray  # (T,) float64
    dates: np.ndarray | None  # (T,) datetime64[ns], or None without a date column
    lines: np.ndarray  # (T,) the file's line number of every value, for error messages
    source: str  # "msft.csv, column Close"
    column: str  # the value column it came from
    covariates: np.ndarray | None = None  # (T, C) past covariates, row by row beside the values

    def __len__(self) -> int:
        return len(self.values)

    def head(self, n: int) -> Series:
        return self._take(slice(0, n))

    def tail_from(self, n: int) -> Series:
        return self._take(slice(n, None))

    def _take(self, part: slice) -> Series:
        dates = None if self.dates is None else self.dates[part]
        covariates = None if self.covariates is None else self.covariates[part]
        return Series(self.name, self.values[part], dates, self.lines[part], self.source, self.column, covariates)


def load_series(
    name_or_path: str | Path,
    column: str | None = None,
    date_column: str | None = None,
    id_column: str | None = None,
    fill: str | None = None,
    covariates: str | None = None,
    features: str | None = None,
) -> list[Series]:
    """The series in a CSV file (or the bundled ``"msft"``); see the module docstring for the layouts."""
    import pandas as pd  # a heavy import, needed only here

    path, _ = resolve(name_or_path)
    if fill is not None and fill not in FILL_POLICIES:
        raise OptionError(f"unknown {{0}} policy {fill!r}; choose one of {', '.join(FILL_POLICIES)}", "fill")
    try:
        # utf-8-sig: a byte-order mark would otherwise become part of the first column's name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise SeqlabError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SeqlabError(f"{path}: not a readable CSV file ({str(e).strip()})") from None
    if frame.empty:
        raise SeqlabError(f"{path}: has a header but no data rows")
    available = ", ".join(frame.columns)
    lines = np.arange(len(frame)) + HEADER_LINES + 1

    def need(name: str, what: str) -> str:
        if name not in frame.columns:
            raise SeqlabError(f"{path}: no {what} {name!r}; the file has columns: {available}")
        return name

    if date_column is None:
        date_column = next((c for c in DEFAULT_DATE_COLUMNS if c in frame.columns), None)
    else:
        need(date_column, "date column")
    if id_column is not None:
        need(id_column, "id column")
    if column is None:
        column = next((c for c in DEFAULT_COLUMNS if c in frame.columns), None)
        if column is None:
            raise OptionError(
                f"{path}: which column holds the values? give {{0}} (the file has: {available})", "column"
            )
    value_columns = [need(c.strip(), "column") for c in column.split(",") if c.strip()]
    covariate_columns = [need(c.strip(), "covariate column") for c in (covariates or "").split(",") if c.strip()]
    feature_names = [f.strip() for f in (features or "").split(",") if f.strip()]
    unknown = [f for f in feature_names if f not in FEATURES]
    if unknown:
        raise OptionError(f"unknown {{0}} {unknown[0]!r}; choose from {', '.join(FEATURES)}", "features")
    high_low = None
    if feature_names:
        high_low = next((pair for pair in HIGH_LOW_COLUMNS if set(pair) <= set(frame.columns)), None)
        if high_low is None:
            raise OptionError(
                f"{path}: {{0}} range needs High and Low columns (the day's high and low prices); the file has "
                f"columns: {available}",
                "features",
            )

    groups: list[tuple[str, np.ndarray]]  # (name, row indices)
    if id_column is not None:
        if len(value_columns) != 1:
            raise OptionError(
                f"{path}: with {{0}} give one value {{1}}, got {len(value_columns)}", "id_column", "column"
            )
        ids = frame[id_column].to_numpy()
        order = list(dict.fromkeys(ids))  # first appearance
        groups = [(str(i), np.flatnonzero(ids == i)) for i in order]
    else:
        groups = [("", np.arange(len(frame)))]

    series = []
    for group_name, index in groups:
        dates = None if date_column is None else _parse_dates(frame[date_column].to_numpy()[index], lines[index], path)
        for c in value_columns:
            name = group_name or c
            source = f"{path.name}, column {c}" + (f", {id_column} {group_name}" if group_name else "")
            values, keep = _parse_values(frame[c].to_numpy()[index], lines[index], source, fill)
            rows, where = index[keep], lines[index][keep]  # a row dropped for a gap goes with its covariates
            extra = None
            if covariate_columns or feature_names:
                columns = [
                    _column(frame, k, rows, where, f"{path.name}, covariate column {k}", fill)
                    for k in covariate_columns
                ]
                if feature_names:
                    high, low = (_column(frame, k, rows, where, f"{path.name}, column {k}", fill) for k in high_low)
                    columns.append(parkinson_variance(high, low, where, path.name, high_low))
                extra = np.stack(columns, axis=1)  # (T, C)
            dates_kept = None if dates is None else dates[keep]
            series.append(Series(name, values, dates_kept, lines[index][keep], source, c, extra))
    return series


def _column(frame, name: str, rows: np.ndarray, lines: np.ndarray, source: str, fill: str | None) -> np.ndarray:
    """The numbers of column ``name`` in ``rows`` (gaps filled as the values' are)."""
    return _parse_values(frame[name].to_numpy()[rows], lines, source, fill)[0]


def parkinson_variance(
    high: np.ndarray, low: np.ndarray, lines: np.ndarray, name: str = "data", columns=("High", "Low")
) -> np.ndarray:
    """``(ln high - ln low)^2 / (4 ln 2)`` (T,); a non-positive price or a high below the low names its line."""
    bad = np.flatnonzero((low <= 0) | (high < low))
    if len(bad):
        i = bad[0]
        what = "a non-positive low" if low[i] <= 0 else "a high below the low"
        raise SeqlabError(
            f"{name}: line {lines[i]}: {what} ({columns[0]} {high[i]:g}, {columns[1]} {low[i]:g}); the range "
            "feature needs 0 < Low <= High"
        )
    return (np.log(high) - np.log(low)) ** 2 / (4 * np.log(2.0))


def _parse_dates(cells: np.ndarray, lines: np.ndarray, path: Path) -> np.ndarray:
    import pandas as pd

    parsed = pd.to_datetime(pd.Series(cells), format="mixed", errors="coerce", utc=True)
    # dates with a time zone in UTC, dates without one as they are
    dates = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    bad = np.flatnonzero(np.isnat(dates))
    if len(bad):
        raise SeqlabError(f"{path}: line {lines[bad[0]]}: cannot read {cells[bad[0]]!r} as a date")
    step = np.diff(dates)
    if len(step) and (step <= np.timedelta64(0)).any():
        i = int(np.flatnonzero(step <= np.timedelta64(0))[0]) + 1
        what = "repeats" if dates[i] == dates[i - 1] else "comes before"
        raise OptionError(
            f"{path}: line {lines[i]}: date {cells[i]} {what} the previous row's ({cells[i - 1]}, line "
            f"{lines[i - 1]}); sort the file by date and remove duplicates (or give {{0}} for several series)",
            "id_column",
        )
    return dates


def _parse_values(cells: np.ndarray, lines: np.ndarray, source: str, fill: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from text cells -> (values, the rows kept); gaps follow ``fill``, text is an error."""
    import pandas as pd

    text = pd.Series(cells, dtype=str).str.strip()
    missing = text.isin(["", "NA", "NaN", "nan", "null"]).to_numpy()
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64, copy=True)  # one pass
    bad = np.flatnonzero(~missing & ~np.isfinite(values))
    if len(bad):
        i = bad[0]
        what = "not a finite number" if np.isinf(values[i]) else "not a number"
        raise SeqlabError(f"{source}: line {lines[i]}: {cells[i]!r} is {what}")
    keep = np.ones(len(cells), dtype=bool)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        if fill is None:
            raise OptionError(
                f"{source}: line {lines[first]}: missing value ({int(missing.sum())} in all); "
                f"choose {{0}} {' / '.join(FILL_POLICIES)} or clean the file",
                "fill",
            )
        if missing.all():
            raise SeqlabError(f"{source}: every value is missing")
        if fill == "drop":
            keep = ~missing
        elif missing[0] and fill in ("ffill", "interpolate"):
            raise OptionError(
                f"{source}: line {lines[0]}: missing first value; nothing to fill it from (try {{0}} drop)", "fill"
            )
        elif fill == "ffill":
            for i in np.flatnonzero(missing):
                values[i] = values[i - 1]
        else:
            known = np.flatnonzero(~missing)
            values[missing] = np.interp(np.flatnonzero(missing), known, values[known])
    return values[keep], keep
