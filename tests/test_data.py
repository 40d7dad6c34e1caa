"""Text loading, vocabularies and splits: clear errors naming the file and position."""

import pytest

from seqlab import SeqlabError
from seqlab.data import BUNDLED, Vocabulary, load, load_text, split_text
from seqlab.data.text import UNKNOWN


def test_bundled_data_loads_by_name():
    text = load_text("shakespeare")
    assert len(text) == 1_068_296 and text.startswith("ROMEO AND JULIET")
    (close,) = load("msft")
    assert close.name == "Close" and close.values.shape == (7983,)
    samples, rate = load("speech")
    assert rate == 16000 and abs(len(samples) / rate - 16.6) < 0.1


def test_shakespeare_split_holds_out_the_last_play():
    train, valid = split_text(load_text("shakespeare"), valid_from=BUNDLED["shakespeare"].valid_from)
    assert valid.startswith("MUCH ADO ABOUT NOTHING") and "MUCH ADO ABOUT NOTHING" not in train
    assert train.rstrip().endswith("THE END") or len(train) > 900_000


def test_split_by_fraction_cuts_at_a_line_start():
    text = "".join(f"line {i}\n" for i in range(100))
    train, valid = split_text(text, 0.2)
    assert train + valid == text and valid.startswith("line ") and 0.15 < len(valid) / len(text) < 0.25


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"abc\x00def", "binary"),
        (b"hello\nw\xe9rld\n", "not valid UTF-8 at line 2, column 2"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(SeqlabError, match=message) as info:
        load_text(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_bundled_sets(tmp_path):
    with pytest.raises(SeqlabError, match="no such data file.*shakespeare"):
        load_text(tmp_path / "nope.txt")


def test_vocabulary_round_trip_and_unknown_characters():
    vocab = Vocabulary.from_text("hello\nworld")
    assert vocab.decode(vocab.encode("hello")) == "hello"
    assert vocab.symbols[-1] == UNKNOWN and len(vocab) == len(set("hello\nworld")) + 1
    with pytest.raises(SeqlabError, match=r"'z' \(U\+007A\) at line 2, column 2"):
        vocab.encode("he\nlzo", source="probe")
    mapped = vocab.encode("hez", unknown="map")
    assert mapped[-1] == vocab.unknown_id
    assert Vocabulary.from_json(vocab.to_json()).symbols == vocab.symbols
