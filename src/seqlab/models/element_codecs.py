"""Element codecs: what a neural model needs to know about the data's kind, one codec per kind, in one place.

A model holds one codec as ``model.elements`` (an ``nn.Module``: its embedding and standardisation buffers are
saved with the model) and asks it, never the data's type, for: the embedding of its input, the start padding,
encode / decode between user data and element tensors, the head and the map of the network's output to the
head's parameters, the part of an element the head predicts (``target``), drawing the next element (``draw``),
``describe`` and the JSON that rebuilds it. ``make_elements(data, ...)`` picks the codec from what describes the
data:

- ``TextElements`` (a ``Vocabulary`` of characters) and ``MuLawElements`` (``MuLaw`` audio levels), both
  ``DiscreteElements`` over a ``Codec`` (``codec``; ``vocabulary`` or ``mu_law`` by kind): ids (T,) are
  embedded, a start symbol ``V`` pads before the sequence, and the head is ``Categorical(V)``.
- ``ScalarElements`` (``None``): each value is standardised with the training series' location and scale and
  embedded from ``(value, missing flag)`` (NaN is the start padding and marks a gap between series); the head
  (``Gaussian``, ``StudentT`` or ``GaussianMixture``) returns its parameters on the original scale. Past
  covariates (``covariates=C``, e.g. the traded volume beside a price): an element is then a vector
  ``(value, covariate_1 .. covariate_C)`` (shape ``(..., 1 + C)``); the covariates, standardised too, are extra
  inputs, and only the value is predicted. Their future is unknown, so forecasts carry the last observed
  covariates forward (persistence).
- ``FrameElements`` (a ``FrameLayout``): an element is a frame of ``D`` values (``(T, D)`` elements, e.g.
  5 ms vocoder frames, or several price columns modelled jointly), some of them binary (voicing). Each
  dimension is standardised with its own location and scale and the frame embedded from ``(values, missing
  flag)`` (a row of NaN is the start padding and marks a gap); the head is a ``FrameHead`` (a continuous head
  per dimension and ``Bernoulli`` for the binary ones), ``log_prob`` one value per frame. Drawn frames are
  clamped to each dimension's training range (``low``, ``high``, saved with the model: one extreme draw of an
  energy coefficient is a loud click), and the temperature may be given per named group of dimensions.

A model of a transformed series (``seqlab.transforms``: log, diff, log returns) carries its ``transform``,
saved with it, so forecasts come back on the scale of the data it was given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from seqlab.data.arrays import as_series
from seqlab.data.audio import MAX_SAMPLE_RATE, MuLaw
from seqlab.data.text import Vocabulary, encode_symbols
from seqlab.distributions import Categorical, FrameHead, GaussianMixture, Head, continuous_head
from seqlab.errors import SeqlabError, Unsupported

Codec = Vocabulary | MuLaw  # what maps discrete data to ids and back
MAX_FRAME_DIMS = 65_536  # values in one frame: vocoder frames hold tens, a checkpoint claiming more is refused


@dataclass
class FrameLayout:
    """What a frame of ``dims`` values is: which dimensions are ``binary`` (0 or 1, e.g. voicing) and named
    ``groups`` of dimensions (for sampling temperatures, e.g. ``{"f0": [0, 1], "envelope": [2, ..., 25]}``)."""

    dims: int
    binary: list[int] = field(default_factory=list)
    groups: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.dims, bool) or not isinstance(self.dims, int) or not 1 <= self.dims <= MAX_FRAME_DIMS:
            raise SeqlabError(f"a frame holds 1 to {MAX_FRAME_DIMS:,} values, got dims={self.dims!r}")
        if not isinstance(self.groups, dict):
            raise SeqlabError(f"groups must map names to lists of dimensions, got {type(self.groups).__name__}")
        self.binary = _dimensions("binary", self.binary, self.dims)
        self.groups = {str(name): _dimensions(f"group {name!r}", d, self.dims) for name, d in self.groups.items()}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FrameLayout:
        if not isinstance(data, dict):
            raise SeqlabError(f"frames must be an object, got {type(data).__name__}")
        return cls(data["dims"], data.get("binary", []), data.get("groups", {}))


DataDescription = Codec | FrameLayout | None  # what a codec is made from: None is a continuous series


def _dimensions(name: str, dims, D: int) -> list[int]:
    """Distinct integer dimensions in [0, D), sorted."""
    ok = isinstance(dims, (list, tuple)) and all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
    if not ok or len(set(dims)) != len(dims) or any(not 0 <= d < D for d in dims):
        raise SeqlabError(f"{name}: dimensions must be distinct integers in [0, {D}), got {dims!r}")
    return sorted(dims)


def zero_output(layer: nn.Linear, head: Head) -> None:
    """Start a continuous head at params 0: N(location, scale) of the training data (the i.i.d. model of the
    standardised series) until the data say otherwise. On a short series early stopping then keeps a model near
    that baseline instead of a random network's predictions (monthly prices: -0.04 instead of +0.18 nats/step
    against the random walk, docs/forecasting.md)."""
    nn.init.zeros_(layer.weight)
    if not isinstance(getattr(head, "per_dimension", head), GaussianMixture):  # equal components never part
        nn.init.zeros_(layer.bias)


class Elements(nn.Module):
    """The interface of a codec (see the module docstring); subclasses set ``head``, ``start`` and
    ``embedding`` and implement ``forward``, ``encode``, ``decode`` and ``describe``."""

    name: ClassVar[str] = "values"  # what one element is (SequenceModel.element_name)

    discrete: bool = False
    covariates: int = 0  # past covariates beside each value (ScalarElements only)
    input_noise: float = 0.0  # continuous codecs: training noise on the standardised inputs (``noisy``)
    head: Head
    start: float | int  # the padding value before the first element
    embedding: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elements (B, T, ...) -> embeddings (B, T, E)."""
        raise NotImplementedError

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        raise NotImplementedError

    def decode(self, x: torch.Tensor):
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def element_shape(self) -> tuple[int, ...]:
        """The shape of one element: () for ids and plain values."""
        return ()

    def padding(self, shape: tuple[int, ...], device=None) -> torch.Tensor:
        """The start padding, as elements of leading ``shape``."""
        dtype = torch.long if self.discrete else self.embedding.weight.dtype
        return torch.full(tuple(shape) + self.element_shape(), self.start, dtype=dtype, device=device)

    def head_params(self, raw: torch.Tensor) -> torch.Tensor:
        """The network's output (..., P) as the head's parameters on the data's scale."""
        return raw

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the head predicts of elements ``x`` (all of it, but for covariates)."""
        return x

    def init_output(self, layer: nn.Linear) -> None:
        """Initialise the output layer that emits the head's parameters: continuous heads start at
        ``zero_output``; a categorical head keeps torch's initialisation (``DiscreteElements``)."""
        zero_output(layer, self.head)

    def draw(self, params: torch.Tensor, temperature=1.0, top_k: int | None = None, generator=None) -> torch.Tensor:
        """The next element(s) drawn from the head's ``params``."""
        return self.head.sample(params, temperature, top_k, generator)

    def to_json(self) -> dict:
        """The entries of the model's config.json that rebuild this codec (``data_from_config``)."""
        return {}

    def noisy(self, standard: torch.Tensor) -> torch.Tensor:
        """Standardised input values, plus N(0, input_noise^2) noise in training mode (continuous codecs)."""
        if not (self.training and self.input_noise > 0):
            return standard
        return standard + self.input_noise * torch.randn_like(standard)

    def fit_statistics(self, x: np.ndarray) -> None:
        """Set the standardisation buffers from training elements ``x`` (NaN rows are gaps)."""
        raise Unsupported(f"{type(self).__name__} has no statistics to fit")


class DiscreteElements(Elements):
    """Ids of a discrete ``codec`` (``Codec``): embedded, ``Categorical(V)`` head, start symbol ``V``."""

    discrete = True

    def __init__(self, codec: Codec, embedding_dim: int, model: str = "model") -> None:
        super().__init__()
        self.codec, self.model_name = codec, model
        self.head = Categorical(len(codec))
        self.start = len(codec)
        self.embedding = nn.Embedding(len(codec) + 1, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)

    def init_output(self, layer: nn.Linear) -> None:
        pass  # torch's initialisation

    def to_json(self) -> dict:
        return {"vocabulary": self.codec.to_json()}  # the saved key predates mu-law; old runs still load


class TextElements(DiscreteElements):
    """Character ids of a text ``Vocabulary``."""

    name = "characters"

    @property
    def vocabulary(self) -> Vocabulary:
        return self.codec

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        return encode_symbols(data, self.codec, f"this {self.model_name}", unknown, source)

    def decode(self, x: torch.Tensor):
        return self.codec.decode(x.tolist())

    def describe(self) -> str:
        return f"vocabulary {len(self.codec)}"


class MuLawElements(DiscreteElements):
    """Mu-law audio level ids: as text ids, but encoded from and decoded to samples in [-1, 1]."""

    name = "samples"

    @property
    def mu_law(self) -> MuLaw:
        return self.codec

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        if isinstance(data, torch.Tensor) and not data.is_floating_point():
            return data.long()  # level ids already
        return self.codec.encode(data)

    def decode(self, x: torch.Tensor):
        return self.codec.decode(x)

    def describe(self) -> str:
        return self.codec.describe()


class ScalarElements(Elements):
    """A continuous value per element (optionally with ``covariates`` past covariates beside it), standardised
    by ``location`` and ``scale`` and embedded from ``(value, missing flag[, covariates])``; in training mode
    ``input_noise`` (a standard deviation in standardised units) is added to the value."""

    def __init__(
        self,
        embedding_dim: int,
        head: Head,
        location: float = 0.0,
        scale: float = 1.0,
        covariates: int = 0,
        model: str = "model",
        input_noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.head, self.covariates, self.model_name = head, covariates, model
        self.input_noise = input_noise
        self.start = float("nan")
        self.register_buffer("location", torch.tensor(float(location)))
        self.register_buffer("scale", torch.tensor(float(scale)))
        saved = covariates > 0  # no empty tensors in the checkpoints of models without covariates
        self.register_buffer("covariate_location", torch.zeros(covariates), persistent=saved)
        self.register_buffer("covariate_scale", torch.ones(covariates), persistent=saved)
        self.embedding = nn.Linear(2 + covariates, embedding_dim)

    def element_shape(self) -> tuple[int, ...]:
        return (1 + self.covariates,) if self.covariates else ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elements (...) or, with covariates, (..., 1 + C) -> embeddings (..., E)."""
        x, covariates = (x[..., 0], x[..., 1:]) if self.covariates else (x, None)
        missing = torch.isnan(x)
        values = torch.where(missing, torch.zeros_like(x), self.noisy((x - self.location) / self.scale))
        features = [values[..., None], missing.to(values.dtype)[..., None]]
        if covariates is not None:
            standard = (covariates - self.covariate_location) / self.covariate_scale
            features.append(torch.nan_to_num(standard, nan=0.0))  # a gap's covariates: the average
        return self.embedding(torch.cat(features, dim=-1).to(self.embedding.weight.dtype))

    def head_params(self, raw: torch.Tensor) -> torch.Tensor:
        return self.head.rescale(raw, self.location, self.scale)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 0] if self.covariates else x  # covariates are inputs only

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        if isinstance(data, torch.Tensor) and data.is_floating_point():
            return data.to(self.embedding.weight.dtype)  # elements already (NaN marks gaps between series)
        series = as_series(data, model=f"this {self.model_name}", source=source)
        return torch.from_numpy(series).to(self.embedding.weight.dtype)

    def decode(self, x: torch.Tensor):
        return x

    def describe(self) -> str:
        head = self.head.kind + (f" x {self.head.components}" if self.head.kind == "mixture" else "")
        extra = f", {self.covariates} covariate{'s' if self.covariates > 1 else ''}" if self.covariates else ""
        return f"continuous, {head} head{extra}"

    def fit_statistics(self, x: np.ndarray) -> None:
        """Location and scale: the mean and standard deviation of the values (NaN gaps ignored); with
        covariates, ``x`` is ``(T, 1 + C)`` and the covariates are standardised too."""
        C = self.covariates
        if C and (x.ndim != 2 or x.shape[1] != 1 + C):
            raise SeqlabError(f"{self.model_name} with {C} covariates takes (T, {1 + C}) elements, got {x.shape}")
        values = x[:, 0] if C else x
        source = "training series"
        y = np.concatenate([as_series(s, model=self.model_name, source=source) for s in _pieces(values)])
        with torch.no_grad():
            self.location.fill_(float(y.mean()))
            self.scale.fill_(float(y.std()) or 1.0)
            if C:
                self.covariate_location.copy_(torch.from_numpy(np.nanmean(x[:, 1:], axis=0)))
                self.covariate_scale.copy_(torch.from_numpy(np.nanstd(x[:, 1:], axis=0)).clamp_min(1e-12))


class FrameElements(Elements):
    """Frames (..., D) of ``layout.dims`` values: standardised per dimension (``location``, ``scale``: (D,)),
    embedded from ``(values (D), missing flag)``; a ``FrameHead``; draws clamped to ``[low, high]`` (D,)."""

    name = "frames"

    def __init__(
        self, layout: FrameLayout, embedding_dim: int, per_dimension: Head, model: str = "model", input_noise=0.0
    ) -> None:
        super().__init__()
        self.layout, self.model_name, self.input_noise = layout, model, input_noise
        D = layout.dims
        self.head = FrameHead(D, layout.binary, per_dimension)
        self.start = float("nan")
        self.register_buffer("location", torch.zeros(D))
        self.register_buffer("scale", torch.ones(D))
        big = torch.finfo(torch.float32).max  # no clamp until fit_statistics (and finite: checkpoints refuse inf)
        self.register_buffer("low", torch.full((D,), -big))
        self.register_buffer("high", torch.full((D,), big))
        self.embedding = nn.Linear(D + 1, embedding_dim)

    def element_shape(self) -> tuple[int, ...]:
        return (self.layout.dims,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (..., D) -> embeddings (..., E); a frame holding a NaN is missing (the start, a gap)."""
        missing = torch.isnan(x).any(-1, keepdim=True)  # (..., 1)
        values = torch.where(missing, torch.zeros_like(x), self.noisy((x - self.location) / self.scale))  # (..., D)
        return self.embedding(torch.cat([values, missing.to(values.dtype)], dim=-1).to(self.embedding.weight.dtype))

    def head_params(self, raw: torch.Tensor) -> torch.Tensor:
        return self.head.rescale(raw, self.location, self.scale)

    def encode(self, data, unknown: str = "error", source: str = "data") -> torch.Tensor:
        """Frames (T, D) from an array or tensor; a row of NaN marks a gap (e.g. between two recordings).
        ``None`` is no frame at all (an empty prompt)."""
        D = self.layout.dims
        if data is None or (isinstance(data, str) and data == ""):
            return torch.zeros((0, D), dtype=self.embedding.weight.dtype)
        if isinstance(data, str):
            raise SeqlabError(f"this {self.model_name} is a model of frames of {D} values; got text ({source})")
        x = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        if x.dtype.kind not in "fiu":
            raise SeqlabError(f"this {self.model_name} is a model of frames of {D} values; got {x.dtype} ({source})")
        if x.ndim != 2 or x.shape[1] != D:
            raise SeqlabError(f"this {self.model_name} takes frames (T, {D}), got shape {x.shape} ({source})")
        x = x.astype(np.float64)
        nan = np.isnan(x)
        partial = np.flatnonzero(nan.any(1) & ~nan.all(1))
        if len(partial):
            raise SeqlabError(f"{source}: row {partial[0]} is partly NaN; a gap is a whole row of NaN")
        bad = np.argwhere(np.isinf(x))
        if len(bad):
            raise SeqlabError(f"{source}: row {bad[0][0]}, column {bad[0][1]} is infinite; clean or fill it")
        if self.layout.binary:
            b = x[:, self.layout.binary]
            wrong = np.argwhere(~np.isnan(b) & (b != 0) & (b != 1))
            if len(wrong):
                row, k = wrong[0]
                column = self.layout.binary[k]
                raise SeqlabError(f"{source}: row {row}, column {column} is {b[row, k]}; a binary column holds 0 or 1")
        return torch.from_numpy(x).to(self.embedding.weight.dtype)

    def decode(self, x: torch.Tensor):
        return x

    def describe(self) -> str:
        per = self.head.per_dimension
        head = per.kind + (f" x {per.components}" if per.kind == "mixture" else "")
        binary = f" ({len(self.layout.binary)} binary)" if self.layout.binary else ""
        return f"frames of {self.layout.dims}{binary}, {head} head per dimension"

    def to_json(self) -> dict:
        return {"frames": self.layout.to_json()}

    def temperatures(self, temperature) -> float | torch.Tensor:
        """A temperature for every dimension from: a number (all), a sequence of ``D`` numbers, or a dict
        ``{group name or dimension index: temperature}`` (dimensions it does not name keep 1)."""
        D = self.layout.dims
        if isinstance(temperature, dict):
            t = torch.ones(D, dtype=torch.float64)
            for name, value in temperature.items():
                if name in self.layout.groups:
                    t[self.layout.groups[name]] = float(value)
                elif isinstance(name, int) and 0 <= name < D:
                    t[name] = float(value)
                else:
                    known = ", ".join(self.layout.groups) or "none"
                    raise SeqlabError(f"no group {name!r} of dimensions to set a temperature for (groups: {known})")
        elif isinstance(temperature, (int, float)):
            t = torch.tensor(float(temperature), dtype=torch.float64)
        else:
            t = torch.as_tensor(temperature, dtype=torch.float64).reshape(-1)
            if t.shape != (D,):
                raise SeqlabError(f"give one temperature or {D} (one per dimension), got {tuple(t.shape)}")
        if not bool(((t > 0) & torch.isfinite(t)).all()):
            raise SeqlabError(f"temperatures must be positive numbers, got {t.tolist()}")
        return t

    def draw(self, params: torch.Tensor, temperature=1.0, top_k: int | None = None, generator=None) -> torch.Tensor:
        """A frame (..., D) from the head, clamped to each dimension's training range ``[low, high]``."""
        x = self.head.sample(params, self.temperatures(temperature), None, generator)
        low, high = self.low.to(x.dtype).to(x.device), self.high.to(x.dtype).to(x.device)
        return torch.maximum(torch.minimum(x, high), low)

    def fit_statistics(self, x: np.ndarray) -> None:
        """Per dimension: location and scale (mean and standard deviation; a constant dimension gets scale 1)
        and the range ``[low, high]`` that draws are clamped to, over the frames that are not gaps."""
        x = self.encode(x, source="training frames").double().numpy()
        x = x[~np.isnan(x).any(1)]
        if len(x) == 0:
            raise SeqlabError(f"{self.model_name}: no training frame (every row is NaN)")
        sd = x.std(axis=0)
        with torch.no_grad():
            self.location.copy_(torch.from_numpy(x.mean(axis=0)))
            self.scale.copy_(torch.from_numpy(np.where(sd > 0, sd, 1.0)))
            self.low.copy_(torch.from_numpy(x.min(axis=0)))
            self.high.copy_(torch.from_numpy(x.max(axis=0)))


def make_elements(
    data: DataDescription, config, embedding_dim: int, model: str = "model", location: float = 0.0, scale: float = 1.0
) -> Elements:
    """The codec for ``data``: a ``Vocabulary``, ``MuLaw``, ``FrameLayout`` or ``None`` (a continuous series,
    standardised by ``location`` and ``scale`` until ``fit_statistics``);
    ``config`` gives the continuous head (``head``, ``components``), ``covariates`` and, where the config has
    it (``LatentARConfig``), ``input_noise``."""
    input_noise = getattr(config, "input_noise", 0.0)
    if input_noise and isinstance(data, (Vocabulary, MuLaw)):
        raise SeqlabError("input_noise applies to continuous data only; set it to 0 for text or mu-law audio")
    if isinstance(data, Vocabulary):
        return TextElements(data, embedding_dim, model)
    if isinstance(data, MuLaw):
        return MuLawElements(data, embedding_dim, model)
    per_value = continuous_head(config.head, config.components)
    if isinstance(data, FrameLayout):
        if config.covariates:
            raise SeqlabError("a model of frames models every column: covariates must be 0")
        return FrameElements(data, embedding_dim, per_value, model, input_noise)
    if data is None:
        return ScalarElements(embedding_dim, per_value, location, scale, config.covariates, model, input_noise)
    raise SeqlabError(f"unknown kind of data {type(data).__name__}: expected a Vocabulary, MuLaw or FrameLayout")


def data_from_config(config: dict) -> DataDescription:
    """What describes the data, from a saved model config (the inverse of ``Elements.to_json``)."""
    if "frames" in config:
        return FrameLayout.from_json(config["frames"])
    return codec_from_json(config.get("vocabulary"))


def codec_from_json(data) -> Codec | None:
    if data is None:
        return None
    if isinstance(data, dict):
        check_mu_law_json(data)
        return MuLaw.from_json(data)
    return Vocabulary.from_json(data)


MAX_MU_LAW_LEVELS = 2**16  # 16-bit audio has no more levels to tell apart


def check_mu_law_json(data: dict) -> None:
    """A saved mu-law codec is ``{"mu_law": levels, "sample_rate": Hz}``, integers within bounds: a tampered one
    is refused in one line before anything is built from it (a string, 0 or 10^9 levels was an internal error or
    a head of that size)."""
    if set(data) != {"mu_law", "sample_rate"}:
        raise SeqlabError(f"a mu-law codec holds mu_law and sample_rate, got the fields {sorted(data)}")
    for name, low, high in (("mu_law", 2, MAX_MU_LAW_LEVELS), ("sample_rate", 1, MAX_SAMPLE_RATE)):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SeqlabError(f"the mu-law codec's {name} must be an integer from {low} to {high}, got {value!r:.40}")


def _pieces(series) -> list:
    """A series with NaN gaps (between concatenated series) as its gap-free pieces."""
    x = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series, dtype=np.float64)
    if x.ndim != 1 or not np.isnan(x).any():
        return [series]
    pieces = [p[~np.isnan(p)] for p in np.split(x, np.flatnonzero(np.isnan(x)))]
    return [p for p in pieces if len(p)]
