"""The reference cells equal torch.nn's cells (forward and every gradient, float64) and pass gradcheck."""

import pytest
import torch
from conftest import relative_error

from seqlab.cells import GRUCell, LSTMCell, RNNCell

FLOAT64_TOLERANCE = 1e-10
B, D, H = 3, 5, 7


def make_pair(kind: str):
    torch.manual_seed(0)
    if kind == "rnn":
        ours, theirs = RNNCell(D, H), torch.nn.RNNCell(D, H, nonlinearity="tanh")
    elif kind == "lstm":
        ours, theirs = LSTMCell(D, H), torch.nn.LSTMCell(D, H)
    else:
        ours, theirs = GRUCell(D, H, reset="after"), torch.nn.GRUCell(D, H)
    theirs = theirs.double()
    ours = ours.double()
    ours.load_state_dict(theirs.state_dict())  # same names, same packing order
    return ours, theirs


def inputs(kind: str):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, D, dtype=torch.float64, generator=g, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, generator=g, requires_grad=True)
    if kind == "lstm":
        C = torch.randn(B, H, dtype=torch.float64, generator=g, requires_grad=True)
        return x, (h, C)
    return x, h


def flat(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_matches_torch_forward_and_gradients(kind):
    ours, theirs = make_pair(kind)
    x, state = inputs(kind)
    out_ours, out_theirs = flat(ours(x, state)), flat(theirs(x, state))
    for a, e in zip(out_ours, out_theirs, strict=True):
        assert relative_error(a, e) < FLOAT64_TOLERANCE

    # Gradients of a random projection of every output w.r.t. inputs, state and every weight.
    g = torch.Generator().manual_seed(2)
    weights = [torch.randn(o.shape, dtype=torch.float64, generator=g) for o in out_ours]
    state_leaves = list(flat(state))
    grads = {}
    for name, module, outs in (("ours", ours, out_ours), ("theirs", theirs, out_theirs)):
        loss = sum((w * o).sum() for w, o in zip(weights, outs, strict=True))
        leaves = [x, *state_leaves, *module.parameters()]
        grads[name] = torch.autograd.grad(loss, leaves)
    assert len(grads["ours"]) == 1 + len(state_leaves) + 4
    for a, e in zip(grads["ours"], grads["theirs"], strict=True):
        assert relative_error(a, e) < FLOAT64_TOLERANCE


def test_gru_reset_before_differs_from_after():
    ours, _ = make_pair("gru")
    before = GRUCell(D, H, reset="before").double()
    before.load_state_dict(ours.state_dict())
    x, h = inputs("gru")
    assert relative_error(before(x, h), ours(x, h)) > 1e-3


def test_gru_reset_before_matches_the_equation():
    """reset="before": h~ = tanh(W_in x + b_in + W_hn (r * h) + b_hn), written out by hand here."""
    cell = GRUCell(D, H, reset="before").double()
    x, h = inputs("gru")
    W_ir, W_iz, W_in = cell.weight_ih.split(H)
    W_hr, W_hz, W_hn = cell.weight_hh.split(H)
    b_ir, b_iz, b_in = cell.bias_ih.split(H)
    b_hr, b_hz, b_hn = cell.bias_hh.split(H)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    assert relative_error(cell(x, h), (1 - z) * n + z * h) < FLOAT64_TOLERANCE


@pytest.mark.parametrize("kind,reset", [("rnn", None), ("lstm", None), ("gru", "after"), ("gru", "before")])
def test_gradcheck(kind, reset):
    torch.manual_seed(0)
    cell = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind]
    cell = (cell(D, H, reset=reset) if reset else cell(D, H)).double()
    x, state = inputs(kind)
    params = list(cell.parameters())
    # Weights enter as explicit inputs so that gradcheck checks their gradients too.
    weight_inputs = [p.detach().clone().requires_grad_(True) for p in params]

    def fn_functional(x, *rest):
        from seqlab.cells import gru_step, lstm_step, rnn_step

        if kind == "lstm":
            return lstm_step(x, (rest[0], rest[1]), *rest[2:])
        if kind == "gru":
            return gru_step(x, rest[0], *rest[1:], reset=reset)
        return rnn_step(x, rest[0], *rest[1:])

    assert torch.autograd.gradcheck(fn_functional, (x, *flat(state), *weight_inputs))


def test_cell_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        LSTMCell(0, 4)
    with pytest.raises(ValueError, match="reset"):
        GRUCell(3, 4, reset="middle")
