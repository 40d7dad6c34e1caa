"""The global latent AR model (seqlab.models.global_ar): shapes, exact equivariance to a series' scale, learning on a
synthetic seasonal panel, a validation window that never reaches the held-out part, one series as a
SequenceModel, and the saved config and weights."""

import copy
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import stepped_log_probs

import seqlab
from seqlab import metrics
from seqlab.data.synthetic_panel import seasonal_panel
from seqlab.errors import SeqlabError
from seqlab.models.global_ar import (
    GlobalAR,
    GlobalARConfig,
    PanelValues,
    Validation,
    crps_of_paths,
    ensemble_paths,
    holdout_split,
    point_forecast,
    validation_split,
    window_batch,
)

M, H = 12, 6  # season, horizon
TINY = {
    "hidden_size": 8,
    "num_layers": 1,
    "season": M,
    "horizon": H,
    "batch_size": 16,
    "warmup_steps": 2,
    "transform": "none",  # the tests below read the scaled values x / s; fitted_log's tests the log transform
}


@pytest.fixture(scope="module")
def panel():
    """30 seasonal series of 60 months, levels from 1 to 10^4, one seasonal shape (the module's docstring)."""
    return seasonal_panel(30, 60, season=M, seed=1)


@pytest.fixture(scope="module")
def fitted(panel):
    values, offsets, phases = panel
    train, train_offsets, _ = holdout_split(values, offsets, H)
    torch.manual_seed(0)
    model = GlobalAR(GlobalARConfig(**TINY, steps=20, eval_every=10))
    return model.fit_panel(train, train_offsets, phases=phases), train, train_offsets, phases


def test_shapes(fitted):
    model, train, offsets, phases = fitted
    paths = model.forecast_panel(train, offsets, H, 7, seed=3, phases=phases)
    assert paths.shape == (30, 7, H) and paths.dtype == np.float64 and np.isfinite(paths).all()
    assert point_forecast(paths).shape == (30, H)
    assert np.array_equal(paths, model.forecast_panel(train, offsets, H, 7, seed=3, phases=phases))
    y = train[offsets[0] : offsets[1]]
    assert model.log_prob(y).shape == (len(y),)
    params, _ = model.step(None, model.initial_state())
    assert params.shape == (model.head.num_params,)
    assert model.sample_paths(y, 4, 5, seed=0).shape == (5, 4)
    assert model.training_result.steps == 20 and [r["step"] for r in model.training_result.history] == [10, 20]


def series_scaled(values: np.ndarray, offsets: np.ndarray, i: int, factor: float) -> np.ndarray:
    """The panel's values with series ``i`` times ``factor``."""
    scaled = values.copy()
    scaled[offsets[i] : offsets[i + 1]] *= factor
    return scaled


def forecasts_before_and_after_scaling(model, train, offsets, phases) -> tuple[np.ndarray, np.ndarray]:
    """20 paths of every series, before and after series 3 is multiplied by 10^4, drawn with the same seed."""
    before = model.forecast_panel(train, offsets, H, 20, seed=5, phases=phases)
    after = model.forecast_panel(series_scaled(train, offsets, 3, 1e4), offsets, H, 20, seed=5, phases=phases)
    return before, after


@pytest.mark.cross_process
def test_a_series_times_ten_thousand_gives_forecasts_times_ten_thousand(fitted):
    """The scale (the context's mean absolute value) makes the network see the same inputs: the forecast of the
    multiplied series is the forecast times 10^4, draw for draw (same seed); the other series do not move."""
    model, train, offsets, phases = fitted
    model = copy.deepcopy(model)
    with torch.no_grad():  # a network whose output is not the zero-started baseline's
        model.out.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(0))
    before, after = forecasts_before_and_after_scaling(model, train, offsets, phases)
    np.testing.assert_allclose(after[3], 1e4 * before[3], rtol=1e-5)
    np.testing.assert_array_equal(np.delete(after, 3, axis=0), np.delete(before, 3, axis=0))
    assert np.ptp(before[3]) > 0  # paths, not a constant


def test_a_seed_ensemble_splits_the_paths_over_its_members(fitted):
    """Member k draws its share of the paths with seed + k N; one member is its own forecast."""
    model, train, offsets, phases = fitted
    torch.manual_seed(1)
    other = GlobalAR(GlobalARConfig(**TINY, steps=4, eval_every=4, seed=1)).fit_panel(train, offsets, phases=phases)
    N = len(offsets) - 1
    paths = ensemble_paths([model, other], train, offsets, H, 5, seed=2, phases=phases)
    assert paths.shape == (N, 5, H)
    np.testing.assert_array_equal(paths[:, :3], model.forecast_panel(train, offsets, H, 3, seed=2, phases=phases))
    np.testing.assert_array_equal(paths[:, 3:], other.forecast_panel(train, offsets, H, 2, seed=2 + N, phases=phases))
    alone = ensemble_paths([model], train, offsets, H, 4, seed=2, phases=phases)
    np.testing.assert_array_equal(alone, model.forecast_panel(train, offsets, H, 4, seed=2, phases=phases))
    with pytest.raises(SeqlabError, match="at least one path each"):
        ensemble_paths([model, other], train, offsets, H, 1)


def test_one_series_forecast_is_the_panel_of_one(fitted):
    model, train, offsets, _ = fitted
    y = train[offsets[2] : offsets[3]]
    alone = model.sample_paths(y, H, 9, seed=4).numpy()
    np.testing.assert_allclose(alone, model.forecast_panel(y, np.array([0, len(y)]), H, 9, seed=4)[0], rtol=1e-12)


def seasonal_naive_nll(values, offsets, h: int, m: int) -> float:
    """A per-series baseline on the validation window, on the scale the model is scored on: seasonal naive with a
    Gaussian of each series' own in-sample seasonal-difference spread (k seasons ahead: variance k sigma^2)."""
    panel = PanelValues(values, offsets)
    fit, validated = validation_split(panel, h)
    nll = []
    for i in validated:
        y = fit.padded[fit.starts[i] : fit.starts[i] + fit.lengths[i]]
        target = values[offsets[i] + len(y) : offsets[i] + len(y) + h]
        scale = np.abs(y[-max(2 * h, 2 * m, 8) :]).mean()
        z, zt = y / scale, target / scale
        sigma = (z[m:] - z[:-m]).std()
        k = np.arange(h) // m + 1
        mu = z[len(z) - m + np.arange(h) % m]
        nll += list(0.5 * np.log(2 * np.pi * k * sigma**2) + (zt - mu) ** 2 / (2 * k * sigma**2))
    return float(np.mean(nll))


@pytest.mark.slow
def test_training_lowers_the_validation_nll_below_the_untrained_network_and_seasonal_naive(panel):
    """Validated by the one-step NLL: below the untrained network's and a per-series seasonal naive one's; and the
    same training lowers the validation CRPS of the sample paths (the default validation) below the untrained
    network's (the seasonal naive forecast with a Student-t of scale 1)."""
    values, offsets, phases = panel
    train, train_offsets, _ = holdout_split(values, offsets, H)
    torch.manual_seed(0)
    config = GlobalARConfig(
        hidden_size=16,
        num_layers=1,
        season=M,
        horizon=H,
        lr=3e-3,
        steps=150,
        eval_every=50,
        validation="nll",
        transform="none",
    )
    model = GlobalAR(config).fit_panel(train, train_offsets, phases=phases)
    history = [r["valid_nll"] for r in model.training_result.history]
    assert model.training_result.best_valid_nll == min(history)
    full = PanelValues(train, train_offsets, phases)
    fit, validated = validation_split(full, H)
    C = model.config.context
    valid = Validation(window_batch(full, validated, full.lengths[validated], C + H, C, M), fit, validated)
    untrained = GlobalAR(config)
    assert model.validation_score(valid) == min(history)
    assert min(history) < untrained.validation_score(valid) - 0.5, (untrained.validation_score(valid), history)
    baseline = seasonal_naive_nll(train, train_offsets, H, M)
    assert min(history) < baseline, (baseline, history)
    model.config = untrained.config = replace(config, validation="crps")
    assert model.validation_score(valid) < 0.5 * untrained.validation_score(valid)


def test_the_validation_window_is_the_end_of_the_training_part_and_never_the_held_out_part(panel):
    """holdout_split gives fit_panel only the training parts; the validation window is the last H of those (series
    of at least H + 2 values: a short one trains on all of its values and is not validated); the training windows
    never read the validation window (changing it leaves the weights as they were when no validation picks a
    checkpoint), and nothing held out reaches a forecast."""
    values, offsets, phases = panel
    lengths = np.diff(offsets).copy()
    values = np.concatenate([values[: offsets[1]], values[offsets[1] : offsets[1] + 2 * H + 1], values[offsets[2] :]])
    lengths[1] = H + 1 + H  # a training part of H + 1 values: too short to validate
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    train, train_offsets, held = holdout_split(values, offsets, H)
    for i in range(len(lengths)):
        y = values[offsets[i] : offsets[i + 1]]
        assert np.array_equal(train[train_offsets[i] : train_offsets[i + 1]], y[:-H])
        assert np.array_equal(held[i], y[-H:])
    fit, validated = validation_split(PanelValues(train, train_offsets), H)
    assert 1 not in validated and len(validated) == len(lengths) - 1
    for i in range(len(lengths)):
        part = train[train_offsets[i] : train_offsets[i + 1]]
        kept = fit.padded[fit.starts[i] : fit.starts[i] + fit.lengths[i]]
        assert np.array_equal(kept, part[:-H] if i in validated else part)
    valid = window_batch(PanelValues(train, train_offsets), validated, np.diff(train_offsets)[validated], 36 + H, 36, M)
    scored = (valid.z[:, -H:] * valid.scale[:, None]).numpy()  # what the validation scores: the parts' last H
    expected = np.stack([train[train_offsets[i + 1] - H : train_offsets[i + 1]] for i in validated])
    np.testing.assert_allclose(scored, expected, rtol=1e-12)

    def weights(train_values) -> dict:
        torch.manual_seed(0)
        model = GlobalAR(GlobalARConfig(**TINY, steps=6, eval_every=6))
        return model.fit_panel(train_values, train_offsets, phases=phases).state_dict()

    changed = train.copy()
    for i in validated:  # a different validation window
        changed[train_offsets[i + 1] - H : train_offsets[i + 1]] *= 3.0
    first, second = weights(train), weights(changed)
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_single_series_log_prob_is_the_chain_rule_of_step(fitted):
    model, train, offsets, _ = fitted
    model = copy.deepcopy(model).double()
    y = torch.from_numpy(train[offsets[5] : offsets[5] + 40])
    with torch.no_grad():
        model.series_scale.fill_(float(y[:20].abs().mean()))
    assert torch.allclose(stepped_log_probs(model, y), model.log_prob(y), rtol=1e-10, atol=1e-10)


def test_fit_on_one_series_keeps_its_scale_and_refuses_unknown_options(panel):
    values, offsets, _ = panel
    y = values[offsets[4] : offsets[5]]
    model = GlobalAR(GlobalARConfig(**TINY, steps=2, eval_every=2)).fit(y)
    assert float(model.series_scale) == pytest.approx(np.abs(y[-model.config.context :]).mean(), rel=1e-12)
    with pytest.raises(SeqlabError, match="unexpected keyword argument 'stpes'"):
        model.fit(y, stpes=3)
    with pytest.raises(SeqlabError, match="hidden_size shapes the network"):
        model.fit(y, hidden_size=3)
    with pytest.raises(SeqlabError, match="not a finite number"):
        model.fit_panel(np.array([1.0, np.nan, 2.0]), np.array([0, 3]))


def test_config_and_weights_rebuild_the_model(fitted, tmp_path):
    model, train, offsets, phases = fitted
    rebuilt = GlobalAR.from_config(model.to_config())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    expected = model.forecast_panel(train, offsets, H, 5, seed=1, phases=phases)
    assert np.array_equal(rebuilt.forecast_panel(train, offsets, H, 5, seed=1, phases=phases), expected)
    seqlab.save(model, tmp_path / "m")
    loaded = seqlab.load(tmp_path / "m")
    assert np.array_equal(loaded.forecast_panel(train, offsets, H, 5, seed=1, phases=phases), expected)


def test_the_crps_of_paths_is_the_metrics_one():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((3, 17, 4)), rng.standard_normal((3, 4))
    ours = crps_of_paths(torch.from_numpy(z), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(ours, np.stack([metrics.crps_from_samples(z[i], y[i]) for i in range(3)]), rtol=1e-12)


@pytest.fixture(scope="module")
def fitted_log(panel):
    """The tiny network on log(x / s): ``transform="auto"`` on a positive panel chooses log."""
    values, offsets, phases = panel
    train, train_offsets, _ = holdout_split(values, offsets, H)
    torch.manual_seed(0)
    model = GlobalAR(GlobalARConfig(**(TINY | {"transform": "auto"}), steps=6, eval_every=6))
    model.fit_panel(train, train_offsets, phases=phases)
    with torch.no_grad():  # a network whose output is not the zero-started baseline's
        model.out.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(0))
    return model, train, train_offsets, phases


def test_auto_transform_is_log_on_a_positive_panel_and_none_on_one_with_a_zero(fitted_log, panel):
    assert fitted_log[0].config.transform == "log" and fitted_log[0].head.kind == "log-studentt"
    values, offsets, phases = panel
    values = values.copy()
    values[offsets[7] + 3] = 0.0
    model = GlobalAR(GlobalARConfig(**(TINY | {"transform": "auto"}), steps=1, eval_every=1)).fit_panel(values, offsets)
    assert model.config.transform == "none" and model.head.kind == "studentt"
    with pytest.raises(SeqlabError, match="transform log needs positive values: series 7 holds 0 at index 3"):
        GlobalAR(GlobalARConfig(**(TINY | {"transform": "log"}), steps=1)).fit_panel(values, offsets)
    with pytest.raises(SeqlabError, match="unknown transform 'sqrt'"):
        GlobalARConfig(transform="sqrt").validate()


@pytest.mark.cross_process
def test_log_transform_forecasts_scale_exactly_and_stay_positive(fitted_log):
    """log(c x / (c s)) = log(x / s): the multiplied series' paths are c times the others, draw for draw."""
    model, train, offsets, phases = fitted_log
    before, after = forecasts_before_and_after_scaling(model, train, offsets, phases)
    np.testing.assert_allclose(after[3], 1e4 * before[3], rtol=1e-9)
    np.testing.assert_array_equal(np.delete(after, 3, axis=0), np.delete(before, 3, axis=0))
    assert (before > 0).all() and np.ptp(before[3]) > 0


def test_log_transform_log_prob_is_the_chain_rule_of_step_with_the_jacobian(fitted_log, tmp_path):
    """log p(x) = log p(z) - log x: the teacher-forced pass equals step by step through the log-t head's nll;
    the saved model gives the same numbers."""
    fitted, train, offsets, _ = fitted_log
    model = copy.deepcopy(fitted).double()
    y = torch.from_numpy(train[offsets[5] : offsets[5] + 40])
    with torch.no_grad():
        model.series_scale.fill_(float(y[:20].abs().mean()))
    assert torch.allclose(stepped_log_probs(model, y), model.log_prob(y), rtol=1e-10, atol=1e-10)
    seqlab.save(fitted, tmp_path / "m")
    loaded = seqlab.load(tmp_path / "m")
    assert loaded.config.transform == "log"
    assert torch.equal(loaded.log_prob(y), fitted.log_prob(y))
    with pytest.raises(SeqlabError, match="transform log needs positive values"):
        model.log_prob(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))


def test_average_keeps_the_moving_average_of_the_weights(panel, monkeypatch):
    """config.average: the weights validated and kept are the exponential moving average of the weights after each
    step, with decay min(average, (1 + k) / (10 + k)) at step k, computed here from the weights a callback sees and
    those training starts from (after the head's start at the data's spread)."""
    values, offsets, phases = panel
    train, train_offsets, _ = holdout_split(values, offsets, H)
    decay, steps = 0.5, 6
    seen = []

    def record(trainer, progress) -> None:
        seen.append((progress.step, [p.detach().clone() for p in trainer.model.parameters()]))

    initial = []
    start_head_scale = GlobalAR.start_head_scale

    def start_and_record(model, batch) -> None:
        start_head_scale(model, batch)
        initial.extend(p.detach().clone() for p in model.parameters())

    monkeypatch.setattr(GlobalAR, "start_head_scale", start_and_record)
    torch.manual_seed(0)
    model = GlobalAR(GlobalARConfig(**TINY, steps=steps, eval_every=steps, average=decay))
    model.fit_panel(train, train_offsets, phases=phases, callbacks=[record])
    expected = initial
    for k, weights in seen:
        rate = 1.0 - min(decay, (1 + k) / (10 + k))
        expected = [e + rate * (w - e) for e, w in zip(expected, weights, strict=True)]
    assert [k for k, _ in seen] == list(range(1, steps + 1))
    kept = list(model.parameters())
    assert not all(torch.equal(k, w) for k, w in zip(kept, seen[-1][1], strict=True))  # not the last step's
    for k, e in zip(kept, expected, strict=True):
        torch.testing.assert_close(k, e, rtol=1e-5, atol=1e-6)
    with pytest.raises(SeqlabError, match="average must be a decay in"):
        GlobalARConfig(average=1.0).validate()


@pytest.mark.parametrize("transform", ["none", "log"])
def test_last_values_log_densities_are_the_validation_nll_on_the_values_own_scale(panel, transform):
    """The one-step log densities of each training part's last H values: minus their mean, less the Jacobian of the
    values' transform, is the validation's teacher-forced NLL (validation="nll"); a series times 1000 scores
    log(1000) less at every value (the density of x on its own scale), the others as before."""
    values, offsets, phases = panel
    train, train_offsets, _ = holdout_split(values, offsets, H)
    torch.manual_seed(0)
    config = GlobalARConfig(**(TINY | {"transform": transform}), steps=4, eval_every=4, validation="nll")
    model = GlobalAR(config).fit_panel(train, train_offsets, phases=phases)
    validated, log_density = model.last_values_log_densities(train, train_offsets, phases)
    assert log_density.shape == (len(validated), H) and np.isfinite(log_density).all()
    full = PanelValues(train, train_offsets, phases)
    context = model.config.context
    windows = window_batch(full, validated, full.lengths[validated], context + H, context, M, log=model.log)
    last = np.stack([train[train_offsets[i + 1] - H : train_offsets[i + 1]] for i in validated])
    jacobian = -np.log(last) if model.log else -np.log(windows.scale.numpy())[:, None]
    valid = Validation(windows, validation_split(full, H)[0], validated)
    assert float(-(log_density - jacobian).mean()) == pytest.approx(model.validation_score(valid), rel=1e-5)
    _, moved = model.last_values_log_densities(series_scaled(train, train_offsets, 3, 1000.0), train_offsets, phases)
    row = int(np.flatnonzero(validated == 3)[0])
    np.testing.assert_allclose(moved[row], log_density[row] - math.log(1000.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.delete(moved, row, 0), np.delete(log_density, row, 0), rtol=1e-12)
