"""Training and scoring from a token store's memory-mapped ids (issue 31): the same batches, weights and scores
as from int64 ids in memory; held-out parts scored in chunks with the state carried; large ones sampled."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqlab.data import token_store
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.metrics import likelihood_scores
from seqlab.models import NGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.training import Trainer, TrainerConfig, WindowStream, score_held_out

TINY = LatentARConfig(hidden_size=16, embedding_dim=8)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(token_store.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "t.txt"
    rng = np.random.default_rng(0)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat", "\n", "dog ", "ran ", "far "]
    path.write_text("".join(rng.choice(words, size=6000)))
    return path


def test_windows_from_the_memmap_are_the_windows_from_int64_ids(corpus):
    dataset = load_dataset(DataSpec(str(corpus)))
    ids = LatentAR.for_dataset(dataset, TINY).encode(dataset.train)
    assert ids.dtype == torch.uint8  # a view of the store, no copy
    mapped, memory = WindowStream(ids, 8, 16, 0), WindowStream(ids.long().clone(), 8, 16, 0)
    for step in [0, 1, 57, 1000]:
        a, b = mapped.window(step), memory.window(step)
        assert a[0].dtype == torch.long and torch.equal(a[0], b[0]) and a[1] == b[1]


def test_training_on_the_memmap_gives_the_same_weights(corpus):
    dataset = load_dataset(DataSpec(str(corpus)))
    weights = []
    for widen in (False, True):
        torch.manual_seed(0)
        model = LatentAR.for_dataset(dataset, TINY)
        train = model.encode(dataset.train)
        valid = model.encode(dataset.valid, unknown="map")
        if widen:
            train, valid = train.long().clone(), valid.long().clone()
        config = TrainerConfig(steps=3, batch_size=4, window=16, eval_every=2, eval_elements=500)
        Trainer(model, config).fit(train, valid)
        weights.append(model.state_dict())
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_scoring_in_chunks_equals_one_log_prob(corpus):
    dataset = load_dataset(DataSpec(str(corpus)))
    torch.manual_seed(0)
    model = LatentAR.for_dataset(dataset, TINY)
    ids = model.encode(dataset.train)[:9000]  # three of log_prob's 4,096-step chunks
    want = likelihood_scores(model.log_prob(ids.long()))
    got = score_held_out(model, ids, limit=None)
    assert set(got) == set(want) and got["tokens"] == want["tokens"]
    assert math.isclose(got["nll_nats"], want["nll_nats"], rel_tol=0, abs_tol=1e-9)


def test_ngram_chunks_carry_their_context(corpus, monkeypatch):
    import seqlab.training as training

    dataset = load_dataset(DataSpec(str(corpus)))
    model = NGram(order=3).fit(dataset.train)
    ids = model.encode(dataset.valid, unknown="map")
    want = likelihood_scores(model.log_prob(ids))
    monkeypatch.setattr(training, "SCORE_CHUNK", 777)
    got = score_held_out(model, ids, limit=None)
    assert math.isclose(got["nll_nats"], want["nll_nats"], rel_tol=0, abs_tol=1e-12)


def test_a_long_part_is_sampled_in_blocks_with_a_standard_error(corpus, monkeypatch):
    import seqlab.training as training

    monkeypatch.setattr(training, "SCORE_BLOCKS", 5)
    monkeypatch.setattr(training, "SCORE_WARMUP", 3)
    dataset = load_dataset(DataSpec(str(corpus)))
    model = NGram(order=3).fit(dataset.train)
    ids = model.encode(dataset.train, unknown="map")
    got = score_held_out(model, ids, limit=1000)
    assert got["tokens"] == 1000 and got["sampled_of"] == len(ids)
    starts = np.linspace(0, len(ids) - 200, 5).astype(int)
    blocks = [float(-model.log_prob(ids[max(0, a - 3) : a + 200])[a - max(0, a - 3) :].double().mean()) for a in starts]
    assert math.isclose(got["nll_nats"], float(np.mean(blocks)), rel_tol=1e-12)
    assert math.isclose(got["nll_standard_error"], float(np.std(blocks, ddof=1) / math.sqrt(5)), rel_tol=1e-9)
    assert got["nll_standard_error"] > 0


def test_the_bundled_plays_held_out_play_is_scored_whole_by_default():
    """What ``seqlab evaluate`` reports on the plays: the whole held-out play, as one ``log_prob`` scored it."""
    dataset = load_dataset(DataSpec("shakespeare"))
    torch.manual_seed(0)
    for model in (NGram(order=2).fit(dataset.train), LatentAR.for_dataset(dataset, TINY)):
        ids = model.encode(dataset.valid, unknown="map")
        got = score_held_out(model, ids)
        assert "sampled_of" not in got and got["tokens"] == len(dataset.valid) == 122_356
        want = likelihood_scores(model.log_prob(ids.long()))["nll_nats"]
        assert math.isclose(got["nll_nats"], want, rel_tol=0, abs_tol=1e-9)


def test_fit_takes_the_parts_and_maps_held_out_characters_it_never_saw(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abc abc abc\n" * 200 + "xyz\n" * 30)  # x, y, z only in the held-out part
    dataset = load_dataset(DataSpec(str(path)))
    torch.manual_seed(0)
    model = LatentAR.for_dataset(dataset, TINY)
    assert "x" not in model.vocabulary.index
    model.fit(dataset.train, dataset.valid, steps=2, batch_size=2, window=8, eval_every=1)
    assert math.isfinite(model.training_result.best_valid_nll)


def test_evaluate_samples_a_long_text_and_says_so_and_scores_all_when_asked(corpus, tmp_path, monkeypatch):
    from seqlab import io
    from seqlab.runs import evaluate

    dataset = load_dataset(DataSpec(str(corpus)))
    model = NGram(order=2).fit(dataset.train)
    io.save(model, tmp_path / "model")
    monkeypatch.setattr(evaluate, "SCORE_LIMIT", 2000)
    sampled = evaluate.evaluate(evaluate.EvaluateSpec(tmp_path / "model", {"source": "shakespeare"}, "map"))
    assert "a sample: 50 blocks" in sampled.source and sampled.scores["tokens"] == 2000
    whole = evaluate.evaluate(evaluate.EvaluateSpec(tmp_path / "model", {"source": "shakespeare"}, "map", True))
    text = load_dataset(DataSpec("shakespeare"))
    ids = model.encode(str(text.train) + str(text.valid), unknown="map")
    assert whole.scores["tokens"] == len(ids) and "sample" not in whole.source
    assert math.isclose(whole.scores["nll_nats"], likelihood_scores(model.log_prob(ids))["nll_nats"], abs_tol=1e-9)
