"""Properties that must hold for any input (hypothesis)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.data import Vocabulary, split_text
from seqlab.data.text import UNKNOWN
from seqlab.distributions import Categorical
from seqlab.metrics import likelihood_scores

texts = st.text(alphabet=st.characters(blacklist_characters=UNKNOWN, blacklist_categories=("Cs",)), min_size=1)


@given(texts)
def test_vocabulary_round_trip(text):
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text and int(ids.max()) < len(vocab) - 1  # the unknown id is never used


@given(texts, st.floats(0.01, 0.99))
def test_split_loses_nothing(text, fraction):
    train, valid = split_text(text, fraction)
    assert train + valid == text


@settings(deadline=None)
@given(st.integers(2, 50), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_categorical_nll_is_minus_log_softmax(V, n, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, V, generator=g, dtype=torch.float64) * 5
    x = torch.randint(V, (n,), generator=g)
    expected = -torch.log_softmax(logits, -1)[torch.arange(n), x]
    assert torch.allclose(Categorical(V).nll(logits, x), expected, rtol=0, atol=1e-12)


@given(st.lists(st.floats(-20, -1e-6), min_size=1, max_size=50))
def test_bits_are_nats_over_log_2(log_probs):
    scores = likelihood_scores(torch.tensor(log_probs, dtype=torch.float64))
    assert math.isclose(scores["bits_per_char"] * math.log(2), scores["nll_nats"], rel_tol=1e-12)
    assert math.isclose(scores["perplexity"], math.exp(scores["nll_nats"]), rel_tol=1e-12)


@given(st.floats(-5, 5), st.floats(-3, 3), st.floats(0.01, 0.99))
def test_gaussian_head_matches_torch_normal(mu, log_sigma, q):
    from seqlab.distributions import Gaussian

    params = torch.tensor([mu, log_sigma], dtype=torch.float64)
    normal = torch.distributions.Normal(
        torch.tensor(mu, dtype=torch.float64), torch.tensor(log_sigma, dtype=torch.float64).exp()
    )
    x = torch.tensor(mu + 0.3, dtype=torch.float64)
    assert math.isclose(float(Gaussian().nll(params, x)), float(-normal.log_prob(x)), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(
        float(Gaussian().quantile(params, q)),
        float(normal.icdf(torch.tensor(q, dtype=torch.float64))),
        rel_tol=1e-9,
        abs_tol=1e-9,
    )
