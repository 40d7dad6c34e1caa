"""Forget-gate initialisation of the LSTM: the bias slices it sets, chrono's range, and where the option flows
(``Recurrent``, ``LatentARConfig``, saved configs, old configs without the field)."""

import json
import math

import pytest
import torch

import seqlab
from seqlab import SeqlabError
from seqlab.cells import LSTMCell, init_forget_gate, parse_forget_init
from seqlab.data import Vocabulary
from seqlab.models import LatentAR, LatentARConfig
from seqlab.recurrent import Recurrent

H = 64
I, F, C, O = (slice(k * H, (k + 1) * H) for k in range(4))  # gate rows i, f, C~, o


def biases(cell):
    return cell.bias_ih.detach(), cell.bias_hh.detach()


def test_zero_leaves_torch_default_untouched():
    torch.manual_seed(0)
    cell = LSTMCell(3, H)
    before = [b.clone() for b in biases(cell)]
    init_forget_gate(cell, "zero")
    assert all(torch.equal(a, b) for a, b in zip(before, biases(cell), strict=True))
    bound = 1 / math.sqrt(H)  # torch.nn: U(-1/sqrt(H), 1/sqrt(H)), so the forget bias is about 0
    assert before[0][F].abs().max() <= bound and before[1][F].abs().max() <= bound


@pytest.mark.parametrize("spec, value", [("1", 1.0), ("1.0", 1.0), ("0", 0.0), ("-2.5", -2.5)])
def test_constant_sets_the_total_forget_bias_and_nothing_else(spec, value):
    torch.manual_seed(0)
    cell = LSTMCell(3, H)
    before_ih, before_hh = (b.clone() for b in biases(cell))
    weights = [w.clone() for w in (cell.weight_ih, cell.weight_hh)]
    init_forget_gate(cell, spec)
    b_ih, b_hh = biases(cell)
    assert torch.equal(b_ih[F] + b_hh[F], torch.full((H,), value))  # the pre-activation's bias, exactly
    for rows in (I, C, O):
        assert torch.equal(b_ih[rows], before_ih[rows]) and torch.equal(b_hh[rows], before_hh[rows])
    assert torch.equal(cell.weight_ih, weights[0]) and torch.equal(cell.weight_hh, weights[1])


def test_chrono_spreads_forget_bias_over_log_range_and_closes_the_input_gate():
    T_max = 200
    cell = LSTMCell(3, 2000)  # many units: the range and the spread are visible
    init_forget_gate(cell, f"chrono:{T_max}", torch.Generator().manual_seed(0))
    Hc = cell.hidden_size
    b_ih, b_hh = biases(cell)
    b_f = b_ih[Hc : 2 * Hc] + b_hh[Hc : 2 * Hc]
    b_i = b_ih[:Hc] + b_hh[:Hc]
    assert b_f.min() >= 0.0 and b_f.max() <= math.log(T_max - 1)  # log U(1, T_max - 1)
    assert torch.equal(b_i, -b_f)
    u = b_f.exp()  # U(1, T_max - 1): mean T_max / 2, quartiles at 1 + (T_max - 2) / 4 and 3/4
    assert abs(u.mean().item() - T_max / 2) < 0.05 * T_max
    q1, q3 = torch.quantile(u, torch.tensor([0.25, 0.75])).tolist()
    assert abs(q1 - (1 + (T_max - 2) / 4)) < 0.05 * T_max and abs(q3 - (1 + 3 * (T_max - 2) / 4)) < 0.05 * T_max
    # the time scale 1 / (1 - sigma(b_f)) = 1 + e^{b_f} = 1 + u: spread over 2 .. T_max
    scale = 1 / (1 - torch.sigmoid(b_f))
    assert scale.min() >= 2 - 1e-4 and scale.max() <= T_max + 1e-3


@pytest.mark.parametrize("spec", ["one", "", "chrono", "chrono:2", "chrono:x", "nan", "inf"])
def test_bad_specs_say_what_was_expected(spec):
    with pytest.raises(ValueError, match="forget_init"):
        parse_forget_init(spec)
    with pytest.raises(ValueError, match="forget_init"):
        Recurrent("lstm", 3, 4, forget_init=spec)


def test_recurrent_sets_every_lstm_layer_and_ignores_other_cells():
    torch.manual_seed(0)
    layer = Recurrent("lstm", 3, H, num_layers=2, forget_init="1")
    for cell in layer.cells:
        assert torch.equal(cell.bias_ih[F] + cell.bias_hh[F], torch.ones(H))
    assert Recurrent("lstm", 3, 4).forget_init == "zero"  # Recurrent mirrors torch.nn.LSTM by default
    torch.manual_seed(0)
    gru = Recurrent("gru", 3, 4, forget_init="chrono:50")
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(gru.parameters(), Recurrent("gru", 3, 4).parameters(), strict=True))


TEXT = "to be, or not to be: that is the question.\n" * 5


def test_latent_ar_default_is_forget_bias_one_and_is_saved(tmp_path):
    model = LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(hidden_size=8, embedding_dim=4))
    assert model.config.forget_init == "1"
    cell = model.rnn.cells[0]
    assert torch.equal(cell.bias_ih[8:16] + cell.bias_hh[8:16], torch.ones(8))
    chrono = LatentAR(
        Vocabulary.from_text(TEXT), LatentARConfig(hidden_size=8, embedding_dim=4, forget_init="chrono:30")
    )
    seqlab.save(chrono, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["config"]["forget_init"] == "chrono:30"
    loaded = seqlab.load(tmp_path / "m")
    assert loaded.config.forget_init == "chrono:30"
    assert torch.equal(loaded.rnn.cells[0].bias_ih, chrono.rnn.cells[0].bias_ih)  # the saved weights, not a redraw


def test_old_config_without_the_field_still_loads(tmp_path):
    model = LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(hidden_size=8, embedding_dim=4, forget_init="zero"))
    seqlab.save(model, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    del config["config"]["forget_init"]  # a model saved before the option existed
    path.write_text(json.dumps(config))
    loaded = seqlab.load(tmp_path / "m")
    x = model.encode("not to be")
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))


def test_bad_forget_init_in_the_config_is_a_seqlab_error():
    with pytest.raises(SeqlabError, match="forget_init"):
        LatentAR(Vocabulary.from_text(TEXT), LatentARConfig(forget_init="chrono:1"))


# -- the GRU's update gate (the long-range experiment's gru:1, gru:chrono) ---------------------------------
def test_gru_update_gate_gets_the_same_rule_and_nothing_else_moves():
    from seqlab.cells import GRUCell, gru_step, init_update_gate

    torch.manual_seed(0)
    cell = GRUCell(3, H)
    before = [b.clone() for b in biases(cell)]
    init_update_gate(cell, "zero")
    assert all(torch.equal(a, b) for a, b in zip(before, biases(cell), strict=True))
    init_update_gate(cell, "2")
    b_ih, b_hh = biases(cell)
    R, Z, N = (slice(k * H, (k + 1) * H) for k in range(3))  # gate rows r, z, n
    assert torch.equal(b_ih[Z] + b_hh[Z], torch.full((H,), 2.0))
    for rows in (R, N):
        assert torch.equal(b_ih[rows], before[0][rows]) and torch.equal(b_hh[rows], before[1][rows])
    # the bias is on the fraction of h kept: with zero weights, h_t = sigma(2) h_{t-1} + (1 - sigma(2)) n
    with torch.no_grad():
        cell.weight_ih.zero_()
        cell.weight_hh.zero_()
    h = torch.ones(1, H)
    n = torch.tanh(b_ih[N] + torch.sigmoid(b_ih[R] + b_hh[R]) * b_hh[N])
    expected = torch.sigmoid(torch.tensor(2.0)) * h + (1 - torch.sigmoid(torch.tensor(2.0))) * n
    assert torch.allclose(gru_step(torch.zeros(1, 3), h, *cell.weights()), expected, atol=1e-6)


def test_gru_chrono_spreads_the_update_bias_over_the_log_range():
    from seqlab.cells import GRUCell, init_update_gate

    T_max, Hc = 120, 2000
    cell = GRUCell(3, Hc)
    init_update_gate(cell, f"chrono:{T_max}", torch.Generator().manual_seed(0))
    b_z = cell.bias_ih.detach()[Hc : 2 * Hc] + cell.bias_hh.detach()[Hc : 2 * Hc]
    assert b_z.min() >= 0.0 and b_z.max() <= math.log(T_max - 1)
    assert abs(b_z.exp().mean().item() - T_max / 2) < 0.05 * T_max  # u ~ U(1, T_max - 1)
