"""``train --model ngram | markov | infinigram | linear_ar | random_walk | ets``: the classical families, fitted in
one go.

Counts (n-gram, Markov chain), a suffix-array index (the naive model) on text; least squares (linear AR), the
closed form (random walk) or maximum likelihood with the form chosen by AICc (ETS) on one CSV series. Each is
saved like every model and scored one step ahead on the held-out part (``OneGoFamily``): text alone, as the
neural models are scored; a series given the training part before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqlab.base import SequenceModel
from seqlab.data.dataset import Dataset
from seqlab.data.text import Vocabulary
from seqlab.errors import OptionError, SeqlabError
from seqlab.models.ets import ETS, ETSConfig
from seqlab.models.infinigram import InfiniGram
from seqlab.models.linear_ar import LinearAR
from seqlab.models.markov import MarkovChain
from seqlab.models.ngram import NGram
from seqlab.models.random_walk import RandomWalk
from seqlab.runs.family import FitContext, OneGoFamily, one_series
from seqlab.runs.train_spec import TrainSpec

TEXT_ONLY = "{} models text (give a text file)"
SERIES_ONLY = "{} models one series (give a CSV file)"


@dataclass(frozen=True)
class Settings:
    """The constructor's arguments of a classical model, checked by building one before a folder is claimed."""

    arguments: tuple[tuple[str, object], ...]  # (name, value) given to the model's class


class ClassicalFamily(OneGoFamily):
    model_class: type
    # TrainSpec.model key -> the constructor's argument it sets (the rest keep the class's defaults)
    arguments: dict[str, str] = {}
    defaults: dict[str, object] = {}  # constructor arguments where seqlab train differs from the class

    def make(self, settings: Settings, **more: object) -> SequenceModel:
        """The model of ``settings`` (``more``: what the data decides, a vocabulary or the differencing)."""
        return self.model_class(**dict(settings.arguments), **more)

    def check(self, spec: TrainSpec, dataset: Dataset) -> Settings:
        self.check_data_kind(dataset)
        given = {self.arguments[k]: v for k, v in spec.model.items()}
        settings = Settings(tuple((self.defaults | given).items()))
        try:
            self.make(settings)
        except SeqlabError as e:  # the model's own check of its arguments, with the options named
            if not spec.model:
                raise
            raise OptionError(f"{{all}}: {e}", *spec.model) from None
        if dataset.kind == "series":
            one_series(dataset, self.model_class.__name__)
        return settings

    def fit_model(self, model: SequenceModel, dataset: Dataset, settings: Settings, context: FitContext) -> dict:
        source = dataset.spec.source
        if dataset.kind == "text":
            train, n_valid = dataset.train, len(dataset.valid)
        else:
            train, valid = self.series_parts(model, dataset)
            n_valid = len(valid)
        context.say(
            f"seqlab: {model.describe()}; data {source}: {len(train):,} training, {n_valid:,} held-out "
            f"{dataset.elements}"
        )
        try:
            model.fit(train)
        except SeqlabError as e:
            raise SeqlabError(f"{source}: {e}") from None
        return {f"train_{dataset.elements}": len(train)}


class TextFamily(ClassicalFamily):
    data_kinds = ("text",)

    def build(self, dataset: Dataset, settings: Settings) -> SequenceModel:
        return self.make(settings, vocabulary=Vocabulary.from_text(dataset.train))


class NGramFamily(TextFamily):
    name = kind = "ngram"
    model_class = NGram
    options = ("order", "smoothing")
    arguments = {"order": "order", "smoothing": "smoothing"}
    models_what = TEXT_ONLY.format("an n-gram model")
    fitted_how = "an n-gram model is counted in one go"

    def run_name(self, settings: Settings) -> str:
        return f"ngram{dict(settings.arguments).get('order', NGram().order)}"


class MarkovFamily(TextFamily):
    name = kind = "markov"
    model_class = MarkovChain
    options = ("add_k",)
    arguments = {"add_k": "k"}
    models_what = TEXT_ONLY.format("a Markov chain")
    fitted_how = "a Markov chain is counted in one go"


class InfiniGramFamily(TextFamily):
    name = kind = "infinigram"
    model_class = InfiniGram
    options = ("max_length",)
    arguments = {"max_length": "max_length"}
    models_what = TEXT_ONLY.format("the naive model (infinigram)")
    fitted_how = "the naive model indexes its text in one go"


class LinearARFamily(ClassicalFamily):
    name = kind = "linear_ar"
    model_class = LinearAR
    options = ("order", "head", "components")
    arguments = {"order": "order", "head": "head", "components": "components"}
    defaults = {"order": "bic", "max_order": 10}  # as backtest fits it: AIC overfits a short series
    data_kinds = ("series",)
    models_what = SERIES_ONLY.format("a linear AR model")
    fitted_how = "a linear AR model is fitted in closed form"

    def build(self, dataset: Dataset, settings: Settings) -> SequenceModel:
        return self.make(settings)


class RandomWalkFamily(ClassicalFamily):
    name = kind = "random_walk"
    model_class = RandomWalk
    data_kinds = ("series",)
    models_what = SERIES_ONLY.format("the random walk")
    fitted_how = "the random walk is fitted in closed form"

    def build(self, dataset: Dataset, settings: Settings) -> SequenceModel:
        # a series of increments (log returns, differences) is the walk's steps; levels are differenced by it
        differenced = dataset.transform is not None and "diff" in dataset.transform.steps
        return self.make(settings, differenced=differenced)


class ETSFamily(ClassicalFamily):
    name = kind = "ets"
    model_class = ETS
    options = ("form", "season")
    arguments = {"form": "model", "season": "period"}
    data_kinds = ("series",)
    models_what = SERIES_ONLY.format("ETS")
    fitted_how = "ETS is fitted by maximum likelihood in one go"

    def make(self, settings: Settings, **more: object) -> SequenceModel:
        return ETS(ETSConfig(**dict(settings.arguments)))

    def build(self, dataset: Dataset, settings: Settings) -> SequenceModel:
        return self.make(settings)
