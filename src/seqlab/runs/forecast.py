"""``forecast``: a probabilistic forecast of a series with a trained model: quantiles per step, a fan chart; a
global model (``GlobalAR``) forecasts every series of a panel in one batched pass (``forecast_global``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from seqlab import io
from seqlab.atomic import check_parent_dir
from seqlab.base import Forecast
from seqlab.data.panel import Panel, load_panel
from seqlab.data.series import Series
from seqlab.data.spec import DataSpec, read_series
from seqlab.errors import OptionError, SeqlabError, Unsupported
from seqlab.limits import check_output_size
from seqlab.models.global_ar import GlobalAR
from seqlab.models.global_ar import point_forecast as global_point_forecast
from seqlab.plots import fan_chart
from seqlab.runs import checkpoints, run_data
from seqlab.runs.panel import season_phases
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


@dataclass
class PanelForecastResult:
    """A global model's forecast of every series of a panel."""

    source: str  # the panel's file
    ids: list[str]  # the series forecast, in the order of ``paths``
    paths: np.ndarray  # (N, S, horizon) sample paths
    rows: list[dict]  # id, step, median, q..., mean: one block of ``horizon`` rows per series (--series: its own)
    left_out: dict[str, str]  # id -> why the panel loader left it out
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
    if isinstance(model, GlobalAR):
        return forecast_global(spec, model)
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


# the data options that name a panel's columns: the others transform or split one series
PANEL_DATA_FIELDS = ("source", "column", "date_column", "id_column")


def forecast_global(spec: ForecastSpec, model: GlobalAR) -> PanelForecastResult:
    """Every series of the panel in ``spec.data`` (the model's training panel by default) forecast in one batched
    pass (``GlobalAR.forecast_panel``: series ``i`` draws with seed ``seed + i``), each as a block of rows: the
    median (the model's point forecast), the quantiles asked for and the mean per step ahead. ``spec.series``
    keeps one series' rows (its numbers are those of the whole panel's pass). A model with a series embedding
    forecasts only the series it was trained on."""
    if wrong := [k for k in spec.data if k not in PANEL_DATA_FIELDS]:
        slots = ", ".join(f"{{{i}}}" for i in range(len(wrong)))
        what = "not options" if len(wrong) > 1 else "not an option"
        raise OptionError(f"{slots}: {what} of a global model's forecast (a panel is read as given)", *wrong)
    if spec.plot and spec.series is None:
        raise OptionError("{0} draws one series of the panel: name it with {1}", "plot", "series")
    data = data_spec_for(checkpoints.data_spec(spec.model_dir, model), spec.data, spec.model_dir)
    data.validate()
    if data.kind != "series":
        raise SeqlabError(
            f"{data.source}: {data.kind} data; a global model forecasts a panel of series (give a CSV file)"
        )
    m = model.config.season
    panel = load_panel(data.source, data.id_column, data.column, data.date_column, m)
    if spec.series is not None and spec.series not in panel.ids:
        why = f" (left out: {panel.left_out[spec.series]})" if spec.series in panel.left_out else ""
        shown = ", ".join(panel.ids[:10]) + (f" and {len(panel) - 10:,} more" if len(panel) > 10 else "")
        raise SeqlabError(f"{panel.source}: no series {spec.series!r} to forecast{why}; the panel holds: {shown}")
    order = embedded_order(spec.model_dir, model, panel)
    check_output_size("series x --samples x --horizon", (len(order), spec.samples, spec.horizon))
    values, offsets, phases = panel_part(panel, order, m, spec.context)
    paths = model.forecast_panel(values, offsets, spec.horizon, spec.samples, spec.seed, phases)  # (N, S, h)
    ids = [panel.ids[i] for i in order]
    medians = global_point_forecast(paths)  # (N, h)
    rows = []
    for k, ident in enumerate(ids):
        if spec.series is not None and ident != spec.series:
            continue
        quantiles = np.quantile(paths[k], spec.quantiles, axis=0)  # (Q, h)
        mean = paths[k].mean(axis=0)
        for h in range(spec.horizon):
            row = {"id": ident, "step": h + 1, "median": float(medians[k, h])}
            row |= {f"q{q:g}": float(quantiles[j, h]) for j, q in enumerate(spec.quantiles)}
            rows.append(row | {"mean": float(mean[h])})
    out = PanelForecastResult(panel.source, ids, paths, rows, dict(panel.left_out), model.describe())
    if spec.table:
        write_text(spec.table, csv_text(rows))
        out.written.append(spec.table)
    if spec.plot:
        k = ids.index(spec.series)
        history = values[offsets[k] : offsets[k + 1]]
        shown = min(len(history), max(5 * spec.horizon, 60))
        title = f"{panel.source}, {spec.series}: {spec.horizon}-step forecast, {spec.samples} sample paths"
        fan_chart(history[-shown:], paths[k], spec.plot, title, None)
        out.written.append(spec.plot)
    return out


def embedded_order(model_dir: Path, model: GlobalAR, panel: Panel) -> list[int]:
    """The panel's series in the order to forecast them: as loaded, or, for a model with a series embedding, the
    order it was trained on (training.json's ``meta.panel.ids``), which must be the same series (a model saved
    without a run records no ids: its panel is taken as loaded, and ``forecast_panel`` refuses another count)."""
    if not model.config.series_embedding:
        return list(range(len(panel)))
    saved = checkpoints.training_record(model_dir).get("meta", {}).get("panel", {}).get("ids")
    if saved is None:  # saved from Python (seqlab.save): the panel as loaded, of as many series as it embeds
        return list(range(len(panel)))
    if not isinstance(saved, list):
        raise SeqlabError(f"{model_dir}/training.json: unexpected content (meta.panel.ids is not a list of ids)")
    saved = [str(i) for i in saved]
    if sorted(saved) != sorted(panel.ids):
        missing = [i for i in saved if i not in set(panel.ids)]
        new = [i for i in panel.ids if i not in set(saved)]
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + (
            [f"not trained on {', '.join(new[:5])}"] if new else []
        )
        raise SeqlabError(
            f"{panel.source}: {model_dir} embeds the {len(saved):,} series it was trained on and forecasts only "
            f"those; this panel's ids differ ({'; '.join(parts)})"
        )
    where = {ident: i for i, ident in enumerate(panel.ids)}
    return [where[ident] for ident in saved]


def panel_part(
    panel: Panel, order: list[int], season: int, context: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, offsets, phases) of the panel's series in ``order``, each cut to its last ``context`` values when
    given (its season position moved on by the values cut)."""
    lengths = panel.lengths[order]
    kept = np.minimum(lengths, context) if context else lengths
    values = np.concatenate([panel.series(i)[len(panel.series(i)) - n :] for i, n in zip(order, kept, strict=True)])
    offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
    phases = (season_phases([panel.starts[i] for i in order], season) + lengths - kept) % season
    return values, offsets, phases
