"""``train --model pool``: a linear pool of forecasters (``seqlab.models.Pool``) on one CSV series.

The members (``--members``, default ``SeriesOptions.pool_members``) are fitted on the training part before its
last ``TAIL`` share, the weights chosen by log score on that tail, then every member fitted again on the whole
training part (``seqlab.models.pool``). The saved pool is scored one step ahead on the held-out part, each
held-out value given every value before it; ``training.json`` records the weights and the scores.
"""

from __future__ import annotations

import torch

from seqlab.data.dataset import ELEMENT_NAMES, Dataset
from seqlab.errors import OptionError
from seqlab.models.pool import PRIOR, Pool, member_view
from seqlab.runs.contenders import SeriesOptions, check_contenders, known_series_name, series_contender
from seqlab.runs.family import FitContext, OneGoFamily
from seqlab.runs.progress import fitting
from seqlab.runs.train_spec import TrainSpec

POOL_OPTIONS = ("members", "pool_prior", "head", "hidden_size")  # what TrainSpec.model may hold for a pool


class PoolFamily(OneGoFamily):
    name = kind = "pool"
    options = POOL_OPTIONS
    data_kinds = ("series",)
    models_what = "a pool forecasts a series (give a CSV file)"
    fitted_how = "a pool is fitted in one go"
    refusal_note = ""
    seconds_digits = 2

    def check(self, spec: TrainSpec, dataset: Dataset) -> SeriesOptions:
        """The members and how the neural ones among them are built and trained, from the options given."""
        self.check_data_kind(dataset)
        dataset.check_one_series("a pool")
        model = spec.model
        members = tuple(model.get("members") or SeriesOptions.pool_members)
        unknown = [m for m in members if not known_series_name(m) or m == "pool"]
        if unknown:
            raise OptionError(f"{{0}}: unknown member {', '.join(unknown)} of a pool", "members")
        differenced = dataset.transform is not None and "diff" in dataset.transform.steps
        head, hidden = model.get("head", "gaussian"), model.get("hidden_size", 64)
        prior = model.get("pool_prior", PRIOR)
        seed = spec.trainer.get("seed", 0)
        options = SeriesOptions(differenced, head, hidden, seed=seed, pool_members=members, pool_prior=prior)
        covariates = dataset.train.shape[1] - 1 if dataset.train.dim() == 2 else 0
        check_contenders(("pool",), options, covariates, listed="members")  # before a folder is claimed or a fit
        return options

    def build(self, dataset: Dataset, settings: SeriesOptions) -> Pool:
        return series_contender("pool", dataset.train.double().numpy(), settings).model

    def fit_model(self, model: Pool, dataset: Dataset, settings: SeriesOptions, context: FitContext) -> dict:
        train, valid = self.series_parts(model, dataset)
        context.say(
            f"seqlab: pool of {', '.join(model.names)}; data {dataset.spec.source}: {len(train):,} training (the last "
            f"{model.tail_length(len(train)):,} choose the weights), {len(valid):,} held-out"
        )
        with fitting(ELEMENT_NAMES["series"], context.progress) as callbacks:  # a bar per neural member's fit
            record = model.fit(train, callbacks=callbacks).record()
        for name, why in record["left_out"].items():
            context.say(f"seqlab: pool member {name} gets no weight: it could not be scored out of sample ({why})")
        return {"train_values": len(train), **record}

    def series_parts(self, model: Pool, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows with covariates where a member reads them, the value column otherwise (``member_view``)."""
        reads = model.num_covariates > 0
        return tuple(member_view(part.double(), reads) for part in (dataset.train, dataset.valid))

    def held_out(self, model: Pool, dataset: Dataset) -> tuple[torch.Tensor, str] | None:
        if not len(dataset.valid):
            return None
        train, valid = self.series_parts(model, dataset)
        return model.log_prob(torch.cat([train, valid]))[len(train) :], "the training part before it"
