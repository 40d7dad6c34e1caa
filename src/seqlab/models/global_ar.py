"""The global latent AR model (DeepAR: Salinas et al. 2020): ONE recurrent network for every series of a panel.

Series ``i`` is seen through its scale ``s_i`` and the network predicts the next scaled value::

    z_t = x_t / s_i                                   s_i = mean |x| over the window's context (below)
    H_t = Net(H_{t-1}, f_t)                           the recurrent cell(s) over features f_t of the past
    z_t ~ P(z_t | theta_t),  theta_t = b_t + W_out H_t + b_out       b_t: the seasonal naive z_{t-m} (location only)
    x_t = s_i z_t                                     so the head's location and scale are s_i times z's

**Scale.** ``s_i`` is the mean absolute value of the context (the values the network is conditioned on before
the origin), DeepAR's scale without its ``+ 1``: scaling every value of a series by ``c > 0`` then scales ``s_i``
by ``c``, leaves every input ``z`` as it was and scales every forecast by exactly ``c`` (the ``+ 1`` breaks that
for levels near 1, and one network serves series whose levels differ by 10^4). The mean absolute seasonal
difference (MASE's scale) is exactly equivariant too but makes inputs of a smooth series huge (a level of 1000
that moves by 10 a season would be inputs near 100), so the mean absolute value it is. A context of zeros has
scale 1. ``log s_i`` is not an input (DeepAR's optional feature): that would break the equivariance.

**Features** ``f_t`` (D = 15, plus an optional learned embedding of the series id, off by default)::

    z_{t-1}, z_{t-m}, z_{t-m-1}, z_{t-2m}   the last value, the lags at one and two seasons, and the last value
                                            a season back (z_{t-1} - z_{t-m-1}: the level's change over a season)
    4 missing flags                         1 where that value is before the series' start (its input is 0)
    log1p(t)                                the series' age: t is the index of the predicted value in its series
    sin, cos(2 pi k p / m), k = 1..3        p = (phase_i + t) mod m, the position in the season (harmonics with
                                            k > m / 2 are 0)

``phase_i`` is the season position of series ``i``'s first value (from its start date; 0 when unknown, then the
position is relative to the series' start and only the lags carry the season across series).

**Baseline.** ``baseline="seasonal"`` (the default) adds ``b_t = z_{t-m}`` (``z_{t-1}`` where no season back is
known, 0 at the start) to the head's location: with the output layer started at zero the untrained network is the
seasonal naive forecast, and training learns corrections to it, which a short CPU budget reaches;
``baseline="none"`` is DeepAR's plain output. The head's scale starts at the data's spread around the baseline
(``start_head_scale``), not at 1.

**Training.** A window is ``C + h`` consecutive predicted values of one series (``C = context_length``, ``h =
horizon``) ending at a point drawn uniformly in the series' fit part; before the series' start it is padded
(every input missing, nothing scored). Its scale comes from its first ``C`` values, and the loss is the mean
negative log-likelihood of the scaled values over the whole window, teacher forced (the state starts at zero at
the window's start, as it does at the forecast's context). **Windows are weighted uniformly over series**
(``weighting="series"``): draw a series, then an end point; the panel's score (mean MASE) weights every series
alike, so training does too, and a few long series do not drown the short ones (``weighting="length"``,
proportional to the number of windows, is DeepAR's; docs/forecasting.md compares them). AdamW, warmup and a
cosine schedule, gradient clipping and early stopping are the shared ``Trainer``'s; one step draws ``batch_size``
windows, seeded by ``(seed, step)``.

**Validation.** The last ``h`` values of every series' training part (those of at least ``h + 2`` values) are cut
off before training: the network never trains on them. Every ``eval_every`` steps the network forecasts them from
the end of each fit part, and the CRPS of 32 sample paths (on the scaled values, fixed seeds, the mean over series
and steps ahead) chooses the checkpoint kept (and stops early with ``patience``): the multi-step forecast that the
panel is scored on. The teacher-forced one-step NLL (``validation="nll"``, DeepAR's) is cheaper but picks networks
whose paths drift (docs/forecasting.md). The held-out part the runner scores is never given to ``fit_panel`` at
all. After training, forecasts condition on the whole training part, validation window included (no refit on it).

**Forecasts** (``forecast_panel``): every series' last ``C`` values teacher forced in one batched pass, the state
repeated for ``S`` sample paths, then ``h`` batched steps over all ``N x S`` paths, each drawing ``z`` by inverting
the head's CDF at uniforms from series ``i``'s own generator (seed ``seed + i``: a series' paths do not depend on
the other series in the panel), the draws fed back as the next inputs and lags. Point forecast: the paths' median
per step (``point_forecast``), the minimiser of the expected absolute error that MASE scores and robust to the
Student-t's heavy tails.

As a ``SequenceModel`` of ONE series: ``fit(series)`` trains on it as a panel of one; ``log_prob``, ``step`` and
``sample`` treat a series at the fixed scale ``series_scale`` (set by ``fit`` from the training series' last ``C``
values, 1 after ``fit_panel``) and series embedding 0; ``sample_paths`` / ``forecast`` take the context's own
scale, exactly as ``forecast_panel`` does for a panel of one.

Shapes: B batch (windows, or series x samples), T time, D features, H hidden, P head parameters, N series,
S sample paths.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
from torch import nn

from seqlab.base import ConformanceCase, SequenceModel
from seqlab.data.arrays import as_series
from seqlab.distributions import CONTINUOUS_HEADS, Head, LogTransformed, continuous_head
from seqlab.errors import SeqlabError
from seqlab.models.element_codecs import zero_output
from seqlab.models.elements import inference
from seqlab.recurrent import CELLS, Recurrent
from seqlab.training import Callback, Progress, Trainer, TrainerConfig, TrainingResult

HARMONICS = 3  # sin / cos pairs of the season position
FEATURES = 9 + 2 * HARMONICS  # 4 values, 4 missing flags, the age, the harmonics
BASELINES = ("seasonal", "none")
WEIGHTINGS = ("series", "length")
VALIDATIONS = ("crps", "nll")
TRANSFORMS = ("auto", "log", "none")
VALIDATION_PATHS = 32  # sample paths per series at each validation (CRPS)
TAIL = 1e-3  # the draws invert the head's CDF at uniforms in [TAIL, 1 - TAIL] (module docstring: why)
# what fit / fit_panel may change: settings of the data and the training, never the network's shapes
FIT_OPTIONS = (
    "season",
    "transform",
    "context_length",
    "horizon",
    "baseline",
    "weighting",
    "validation",
    "steps",
    "time_budget",
    "lr",
    "batch_size",
    "eval_every",
    "patience",
    "average",
    "warmup_steps",
    "seed",
)


@dataclass
class GlobalARConfig:
    cell: str = "lstm"  # rnn, lstm or gru
    hidden_size: int = 40  # DeepAR's 2 x 40 LSTM
    num_layers: int = 2
    dropout: float = 0.1  # between layers
    head: str = "studentt"  # gaussian, studentt or mixture
    components: int = 3  # mixture components
    series_embedding: int = 0  # width of a learned embedding of the series id (0: none)
    num_series: int = 0  # rows of that embedding (set by fit_panel)
    season: int = 1  # m: values per season
    horizon: int = 1  # h: the forecast horizon trained for (a window's prediction part, the validation window)
    context_length: int = 0  # C: values conditioned on before the origin; 0: max(2 h, 2 m, 8)
    baseline: str = "seasonal"  # see the module docstring
    # "log": the network sees log(x / s) (positive panels only), "none": x / s; "auto": log where every value of the
    # panel fit on is positive (fit_panel decides and keeps its choice); the module docstring says why
    transform: str = "auto"
    weighting: str = "series"  # windows uniform over series, or "length": proportional to a series' windows
    validation: str = "crps"  # what picks the checkpoint: "crps" of sample paths, or the one-step "nll"
    steps: int = 6000  # optimizer steps (0: the time budget alone); about 3.5 minutes on M3 on one 2-core CPU thread
    time_budget: float = 0.0  # seconds of training (0: none)
    lr: float = 3e-3  # DeepAR: 1e-3; short CPU budgets reach a better network at 3e-3 (docs/forecasting.md)
    batch_size: int = 64
    warmup_steps: int = 20
    eval_every: int = 200  # steps between validations (one costs as much as about 150 steps on M3)
    patience: int = 0  # stop after this many validations without improvement (0: never)
    # validate and keep an exponential moving average of the weights with this decay (0: the weights as they are);
    # the decay at step k is min(average, (1 + k) / (10 + k)) so early averages do not lag far behind
    average: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise SeqlabError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.head not in CONTINUOUS_HEADS:
            raise SeqlabError(f"unknown head {self.head!r}; choose one of {', '.join(CONTINUOUS_HEADS)}")
        positive = ("hidden_size", "num_layers", "components", "season", "horizon", "batch_size", "eval_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise SeqlabError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("series_embedding", "num_series", "context_length", "steps", "warmup_steps", "patience"):
            if getattr(self, name) < 0:
                raise SeqlabError(f"{name} must be a non-negative integer, got {getattr(self, name)}")
        if self.series_embedding and not self.num_series:
            raise SeqlabError("series_embedding needs num_series (fit_panel sets it)")
        if not 0.0 <= self.dropout < 1.0:
            raise SeqlabError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SeqlabError(f"lr must be a positive number, got {self.lr}")
        if not 0.0 <= self.average < 1.0:
            raise SeqlabError(f"average must be a decay in [0, 1), got {self.average}")
        if not (self.time_budget >= 0 and math.isfinite(self.time_budget)):
            raise SeqlabError(f"time_budget must be a non-negative number of seconds, got {self.time_budget}")
        if self.baseline not in BASELINES:
            raise SeqlabError(f"unknown baseline {self.baseline!r}; choose one of {', '.join(BASELINES)}")
        if self.weighting not in WEIGHTINGS:
            raise SeqlabError(f"unknown weighting {self.weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
        if self.transform not in TRANSFORMS:
            raise SeqlabError(f"unknown transform {self.transform!r}; choose one of {', '.join(TRANSFORMS)}")
        if self.validation not in VALIDATIONS:
            raise SeqlabError(f"unknown validation {self.validation!r}; choose one of {', '.join(VALIDATIONS)}")

    @property
    def context(self) -> int:
        """C, the values conditioned on before the origin (``context_length``, or its default)."""
        return self.context_length or max(2 * self.horizon, 2 * self.season, 8)

    def trainer_config(self) -> TrainerConfig:
        """The shared Trainer's settings (a progress bar takes them: ``seqlab.runs.progress.TrainingBar``)."""
        return TrainerConfig(
            steps=self.steps or None,
            time_budget=self.time_budget or None,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
            eval_every=self.eval_every,
            patience=self.patience,
            seed=self.seed,
        )


# -- a panel's values, gathered by (series, index) -------------------------------------------------------------


class PanelValues:
    """Series ``i`` of a panel as ``values[offsets[i]:offsets[i + 1]]``; ``gather`` reads any indices, NaN outside
    a series (before its start, after its end), so a window never reads another series' values."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray, phases: np.ndarray | None = None) -> None:
        values, offsets = np.asarray(values, dtype=np.float64), np.asarray(offsets, dtype=np.int64)
        check_panel(values, offsets)
        self.padded = np.append(values, np.nan)  # the last slot: what an index outside its series reads
        self.starts, self.lengths = offsets[:-1], np.diff(offsets)
        self.phases = np.zeros(len(self.lengths), np.int64) if phases is None else np.asarray(phases, np.int64)
        if self.phases.shape != self.lengths.shape:
            raise SeqlabError(f"phases must be one per series ({len(self.lengths)}), got shape {self.phases.shape}")

    def __len__(self) -> int:
        return len(self.lengths)

    def gather(self, series: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``x[series[b], t[b, j]]`` (B, T), NaN where ``t`` is outside the series."""
        inside = (t >= 0) & (t < self.lengths[series][:, None])
        return self.padded[np.where(inside, self.starts[series][:, None] + t, len(self.padded) - 1)]


def check_panel(values: np.ndarray, offsets: np.ndarray) -> None:
    if values.ndim != 1 or offsets.ndim != 1 or len(offsets) < 2:
        raise SeqlabError(f"a panel is values (sum,) and offsets (N + 1,), got {values.shape} and {offsets.shape}")
    if offsets[0] != 0 or offsets[-1] != len(values) or np.any(np.diff(offsets) < 1):
        raise SeqlabError("offsets must start at 0, end at len(values) and grow: every series holds a value")
    if not np.isfinite(values).all():
        raise SeqlabError(f"value {int(np.flatnonzero(~np.isfinite(values))[0])} of the panel is not a finite number")


@dataclass
class Windows:
    """Windows of ``T`` predicted values, one per row: their inputs and targets, scaled."""

    features: torch.Tensor  # (B, T, D) float64
    baseline: torch.Tensor  # (B, T) float64: b_t, the head's location offset
    z: torch.Tensor  # (B, T) float64: the scaled targets, NaN where unknown
    scale: torch.Tensor  # (B,) float64: s_i
    series: torch.Tensor  # (B,) int64: which series (the embedding's row)
    history: torch.Tensor  # (B, 2m) float64: z of the 2m values before the window's end (sampling goes on from it)


def lag_steps(m: int) -> tuple[int, ...]:
    """How far back each value input reaches: 1, m, m + 1 and 2m (all within the 2m values a state keeps)."""
    return (1, m, m + 1, 2 * m)


def features(lags: torch.Tensor, t: torch.Tensor, phase: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``f_t`` (B, T, D) and the baseline ``b_t`` (B, T) from the scaled ``lags`` (B, T, 4) of ``lag_steps(m)``
    (NaN: unknown), the indices ``t`` (B, T) and the series' ``phase`` (B, 1); all float64."""
    missing = torch.isnan(lags)
    known = torch.where(missing, torch.zeros_like(lags), lags)
    age = torch.log1p(t.clamp(min=0).to(torch.float64))
    p = torch.remainder(phase + t, m).to(torch.float64)
    waves = []
    for k in range(1, HARMONICS + 1):
        on = float(k <= m // 2)
        angle = 2 * math.pi * k * p / m
        waves += [on * torch.sin(angle), on * torch.cos(angle)]
    f = torch.cat([known, missing.to(torch.float64), age[..., None], torch.stack(waves, -1)], dim=-1)
    baseline = torch.where(missing[..., 1], known[..., 0], known[..., 1])  # z_{t-m}, else z_{t-1} (0 if unknown)
    return f, baseline


def window_batch(
    panel: PanelValues,
    series: np.ndarray,
    ends: np.ndarray,
    length: int,
    context: int,
    m: int,
    scale: np.ndarray | None = None,
    log: bool = False,
) -> Windows:
    """The windows of ``length`` predicted values ending before ``ends`` (B,) in ``series`` (B,), scaled by the mean
    absolute value of their first ``context`` values (those inside the series; if none, of every known one), or by
    the ``scale`` (B,) given."""
    t = ends[:, None] - length + np.arange(length)  # (B, T) the predicted values' indices
    x = panel.gather(series, t)
    lags = np.stack([panel.gather(series, t - k) for k in lag_steps(m)], -1)  # (B, T, 4)
    if scale is None:
        scale = _mean_abs(x[:, :context])
        fallback = np.isnan(scale)
        scale[fallback] = _mean_abs(x[fallback])
        scale = np.where(np.isnan(scale) | (scale == 0), 1.0, scale)
    history = to_z(panel.gather(series, ends[:, None] - 2 * m + np.arange(2 * m)), scale[:, None], log)
    f, baseline = features(
        torch.from_numpy(to_z(lags, scale[:, None, None], log)),
        torch.from_numpy(t),
        torch.from_numpy(panel.phases[series])[:, None],
        m,
    )
    return Windows(
        f,
        baseline,
        torch.from_numpy(to_z(x, scale[:, None], log)),
        torch.from_numpy(scale),
        torch.from_numpy(series),
        torch.from_numpy(history),
    )


def to_z(x: np.ndarray, scale: np.ndarray, log: bool) -> np.ndarray:
    """The values ``x`` as the network sees them: ``x / s``, or ``log(x / s)`` (NaN stays NaN)."""
    return np.log(x / scale) if log else x / scale


def from_z(z: torch.Tensor, scale: torch.Tensor, log: bool) -> torch.Tensor:
    """``to_z``'s inverse: the values on the series' own scale."""
    return scale * (torch.exp(z) if log else z)


def _mean_abs(x: np.ndarray) -> np.ndarray:
    """The mean absolute value of each row's known values (B,); NaN for a row without any."""
    known = ~np.isnan(x)
    count = known.sum(axis=1)
    total = np.where(known, np.abs(x), 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def holdout_split(values: np.ndarray, offsets: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The M-competitions' split: every series but its last ``horizon`` values (``train_values``, ``train_offsets``)
    and those values, ``held_out (N, horizon)``. Every series needs more than ``horizon`` values."""
    values, offsets = np.asarray(values, dtype=np.float64), np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    if np.any(lengths <= horizon):
        raise SeqlabError(f"series {int(np.argmax(lengths <= horizon))} has no more than {horizon} values to hold out")
    keep = np.ones(len(values), bool)
    held = offsets[1:, None] - horizon + np.arange(horizon)  # (N, horizon) indices into values
    keep[held.ravel()] = False
    return values[keep], offsets - np.arange(len(offsets)) * horizon, values[held]


@dataclass
class Validation:
    """What the validation scores: the last ``h`` values of the training parts of ``series``."""

    windows: Windows  # (n, C + h) windows ending at those training parts' ends: teacher forced (NLL), targets
    fit: PanelValues  # the fit parts: the CRPS's paths start at their ends
    series: np.ndarray  # (n,) the series validated


def crps_of_paths(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The CRPS (n, h) of the empirical distribution of paths ``z`` (n, S, h) at ``y`` (n, h):
    ``E|X - y| - E|X - X'| / 2``, the second term from the sorted draws, ``(2 / S^2) sum_i (2i - S - 1) x_(i)``."""
    S = z.shape[1]
    weights = (2 * torch.arange(1, S + 1, dtype=z.dtype) - S - 1)[None, :, None]
    spread = 2 * (weights * z.sort(dim=1).values).sum(dim=1) / S**2
    return (z - y[:, None]).abs().mean(dim=1) - spread / 2


def validation_split(panel: PanelValues, horizon: int) -> tuple[PanelValues, np.ndarray]:
    """(the fit parts, the series validated): every series of at least ``horizon + 2`` values loses its last
    ``horizon`` values to the validation window (the other series train on all of theirs and are not validated)."""
    validated = np.flatnonzero(panel.lengths >= horizon + 2)
    lengths = panel.lengths.copy()
    lengths[validated] -= horizon
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = np.concatenate([panel.padded[s : s + n] for s, n in zip(panel.starts, lengths, strict=True)])
    return PanelValues(values, offsets, panel.phases), validated


def point_forecast(paths: np.ndarray) -> np.ndarray:
    """The point forecast (N, horizon) of sample paths (N, S, horizon): their median per step (module docstring)."""
    return np.median(paths, axis=1)


# -- the model -------------------------------------------------------------------------------------------------


class GlobalAR(nn.Module, SequenceModel):
    """One recurrent network for a whole panel (module docstring). ``forward(f (B, T, D), series (B,), state) ->
    (raw (B, T, P), state)``; the head's parameters of the scaled values are ``rescale(raw, b_t, 1)``.

    Example::

        >>> values, offsets, phases = seasonal_panel(30, 60, season=12)
        >>> model = GlobalAR(GlobalARConfig(hidden_size=16, season=12, horizon=6, steps=50))
        >>> model = model.fit_panel(values, offsets, phases=phases)
        >>> paths = model.forecast_panel(values, offsets, 6, 100, phases=phases)
        >>> paths.shape
        (30, 100, 6)
    """

    kind = "global_ar"
    config_class = GlobalARConfig
    state_batch_dim = 1  # h (and C) are (L, B, H)

    def __init__(self, config: GlobalARConfig | None = None) -> None:
        super().__init__()
        config = config or GlobalARConfig()
        config.validate()
        self.config = config
        self.z_head = continuous_head(config.head, config.components)  # of the values the network sees
        E = config.series_embedding
        self.embedding = nn.Embedding(config.num_series, E) if E else None
        self.rnn = Recurrent(
            config.cell, FEATURES + E, config.hidden_size, config.num_layers, dropout=config.dropout, forget_init="1"
        )
        self.out = nn.Linear(config.hidden_size, self.z_head.num_params)
        zero_output(self.out, self.z_head)  # untrained: the baseline's location, scale 1 (in units of s_i)
        self.register_buffer("series_scale", torch.tensor(1.0, dtype=torch.float64))

    @property
    def head(self) -> Head:
        """The head of the values themselves, which ``step``'s parameters are of: ``z_head``, or the law of
        ``exp`` of a ``z_head`` draw where the network sees logs (``transform="log"``)."""
        return LogTransformed(self.z_head) if self.log else self.z_head

    @property
    def log(self) -> bool:
        """Whether the network sees log(x / s) (``transform="log"``) rather than x / s."""
        return self.config.transform == "log"

    # -- the network ------------------------------------------------------------------------------------------
    def forward(self, f: torch.Tensor, series: torch.Tensor | None = None, state=None):
        """Features ``f`` (B, T, D) of series ``series`` (B,) (None: embedding 0) -> raw head outputs (B, T, P)."""
        dtype = self.out.weight.dtype
        f = f.to(dtype=dtype, device=self.out.weight.device)
        if self.embedding is not None:
            e = (
                self.embedding(series.to(f.device))
                if series is not None
                else torch.zeros(f.shape[0], self.embedding.embedding_dim, dtype=dtype, device=f.device)
            )
            f = torch.cat([f, e[:, None].expand(-1, f.shape[1], -1)], dim=-1)  # (B, T, D + E)
        H, state = self.rnn(f, state)  # (B, T, H)
        return self.out(H), state  # (B, T, P)

    def scaled_params(self, raw: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
        """The head's parameters of the scaled values ``z``: the network's output, its location moved by ``b_t``."""
        if self.config.baseline == "none":
            return raw
        return self.z_head.rescale(raw, baseline.to(raw.dtype).to(raw.device), 1.0)

    def window_nll(self, w: Windows, scored: torch.Tensor | None = None) -> torch.Tensor:
        """The mean NLL of the known scaled targets of windows ``w`` (where ``scored`` (B, T) too, if given)."""
        raw, _ = self(w.features, w.series)
        params = self.scaled_params(raw, w.baseline)  # (B, T, P)
        z = w.z.to(params.dtype).to(params.device)
        known = ~torch.isnan(z) if scored is None else ~torch.isnan(z) & scored.to(z.device)
        nll = self.z_head.nll(params, torch.where(known, z, torch.zeros_like(z)))  # the NaNs replaced: 0 x NaN is NaN
        return torch.where(known, nll, torch.zeros_like(nll)).sum() / known.sum().clamp(min=1)

    @torch.no_grad()
    def start_head_scale(self, w: Windows) -> None:
        """Start the head's scale at the robust spread of the scaled targets around the baseline in windows ``w``
        (their median absolute deviation / 0.6745) instead of 1: Adam moves the log-scale bias by about ``lr`` a
        step, so from 1 to a typical 0.05 takes thousands of steps at lr 1e-3, spent on a plateau at the seasonal
        naive forecast."""
        base = w.baseline if self.config.baseline == "seasonal" else torch.zeros_like(w.baseline)
        known = ~torch.isnan(w.z)
        spread = float((w.z - base)[known].abs().median()) / 0.6745 if bool(known.any()) else math.nan
        if math.isfinite(spread) and spread > 0:
            bias = self.out.bias
            bias.copy_(self.z_head.rescale(bias.double(), 0.0, spread).to(bias.dtype))

    # -- a panel ------------------------------------------------------------------------------------------------
    def fit_panel(
        self,
        values: np.ndarray,
        offsets: np.ndarray,
        season: int | None = None,
        phases: np.ndarray | None = None,
        callbacks: Sequence[Callback] = (),
        **options,
    ) -> GlobalAR:
        """Train on every series of the panel ``values (sum,) float64, offsets (N + 1,) int64`` (their training
        parts: nothing held out may be in them), the last ``horizon`` values of each series of at least ``horizon
        + 2`` cut off for validation. ``season`` (m) and ``options`` (``FIT_OPTIONS``: ``horizon``, ``steps``,
        ``time_budget``, ``lr``, ``batch_size``, ``seed``, ...) update the config; ``phases (N,)``: the season
        position of each series' first value; ``callbacks``: the Trainer's (``callback(trainer, progress)``).
        The training record is kept in ``training_result``; returns the model, in inference mode."""
        self._update_config(season, options)
        c = self.config
        full = PanelValues(values, offsets, phases)
        if c.transform == "auto":
            self.config = c = replace(c, transform="log" if bool(np.all(full.padded[:-1] > 0)) else "none")
        self._check_positive(full)
        N, h = len(full), c.horizon
        if self.embedding is not None and self.embedding.num_embeddings != N:
            self.config = c = replace(c, num_series=N)
            self.embedding = nn.Embedding(N, c.series_embedding).to(self.out.weight)
        fit, validated = validation_split(full, h)
        valid = None
        if len(validated):  # the windows end at the training parts' ends: their last h values are the validation's
            windows = window_batch(
                full, validated, full.lengths[validated], c.context + h, c.context, c.season, log=self.log
            )
            valid = Validation(windows, fit, validated)
        sampler = WindowSampler(fit, c)
        if not self.out.weight.any():  # a network never trained: its head starts at the data's spread
            self.start_head_scale(sampler.batch(0))
        trainer = PanelTrainer(self, c.trainer_config(), callbacks=callbacks)
        self.training_result = trainer.fit_windows(sampler, valid)
        self.eval()
        return self

    @inference
    def forecast_panel(
        self,
        values: np.ndarray,
        offsets: np.ndarray,
        horizon: int,
        num_samples: int,
        seed: int = 0,
        phases: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sample paths (N, S, horizon) float64 of the ``horizon`` values after the end of every series of the
        panel, on each series' own scale; series ``i`` draws from a generator seeded ``seed + i``."""
        if horizon <= 0 or num_samples <= 0:
            raise SeqlabError(f"horizon and num_samples must be positive, got {horizon} and {num_samples}")
        panel = PanelValues(values, offsets, phases)
        self._check_positive(panel)
        if self.embedding is not None and self.embedding.num_embeddings != len(panel):
            raise SeqlabError(f"this model embeds {self.embedding.num_embeddings} series; the panel holds {len(panel)}")
        z, scale = self._sample_z(panel, np.arange(len(panel)), horizon, num_samples, seed)
        return from_z(z, scale[:, None, None], self.log).numpy()

    def _sample_z(
        self, panel: PanelValues, series: np.ndarray, horizon: int, S: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(scaled paths (n, S, horizon) after the end of each of ``series`` (n,), their scales (n,)): the last
        ``C`` values teacher forced, then one batched step per value ahead (module docstring)."""
        n, m, C = len(series), self.config.season, self.config.context
        w = window_batch(panel, series, panel.lengths[series], C, C, m, log=self.log)
        _, state = self(w.features, w.series)  # the context, teacher forced: (n, ...) states
        state = _repeat_state(state, S)  # (n S, ...): row i S + s is path s of series i
        history = w.history.repeat_interleave(S, 0)  # (n S, 2m) z of the values before t
        t = torch.from_numpy(panel.lengths[series]).repeat_interleave(S)  # (n S,) the index predicted next
        phase = torch.from_numpy(panel.phases[series]).repeat_interleave(S)
        ids = w.series.repeat_interleave(S) if self.embedding is not None else None
        generators = [torch.Generator().manual_seed(seed + int(i)) for i in series]
        z = torch.empty(n * S, horizon, dtype=torch.float64)
        for k in range(horizon):
            params, state = self._advance(history, t, phase, ids, state)  # (n S, P)
            u = torch.stack([torch.rand(S, generator=g, dtype=torch.float64) for g in generators]).reshape(-1)
            z[:, k] = self.z_head.quantile(params.double(), u.clamp(TAIL, 1 - TAIL).to(params.device)).cpu()
            history = torch.cat([history[:, 1:], z[:, k : k + 1]], dim=1)
            t = t + 1
        return z.reshape(n, S, horizon), w.scale

    def _advance(self, history: torch.Tensor, t: torch.Tensor, phase: torch.Tensor, ids, state):
        """One step of every row: the features of value ``t`` (B,) from the scaled ``history`` (B, 2m) of the
        values before it, through the network; (the head's parameters of z_t (B, P), the new state)."""
        m = self.config.season
        lags = torch.stack([history[:, -k] for k in lag_steps(m)], -1)[:, None]  # (B, 1, 4)
        f, baseline = features(lags, t[:, None], phase[:, None], m)
        raw, state = self(f, ids, state)
        return self.scaled_params(raw[:, 0], baseline[:, 0]), state

    @inference
    def validation_score(self, valid: Validation) -> float:
        """What picks the checkpoint (lower is better), on the scaled values of the validation windows:
        ``validation="crps"``: the CRPS of ``VALIDATION_PATHS`` sample paths from the end of each fit part (fixed
        seeds: every validation draws the same uniforms), the mean over series and steps ahead, the multi-step
        forecast that is scored; ``"nll"``: the one-step NLL, teacher forced."""
        h = self.config.horizon
        if self.config.validation == "nll":
            scored = torch.zeros(valid.windows.z.shape, dtype=torch.bool)
            scored[:, -h:] = True
            return float(self.window_nll(valid.windows, scored))
        z, _ = self._sample_z(valid.fit, valid.series, h, VALIDATION_PATHS, seed=0)
        return float(crps_of_paths(z, valid.windows.z[:, -h:]).mean())

    @inference
    def last_values_log_densities(
        self, values: np.ndarray, offsets: np.ndarray, phases: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The one-step log densities ``log p(x_t | x_<t)`` (n, horizon), on the values' own scale, of the last
        ``horizon`` values of each series of at least ``horizon + 2`` (n of them, their indices returned first),
        teacher forced in the windows the validation scores (``fit_panel``'s, given the same training parts): for a
        network trained on these parts, out-of-sample scores of the values its validation window held back (which
        picked its checkpoint). The panel pool weights the network by them (``seqlab.runs.panel``)."""
        c = self.config
        panel = PanelValues(values, offsets, phases)
        self._check_positive(panel)
        _, validated = validation_split(panel, c.horizon)
        w = window_batch(
            panel, validated, panel.lengths[validated], c.context + c.horizon, c.context, c.season, log=self.log
        )
        raw, _ = self(w.features, w.series)
        params = self.scaled_params(raw, w.baseline)[:, -c.horizon :]
        z = w.z[:, -c.horizon :]
        log_density = -self.z_head.nll(params, z.to(params.dtype)).double().cpu()
        x = from_z(z, w.scale[:, None], self.log)
        log_jacobian = -torch.log(x) if self.log else -torch.log(w.scale)[:, None]  # |dz / dx|: 1 / x or 1 / s
        return validated, (log_density + log_jacobian).numpy()

    def _check_positive(self, panel: PanelValues) -> None:
        if self.log and np.any(panel.padded[:-1] <= 0):
            first = int(np.flatnonzero(panel.padded[:-1] <= 0)[0])
            series = int(np.searchsorted(panel.starts, first, side="right") - 1)
            raise SeqlabError(
                f"transform log needs positive values: series {series} holds {panel.padded[first]:g} at index "
                f"{first - panel.starts[series]}; use transform none"
            )

    def _update_config(self, season: int | None, options: dict) -> None:
        for name in options:
            if name not in FIT_OPTIONS:
                shaped = name in {f.name for f in fields(GlobalARConfig)}
                why = f"{name} shapes the network; set it in GlobalARConfig" if shaped else ""
                raise SeqlabError(why or f"fit: got an unexpected keyword argument {name!r}")
        if season is not None:
            options = options | {"season": season}
        config = replace(self.config, **options)
        config.validate()
        self.config = config

    # -- SequenceModel: one series ------------------------------------------------------------------------------
    def fit(self, train, valid=None, callbacks: Sequence[Callback] = (), phase: int = 0, **options) -> GlobalAR:
        """Train on one series (a panel of one; ``options`` as ``fit_panel``'s) and keep its scale as
        ``series_scale``. ``valid`` must be None: the validation window is cut from the end of ``train``."""
        if valid is not None:
            raise SeqlabError(
                "GlobalAR cuts its validation window from the end of the training series; give valid=None"
            )
        y = as_series(train, model="GlobalAR", source="training data")
        self.fit_panel(y, np.array([0, len(y)]), phases=np.array([phase]), callbacks=callbacks, **options)
        scale = _mean_abs(y[None, -self.config.context :])[0]
        with torch.no_grad():
            self.series_scale.fill_(float(scale) if scale > 0 else 1.0)
        return self

    @inference
    def log_prob(self, x) -> torch.Tensor:
        """``log P(x_t | x_<t)`` (T,) of one series from its start, at the scale ``series_scale``, one pass."""
        y = self.encode(x).double().numpy()
        if not len(y):
            return torch.zeros(0, dtype=torch.float64)
        s = float(self.series_scale)
        panel = PanelValues(y, np.array([0, len(y)]))
        self._check_positive(panel)
        w = window_batch(
            panel, np.zeros(1, np.int64), np.array([len(y)]), len(y), 0, self.config.season, np.array([s]), self.log
        )
        raw, _ = self(w.features)
        params = self.scaled_params(raw, w.baseline)[0]  # (T, P)
        log_jacobian = -torch.log(torch.from_numpy(y)) if self.log else -math.log(s)  # |dz / dx|: 1 / x or 1 / s
        return -self.z_head.nll(params, w.z[0].to(params.dtype)) + log_jacobian

    def initial_state(self):
        """(the network's state (None: zeros), z of the last 2m values (1, 2m), the index predicted next (1,))."""
        history = torch.full((1, 2 * self.config.season), math.nan, dtype=torch.float64)
        return None, history, torch.zeros(1, dtype=torch.int64)

    @inference
    def step(self, x_prev, state):
        """``x_prev`` (the value at the state's index; None: the start) in, the head's parameters (P,) of the next
        value on the series' scale (``series_scale``) and the new state out."""
        rnn_state, history, t = state
        s = float(self.series_scale)
        if x_prev is not None:
            x = torch.as_tensor(x_prev, dtype=torch.float64).reshape(1, 1)
            if self.log and not bool(x > 0):
                raise SeqlabError(f"transform log needs positive values, got {float(x):g}")
            z = torch.log(x / s) if self.log else x / s
            history, t = torch.cat([history[:, 1:], z], dim=1), t + 1
        params, rnn_state = self._advance(history, t, torch.zeros_like(t), None, rnn_state)
        return self.head.rescale(params[0], 0.0, s), (rnn_state, history, t)

    def sample_paths(self, context, horizon: int, num_samples: int, temperature: float = 1.0, seed: int | None = None):
        """(S, horizon) paths after ``context`` (n,): ``forecast_panel`` on a panel of this one series."""
        if temperature != 1.0:
            raise SeqlabError("GlobalAR draws at temperature 1 only (by inverting the head's CDF)")
        y = as_series(context, model="GlobalAR", source="context")
        paths = self.forecast_panel(y, np.array([0, len(y)]), horizon, num_samples, 0 if seed is None else seed)
        return torch.from_numpy(paths[0])

    def point_forecast(self, context, horizon: int, num_samples: int = 500, seed: int = 0) -> np.ndarray:
        """The median (horizon,) of ``num_samples`` paths after ``context``."""
        return np.median(self.sample_paths(context, horizon, num_samples, seed=seed).numpy(), axis=0)

    def describe(self) -> str:
        c = self.config
        n = sum(p.numel() for p in self.parameters())
        embedding = f", series embedding {c.series_embedding}" if c.series_embedding else ""
        return (
            f"GlobalAR({c.cell}, {c.num_layers} x {c.hidden_size}, {c.head} head, season {c.season}, horizon "
            f"{c.horizon}, context {c.context}, baseline {c.baseline}{embedding}, {n:,} parameters)"
        )

    def to_config(self) -> dict:
        return {"config": asdict(self.config)}

    @classmethod
    def from_config(cls, config: dict) -> GlobalAR:
        return cls(GlobalARConfig(**config["config"]))

    @classmethod
    def conformance_cases(cls) -> list[ConformanceCase]:
        tiny = {"hidden_size": 6, "season": 4, "horizon": 3, "batch_size": 4, "eval_every": 3, "warmup_steps": 1}
        fit = {"steps": 3}
        return [
            ConformanceCase("lstm, studentt", "series", lambda y: cls(GlobalARConfig(**tiny)), fit),
            ConformanceCase(
                "gru, 2 layers, gaussian, no baseline",
                "series",
                lambda y: cls(GlobalARConfig(cell="gru", num_layers=2, head="gaussian", baseline="none", **tiny)),
                fit,
            ),
            ConformanceCase(
                "rnn, mixture, series embedding",
                "series",
                lambda y: cls(
                    GlobalARConfig(cell="rnn", head="mixture", components=2, series_embedding=2, num_series=1, **tiny)
                ),
                fit,
            ),
        ]


def ensemble_paths(
    models: Sequence[GlobalAR],
    values: np.ndarray,
    offsets: np.ndarray,
    horizon: int,
    num_samples: int,
    seed: int = 0,
    phases: np.ndarray | None = None,
) -> np.ndarray:
    """Sample paths (N, S, horizon) of an equal-weight mixture of ``models`` (networks trained with other seeds):
    the S paths split as evenly as the count allows, member ``k`` drawing its share with ``forecast_panel``'s seed
    ``seed + k N`` (series ``i`` of member ``k``: ``seed + k N + i``, so no two draw from the same generator).
    One member gives its own ``forecast_panel``. The seeds' spread on M3 (docs/forecasting.md) is as large as
    most choices of the model; the mixture averages it away."""
    if not models or num_samples < len(models):
        raise SeqlabError(f"an ensemble of {len(models)} models needs at least one path each, got {num_samples}")
    N = len(offsets) - 1
    shares = [num_samples // len(models) + (k < num_samples % len(models)) for k in range(len(models))]
    parts = [
        model.forecast_panel(values, offsets, horizon, share, seed + k * N, phases)
        for k, (model, share) in enumerate(zip(models, shares, strict=True))
    ]
    return np.concatenate(parts, axis=1)


def _repeat_state(state, n: int):
    """Each row of a state (L, B, H) (or a tuple of them) repeated ``n`` times: (L, B n, H)."""
    if isinstance(state, tuple):
        return tuple(_repeat_state(s, n) for s in state)
    return state.repeat_interleave(n, dim=1)


# -- training ---------------------------------------------------------------------------------------------------


class WindowSampler:
    """Training windows of a panel's fit parts: step ``k`` draws ``batch_size`` of them from ``(seed, k)``."""

    def __init__(self, panel: PanelValues, config: GlobalARConfig) -> None:
        self.panel, self.config = panel, config
        h = config.horizon
        self.first_end = np.minimum(h + 1, panel.lengths)  # a window scores at least one value after its context
        windows = panel.lengths - self.first_end + 1
        self.weights = None if config.weighting == "series" else windows / windows.sum()

    def batch(self, step: int) -> Windows:
        c, panel = self.config, self.panel
        rng = np.random.default_rng((c.seed, step))
        series = rng.choice(len(panel), size=c.batch_size, p=self.weights)
        span = panel.lengths[series] - self.first_end[series] + 1
        ends = self.first_end[series] + (rng.random(c.batch_size) * span).astype(np.int64)
        return window_batch(panel, series, ends, c.context + c.horizon, c.context, c.season, log=c.transform == "log")


@contextlib.contextmanager
def _weights(model: nn.Module, weights: list[torch.Tensor] | None):
    """``model`` with its parameters swapped for ``weights`` inside the block (None: as they are)."""
    if weights is None:
        yield
        return
    own = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(w)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, w in zip(model.parameters(), own, strict=True):
                p.copy_(w)


class PanelTrainer(Trainer):
    """The shared ``Trainer`` (AdamW, warmup and cosine schedule, clipping, validation, early stopping, the best
    weights kept, callbacks) on windows drawn across a panel instead of contiguous streams. One process."""

    def fit_windows(self, sampler: WindowSampler, valid: Windows | None) -> TrainingResult:
        if self.world > 1:
            raise SeqlabError("GlobalAR trains in one process (no torchrun)")
        c = self.config
        progress = Progress()
        self._clock = (time.perf_counter(), 0.0)
        self.model.train()
        stopped = self._finished(progress, False)
        decay = self.model.config.average
        average = [p.detach().clone() for p in self.model.parameters()] if decay else None
        while not stopped:
            self.window_step(sampler, progress)
            if average is not None:  # the moving average of the weights (config.average)
                rate = 1.0 - min(decay, (1 + progress.step) / (10 + progress.step))
                with torch.no_grad():
                    for kept, p in zip(average, self.model.parameters(), strict=True):
                        kept.lerp_(p, rate)
            for callback in self.callbacks:
                callback(self, progress)
            time_up = self._out_of_time(progress.elapsed)
            budget_spent = c.steps is not None and progress.step >= c.steps
            if progress.step % c.eval_every == 0 or budget_spent or time_up or self.stop_requested:
                with _weights(self.model, average):  # validated and kept: the average, when there is one
                    stopped = self.validate_and_checkpoint(progress, valid, None)
            stopped = stopped or ("interrupted" if self.stop_requested else self._finished(progress, time_up))
        self.checkpoints.end(self)
        return TrainingResult.of(progress, stopped)

    def window_step(self, sampler: WindowSampler, progress: Progress) -> None:
        """One optimizer step on the windows of ``progress.step``."""
        c, model = self.config, self.model
        lr = self.learning_rate(progress.step, progress.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        windows = sampler.batch(progress.step)
        torch.manual_seed(c.seed * 1_000_003 + progress.step * 7_919)  # dropout masks
        self.optimise(model.window_nll(windows), progress, lr, int((~torch.isnan(windows.z)).sum()))

    def validation_nll(self, valid: Validation, limit: int | None) -> float:
        """The validation score (``GlobalAR.validation_score``: CRPS or NLL), which the Trainer records as
        ``valid_nll``."""
        return self.model.validation_score(valid)
