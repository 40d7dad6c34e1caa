"""The token store (seqlab.data.token_store): the same text and split as reading the file whole, a cache that is
reused, never stale, atomic under a full disk and safe under two concurrent builders; bad input in one line."""

from __future__ import annotations

import errno
import multiprocessing
import os
import queue as queue_module

import numpy as np
import pytest
import torch

from seqlab.data import token_store
from seqlab.data.files import load_text
from seqlab.data.spec import DataSpec, load_dataset
from seqlab.data.text import TextPart, Vocabulary, split_text
from seqlab.data.token_store import open_store, split_store
from seqlab.errors import OptionError, SeqlabError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(token_store.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def stores(cache) -> list[str]:
    return sorted(p.name for p in (cache / "tokens").iterdir() if not p.name.startswith("."))


def test_bundled_plays_split_and_ids_match_the_text_read_whole():
    text = load_text("shakespeare")
    train, valid = split_text(text, 0.1, "\nMUCH ADO ABOUT NOTHING\n")
    dataset = load_dataset(DataSpec("shakespeare"))
    assert str(dataset.train) == train and str(dataset.valid) == valid
    vocabulary = Vocabulary.from_text(dataset.train)
    assert vocabulary.symbols == Vocabulary.from_text(train).symbols
    ids = vocabulary.encode(dataset.valid, unknown="map")
    assert ids.dtype == torch.uint8
    assert torch.equal(ids.long(), vocabulary.encode(valid, unknown="map"))


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.9])
def test_split_by_position_as_split_text(tmp_path, fraction):
    text = "".join(f"line {i} {'x' * (i % 7)}\n" for i in range(300)) + "no newline at the end"
    path = tmp_path / "t.txt"
    path.write_text(text)
    store = open_store(path)
    cut = split_store(store, fraction)
    train, valid = split_text(text, fraction)
    assert cut == len(train)
    assert str(store.part(0, cut)) == train and str(store.part(cut, len(store))) == valid


def test_crlf_bom_and_chunk_boundaries_read_as_load_text(tmp_path, monkeypatch):
    monkeypatch.setattr(token_store, "CHUNK_BYTES", 7)  # CRLF and multi-byte characters split across chunks
    text = "\ufeffab\r\ncd\r\n\u00e9t\u00e9 \u4e2d\u6587\r\n\U0001f600 end\r"
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    store = open_store(path)
    assert str(store.part(0, len(store))) == load_text(path)


def test_cache_is_reused_and_a_changed_file_is_never_read_through_the_old_store(tmp_path, cache):
    path = tmp_path / "t.txt"
    path.write_text("abcabc\n")
    first = open_store(path)
    assert open_store(path).directory == first.directory  # reused
    stat = path.stat()
    path.write_text("abdabd\n")  # same size; the same modification time put back
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = open_store(path)
    assert second.directory != first.directory
    assert str(second.part(0, len(second))) == "abdabd\n"
    assert len(stores(cache)) == 2


def test_uint16_ids_past_256_symbols_and_refused_past_uint16(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_text("".join(chr(0x100 + i) for i in range(300)), encoding="utf-8")
    store = open_store(path)
    assert store.ids.dtype == np.uint16 and len(store.vocabulary) == 301
    assert str(store.part(0, len(store))) == path.read_text(encoding="utf-8")
    many = tmp_path / "many.txt"
    many.write_text("".join(chr(0x20000 + i) for i in range(70000)), encoding="utf-8")
    with pytest.raises(SeqlabError, match=r"70,000 distinct characters .* 65,536 symbols"):
        open_store(many)


def test_not_utf8_names_the_byte_offset_and_latin1_reads_it(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"hello\nw\xe9rld\n")
    with pytest.raises(
        OptionError, match=r"not valid UTF-8 at line 2, column 2 \(byte offset 7, byte 0xe9\).*encoding"
    ) as e:
        open_store(path)
    assert "\n" not in str(e.value)
    store = open_store(path, encoding="latin-1")
    assert str(store.part(0, len(store))) == "hello\nw\u00e9rld\n"
    dataset = load_dataset(DataSpec(str(path), encoding="latin-1"))
    assert str(dataset.train) + str(dataset.valid) == "hello\nw\u00e9rld\n"
    with pytest.raises(OptionError, match="unknown encoding"):
        open_store(path, encoding="no-such-codec")


def test_binary_and_empty_files_refused(tmp_path):
    (tmp_path / "bin").write_bytes(b"ab\ncd\x00ef")
    with pytest.raises(SeqlabError, match="NUL byte at line 2, column 3, byte offset 5"):
        open_store(tmp_path / "bin")
    (tmp_path / "bom").write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(SeqlabError, match="empty"):
        open_store(tmp_path / "bom")


def test_full_disk_leaves_nothing_behind(tmp_path, cache, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_text("some text\n" * 100)
    real = token_store.write_array

    def full(target, chunks):
        real(target, chunks)
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(token_store, "write_array", full)
    with pytest.raises(SeqlabError, match="cannot write its token store .*the disk is full") as e:
        open_store(path)
    assert "\n" not in str(e.value)
    assert [p.name for p in (cache / "tokens").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(token_store, "write_array", real)
    assert str(open_store(path).part(0, 10)) == "some text\n"


def test_a_dead_writers_partial_store_is_removed_and_rebuilt(tmp_path, cache):
    path = tmp_path / "t.txt"
    path.write_text("abc\n")
    store = open_store(path)
    partial = cache / "tokens" / f".{store.directory.name}.tmp-999999999"  # a PID no process has
    partial.mkdir()
    (partial / "ids.bin").write_bytes(b"\x00")
    (store.directory / ".seqlab-complete").unlink()  # the store itself never marked complete
    again = open_store(path)
    assert str(again.part(0, len(again))) == "abc\n"
    assert not partial.exists()


def _build(path: str, cache: str, queue) -> None:
    os.environ[token_store.CACHE_ENV] = cache
    store = open_store(path)
    queue.put((str(store.directory), str(store.part(0, len(store)))))


@pytest.mark.slow  # two processes importing seqlab: in CI's slow pass
def test_two_processes_building_the_same_store_at_once(tmp_path, cache, monkeypatch):
    path = tmp_path / "t.txt"
    text = "".join(f"{i} the quick brown fox\n" for i in range(20000))
    path.write_text(text)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_build, args=(str(path), str(cache), queue)) for _ in range(2)]
    for w in workers:
        w.start()
    results = []
    while len(results) < len(workers):  # no deadline (a busy machine only makes the workers slower): a dead
        try:  # worker fails the test as soon as it is seen dead
            results.append(queue.get(timeout=0.5))
        except queue_module.Empty:
            assert all(w.exitcode in (None, 0) for w in workers), [w.exitcode for w in workers]
    for w in workers:
        w.join()
        assert w.exitcode == 0
    assert results[0] == results[1] and results[0][1] == text
    assert len(stores(cache)) == 1
    assert not [p for p in (cache / "tokens").iterdir() if ".tmp-" in p.name]


def test_unknown_characters_of_another_vocabulary(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abc\nabz\n")
    store = open_store(path)
    vocabulary = Vocabulary(list("\nabc"))
    part = store.part(0, len(store))
    with pytest.raises(OptionError, match=r"'z' \(U\+007A\) at line 2, column 3 .*1 unknown characters"):
        vocabulary.encode(part)
    ids = vocabulary.encode(part, unknown="map")
    assert torch.equal(ids.long(), vocabulary.encode("abc\nabz\n", unknown="map"))


def test_a_remembered_hash_is_never_used_for_a_rewritten_file(tmp_path, cache):
    path = tmp_path / "t.txt"
    path.write_text("abcabc\n")
    os.utime(path, (1e9, 1e9))  # long ago: its hash is remembered
    first = open_store(path)
    assert list((cache / "files").iterdir())
    assert open_store(path).directory == first.directory
    path.write_text("abdabd\n")  # same size, the same times put back: only the change time differs
    os.utime(path, (1e9, 1e9))
    second = open_store(path)
    assert second.directory != first.directory and str(second.part(0, len(second))) == "abdabd\n"


def test_the_training_part_symbols_from_first_occurrences_equal_a_scan(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("aaaa\nbbbb\ncz\u00e9\n\u4e2d!", encoding="utf-8")
    store = open_store(path)
    for cut in range(len(store) + 1):
        part = store.part(0, cut)
        scanned = TextPart(part.ids, part.vocabulary)  # no first occurrences: counted
        assert part.symbols() == scanned.symbols() == sorted(set(str(part)))
    tail = store.part(5, len(store))
    assert tail.symbols() == sorted(set(str(tail)))


def test_a_large_part_under_another_vocabulary_is_translated_once_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(TextPart, "CHUNK", 16)  # "large": more than one chunk
    path = tmp_path / "t.txt"
    path.write_text("the cat sat on the mat\n" * 20 + "a zebra\n")
    store = open_store(path)
    vocabulary = Vocabulary(list("\n aehmnostc"))
    for start, stop in [(0, 100), (100, len(store))]:
        part = store.part(start, stop)
        ids = vocabulary.encode(part, unknown="map")
        assert torch.equal(ids.long(), vocabulary.encode(str(part), unknown="map"))
    written = sorted(p.name for p in store.directory.glob("translated-*"))
    assert len(written) == 2  # one per part: keyed by where it starts
    vocabulary.encode(store.part(0, 100), unknown="map")
    assert sorted(p.name for p in store.directory.glob("translated-*")) == written
