"""``train --model garch``: fit a GARCH-family model (``seqlab.models.GARCH``) on a CSV series into a run directory.

No optimiser steps, no checkpoints: maximum likelihood on the training part (milliseconds), then the fitted
model is saved (``config.json``, ``model.safetensors``) and scored one step ahead on the held-out part, each
held-out value given every value before it, the training part included (the variance is a filter: starting it
afresh at the cut would score the backcast, not the model). ``training.json`` records the fit and the scores.
"""

from __future__ import annotations

from seqlab.data.dataset import Dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.models.garch import GARCH, GARCHConfig
from seqlab.runs.family import FitContext, OneGoFamily
from seqlab.runs.train_spec import TrainSpec

GARCH_OPTIONS = ("vol", "dist", "mean", "lags")  # what TrainSpec.model may hold for a GARCH run


class GARCHFamily(OneGoFamily):
    name = kind = "garch"
    options = GARCH_OPTIONS
    data_kinds = ("series",)
    models_what = "GARCH models a series (give a CSV file)"
    fitted_how = "a GARCH fit takes milliseconds"
    refusal_note = " (options of the neural models)"

    def check(self, spec: TrainSpec, dataset: Dataset) -> GARCHConfig:
        self.check_data_kind(dataset)
        try:
            config = GARCHConfig.from_options(**spec.model)
        except SeqlabError as e:
            raise OptionError(f"{{0}}: {e}", "vol") from None
        check_covariates(dataset, GARCH(config))
        return config

    def build(self, dataset: Dataset, settings: GARCHConfig) -> GARCH:
        return GARCH(settings)

    def fit_model(self, model: GARCH, dataset: Dataset, settings: GARCHConfig, context: FitContext) -> dict:
        y, valid = self.series_parts(model, dataset)
        source = dataset.spec.source
        context.say(f"seqlab: {model.describe_spec()}; data {source}: {len(y):,} training, {len(valid):,} held-out")
        try:
            model.fit(y)
        except SeqlabError as e:
            raise SeqlabError(f"{source}: {e}") from None
        record = model.training_result
        if not record.converged:
            context.say(
                f"seqlab: warning: the optimiser stopped after {record.iterations} iterations without converging "
                f"({record.message}); the parameters are its last iterate"
            )
        return {
            "loglik": record.loglik,
            "train_values": len(y),
            "converged": record.converged,
            "params": dict(zip(model.names, model.params.tolist(), strict=True)),
            "bse_robust": dict(zip(model.names, record.bse_robust, strict=True)),
        }


def check_covariates(dataset: Dataset, model: GARCH) -> None:
    """One series (GARCH pools no series: several are refused, naming them), with GARCH-X's exogenous variance
    beside it and no covariates otherwise."""
    source = dataset.spec.source
    dataset.check_one_series("GARCH")
    covariates = dataset.train.shape[1] - 1 if dataset.train.dim() == 2 else 0
    if covariates == model.num_covariates:
        return
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
