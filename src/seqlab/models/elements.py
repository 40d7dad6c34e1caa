"""The neural models' common base: ``ElementsModel`` (encode, decode, log_prob, sampling and forecasting through
the model's codec, ``seqlab.models.element_codecs``), the ``inference`` decorator and the head's validation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace

import numpy as np
import torch
from torch import nn

from seqlab.base import Forecast, SequenceModel, check_forecast
from seqlab.data.audio import MuLaw
from seqlab.data.dataset import Dataset
from seqlab.data.text import TextPart, Vocabulary
from seqlab.data.vocoder import VocoderLayout
from seqlab.distributions import CONTINUOUS_HEADS
from seqlab.errors import SeqlabError
from seqlab.models.element_codecs import (
    FrameElements,
    FrameLayout,
    MuLawElements,
    TextElements,
    data_from_config,
    make_elements,
)
from seqlab.training import Callback, Trainer, TrainerConfig
from seqlab.transforms import Transform


def inference(method: Callable) -> Callable:
    """Run a model's ``method`` in inference mode: ``eval()`` (no dropout) and no gradient, the mode restored
    after. ``step`` and ``sample_paths`` use it, so streaming right after ``fit`` is deterministic."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            if was_training:
                self.train(True)

    return run


def validate_head(config) -> None:
    """The ``head``, ``components`` and ``covariates`` fields that every neural model's config carries."""
    if config.covariates < 0:
        raise SeqlabError(f"covariates must be a non-negative integer, got {config.covariates}")
    if config.head not in CONTINUOUS_HEADS:
        raise SeqlabError(f"unknown head {config.head!r}; choose one of {', '.join(CONTINUOUS_HEADS)}")
    if config.components <= 0:
        raise SeqlabError(f"components must be a positive integer, got {config.components}")


class ElementsModel(nn.Module, SequenceModel):
    """What the windowed neural models share: an ``Elements`` codec, a config dataclass, the ``Trainer``,
    persistence, batched sample paths.

    Subclasses set ``config_class`` and build their network in ``__init__(data, config, location, scale)``
    after calling ``self.setup_elements(...)``; ``data`` is a ``Vocabulary``, ``MuLaw``, ``FrameLayout`` or
    ``None`` (a continuous series), and the codec made from it (``self.elements``) is the one place that knows
    which: ``vocabulary``, ``mu_law`` and ``frame_layout`` hold it for that kind and ``None`` for the others.
    They build their output layer with ``self.head.num_params`` outputs."""

    config_class: type

    def setup_elements(self, data, config, embedding_dim: int, location: float, scale: float) -> None:
        config.validate()
        self.config = config
        self.elements = make_elements(data, config, embedding_dim, type(self).__name__, location, scale)
        self.discrete, self.head = self.elements.discrete, self.elements.head
        self.element_name = self.elements.name

    @property
    def vocabulary(self) -> Vocabulary | None:
        """The text vocabulary of a model of characters (as the n-gram models'); ``None`` for other elements."""
        return self.elements.vocabulary if isinstance(self.elements, TextElements) else None

    @property
    def mu_law(self) -> MuLaw | None:
        """The mu-law levels of a model of mu-law audio; ``None`` for other elements."""
        return self.elements.mu_law if isinstance(self.elements, MuLawElements) else None

    @property
    def frame_layout(self) -> FrameLayout | None:
        """The layout of a model of frames (vocoder frames, joint price columns); ``None`` for other elements."""
        return self.elements.layout if isinstance(self.elements, FrameElements) else None

    @property
    def num_covariates(self) -> int:
        return self.elements.covariates

    def encode(self, data, *, unknown: str = "error", source: str = "data") -> torch.Tensor:
        return self.elements.encode(data, unknown, source)

    def decode(self, x: torch.Tensor):
        return self.elements.decode(x)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the head predicts of elements ``x`` (the ``Trainer`` and ``log_prob`` score it)."""
        return self.elements.target(x)

    def draw(self, params: torch.Tensor, temperature=1.0, top_k: int | None = None, generator=None) -> torch.Tensor:
        """The next element from ``step``'s params: the head's draw, through the codec (frames: temperatures
        per group, clamped to the training range)."""
        return self.elements.draw(params, temperature, top_k, generator)

    def fit(self, train, valid=None, callbacks: Sequence[Callback] = (), **options) -> ElementsModel:
        """Train with the shared ``Trainer`` (``options`` are ``TrainerConfig`` fields; ``callbacks`` are the
        Trainer's, e.g. the caller's progress bar); its record is kept in ``training_result``. Returns the model,
        in inference mode."""
        try:
            config = TrainerConfig(**options)
        except TypeError as e:
            raise SeqlabError(f"fit: {e}".replace(".__init__()", "")) from None
        unknown = "map" if self.discrete and isinstance(valid, str | TextPart) else "error"
        valid_x = None if valid is None else self.encode(valid, unknown=unknown, source="validation data")
        trainer = Trainer(self, config, callbacks=callbacks)
        self.training_result = trainer.fit(self.encode(train, source="training data"), valid_x)
        self.eval()
        return self

    @inference
    def sample_paths(self, context, horizon, num_samples, temperature=1.0, seed=None) -> torch.Tensor:
        """All paths at once: the context in one teacher-forced pass, then one batched step per element.
        (S, horizon), or (S, horizon, D) for frames."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        start = self.start_element()
        x_prev = torch.cat([start, context.to(start.dtype).to(start.device)[None]], dim=1)  # (1, 1 + n)
        params, state = self(x_prev, None)
        known = context[-1, 1:].to(start.dtype).to(start.device) if self.elements.covariates else None
        batch_dim = getattr(self, "state_batch_dim", 0)
        state = _expand_state(state, batch_dim, num_samples)
        params = params[:, -1].expand(num_samples, -1)  # (S, P)
        paths = []
        for _ in range(horizon):
            x = self.draw(params.cpu(), temperature, None, generator)  # (S,) or (S, D)
            paths.append(x)
            x_next = x[:, None].to(start.dtype).to(start.device)  # (S, 1[, D])
            if known is not None:  # the future covariates are unknown: carry the last ones forward
                x_next = torch.cat([x_next[..., None], known.expand(num_samples, 1, -1)], dim=-1)
            params, state = self(x_next, state)
            params = params[:, 0]
        return torch.stack(paths, dim=1)  # (S, horizon[, D])

    def forecast(
        self,
        context,
        horizon: int,
        num_samples: int = 500,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        seed: int | None = 0,
        covariates=None,
    ) -> Forecast:
        """``SequenceModel.forecast``; a model of frames takes ``context (n, D)`` and gives sample paths
        ``(S, horizon, D)``, quantiles and mean ``(horizon, D)`` per dimension."""
        if not isinstance(self.elements, FrameElements):
            return super().forecast(context, horizon, num_samples, quantiles, seed, covariates)
        check_forecast(horizon, num_samples, quantiles)
        if covariates is not None:
            raise SeqlabError(f"this {type(self).__name__} of frames takes no covariates")
        frames = self.encode(context, source="context")
        paths = self.sample_paths(frames, horizon, num_samples, seed=seed).double().numpy()  # (S, horizon, D)
        return Forecast(paths, {q: np.quantile(paths, q, axis=0) for q in quantiles}, paths.mean(axis=0))

    def start_element(self) -> torch.Tensor:
        """The padding that stands before the first element, as a (1, 1) input."""
        return self.elements.padding((1, 1), next(self.parameters()).device)

    def element_input(self, x_prev) -> torch.Tensor:
        """One element (or ``None``: the start of a sequence) as a (1, 1) input to ``forward``."""
        start = self.start_element()
        if x_prev is None:
            return start
        return torch.as_tensor(x_prev, dtype=start.dtype, device=start.device).reshape(start.shape)

    @classmethod
    def for_series(cls, series, config=None):
        """A continuous model standardised by the series' mean and standard deviation (NaN gaps ignored);
        with ``config.covariates``, ``series`` is ``(T, 1 + C)`` and the covariates are standardised too."""
        x = series.detach().cpu().numpy() if isinstance(series, torch.Tensor) else np.asarray(series, dtype=np.float64)
        model = cls(None, config)
        model.elements.fit_statistics(x)
        return model

    @classmethod
    def for_frames(
        cls,
        frames,
        config=None,
        binary: Sequence[int] = (),
        groups: dict[str, list[int]] | None = None,
    ):
        """A model of frames ``(T, D)`` (``binary``: the 0/1 columns; ``groups``: named sets of columns for
        temperatures), standardised per dimension by the frames' mean and standard deviation and clamped to
        their range when sampling (rows of NaN: gaps, ignored)."""
        x = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if x.ndim != 2:
            raise SeqlabError(f"{cls.__name__}.for_frames takes frames (T, D), got shape {x.shape}")
        model = cls(FrameLayout(int(x.shape[1]), list(binary), dict(groups or {})), config)
        model.elements.fit_statistics(x)
        return model

    @classmethod
    def for_dataset(cls, dataset: Dataset, config):
        """A fresh model of ``dataset``'s kind, recording the data it is a model of (``trained_on``): a vocabulary
        of the training text, mu-law levels, vocoder frames (voicing binary, the layout's groups carrying the
        sampling temperatures), or a standardised series (with its covariates and transform)."""
        if dataset.encoding == "text":
            model = cls(Vocabulary.from_text(dataset.train), config)
        elif dataset.encoding == "mu_law":
            model = cls(MuLaw(dataset.rate), config)
        elif dataset.encoding == "vocoder":
            groups = VocoderLayout.from_json(dataset.spec.vocoder).groups
            model = cls.for_frames(dataset.train.numpy(), config, binary=groups["voicing"], groups=groups)
        else:  # a series, or raw audio samples
            if dataset.train.dim() == 2:  # (T, 1 + C): past covariates or features beside each value
                config = replace(config, covariates=dataset.train.shape[1] - 1)
            model = cls.for_series(dataset.train, config)
        return model.trained_on(dataset)

    def to_config(self) -> dict:
        out = {"config": asdict(self.config), **self.elements.to_json()}
        if self.transform is not None:
            out["transform"] = self.transform.to_json()
        return out

    @classmethod
    def from_config(cls, config: dict):
        model = cls(data_from_config(config), cls.config_class(**config["config"]))
        if "transform" in config:
            model.transform = Transform.from_json(config["transform"])
        return model


def _expand_state(state, batch_dim: int, n: int):
    """A carried state of batch 1 repeated to batch ``n`` (tensors or tuples of them)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(_expand_state(s, batch_dim, n) for s in state)
    sizes = [-1] * state.dim()
    sizes[batch_dim] = n
    return state.expand(*sizes).contiguous()
