"""The command line: every command on a tiny model, and a one-line error for each kind of bad input."""

import contextlib
import io
import json
import shutil

import pytest
import torch
from helpers import SMALL_TEXT, TINY_MODEL, TINY_TRAINING, assert_one_line_error, write_small_text
from helpers import run_cli as run

import seqlab
from seqlab.cli import main
from seqlab.metrics import LN2, likelihood_scores
from seqlab.runs import compare
from seqlab.runs.contenders import contenders


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    data = write_small_text(directory)
    out = directory / "model"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "--data", str(data), "--steps", "6", *TINY_MODEL, *TINY_TRAINING, "--out", str(out)])
    assert code == 0
    (directory / "train-stdout.txt").write_text(printed.getvalue())
    return directory, data, out


@pytest.mark.cross_process
def test_train_writes_a_loadable_model_and_prints_a_sample(trained, capsys):
    directory, data, out = trained
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert (out / "last" / "optimizer.pt").exists()
    training = json.loads((out / "training.json").read_text())
    final = training["final"]
    assert final["valid_tokens"] > 0 and final["steps"] == 6
    printed = (directory / "train-stdout.txt").read_text()
    held_out = f"held-out {final['valid_tokens']:,} characters: {final['valid_bits_per_char']:.3f} bits/char"
    assert held_out in printed, printed
    header, sample = printed.split("seqlab: sample (temperature 0.8, seed 0):\n")
    assert sample == seqlab.load(out).sample("", 20, 0.8, seed=0) + "\n"  # TINY_TRAINING's --sample-length 20
    assert len(sample) == 21 and set(sample) <= set(data.read_text()) | {"\n"}


def test_scores_are_named_per_element(trained, tmp_path, capsys):
    """Text keeps its keys; prices (a density) say nats per value and have no bits per char or perplexity."""
    prices = tmp_path / "prices.csv"
    prices.write_text("Close\n" + "".join(f"{100 + (i % 7) * 0.5 + i * 0.01}\n" for i in range(300)))
    argv = ["train", "--data", str(prices), "--steps", "2", *TINY_MODEL, *TINY_TRAINING, "--out", str(tmp_path / "m")]
    code, stdout, err = run(argv, capsys)
    assert code == 0 and "nats/value (a density" in stdout and "bits/char" not in stdout, err
    code, stdout, err = run(["evaluate", str(tmp_path / "m"), "--data", str(prices), "--json"], capsys)
    scores = json.loads(stdout)
    assert code == 0 and set(scores) == {"data", "nll_nats_per_value", "values"}, scores
    final = json.loads((tmp_path / "m" / "training.json").read_text())["final"]
    assert "valid_nll_nats_per_value" in final and not any("char" in k or "perplexity" in k for k in final)
    audio = likelihood_scores(torch.log(torch.full((4,), 0.5)), "samples", discrete=True)
    assert audio == pytest.approx({"nll_nats_per_sample": LN2, "bits_per_sample": 1.0, "perplexity": 2.0, "samples": 4})
    text = likelihood_scores(torch.log(torch.full((4,), 0.5)))
    assert text == pytest.approx({"nll_nats": LN2, "bits_per_char": 1.0, "perplexity": 2.0, "tokens": 4})


def test_sample(trained, capsys):
    _, _, out = trained
    code, stdout, _ = run(["sample", str(out), "--prompt", "ROMEO", "--length", "40", "--seed", "1"], capsys)
    assert code == 0 and stdout.startswith("ROMEO") and len(stdout.rstrip("\n")) == 45
    again = run(["sample", str(out), "--prompt", "ROMEO", "--length", "40", "--seed", "1"], capsys)[1]
    assert again == stdout


def test_evaluate_json_and_default_data(trained, capsys):
    directory, data, out = trained
    other = directory / "other.txt"  # another file than the training text: scored whole
    shutil.copy(data, other)
    code, stdout, _ = run(["evaluate", str(out), "--data", str(other), "--json"], capsys)
    result = json.loads(stdout)
    assert code == 0 and {"nll_nats", "bits_per_char", "perplexity", "tokens"} <= result.keys()
    assert result["tokens"] == 20_000 and abs(result["bits_per_char"] * 0.6931471805599453 - result["nll_nats"]) < 1e-9
    code, stdout, _ = run(["evaluate", str(out), "--data", str(data)], capsys)  # the training file: its held-out part
    assert code == 0 and "validation part" in stdout


def test_info(trained, capsys):
    _, _, out = trained
    code, stdout, _ = run(["info", str(out)], capsys)
    assert code == 0 and "LatentAR(lstm" in stdout and "final" in stdout


def test_train_refuses_to_overwrite(trained, capsys):
    _, data, out = trained
    code, _, err = run(["train", "--data", str(data), "--steps", "2", "--out", str(out)], capsys)
    assert_one_line_error(code, err, "already holds a run", "--resume")


def test_resume_refuses_changed_settings(trained, capsys):
    _, _, out = trained
    code, _, err = run(
        ["train", "--resume", "--out", str(out), "--steps", "8", "--lr", "1e-2", "--hidden", "4"], capsys
    )
    assert_one_line_error(code, err, "only --steps and --time-budget can change", "--hidden", "--lr")


def test_overwrite_with_bad_settings_keeps_the_old_model(trained, tmp_path, capsys):
    _, data, out = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, _, err = run(["train", "--data", str(data), "--out", str(copy), "--overwrite", "--window", "100000"], capsys)
    assert_one_line_error(code, err, "shorter than one training window")
    assert (copy / "model.safetensors").exists() and (copy / "last" / "optimizer.pt").exists()


def test_resume_with_another_model_kind(trained, capsys):
    _, _, out = trained
    code, _, err = run(["train", "--resume", "--model", "gru", "--out", str(out), "--steps", "8"], capsys)
    assert_one_line_error(code, err, "holds a lstm model", "--model gru")


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        (b"caf\xe9\n", "not valid UTF-8 at line 1, column 4"),
        (b"short text\n", "shorter than one training window"),
    ],
)
def test_bad_training_data(tmp_path, capsys, content, fragment):
    data = tmp_path / "bad.txt"
    data.write_bytes(content)
    out = tmp_path / "out"
    code, _, err = run(["train", "--data", str(data), "--steps", "2", *TINY_TRAINING, "--out", str(out)], capsys)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()  # nothing half-written


def test_compare_refuses_series_and_audio(tmp_path, capsys):
    for name, kind in (("msft", "series"), ("speech", "audio")):
        code, _, err = run(["compare", "--data", name, "--out", str(tmp_path / name)], capsys)
        assert_one_line_error(code, err, f"{name}: {kind} data; this command ranks text models")
        assert not (tmp_path / name).exists()


def test_compare_reads_a_latin1_text_with_encoding(tmp_path, capsys, monkeypatch):
    """Issue 31: compare takes --encoding as train does; without it a text that is not UTF-8 is refused in one line
    naming the byte offset, before anything is fitted or written."""
    monkeypatch.setattr(compare, "contenders", lambda vocabulary: contenders(vocabulary)[:1])  # the Markov chain
    data = tmp_path / "latin.txt"
    text = "caf\u00e9\n" + SMALL_TEXT
    data.write_bytes(text.encode("latin-1"))
    out = tmp_path / "cmp"
    base = ["compare", "--data", str(data), "--out", str(out), "--json", "--no-progress"]
    code, _, err = run(base, capsys)
    assert_one_line_error(code, err, "not valid UTF-8", "byte offset 3", "0xe9", "encoding")
    assert not out.exists()
    code, _, err = run([*base, "--encoding", "no-such-codec"], capsys)
    assert_one_line_error(code, err, "unknown --encoding")
    code, stdout, err = run([*base, "--encoding", "latin-1"], capsys)
    assert code == 0, err
    record = json.loads(stdout)
    assert [r["model"] for r in record["results"]] == ["markov (add-0.5)"]
    assert record["data"]["train_chars"] + record["data"]["valid_chars"] == len(text)
    assert (out / "compare.md").exists()


def test_missing_data_file(tmp_path, capsys):
    code, _, err = run(["train", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(code, err, "no such data file", "nope.txt")
    assert not (tmp_path / "o").exists()


def test_unknown_characters_at_evaluation(trained, tmp_path, capsys):
    _, _, out = trained
    probe = tmp_path / "probe.txt"
    probe.write_text("ROMEO\nJuliet ~ here\n", encoding="utf-8")
    code, _, err = run(["evaluate", str(out), "--data", str(probe)], capsys)
    assert_one_line_error(code, err, "'~'", "line 2, column 8", "--unknown map")
    code, stdout, _ = run(["evaluate", str(out), "--data", str(probe), "--unknown", "map", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["unknown_tokens"] == 1


@pytest.mark.parametrize(
    "damage", ["missing", "no_config", "truncated", "corrupted_config", "unknown_kind", "another_kind"]
)
def test_bad_checkpoints(trained, tmp_path, capsys, damage):
    _, _, out = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    fragment = {
        "missing": "no such model directory",
        "no_config": "not a seqlab model directory",
        "truncated": "corrupted or truncated",
        "corrupted_config": "corrupted JSON",
        "unknown_kind": "unknown model kind 'wavenet'",
        "another_kind": "invalid model config",
    }[damage]
    if damage == "missing":
        shutil.rmtree(broken)
    elif damage == "no_config":
        (broken / "config.json").unlink()
    elif damage == "truncated":
        weights = broken / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "corrupted_config":
        (broken / "config.json").write_text('{"format": "seqlab-model", "mod')
    else:
        config = json.loads((broken / "config.json").read_text())
        kind = "wavenet" if damage == "unknown_kind" else "ngram"  # ngram: a real kind, but not these files
        (broken / "config.json").write_text(json.dumps({**config, "model": kind}))
    for command in (["sample", str(broken)], ["evaluate", str(broken)], ["info", str(broken)]):
        code, _, err = run(command, capsys)
        assert_one_line_error(code, err, fragment)


def test_truncated_optimizer_state_on_resume(trained, tmp_path, capsys):
    _, _, out = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    optimizer = broken / "last" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:1000])
    code, _, err = run(["train", "--resume", "--out", str(broken), "--steps", "8", "--no-progress"], capsys)
    assert_one_line_error(code, err, "optimizer.pt", "corrupted")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["train", "--hidden", "0"], "--hidden: expected a positive integer, got 0"),
        (["train", "--layers", "-2"], "--layers: expected a positive integer, got -2"),
        (["train", "--steps", "0"], "--steps"),
        (["train", "--lr", "-1"], "--lr: expected a positive number"),
        (["train", "--dropout", "1.5"], "--dropout"),
        (["train", "--model", "wavenet"], "--model: invalid choice"),
        (["sample", "--temperature", "0"], "--temperature: expected a positive number, got 0"),
        (["sample", "--temperature", "-1"], "--temperature"),
        (["sample", "--length", "-5"], "--length"),
        (["evaluate", "--unknown", "skip"], "--unknown: invalid choice"),
    ],
)
def test_nonsensical_options(capsys, argv, fragment):
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, fragment)


@pytest.mark.slow
def test_compare_ranks_every_family_and_writes_table_csv_and_chart(tmp_path, capsys):
    data = write_small_text(tmp_path)
    out = tmp_path / "cmp"
    code, stdout, _ = run(
        ["compare", "--data", str(data), "--budget", "0.5", "--out", str(out), "--json", "--no-progress"], capsys
    )
    assert code == 0
    results = json.loads(stdout)["results"]
    names = [r["model"] for r in results]
    assert len(names) == 11 and any("markov" in n for n in names) and any("lstm" in n for n in names)
    assert all({"model", "nll_nats", "bits_per_char", "params", "fit_seconds"} <= r.keys() for r in results)
    nlls = [r["nll_nats"] for r in results]
    assert nlls == sorted(nlls)
    by_name = {r["model"]: r["nll_nats"] for r in results}
    # memory helps where there is data to learn it from: order 4 beats the first-order chain
    assert by_name["ngram order 4 (Kneser-Ney)"] < by_name["markov (add-0.5)"]
    assert (out / "compare.md").read_text().count("\n|") >= 10
    assert (out / "compare.csv").read_text().startswith("model,")
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import seqlab.cli

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setitem(seqlab.cli.COMMANDS, "info", broken)
    code, _, err = run(["info", "somewhere"], capsys)
    assert_one_line_error(code, err, "internal error (RuntimeError: boom)", "--debug", internal=True)
    code, _, err = run(["--debug", "info", "somewhere"], capsys)
    assert code == 2 and "Traceback" in err and "RuntimeError: boom" in err
