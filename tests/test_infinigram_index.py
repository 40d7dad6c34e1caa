"""The InfiniGram index on disk (issue 31): libdivsufsort's array equals the prefix-doubling reference, the
queries equal a scan of the text, the same log_prob as the in-memory model it replaced, a saved model reopens
its cached index, and a full disk leaves nothing behind."""

from __future__ import annotations

import errno
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab import io
from seqlab.atomic import COMPLETE_FILE
from seqlab.data import token_store
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.text import Vocabulary
from seqlab.errors import SeqlabError
from seqlab.models import infinigram
from seqlab.models.infinigram import InfiniGram, sorted_suffixes, suffix_array


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(token_store.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@settings(deadline=None, max_examples=40)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=200), st.sampled_from([np.uint8, np.uint16]))
def test_divsufsort_equals_prefix_doubling(x, dtype):
    x = np.array(x) * (300 if dtype == np.uint16 else 1)  # two-byte symbols whose low bytes tie
    np.testing.assert_array_equal(sorted_suffixes(x.astype(dtype)), suffix_array(x.astype(np.int64)))


def test_divsufsort_on_the_plays_equals_prefix_doubling():
    plays = load_dataset(DataSpec("shakespeare"))
    x = np.asarray(plays.train.ids[:200_000])
    np.testing.assert_array_equal(sorted_suffixes(x), suffix_array(x.astype(np.int64)))


TEXT = "abracadabra, abracadabra! cadabra abra\nthe cat sat on the mat; the cat ate the rat\n"


def scan_followers(text: str, history: str, symbols: list[str]) -> np.ndarray:
    L = len(history)
    after = [text[i + L] for i in range(len(text) - L) if text[i : i + L] == history]
    return np.array([after.count(s) for s in symbols], dtype=float)


@pytest.mark.parametrize("block", [1, 3, 4096])
def test_count_next_counts_and_infinigram_equal_a_scan(monkeypatch, block):
    """Every block size of the follower table: ranges inside one block, across several, with partial ends."""
    monkeypatch.setattr(infinigram, "table_block", lambda V: block)
    model = InfiniGram().fit(TEXT)
    symbols = model.vocabulary.symbols
    assert model.count("") == len(TEXT)
    for s in ["a", "abra", "the ", "cat", "z", "t sat on", "q", "a\nthe"]:
        assert model.count(s) == sum(TEXT[i : i + len(s)] == s for i in range(len(TEXT) - len(s) + 1)), s
        np.testing.assert_array_equal(model.next_counts(s), scan_followers(TEXT, s, symbols))
    for history in ["on the c", "xyz", "cadabra abra\nthe c"]:
        p, length = model.infinigram(history)
        longest = max(
            L for L in range(len(history) + 1) if scan_followers(TEXT, history[len(history) - L :], symbols).sum() > 0
        )
        counts = scan_followers(TEXT, history[len(history) - longest :], symbols)
        assert length == longest
        np.testing.assert_allclose(p, counts / counts.sum(), rtol=1e-15)


def reference_log_probs(train: np.ndarray, valid: np.ndarray, V: int) -> np.ndarray:
    """The model before issue 31: Python lists over the prefix-doubling array, every suffix length narrowed."""
    import bisect

    rev = train[::-1].copy()
    rsa = suffix_array(rev)
    follower = np.where(rsa > 0, rev[np.maximum(rsa - 1, 0)], -1)
    unigram = np.bincount(train, minlength=V).astype(float)
    rev_list, rsa_list, n = rev.tolist(), rsa.tolist(), len(rev)

    def distribution(history: np.ndarray) -> np.ndarray:
        p, counts, lo, hi, L, previous = np.full(V, 1.0 / V), unigram, 0, n, 0, -1.0
        while True:
            total = counts.sum()
            if total > 0 and total != previous:
                distinct = np.count_nonzero(counts)
                p = (counts + distinct * p) / (total + distinct)
            previous = total
            if L == len(history):
                return p
            symbol = int(history[len(history) - 1 - L])

            def key(i: int, depth: int = L) -> int:
                j = rsa_list[i] + depth
                return rev_list[j] if j < n else -1

            lo, hi = (
                bisect.bisect_left(range(hi), symbol, lo, hi, key=key),
                bisect.bisect_right(range(hi), symbol, lo, hi, key=key),
            )
            L += 1
            if lo >= hi:
                return p
            nxt = follower[lo:hi]
            counts = np.bincount(nxt[nxt >= 0], minlength=V).astype(float)

    return np.log([distribution(valid[:t])[valid[t]] for t in range(len(valid))])


def test_the_plays_score_as_the_in_memory_model_did():
    """Against the model before issue 31 on a 100,000-character slice of the plays' training part and 400
    held-out characters: a fast test; the whole plays are checked in docs/scale.md."""
    plays = load_dataset(DataSpec("shakespeare"))
    train = np.asarray(plays.train.ids[:100_000]).astype(np.int64)
    model = InfiniGram(vocabulary=plays.store.vocabulary).fit(torch.from_numpy(train))
    valid = np.asarray(plays.valid.ids[:400]).astype(np.int64)
    want = reference_log_probs(train, valid, model.V)
    np.testing.assert_allclose(model.log_prob(torch.from_numpy(valid)).numpy(), want, rtol=0, atol=1e-9)


def test_long_repeated_matches_score_as_the_in_memory_model_did(monkeypatch):
    """Copies of a text (a duplicated document): matches hundreds of symbols long, skipped in steps of a few
    symbols (EXTEND_STEP 7) by the index, every suffix length narrowed by the reference."""
    monkeypatch.setattr(infinigram, "EXTEND_STEP", 7)
    rng = np.random.default_rng(0)
    block = rng.integers(0, 5, size=300)
    train = np.concatenate([block, rng.integers(0, 5, size=50), block, block[:200], rng.integers(0, 5, size=30)])
    valid = np.concatenate([block[100:], rng.integers(0, 5, size=20)])
    model = InfiniGram(vocabulary=Vocabulary(list("abcde"))).fit(torch.from_numpy(train))
    want = reference_log_probs(train, valid, model.V)
    np.testing.assert_allclose(model.log_prob(torch.from_numpy(valid)).numpy(), want, rtol=0, atol=1e-9)


def test_saved_model_reopens_its_index_and_scores_the_same(tmp_path, cache):
    model = InfiniGram().fit(TEXT)
    io.save(model, tmp_path / "model")
    indexes = sorted((cache / "infinigram").iterdir())
    loaded = io.load(tmp_path / "model")
    key = model.index.directory.name
    assert loaded.index.directory == tmp_path / "model" / infinigram.INDEX_DIR / key  # the one beside it
    assert sorted((cache / "infinigram").iterdir()) == indexes  # not built again
    assert torch.equal(loaded.log_prob("the cat"), model.log_prob("the cat"))


def beside(directory, model):
    return directory / infinigram.INDEX_DIR / model.index.directory.name


def test_the_index_is_hard_linked_beside_the_model_and_outlives_the_cache(tmp_path, cache):
    model = InfiniGram().fit(TEXT)
    io.save(model, tmp_path / "model")
    kept = beside(tmp_path / "model", model)
    for name in infinigram.INDEX_FILES:  # the cache's files, not copies
        assert (kept / name).stat().st_ino == (model.index.directory / name).stat().st_ino
    expected = model.log_prob("the cat sat")
    shutil.rmtree(cache)
    loaded = io.load(tmp_path / "model")
    assert loaded.index.directory == kept
    assert not (cache / "infinigram").exists() or not [
        p for p in (cache / "infinigram").iterdir() if not p.name.startswith(".")
    ]  # nothing built
    assert torch.equal(loaded.log_prob("the cat sat"), expected)
    io.save(loaded, tmp_path / "model")  # saved again into its own folder: kept as it is
    assert loaded.index.directory == kept and (kept / "sa.bin").exists()


def test_an_old_or_damaged_index_beside_the_model_falls_back_to_the_cache(tmp_path, cache):
    model = InfiniGram().fit(TEXT)
    io.save(model, tmp_path / "model")
    kept = beside(tmp_path / "model", model)
    expected = model.log_prob("the cat sat")
    (kept / "meta.json").unlink()  # a new file, so the cache's stays whole
    (kept / "meta.json").write_text("{", encoding="utf-8")
    loaded = io.load(tmp_path / "model")
    assert loaded.index.directory == model.index.directory  # the cache's
    assert torch.equal(loaded.log_prob("the cat sat"), expected)
    (kept / "sa.bin").unlink()
    (kept / "sa.bin").write_bytes(b"short")
    shutil.copyfile(model.index.directory / "meta.json", kept / "meta.json")
    assert io.load(tmp_path / "model").index.directory == model.index.directory
    (kept / "sa.bin").unlink()
    shutil.copyfile(model.index.directory / "sa.bin", kept / "sa.bin")
    assert io.load(tmp_path / "model").index.directory == kept  # whole again
    (kept / COMPLETE_FILE).unlink()  # without its completion marker (a kill while it was written): not trusted
    assert io.load(tmp_path / "model").index.directory == model.index.directory
    shutil.rmtree(tmp_path / "model" / infinigram.INDEX_DIR)  # a folder saved before the index moved beside it
    shutil.rmtree(cache)
    loaded = io.load(tmp_path / "model")  # built again into the cache
    assert loaded.index.directory.parent == cache / "infinigram"
    assert torch.equal(loaded.log_prob("the cat sat"), expected)


def test_where_links_fail_a_small_index_is_copied_and_a_large_one_left_in_the_cache(tmp_path, cache, monkeypatch):
    def no_link(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))

    monkeypatch.setattr(infinigram.os, "link", no_link)
    model = InfiniGram().fit(TEXT)
    io.save(model, tmp_path / "copied")
    kept = beside(tmp_path / "copied", model)
    for name in infinigram.INDEX_FILES:
        assert (kept / name).read_bytes() == (model.index.directory / name).read_bytes()
        assert (kept / name).stat().st_ino != (model.index.directory / name).stat().st_ino
    monkeypatch.setattr(infinigram, "COPY_LIMIT", 100)
    io.save(model, tmp_path / "large")
    assert not beside(tmp_path / "large", model).exists()
    assert [p.name for p in (tmp_path / "large" / infinigram.INDEX_DIR).iterdir()] == []  # no half folder
    assert torch.equal(io.load(tmp_path / "large").log_prob("the cat"), model.log_prob("the cat"))


def test_another_text_saved_into_the_folder_replaces_the_index_beside_it(tmp_path, cache):
    first, second = InfiniGram().fit(TEXT), InfiniGram().fit(TEXT[::-1])
    io.save(first, tmp_path / "model")
    io.save(second, tmp_path / "model")
    assert [p.name for p in (tmp_path / "model" / infinigram.INDEX_DIR).iterdir()] == [second.index.directory.name]
    loaded = io.load(tmp_path / "model")
    assert loaded.index.directory == beside(tmp_path / "model", second)
    assert torch.equal(loaded.log_prob("the cat"), second.log_prob("the cat"))


def test_two_byte_symbols(tmp_path):
    text = "".join(chr(0x4E00 + (i * 7919) % 400) for i in range(3000))
    model = InfiniGram().fit(text)
    assert model.index.rev.dtype == np.uint16 and model.V == 401
    probe = text[100:110]
    assert model.count(probe) == sum(text[i : i + 10] == probe for i in range(len(text) - 9))
    assert torch.isfinite(model.log_prob(text[:50])).all()


def test_full_disk_while_the_index_is_written(cache, monkeypatch):
    real = infinigram.write_array

    def full(path, chunks):
        if path.name == "sa.bin":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, chunks)

    monkeypatch.setattr(infinigram, "write_array", full)
    with pytest.raises(SeqlabError, match="cannot write the InfiniGram index .*the disk is full") as e:
        InfiniGram().fit(TEXT)
    assert "\n" not in str(e.value)
    assert [p.name for p in (cache / "infinigram").iterdir() if not p.name.endswith(".lock")] == []


def test_a_symbol_outside_the_vocabulary_is_refused():
    with pytest.raises(SeqlabError, match="outside the vocabulary"):
        InfiniGram(vocabulary=Vocabulary(list("ab"))).fit(torch.tensor([0, 1, 7]))
