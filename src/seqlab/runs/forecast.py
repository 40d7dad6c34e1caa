"""``forecast``: a probabilistic forecast of a series with a trained model: quantiles per step, a fan chart."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from seqlab import io
from seqlab.atomic import check_parent_dir
from seqlab.base import Forecast
from seqlab.data.series import Series
from seqlab.data.spec import DataSpec, read_series
from seqlab.errors import OptionError, SeqlabError, Unsupported
from seqlab.limits import check_output_size
from seqlab.plots import fan_chart
from seqlab.runs import checkpoints, run_data
from seqlab.runs.report import csv_text, write_text


@dataclass
class ForecastSpec:
    model_dir: Path
    data: dict = field(default_factory=dict)  # DataSpec fields given (source, column, ...): else the model's
    series: str | None = None  # which series, with several (default: the first)
    horizon: int = 20
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    samples: int = 1000
    context: int | None = None  # condition on only the last N values
    seed: int = 0
    table: Path | None = None  # write the table to this CSV
    plot: Path | None = None  # write a fan chart to this PNG


@dataclass
class ForecastResult:
    series: Series  # the context the forecast was conditioned on
    forecast: Forecast
    rows: list[dict]  # step, q..., mean
    model: str  # the model's description
    written: list[Path] = field(default_factory=list)


def pick_series(series: list[Series], name: str | None) -> Series:
    if name is None:
        return series[0]
    for s in series:
        if s.name == name:
            return s
    raise SeqlabError(f"no series {name!r}; the data holds: {', '.join(s.name for s in series)}")


def data_spec_for(saved: DataSpec | None, given: dict, model_dir: Path) -> DataSpec:
    """The model's data spec with the given fields; another source keeps only the fill policy (and no
    covariates unless given): its columns are its own. The transform stays the model's (``check_encoding``)."""
    if saved is None:
        if "source" not in given:
            raise SeqlabError(f"{model_dir}: no record of its training data; give the data to condition on")
        return DataSpec(**given)
    saved.check_encoding(given)  # the model's transform, whatever the data
    if "source" in given and given["source"] != saved.source:
        return DataSpec(**{"fill": saved.fill, **given})
    if "source" not in given:
        saved = run_data.readable_data(saved, model_dir)  # a recorded local path is read only when named
    return replace(saved, **given)


def forecast(spec: ForecastSpec) -> ForecastResult:
    check_output_size("--samples x --horizon", (spec.samples, spec.horizon))  # before anything is read
    for path in (spec.table, spec.plot):
        check_parent_dir(path)
    model = io.load(spec.model_dir)
    if model.head.discrete:
        raise Unsupported(f"{spec.model_dir}: not a model of a series (train one on a CSV file)")
    data = data_spec_for(checkpoints.data_spec(spec.model_dir, model), spec.data, spec.model_dir)
    data.validate()
    series = pick_series(read_series(data), spec.series)
    if spec.context:
        if spec.context > len(series):
            raise OptionError(f"{{0}} {spec.context}: {series.source} has only {len(series)} rows", "context")
        series = series.tail_from(len(series) - spec.context)
    if model.transform is not None:
        model.transform.apply(series.values, series.source, series.lines)  # bad values: name their line
    result = model.forecast(series.values, spec.horizon, spec.samples, spec.quantiles, spec.seed, series.covariates)
    rows = [
        {
            "step": h + 1,
            **{f"q{q:g}": float(result.quantiles[q][h]) for q in spec.quantiles},
            "mean": float(result.mean[h]),
        }
        for h in range(spec.horizon)
    ]
    out = ForecastResult(series, result, rows, model.describe())
    if spec.table:
        write_text(spec.table, csv_text(rows))
        out.written.append(spec.table)
    if spec.plot:
        shown = min(len(series), max(5 * spec.horizon, 60))
        title = f"{series.source}: {spec.horizon}-step forecast, {spec.samples} sample paths"
        dates = series.dates
        fan_chart(series.values[-shown:], result.samples, spec.plot, title, dates)
        out.written.append(spec.plot)
    return out
