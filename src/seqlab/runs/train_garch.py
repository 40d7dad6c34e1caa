"""``train --model garch``: fit a GARCH-family model (``seqlab.models.GARCH``) on a CSV series into a run directory.

No optimiser steps, no checkpoints: maximum likelihood on the training part (milliseconds), then the fitted
model is saved (``config.json``, ``model.safetensors``) and scored one step ahead on the held-out part, each
held-out value given every value before it, the training part included (the variance is a filter: starting it
afresh at the cut would score the backcast, not the model). ``training.json`` records the fit and the scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from seqlab import io
from seqlab.data.dataset import Dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.runs import run_directory
from seqlab.runs.run_directory import RunDirectory

GARCH_OPTIONS = ("vol", "dist", "mean", "lags")  # what TrainSpec.model may hold for a GARCH run


def one_series(dataset: Dataset, model: GARCH) -> tuple[np.ndarray, np.ndarray]:
    """The training and held-out parts as the model's elements: one series (GARCH pools no series: several are
    refused, naming them), with GARCH-X's exogenous variance beside it."""
    source = dataset.spec.source
    dataset.check_one_series("GARCH")
    train, valid = dataset.train.double().numpy(), dataset.valid.double().numpy()
    covariates = train.shape[1] - 1 if train.ndim == 2 else 0
    if covariates != model.num_covariates:
        if model.num_covariates:
            raise OptionError(
                f"{source}: {model.describe_spec()} needs one exogenous variance beside the values (give {{0}} range "
                f"or one {{1}} column); the data have {covariates} covariates",
                "features",
                "covariates",
            )
        raise OptionError(
            f"{source}: {model.describe_spec()} reads no covariates (the data have {covariates}); "
            "{0} garchx or gjrx puts one in the variance equation",
            "vol",
        )
    return train, valid if len(valid) else train[:0]


def held_out_scores(model: GARCH, train: np.ndarray, valid: np.ndarray) -> dict:
    """One-step scores of ``valid`` given ``train`` before it (the filter runs through both)."""
    log_probs = model.log_prob(np.concatenate([train, valid]))[len(train) :]
    return likelihood_scores(log_probs, "values", discrete=False)


def train_garch(
    dataset: Dataset, options: dict, run: RunDirectory, say: Callable[[str], None]
) -> tuple[GARCH, dict | None]:
    """Fit, save into ``run`` (committed once the model is written: an old run it replaces goes only then) and
    score; ``options``: ``GARCH_OPTIONS`` given. Returns (model, final scores)."""
    if dataset.kind != "series":
        raise SeqlabError(f"{dataset.spec.source}: {dataset.kind} data; GARCH models a series (give a CSV file)")
    try:
        model = GARCH(GARCHConfig.from_options(**options))
    except SeqlabError as e:
        raise OptionError(f"{{0}}: {e}", "vol") from None
    y, valid = one_series(dataset, model)
    source = dataset.spec.source
    say(f"seqlab: {model.describe_spec()}; data {source}: {len(y):,} training, {len(valid):,} held-out")
    t0 = time.perf_counter()
    try:
        model.fit(y)
    except SeqlabError as e:
        raise SeqlabError(f"{source}: {e}") from None
    seconds = time.perf_counter() - t0
    record = model.training_result
    if not record.converged:
        say(
            f"seqlab: warning: the optimiser stopped after {record.iterations} iterations without converging "
            f"({record.message}); the parameters are its last iterate"
        )
    model.trained_on(dataset)
    io.save(model, run.work)
    out = run.commit()
    final = {"fit_seconds": round(seconds, 4), "loglik": record.loglik, "train_values": len(y)}
    final |= {"converged": record.converged, "params": dict(zip(model.names, model.params.tolist(), strict=True))}
    final |= {"bse_robust": dict(zip(model.names, record.bse_robust, strict=True))}
    if len(valid):
        scores = held_out_scores(model, y, valid)
        final |= {f"valid_{k}": v for k, v in scores.items()} | {"valid_given": "the training part before it"}
    run_directory.write_final_scores(out, final)
    return model, final
