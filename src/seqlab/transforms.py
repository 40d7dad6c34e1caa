"""Transforms of a series, stored with the model and inverted exactly on its output.

    log          y_t = log x_t                  (x_t > 0)         inverse x_t = exp y_t
    diff         y_t = x_t - x_{t-1}            (one value fewer) inverse x_t = x_{t-1} + y_t, from the last x
    log_return   log, then diff: y_t = log(x_t / x_{t-1})
    standardize  y_t = (x_t - m) / s            m, s: mean and standard deviation of the training values

A ``Transform`` is a chain of these steps, written ``"log_return,standardize"``. Forecasts made on the
transformed scale come back to the data's scale through ``invert(future, context)``: the differencing steps
need the context's last values, which is why the context is passed in on the original scale.
"""

from __future__ import annotations

import numpy as np

from seqlab.errors import OptionError, SeqlabError

STEPS = ("log", "diff", "standardize")
ALIASES = {"log_return": ("log", "diff"), "none": ()}
TRANSFORMS = (*STEPS, *ALIASES)


class Transform:
    """A chain of transform steps; ``fit`` learns what ``standardize`` needs from the training series.

    Example::

        >>> t = Transform.parse("log_return").fit(np.array([1.0, 2.0, 4.0]))
        >>> t.apply(np.array([1.0, 2.0, 4.0]))
        array([0.69314718, 0.69314718])
        >>> t.invert(np.array([0.0, np.log(2.0)]), context=np.array([1.0, 2.0, 4.0]))
        array([4., 8.])
    """

    def __init__(self, steps: list[str] | tuple[str, ...] = (), location: float = 0.0, scale: float = 1.0) -> None:
        for step in steps:
            if step not in STEPS:
                raise SeqlabError(f"unknown transform {step!r}; choose from {', '.join(TRANSFORMS)}")
        self.steps, self.location, self.scale = list(steps), float(location), float(scale)

    @classmethod
    def parse(cls, spec: str | None) -> Transform:
        """``"log_return,standardize"`` -> the chain log, diff, standardize; ``None`` or ``""``: identity."""
        steps: list[str] = []
        for name in (spec or "").split(","):
            name = name.strip()
            if not name:
                continue
            if name not in TRANSFORMS:
                raise SeqlabError(f"unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")
            steps += ALIASES.get(name, (name,))
        return cls(steps)

    @property
    def lost(self) -> int:
        """Values lost at the start of a series: one per ``diff``."""
        return self.steps.count("diff")

    def fit(self, series: np.ndarray | list[np.ndarray]) -> Transform:
        """Learn ``standardize``'s mean and scale from the training series (one array or several)."""
        if "standardize" in self.steps:
            before = self.steps[: self.steps.index("standardize")]
            pieces = [Transform(before).apply(s) for s in (series if isinstance(series, list) else [series])]
            values = np.concatenate(pieces)
            self.location, self.scale = float(values.mean()), float(values.std()) or 1.0
        return self

    def apply(self, x: np.ndarray, source: str = "series", rows: np.ndarray | None = None) -> np.ndarray:
        """The transformed series; ``rows`` (the file's line numbers) make errors point at the bad value."""
        y = np.asarray(x, dtype=np.float64)
        for step in self.steps:
            if step == "log":
                bad = np.flatnonzero(~(y > 0))
                if len(bad):
                    where = f"line {rows[bad[0]]}" if rows is not None and len(rows) == len(y) else f"row {bad[0]}"
                    raise OptionError(
                        f"{source}: {where} is {y[bad[0]]:g}; the log transform needs positive values "
                        f"({len(bad)} are not); use {{0}} diff instead, or clean the data",
                        "transform",
                    )
                y = np.log(y)
            elif step == "diff":
                y = np.diff(y)
                rows = rows[1:] if rows is not None else None
            else:
                y = (y - self.location) / self.scale
        return y

    def invert(self, future: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Values ``future (..., h)`` on the transformed scale, following ``context`` (original scale), back on
        the original scale. Exact: ``invert(apply(x)[k:], x[:k + lost])`` is ``x[k + lost:]``."""
        context = np.asarray(context, dtype=np.float64)
        if len(context) < self.lost:
            raise SeqlabError(f"the context needs at least {self.lost} values to undo the differencing")
        levels = [context]  # the context at the input of every step
        for step in self.steps[:-1]:
            levels.append(Transform([step], self.location, self.scale).apply(levels[-1]))
        y = np.asarray(future, dtype=np.float64)
        for step, level in zip(reversed(self.steps), reversed(levels[: len(self.steps)]), strict=True):
            if step == "log":
                y = np.exp(y)
            elif step == "diff":
                y = level[-1] + np.cumsum(y, axis=-1)
            else:
                y = y * self.scale + self.location
        return y

    def __str__(self) -> str:
        return ",".join(self.steps) or "none"

    def to_json(self) -> dict:
        return {"steps": self.steps, "location": self.location, "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict) -> Transform:
        return cls(data["steps"], data["location"], data["scale"])
