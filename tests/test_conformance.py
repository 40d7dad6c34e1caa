"""One conformance suite over every registered model (``seqlab.base.MODELS``) and each configuration it declares
(``conformance_cases()``): a family registered later is covered without editing this file, and one registered
without cases fails ``test_every_registered_kind_declares_cases``.

Checks: fit on tiny data returns the model; the chain rule (3 symbols: P of all 3^4 sequences of length 4 sums
to 1; ``log_prob`` equals the log-densities of ``step``'s parameters, element by element); save / load gives
identical ``log_prob`` and config; ``step`` is deterministic in inference mode, even from training mode;
sampling (text) or forecasting (series), both for frames (vector-valued elements); unsupported operations are
``Unsupported`` errors. Then the CLI: train -> info -> evaluate -> sample or forecast for every model the CLI
can train.
"""

import copy
import itertools
import json
import math

import numpy as np
import pytest
import torch
from helpers import run_cli as cli
from helpers import stepped_log_probs

import seqlab
from seqlab.base import MODELS, Forecast, SequenceModel
from seqlab.data.audio import MuLaw
from seqlab.data.spec import DataSpec
from seqlab.errors import SeqlabError, Unsupported
from seqlab.models import LatentAR, LatentARConfig
from seqlab.recurrent import CELLS

TEXT = "abbabaabbbaababaabab" * 4  # two symbols: with the unknown symbol a vocabulary of 3
SERIES = np.zeros(160)
for _t in range(1, 160):
    SERIES[_t] = 0.5 * SERIES[_t - 1] + np.random.default_rng(_t).standard_normal()
# frames (T, 3): two continuous columns (an AR(1) and a noisy copy of it) and a binary one (on when the first is up)
FRAMES = np.stack([SERIES, SERIES + 0.3 * np.random.default_rng(7).standard_normal(160), SERIES > 0], axis=1)
DATA = {"text": TEXT, "series": SERIES, "frames": FRAMES}
FLOAT32 = {"rtol": 1e-5, "atol": 1e-5}  # float32 networks: teacher-forced pass against one step at a time

CASES = [(kind, case) for kind, cls in sorted(MODELS.items()) for case in cls.conformance_cases()]


def case_id(item) -> str:
    kind, case = item
    return f"{kind}[{case.name}]"


@pytest.fixture(scope="module", params=CASES, ids=[case_id(c) for c in CASES])
def fitted_once(request):
    kind, case = request.param
    torch.manual_seed(0)
    train = DATA[case.data]
    model = case.build(train)
    assert model.fit(train, **case.fit_options) is model, "fit returns the model itself"
    return kind, case, model


@pytest.fixture
def fitted(fitted_once):
    """Each case fitted once per module; every test gets its own copy to change."""
    kind, case, model = fitted_once
    return kind, case, copy.deepcopy(model)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_registered_kind_declares_cases(kind):
    assert MODELS[kind].conformance_cases(), f"{kind}: declare conformance_cases() so this suite runs it"


def test_each_model_says_what_its_elements_are(fitted):
    """The commands ask ``element_name``, never a codec's type, what kind of data a model reads."""
    _, case, model = fitted
    assert model.element_name == {"text": "characters", "series": "values", "frames": "frames"}[case.data]


def test_a_mu_law_model_reads_samples():
    assert LatentAR(MuLaw(16), LatentARConfig(hidden_size=4, embedding_dim=2)).element_name == "samples"


def close(a: torch.Tensor, b: torch.Tensor, exact: bool) -> bool:
    a, b = a.double(), b.double()
    if exact:
        return torch.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True)
    return torch.allclose(a, b, equal_nan=True, **FLOAT32)


def data_of(case):
    return DATA[case.data][: 30 if case.data == "text" else 40]


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_a_misspelt_fit_option_is_an_error(item):
    """No family swallows an option it does not know (a typo would otherwise be silently ignored)."""
    _, case = item
    model = case.build(DATA[case.data])
    with pytest.raises((TypeError, SeqlabError), match="unexpected keyword argument 'no_such_option'"):
        model.fit(DATA[case.data], **case.fit_options, no_such_option=1)


def test_fit_and_describe(fitted):
    kind, case, model = fitted
    assert model.kind == kind and isinstance(model, SequenceModel)
    assert isinstance(model.describe(), str) and model.describe()
    lp = model.log_prob(data_of(case))
    assert lp.shape == (len(data_of(case)),)


def test_log_prob_equals_the_steps(fitted):
    _, case, model = fitted
    x = model.encode(data_of(case))
    exact = not isinstance(model, torch.nn.Module)
    assert close(stepped_log_probs(model, x), model.log_prob(x), exact)
    if not exact:  # the same network in float64: the teacher-forced pass and the steps agree to rounding
        model64 = copy.deepcopy(model).double()
        x64 = model64.encode(data_of(case))
        assert torch.allclose(stepped_log_probs(model64, x64), model64.log_prob(x64), rtol=1e-10, atol=1e-10)


def test_probabilities_of_all_sequences_sum_to_one(fitted):
    _, case, model = fitted
    if case.data != "text":
        pytest.skip("a density: the chain rule is checked element by element in test_log_prob_equals_the_steps")
    V = model.head.num_classes
    assert V == 3

    def probability(sequence) -> float:  # through step: an unsmoothed model may give a sequence probability 0
        params, state = model.step(None, model.initial_state())
        logp = 0.0
        for x_t in sequence:
            logp += -float(model.head.nll(params, torch.tensor(x_t)))
            if logp == -math.inf:  # a prefix of probability 0 (unsmoothed): what follows it is undefined
                return 0.0
            params, state = model.step(torch.tensor(x_t), state)
        return math.exp(logp)

    total = sum(probability(s) for s in itertools.product(range(V), repeat=4))  # all 81 sequences
    assert abs(total - 1.0) < (1e-9 if not isinstance(model, torch.nn.Module) else 1e-5)


def test_save_and_load_give_identical_log_prob(fitted, tmp_path):
    _, case, model = fitted
    model.data_spec = DataSpec("prices.csv", column="Close", transform="log_return")
    seqlab.save(model, tmp_path / "m")
    loaded = seqlab.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.to_config() == model.to_config()
    assert loaded.data_spec == model.data_spec
    x = model.encode(data_of(case))
    assert torch.equal(loaded.log_prob(x).nan_to_num(-1e300), model.log_prob(x).nan_to_num(-1e300))


def test_step_is_deterministic_in_inference_mode(fitted):
    _, case, model = fitted
    if isinstance(model, torch.nn.Module):
        model.train()  # dropout on: step must still run in inference mode
    x = model.encode(data_of(case))[:6]

    def stream():
        params, state = model.step(None, model.initial_state())
        out = [params]
        for x_t in x:
            params, state = model.step(x_t, state)
            out.append(params)
        return torch.stack(out)

    first = stream()
    assert torch.equal(first.nan_to_num(0.0), stream().nan_to_num(0.0))
    assert not first.requires_grad
    if isinstance(model, torch.nn.Module):
        assert model.training  # the caller's mode is restored


def test_sample_or_forecast(fitted):
    _, case, model = fitted
    if case.data == "text":
        out = model.sample("ab", 12, temperature=0.9, seed=3)
        assert isinstance(out, str) and len(out) == 12 and set(out) <= set("ab\ufffd")
        assert out == model.sample("ab", 12, temperature=0.9, seed=3)
        with pytest.raises(Unsupported, match="continuous"):
            model.forecast(SERIES[:10], 3)
    elif case.data == "frames":
        elements = model.elements
        out = model.sample(None, 12, temperature=0.9, seed=3)
        assert out.shape == (12, 3) and torch.equal(out, model.sample(None, 12, temperature=0.9, seed=3))
        assert bool(((out >= elements.low) & (out <= elements.high)).all()), "draws stay in the training range"
        assert set(out[:, 2].tolist()) <= {0.0, 1.0}
        forecast = model.forecast(FRAMES[:60], 4, num_samples=16, quantiles=(0.1, 0.9), seed=2)
        assert isinstance(forecast, Forecast) and forecast.samples.shape == (16, 4, 3)
        assert forecast.mean.shape == (4, 3) and np.all(forecast.quantiles[0.1] <= forecast.quantiles[0.9])
        assert np.isfinite(forecast.samples).all()
    else:
        forecast = model.forecast(SERIES[:60], 4, num_samples=16, quantiles=(0.1, 0.9), seed=2)
        assert isinstance(forecast, Forecast) and forecast.samples.shape == (16, 4)
        assert forecast.mean.shape == (4,) and np.all(forecast.quantiles[0.1] <= forecast.quantiles[0.9])
        assert np.isfinite(forecast.samples).all()


def test_bad_input_is_a_seqlab_error(fitted):
    _, case, model = fitted
    with pytest.raises(SeqlabError):
        model.log_prob(SERIES[:5] + 0.5 if case.data == "text" else "some text")


# -- through the command line ----------------------------------------------------------------------------------


def write_data(kind: str, directory) -> DataSpec:
    """The conformance data as a file: the text, or prices whose log returns are the series."""
    if kind == "text":
        path = directory / "small.txt"
        path.write_text(TEXT * 20, encoding="utf-8")
        return DataSpec(str(path))
    path = directory / "prices.csv"
    path.write_text("Close\n" + "".join(f"{p}\n" for p in 50 * np.exp(np.cumsum(0.01 * SERIES))), encoding="utf-8")
    return DataSpec(str(path), transform="log_return")


def test_every_model_saved_with_its_data_through_info_evaluate_and_sample_or_forecast(fitted, tmp_path, capsys):
    """Any registered model saved with a DataSpec (seqlab.save) works in every command that applies to it."""
    _, case, model = fitted
    if case.data == "frames":
        pytest.skip("frames reach the command line through the vocoder audio representation (issue 21)")
    model.data_spec = write_data(case.data, tmp_path)
    seqlab.save(model, tmp_path / "m")
    code, stdout, err = cli(["info", str(tmp_path / "m")], capsys)
    assert code == 0 and '"source"' in stdout, err
    data = ["--data", model.data_spec.source]  # a local path a checkpoint records is read only when named
    code, stdout, err = cli(["evaluate", str(tmp_path / "m"), *data, "--json"], capsys)
    assert code == 0 and json.loads(stdout)["tokens" if case.data == "text" else "values"] > 0, err
    if case.data == "text":
        code, stdout, err = cli(
            ["sample", str(tmp_path / "m"), "--prompt", "ab", "--length", "6", "--seed", "0"], capsys
        )
        assert code == 0 and len(stdout.rstrip("\n")) == 8, err
        code, _, err = cli(["forecast", str(tmp_path / "m")], capsys)
        assert code == 1 and "not a model of a series" in err
    else:
        code, stdout, err = cli(["forecast", str(tmp_path / "m"), *data, "--horizon", "2", "--samples", "4"], capsys)
        assert code == 0 and len(stdout.strip().splitlines()) == 4, err
        code, _, err = cli(["sample", str(tmp_path / "m")], capsys)
        assert code == 1 and "a model of a series" in err


TINY = ["--hidden", "6", "--embedding", "4", "--steps", "3", "--batch-size", "2", "--window", "8", "--no-progress"]


@pytest.mark.parametrize("data", ["text", "series"])
@pytest.mark.parametrize("model", CELLS)
def test_cli_train_info_evaluate_sample_or_forecast(model, data, tmp_path, capsys):
    if data == "text":
        source = tmp_path / "small.txt"
        source.write_text(TEXT * 20, encoding="utf-8")
    else:
        source = tmp_path / "prices.csv"
        prices = 50 * np.exp(np.cumsum(0.01 * SERIES))
        source.write_text("Close\n" + "".join(f"{p}\n" for p in prices), encoding="utf-8")
    out = tmp_path / "run"
    train = ["train", "--data", str(source), "--model", model, *TINY, "--out", str(out), "--sample-length", "5"]
    code, stdout, err = cli(train, capsys)
    assert code == 0, err
    code, stdout, err = cli(["info", str(out)], capsys)
    assert code == 0 and "data:" in stdout, err
    code, stdout, err = cli(["evaluate", str(out), "--data", str(source), "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["tokens" if data == "text" else "values"] > 0
    if data == "text":
        code, stdout, err = cli(["sample", str(out), "--prompt", "ab", "--length", "10", "--seed", "1"], capsys)
        assert code == 0 and len(stdout.rstrip("\n")) == 12, err
    else:
        code, stdout, err = cli(
            ["forecast", str(out), "--data", str(source), "--horizon", "3", "--samples", "8"], capsys
        )
        assert code == 0 and len(stdout.strip().splitlines()) == 5, err  # a title, the header, 3 steps


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_an_unfitted_model_says_so(item):
    """Before fit: describe() works, and log_prob / step / sample either work (a network is usable untrained) or
    raise a SeqlabError, never an AttributeError or TypeError."""
    _, case = item
    torch.manual_seed(0)
    model = case.build(DATA[case.data])
    assert isinstance(model.describe(), str)
    x = DATA[case.data][:8]
    for call in (lambda: model.log_prob(x), lambda: model.step(None, model.initial_state())):
        try:
            call()
        except SeqlabError:
            pass
