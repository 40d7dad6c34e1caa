"""NGram and MarkovChain: parity with nltk.lm, normalisation (hypothesis), a hand-computed case, bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import SMALL_TEXT
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab import SeqlabError
from seqlab.models import MarkovChain, NGram

nltk_lm = pytest.importorskip("nltk.lm", reason="nltk is a test dependency (pip install -e '.[test]')")
from nltk.util import everygrams  # noqa: E402

# "\x02" first: an n-gram seen only at the very start of the text is where nltk's Kneser-Ney goes wrong
# (test_nltk_kneser_ney_sums_above_one_when_an_ngram_occurs_only_at_the_start); starting with a symbol that
# the probes never contain keeps those contexts out of the parity comparison.
TRAIN = "\x02" + SMALL_TEXT[:3000]
TEST = SMALL_TEXT[3000:3400]
PARITY_TOLERANCE = 1e-12  # relative; both sides compute in float64


def nltk_model(smoothing: str, n: int, text: str):
    cls = {
        "mle": lambda: nltk_lm.MLE(n),
        "lidstone": lambda: nltk_lm.Lidstone(0.1, n),
        "laplace": lambda: nltk_lm.Laplace(n),
        "witten_bell": lambda: nltk_lm.WittenBellInterpolated(n),
        "kneser_ney": lambda: nltk_lm.KneserNeyInterpolated(n, discount=0.75),
    }[smoothing]
    lm = cls()
    lm.fit([list(everygrams(list(text), max_len=n))], vocabulary_text=list(text))
    return lm


def ours(smoothing: str, order: int, text: str, **kw) -> NGram:
    return NGram(order=order, smoothing=smoothing, gamma=0.1, discount=0.75, uniform_base=False, **kw).fit(text)


@pytest.mark.parametrize("smoothing", ["mle", "lidstone", "laplace", "witten_bell", "kneser_ney"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_scores_and_perplexity_match_nltk(smoothing, order):
    n = order + 1
    lm, model = nltk_model(smoothing, n, TRAIN), ours(smoothing, order, TRAIN)
    assert len(lm.vocab) == model.V  # both: the distinct symbols plus an unknown symbol
    grams = [g for g in everygrams(list(TEST), min_len=n, max_len=n) if all(ch in model.vocabulary.index for ch in g)]
    compared, theirs_all, ours_all = 0, [], []
    for gram in grams[:150]:
        context, word = "".join(gram[:-1]), gram[-1]
        try:
            expected = lm.score(word, list(context))
        except ZeroDivisionError:  # nltk's Kneser-Ney divides by zero on contexts seen only at the very start
            continue
        actual = model.score(word, context)
        assert math.isclose(actual, expected, rel_tol=PARITY_TOLERANCE, abs_tol=1e-15), (context, word)
        theirs_all.append(expected)
        ours_all.append(actual)
        compared += 1
    assert compared >= 140
    if smoothing != "mle":  # nltk's perplexity of the same n-grams
        subset = grams[:60]
        ours_ppl = math.exp(-np.mean([math.log(model.score(g[-1], "".join(g[:-1]))) for g in subset]))
        if smoothing == "kneser_ney":
            subset = [g for g in subset if _nltk_ok(lm, g)]
            ours_ppl = math.exp(-np.mean([math.log(model.score(g[-1], "".join(g[:-1]))) for g in subset]))
        assert math.isclose(ours_ppl, lm.perplexity(subset), rel_tol=1e-10)


def _nltk_ok(lm, gram) -> bool:
    try:
        lm.score(gram[-1], list(gram[:-1]))
        return True
    except ZeroDivisionError:
        return False


def test_nltk_kneser_ney_gives_probability_zero_where_ours_does_not():
    """nltk's Kneser-Ney unigram level is the continuation distribution alone: a symbol that never follows
    another (here 'x', only at the start) gets probability 0 in every context, so any text with 'x' after
    the start has infinite perplexity. Chen & Goodman interpolate the unigram level with the uniform
    distribution; computed by hand for "xabab" with D = 0.75, V = 4 (x, a, b and the unknown symbol):
    continuation counts N1+(. a) = 2, N1+(. b) = 1, N1+(. x) = 0, N1+(. .) = 3, two symbols continued, so
    P(x) = 0 + 0.75 * 2 / 3 / 4 = 0.125 and P(a) = (2 - 0.75) / 3 + 0.125."""
    text = "xabab"
    lm = nltk_model("kneser_ney", 2, text)
    assert lm.score("x") == 0.0 and lm.score("x", ["b"]) == 0.0
    model = NGram(order=1, smoothing="kneser_ney", discount=0.75).fit(text)
    assert math.isclose(model.score("x"), 0.125, rel_tol=1e-12)
    assert math.isclose(model.score("a"), 1.25 / 3 + 0.125, rel_tol=1e-12)
    assert math.isclose(float(model.next_distribution(np.array([], dtype=np.int64)).sum()), 1.0, rel_tol=1e-12)
    assert torch.isfinite(model.log_prob("abxab")).all()


def test_nltk_kneser_ney_sums_above_one_when_an_ngram_occurs_only_at_the_start():
    """Text "\na\n\n", trigrams, D = 0.75, the context "\n" (one symbol: the continuation level). Continuation
    counts of the bigrams after "\n": N1+(. \n\n) = 1 (after "a"), N1+(. \na) = 0 ("\na" only opens the text),
    total 1; unigram level P(\n) = 2/3, P(a) = 1/3 (continuations of "a\n", "\n\n" and "\na").
    Kneser-Ney: P(\n | \n) = (1 - 0.75) / 1 + 0.75 * 1 / 1 * 2/3 = 0.75, P(a | \n) = 0.75 * 1/3 = 0.25: sum 1.
    nltk weighs the lower order by the raw followers of "\n" (two: "\n" and "a"), 0.75 * 2 / 1 = 1.5, and
    gives 1.25 and 0.5: a "distribution" that sums to 1.75."""
    text = "\na\n\n"
    lm = nltk_model("kneser_ney", 3, text)
    assert math.isclose(lm.score("\n", ["\n"]), 1.25) and math.isclose(lm.score("a", ["\n"]), 0.5)
    model = NGram(order=2, smoothing="kneser_ney", discount=0.75, uniform_base=False).fit(text)
    assert math.isclose(model.score("\n", "\n"), 0.75, rel_tol=1e-12)
    assert math.isclose(model.score("a", "\n"), 0.25, rel_tol=1e-12)
    assert math.isclose(float(model.next_distribution(model.encode("\n").numpy()).sum()), 1.0, rel_tol=1e-12)


def test_nltk_kneser_ney_divides_by_zero_on_a_context_seen_only_at_the_start():
    """In "xabab" the context "x" occurs once, at the start, so no trigram continues it: its continuation total
    is 0. nltk divides by it; the context carries no continuation evidence, so seqlab defers to the lower
    order: P(a | x) = P(a) = (N1+(. a) - D) / N1+(. .) + D * 2 / 3 / V with N1+(. a) = 2, three bigram types."""
    lm = nltk_model("kneser_ney", 3, "xabab")
    with pytest.raises(ZeroDivisionError):
        lm.score("a", ["x"])
    model = NGram(order=2, smoothing="kneser_ney", discount=0.75).fit("xabab")
    assert math.isclose(model.score("a", "x"), (2 - 0.75) / 3 + 0.75 * 2 / 3 / 4, rel_tol=1e-12)
    assert math.isclose(float(model.next_distribution(model.encode("x").numpy()).sum()), 1.0, rel_tol=1e-12)


SMOOTHED = ["lidstone", "laplace", "witten_bell", "kneser_ney"]


@settings(deadline=None, max_examples=40)
@given(
    text=st.text(alphabet="abcde\n", min_size=4, max_size=60),
    order=st.integers(0, 4),
    smoothing=st.sampled_from(SMOOTHED + ["mle"]),
    context=st.text(alphabet="abcde\n", max_size=6),
)
def test_probabilities_sum_to_one_for_every_context(text, order, smoothing, context):
    if len(text) < order + 1:
        return
    model = NGram(order=order, smoothing=smoothing).fit(text)
    ctx = model.encode(context, unknown="map").numpy()
    p = model.next_distribution(ctx)
    assert np.all(p >= 0)
    if smoothing == "mle":
        total = p.sum()
        assert math.isclose(total, 1.0, rel_tol=1e-12) or total == 0.0  # MLE: 0 for an unseen context
    else:
        assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
        assert np.all(p > 0)  # every symbol, the unknown one included, keeps some probability


@pytest.mark.parametrize("smoothing", SMOOTHED)
def test_unseen_symbols_score_finite_under_smoothing(smoothing):
    model = NGram(order=3, smoothing=smoothing).fit(TRAIN)
    x = model.encode("ROMEO ~ JULIET", unknown="map")
    assert torch.isfinite(model.log_prob(x)).all()


def test_mle_refuses_probability_zero_with_a_clear_error():
    model = NGram(order=2, smoothing="mle").fit(TRAIN)
    with pytest.raises(SeqlabError, match="probability 0 to 'q' at position 3 after 'ROM'"[:40]):
        model.log_prob("ROMq")


def test_sampling_is_reproducible_and_in_vocabulary():
    model = NGram(order=4).fit(TRAIN)
    a = model.sample("ROMEO", 100, seed=1)
    assert a == model.sample("ROMEO", 100, seed=1) and len(a) == 100 and set(a) <= set(model.vocabulary.symbols)


def test_markov_chain_is_a_row_stochastic_matrix_with_a_stationary_distribution():
    chain = MarkovChain(k=0.5).fit(TRAIN)
    P = chain.transition_matrix()
    assert P.shape == (chain.V, chain.V) and np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # the transition probabilities are add-k estimates of the bigram counts
    i, j = chain.vocabulary.index["R"], chain.vocabulary.index["O"]
    n_R = sum(1 for a in TRAIN[:-1] if a == "R")
    n_RO = sum(1 for a, b in zip(TRAIN, TRAIN[1:], strict=False) if a == "R" and b == "O")
    assert math.isclose(P[i, j], (n_RO + 0.5) / (n_R + 0.5 * chain.V), rel_tol=1e-12)
    pi = chain.stationary_distribution()
    assert np.all(pi > 0) and math.isclose(pi.sum(), 1.0, rel_tol=1e-12)
    assert np.allclose(pi @ P, pi, rtol=0, atol=1e-12)


def test_empty_context_is_the_start_of_a_sequence():
    model = NGram(order=3, smoothing="kneser_ney").fit(TRAIN)
    empty = model.next_distribution(np.zeros(0, dtype=np.int64))  # no history: the unigram level
    assert math.isclose(empty.sum(), 1.0, rel_tol=1e-12) and np.all(empty > 0)
    assert math.isclose(model.score("R", ""), empty[model.vocabulary.index["R"]], rel_tol=1e-12)
    assert math.isclose(float(model.log_prob("R")[0].exp()), model.score("R", ""), rel_tol=1e-12)
    assert model.log_prob("").shape == (0,)


def test_bad_input():
    with pytest.raises(SeqlabError, match="order"):
        NGram(order=-1)
    with pytest.raises(SeqlabError, match="smoothing"):
        NGram(smoothing="good_turing")
    with pytest.raises(SeqlabError, match="needs at least 6 training elements"):
        NGram(order=5).fit("abc")
    with pytest.raises(SeqlabError, match="discrete data"):
        NGram(order=1).fit("abcabc").log_prob(torch.randn(5))
    with pytest.raises(SeqlabError, match="not in the model's vocabulary"):
        NGram(order=1).fit("abcabc").log_prob("abz")
    with pytest.raises(TypeError, match="smoothin"):  # a misspelt option is not swallowed
        NGram(order=1).fit("abcabc", smoothin="mle")
