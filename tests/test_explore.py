"""``seqlab explore`` without a browser: the numbers the page embeds are the model's, the page is self-contained
and bounded, and bad requests get one line. The page's JavaScript is tested in tests/test_explore_browser.py."""

import json
import re

import numpy as np
import pytest
import torch
from conftest import relative_error
from helpers import (
    SMALL_TEXT,
    TINY_MODEL,
    TINY_TRAINING,
    assert_one_line_error,
    run_cli,
    tiny_latent_ar,
    write_small_text,
)

import seqlab
from seqlab.data import load_text
from seqlab.data.audio import MuLaw
from seqlab.data.text import Vocabulary
from seqlab.models import NGram
from seqlab.models.latent_ar import LatentAR, LatentARConfig
from seqlab.runs import explore
from seqlab.streaming import StreamingSampler

TEXT = SMALL_TEXT[:600]


def tiny_model(cell="lstm", layers=1, reset="after", hidden=12, seed=0, scale=3.0):
    """A random model whose weights are scaled up, so that its gates saturate and its logits spread."""
    vocabulary = Vocabulary.from_text(SMALL_TEXT)
    return tiny_latent_ar(
        vocabulary, seed, scale, cell=cell, hidden_size=hidden, embedding_dim=6, num_layers=layers, reset=reset
    )


def page_data(path):
    html = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="seqlab-data">(.*?)</script>', html, re.S).group(1)
    return html, json.loads(block)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def build(tmp_path, model, text_file, chars=600, against=None):
    seqlab.save(model, tmp_path / "model")
    out = tmp_path / "page.html"
    spec = explore.ExploreSpec(tmp_path / "model", out, seqlab.DataSpec(str(text_file)), chars, against)
    return explore.explore(spec), out


# -- the unit values: seqlab.cells' quantities, against torch.nn's cells ---------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_unit_values_follow_torch_cells(cell):
    """h (and C) of every layer after each character equal torch.nn's cells stepped over the same inputs, and the
    gates recorded are the ones that produce them: C_t = f C_{t-1} + i g, h = o tanh(C); h = (1 - z) n + z h_prev."""
    model = tiny_model(cell, layers=2)
    tables = StreamingSampler(model)
    ids = model.encode(TEXT[:200]).numpy()
    trace = explore.unit_values(tables, ids)
    f64 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    x = torch.eye(tables.start + 1, dtype=torch.float64)[[tables.start, *ids.tolist()]]  # one-hot inputs (T + 1, V + 1)
    for k in range(2):
        torch_cell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[cell]
        D = x.shape[1]
        ref = torch_cell(D, tables.H).double()
        with torch.no_grad():
            ref.weight_ih.copy_(f64(tables.input_table.T if k == 0 else tables.weight_ih[k]))
            ref.bias_ih.copy_(torch.zeros(tables.input_table.shape[1]) if k == 0 else f64(tables.bias_ih[k]))
            ref.weight_hh.copy_(f64(tables.weight_hh[k]))
            ref.bias_hh.copy_(f64(tables.bias_hh[k]))
        h = torch.zeros(1, tables.H, dtype=torch.float64)
        C = h.clone()
        hs, Cs = [], []
        with torch.no_grad():
            for t in range(x.shape[0]):
                if cell == "lstm":
                    h, C = ref(x[t : t + 1], (h, C))
                else:
                    h = ref(x[t : t + 1], h)
                hs.append(h[0])
                Cs.append(C[0])
        h_ref = torch.stack(hs)[1:]  # (T, H): after reading each character
        assert relative_error(f64(trace[k, "h"]), h_ref) < 1e-5
        h_prev = torch.stack(hs)[:-1]  # the state each step starts from
        if cell == "lstm":
            C_ref = torch.stack(Cs)[1:]
            C_prev = torch.stack(Cs)[:-1]
            i, f, g, o = (f64(trace[k, q]) for q in "ifgo")
            assert relative_error(f64(trace[k, "c"]), C_ref) < 1e-5
            assert relative_error(f * C_prev + i * g, C_ref) < 1e-5
            assert relative_error(o * torch.tanh(C_ref), h_ref) < 1e-5
        if cell == "gru":
            z, n = f64(trace[k, "z"]), f64(trace[k, "n"])
            assert relative_error((1 - z) * n + z * h_prev, h_ref) < 1e-5
        x = torch.stack(hs)  # (T + 1, H): the next layer reads this one's h at every step, the start's included


def test_correlations_equal_numpy_corrcoef():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 5))
    feature = values[:, 2] * 0.5 + rng.normal(size=300)
    mask = rng.random(300) > 0.3
    r = explore.correlations(values, feature, mask)
    expected = [np.corrcoef(values[mask, j], feature[mask])[0, 1] for j in range(5)]
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    values[:, 4] = 1.0  # a constant unit has no correlation, not NaN
    assert explore.correlations(values, feature, mask)[4] == 0.0


def test_text_features():
    text = 'ROMEO.\nSay "no" (now).\n'
    f = explore.text_features(text)
    at = lambda name: "".join("1" if v else "0" for v in f[name][0])  # noqa: E731
    assert len(text) == 23 and at("speaker's name") == "1111111" + "0" * 16
    assert at("inside quotes") == "0" * 11 + "1111" + "0" * 8
    assert at("inside brackets") == "0" * 16 + "11111" + "00"
    assert f["position in line"][0][:9].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    values, letters = f["vowel"]
    assert letters.sum() == sum(ch.isalpha() for ch in text) and values[letters].tolist()[:5] == [0, 1, 0, 1, 1]


# -- the page ------------------------------------------------------------------------------------------------------
@pytest.mark.cross_process
def test_page_holds_the_models_numbers(tmp_path, text_file):
    model = tiny_model("lstm", layers=2)
    result, out = build(tmp_path, model, text_file)
    html, data = page_data(out)
    expected_bits = -model.log_prob(TEXT).double() / np.log(2)
    assert relative_error(torch.tensor(data["bits"], dtype=torch.float64), expected_bits) < 1e-5
    assert result.bits_per_char == pytest.approx(float(expected_bits.mean()), rel=1e-9)
    # the top-10 before character s: LatentAR.step's softmax, largest first
    state = model.initial_state()
    logits, state = model.step(None, state)
    for s, x in enumerate(model.encode(TEXT)[:50]):
        p = torch.softmax(logits.double(), 0)
        top = torch.topk(p, 10)
        assert data["top_ids"][s] == top.indices.tolist()
        np.testing.assert_allclose(data["top_p"][s], top.values.numpy(), atol=2e-5)
        logits, state = model.step(x, state)
    assert data["chars"] == list(TEXT) and len(data["vocabulary"]) == len(model.vocabulary)
    assert data["views"] == ["surprise", "units", "saturation", "sampler"]
    # self-contained: nothing that could load anything
    assert not re.search(r"https?://|\bsrc\s*=|\bhref\s*=\s*\"(?!#)|@import|url\(", html), "the page refers outside"
    assert "default-src 'none'" in html


def test_saturation_and_ranked_units(tmp_path, text_file):
    model = tiny_model("gru", layers=1)
    _, out = build(tmp_path, model, text_file)
    _, data = page_data(out)
    trace = explore.unit_values(StreamingSampler(model), model.encode(TEXT).numpy())
    z = trace[0, "z"]
    assert data["units"]["saturation"]["0:z"]["left"] == pytest.approx((z < 0.1).mean(0), abs=1e-4)
    assert data["units"]["saturation"]["0:z"]["right"] == pytest.approx((z > 0.9).mean(0), abs=1e-4)
    assert set(data["units"]["saturation"]) == {"0:r", "0:z"}
    line = data["units"]["ranked"]["position in line"][0]
    feature, mask = explore.text_features(TEXT)["position in line"]
    r = np.corrcoef(trace[line["layer"], line["quantity"]][:, line["unit"]], feature)[0, 1]
    assert line["r"] == pytest.approx(r, abs=1e-4)
    assert all(abs(line["r"]) >= abs(row["r"]) for row in data["units"]["ranked"]["position in line"])
    assert "inside quotes" not in data["units"]["ranked"]  # no quote in this text


@pytest.mark.slow  # the default 1 x 512 LSTM over 5,000 characters
def test_default_model_page_is_at_most_8_mb(tmp_path):
    """The default 1 x 512 LSTM (vocabulary of the bundled text) on 5,000 characters."""
    model = LatentAR(Vocabulary.from_text(load_text("shakespeare")), LatentARConfig())
    assert sum(p.numel() for p in model.parameters()) == 1_235_729
    path = tmp_path / "text.txt"
    path.write_text(load_text("shakespeare")[-6000:], encoding="utf-8")
    result, out = build(tmp_path, model, path, chars=5000)
    assert result.chars == 5000
    assert out.stat().st_size == result.bytes <= 8 * 2**20
    assert explore.estimated_bytes(model, 5000, False) == pytest.approx(result.bytes, rel=0.1)


def test_ngram_gets_surprise_and_against(tmp_path, text_file):
    ngram = NGram(order=3, vocabulary=Vocabulary.from_text(SMALL_TEXT)).fit(SMALL_TEXT)
    seqlab.save(ngram, tmp_path / "ngram")
    lstm = tiny_model("lstm")
    result, out = build(tmp_path, lstm, text_file, against=tmp_path / "ngram")
    _, data = page_data(out)
    expected = -ngram.log_prob(TEXT).double() / np.log(2)
    assert relative_error(torch.tensor(data["against"]["bits"], dtype=torch.float64), expected) < 1e-5
    assert "against" in data["views"] and result.against_bits_per_char == pytest.approx(float(expected.mean()))
    # the n-gram itself: surprise (and against), a note for the rest
    seqlab.save(lstm, tmp_path / "lstm")
    spec = explore.ExploreSpec(tmp_path / "ngram", tmp_path / "ngram.html", seqlab.DataSpec(str(text_file)), 300)
    spec.against = tmp_path / "lstm"
    explore.explore(spec)
    _, data = page_data(tmp_path / "ngram.html")
    assert data["views"] == ["surprise", "against"] and "no latent state" in data["note"]
    assert "weights" not in data and "units" not in data


def test_cli_writes_the_page(tmp_path, text_file, capsys):
    seqlab.save(tiny_model("rnn"), tmp_path / "model")
    out = tmp_path / "page.html"
    code, stdout, err = run_cli(
        ["explore", str(tmp_path / "model"), "--data", str(text_file), "--chars", "300", "--out", str(out)], capsys
    )
    assert code == 0, err
    assert f"wrote {out}" in stdout and "300 characters" in stdout and "units, sampler" in stdout
    assert out.stat().st_size > 0


def test_cli_refusals_are_one_line(tmp_path, text_file, capsys, monkeypatch):
    seqlab.save(tiny_model("lstm"), tmp_path / "model")
    base = ["explore", str(tmp_path / "model"), "--data", str(text_file)]
    code, _, err = run_cli([*base, "--chars", "50000", "--out", str(tmp_path / "p.html")], capsys)
    assert_one_line_error(code, err, "--chars", "20,000")
    code, _, err = run_cli([*base, "--out", str(tmp_path / "missing" / "p.html")], capsys)
    assert_one_line_error(code, err, "does not exist")
    monkeypatch.setattr(explore, "VALUES_LIMIT_BYTES", 100_000)
    code, _, err = run_cli([*base, "--chars", "600", "--out", str(tmp_path / "p.html")], capsys)
    assert_one_line_error(code, err, "unit values", "lower --chars (now 600)")
    monkeypatch.setattr(explore, "PAGE_LIMIT_BYTES", 100_000)
    code, _, err = run_cli([*base, "--out", str(tmp_path / "p.html")], capsys)
    assert_one_line_error(code, err, "limit", "lower --chars")
    assert not (tmp_path / "p.html").exists()


def test_audio_given_to_a_text_model_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    seqlab.save(tiny_model("lstm"), tmp_path / "model")
    wav = tmp_path / "voice.wav"
    wav.write_bytes(b"not read")
    monkeypatch.setattr(explore, "load_dataset", lambda *_: pytest.fail("the audio was read"))
    code, _, err = run_cli(
        ["explore", str(tmp_path / "model"), "--data", str(wav), "--out", str(tmp_path / "p")], capsys
    )
    assert_one_line_error(code, err, f"{wav}: audio data; the explore page is for text models")


def test_audio_and_series_models_get_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    audio = LatentAR(MuLaw(8000), LatentARConfig(cell="gru", hidden_size=4, embedding_dim=2))
    series = LatentAR.for_series(np.random.default_rng(0).normal(size=200), LatentARConfig(hidden_size=4))
    for name, model in (("audio", audio), ("series", series)):
        seqlab.save(model, tmp_path / name)
        code, _, err = run_cli(["explore", str(tmp_path / name), "--out", str(tmp_path / "p.html")], capsys)
        assert_one_line_error(code, err, "the explore page is for text models (for now)")


def test_a_model_trained_on_a_local_file_is_explored_on_it(tmp_path, text_file, capsys):
    """Issue 33: explore DIR --data FILE was an internal error for every model trained on a local text (the training
    record's DataSpec was passed where a path was expected). The training file gives its held-out part; another
    file is read whole."""
    data, model = write_small_text(tmp_path), tmp_path / "model"
    argv = ["train", "--data", str(data), "--steps", "2", *TINY_MODEL, *TINY_TRAINING, "--out", str(model)]
    assert run_cli(argv, capsys)[0] == 0
    for given, source in ((data, f"{data} (validation part)"), (text_file, str(text_file))):
        out = tmp_path / "page.html"
        code, _, err = run_cli(["explore", str(model), "--data", str(given), "--out", str(out)], capsys)
        assert code == 0, err
        assert page_data(out)[1]["source"] == source


def test_a_latin1_text_is_refused_in_one_line_and_read_with_encoding(tmp_path, capsys):
    """Issue 31: explore takes --encoding as train and evaluate do; without it a text that is not UTF-8 is refused in
    one line naming the byte offset. A model's own text is read as it was trained, unless --encoding says otherwise."""
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n" + TEXT.encode("ascii"))
    model = tmp_path / "model"
    seqlab.save(tiny_latent_ar(Vocabulary.from_text(TEXT + "\u00e9"), hidden_size=6, embedding_dim=4), model)
    out = tmp_path / "page.html"
    base = ["explore", str(model), "--data", str(latin), "--out", str(out)]
    code, _, err = run_cli(base, capsys)
    assert_one_line_error(code, err, "not valid UTF-8", "byte offset 3", "0xe9", "encoding")
    assert not out.exists()
    code, _, err = run_cli([*base, "--encoding", "latin-1"], capsys)
    assert code == 0, err
    assert page_data(out)[1]["chars"][:5] == list("caf\u00e9\n")
    code, _, err = run_cli(["explore", str(model), "--encoding", "latin-1", "--out", str(out)], capsys)
    assert_one_line_error(code, err, "--encoding", "--data")

    trained = tmp_path / "trained"
    argv = ["train", "--data", str(latin), "--encoding", "latin-1", "--steps", "2", *TINY_MODEL, *TINY_TRAINING]
    assert run_cli([*argv, "--out", str(trained)], capsys)[0] == 0
    base = ["explore", str(trained), "--data", str(latin), "--out", str(out)]
    code, _, err = run_cli(base, capsys)  # its own text, as trained: latin-1
    assert code == 0, err
    assert page_data(out)[1]["source"] == f"{latin} (validation part)"
    code, _, err = run_cli([*base, "--encoding", "utf-8"], capsys)  # told otherwise
    assert_one_line_error(code, err, "not valid UTF-8", "byte offset 3")
