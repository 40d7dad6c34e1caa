"""``train --model pool``: a linear pool of forecasters (``seqlab.models.Pool``) on one CSV series.

The members (``--members``, default ``SeriesOptions.pool_members``) are fitted on the training part before its
last ``TAIL`` share, the weights chosen by log score on that tail, then every member fitted again on the whole
training part (``seqlab.models.pool``). The saved pool is scored one step ahead on the held-out part, each
held-out value given every value before it; ``training.json`` records the weights and the scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from seqlab import io
from seqlab.data.dataset import ELEMENT_NAMES, Dataset
from seqlab.errors import OptionError, SeqlabError
from seqlab.metrics import likelihood_scores
from seqlab.models.families import SeriesOptions, check_contenders, known_series_name, series_contender
from seqlab.models.pool import PRIOR, Pool
from seqlab.runs import run_directory
from seqlab.runs.progress import fitting
from seqlab.runs.run_directory import RunDirectory

POOL_OPTIONS = ("members", "pool_prior", "head", "hidden_size")  # what TrainSpec.model may hold for a pool


def pool_options(dataset: Dataset, model: dict, trainer: dict) -> SeriesOptions:
    """The members and how the neural ones among them are built and trained, from the options given."""
    members = tuple(model.get("members") or SeriesOptions.pool_members)
    unknown = [m for m in members if not known_series_name(m) or m == "pool"]
    if unknown:
        raise OptionError(f"{{0}}: unknown member {', '.join(unknown)} of a pool", "members")
    differenced = dataset.transform is not None and "diff" in dataset.transform.steps
    head, hidden = model.get("head", "gaussian"), model.get("hidden_size", 64)
    prior = model.get("pool_prior", PRIOR)
    seed = trainer.get("seed", 0)
    options = SeriesOptions(differenced, head, hidden, seed=seed, pool_members=members, pool_prior=prior)
    covariates = dataset.train.shape[1] - 1 if dataset.train.dim() == 2 else 0
    check_contenders(("pool",), options, covariates, listed="members")  # before a folder is claimed or a fit
    return options


def train_pool(
    dataset: Dataset, options: SeriesOptions, run: RunDirectory, say: Callable[[str], None], progress: bool = True
) -> tuple[Pool, dict | None]:
    """Fit, save into ``run`` (committed once the model is written) and score. Returns (model, final scores)."""
    if dataset.kind != "series":
        raise SeqlabError(f"{dataset.spec.source}: {dataset.kind} data; a pool forecasts a series (give a CSV file)")
    dataset.check_one_series("a pool")
    train = dataset.train.double()
    valid = dataset.valid.double()
    contender = series_contender("pool", train.numpy(), options)
    model: Pool = contender.model
    say(
        f"seqlab: pool of {', '.join(model.names)}; data {dataset.spec.source}: {len(train):,} training (the last "
        f"{model.tail_length(len(train)):,} choose the weights), {len(valid):,} held-out"
    )

    t0 = time.perf_counter()
    with fitting(ELEMENT_NAMES["series"], progress) as callbacks:  # a bar per neural member's fit
        record = contender.fit(contender.seen(train), callbacks)
    seconds = time.perf_counter() - t0
    for name, why in record["left_out"].items():
        say(f"seqlab: pool member {name} gets no weight: it could not be scored out of sample ({why})")
    model.trained_on(dataset)
    io.save(model, run.work)
    out = run.commit()
    final = {"fit_seconds": round(seconds, 2), "train_values": len(train), **record}
    if len(valid):
        log_probs = model.log_prob(torch.cat([contender.seen(train), contender.seen(valid)]))[len(train) :]
        scores = likelihood_scores(log_probs, "values", discrete=False)
        final |= {f"valid_{k}": v for k, v in scores.items()} | {"valid_given": "the training part before it"}
    run_directory.write_final_scores(out, final)
    return model, final
