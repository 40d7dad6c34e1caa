"""Recurrent: the torch backend and the reference backend compute the same function of the same weights."""

import pytest
import torch
from conftest import relative_error

from seqlab import Recurrent

FLOAT64_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-4
VARIANTS = [("rnn", "after"), ("lstm", "after"), ("gru", "after")]


def run(layer, backend, x, state):
    layer.backend = backend
    y, final = layer(x, state)
    finals = final if isinstance(final, tuple) else (final,)
    g = torch.Generator().manual_seed(3)
    loss = (torch.randn(y.shape, generator=g, dtype=y.dtype) * y).sum() + sum(
        (torch.randn(f.shape, generator=g, dtype=y.dtype) * f).sum() for f in finals
    )
    leaves = [x, *(state if isinstance(state, tuple) else (state,)), *layer.parameters()]
    return (y, *finals), torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("cell,reset", VARIANTS)
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, FLOAT64_TOLERANCE), (torch.float32, FLOAT32_TOLERANCE)])
@pytest.mark.parametrize("B,T,D,H,L", [(3, 6, 5, 7, 2), (1, 1, 4, 3, 1), (2, 9, 3, 5, 3)])
def test_backends_agree(cell, reset, dtype, tolerance, B, T, D, H, L):
    torch.manual_seed(0)
    layer = Recurrent(cell, D, H, num_layers=L, reset=reset).to(dtype)
    x = torch.randn(B, T, D, dtype=dtype, requires_grad=True)
    state = layer.initial_state(B)
    state = (
        tuple(torch.randn_like(s).requires_grad_() for s in state)
        if cell == "lstm"
        else (torch.randn_like(state).requires_grad_())
    )
    outs_ref, grads_ref = run(layer, "reference", x, state)
    outs_torch, grads_torch = run(layer, "torch", x, state)
    for a, e in zip(outs_torch, outs_ref, strict=True):
        assert relative_error(a, e) < tolerance
    assert len(grads_ref) == 1 + (2 if cell == "lstm" else 1) + 4 * L
    for a, e in zip(grads_torch, grads_ref, strict=True):
        assert relative_error(a, e) < tolerance


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_torch_nn_module(cell):
    """The same weights loaded into torch.nn.RNN/LSTM/GRU give the same outputs as our reference loop."""
    torch.manual_seed(0)
    layer = Recurrent(cell, 4, 6, num_layers=2, backend="reference").double()
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        4, 6, num_layers=2, batch_first=True
    ).double()
    with torch.no_grad():
        for k, c in enumerate(layer.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{name}_l{k}").copy_(getattr(c, name))
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    y_ours, _ = layer(x)
    y_theirs, _ = module(x)
    assert relative_error(y_ours, y_theirs) < FLOAT64_TOLERANCE


def test_gru_reset_before_runs_on_reference_only():
    layer = Recurrent("gru", 3, 4, reset="before")
    assert layer.resolved_backend() == "reference"
    with pytest.raises(ValueError, match="reset"):
        Recurrent("gru", 3, 4, reset="before", backend="torch")


def test_state_carries_across_chunks():
    """Running T steps at once equals running them in two chunks with the state carried."""
    torch.manual_seed(0)
    layer = Recurrent("lstm", 3, 5, num_layers=2).double()
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    y_all, (h_all, C_all) = layer(x)
    y1, s1 = layer(x[:, :5])
    y2, (h2, C2) = layer(x[:, 5:], s1)
    assert relative_error(torch.cat([y1, y2], 1), y_all) < FLOAT64_TOLERANCE
    assert relative_error(h2, h_all) < FLOAT64_TOLERANCE and relative_error(C2, C_all) < FLOAT64_TOLERANCE


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    layer = Recurrent("lstm", 3, 5, num_layers=2, dropout=0.5, backend="reference")
    x = torch.randn(2, 4, 3)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(cell="lstm2", input_size=3, hidden_size=4), "cell"),
        (dict(cell="lstm", input_size=3, hidden_size=0), "positive"),
        (dict(cell="lstm", input_size=3, hidden_size=4, num_layers=0), "positive"),
        (dict(cell="lstm", input_size=3, hidden_size=4, dropout=1.0), "dropout"),
        (dict(cell="lstm", input_size=3, hidden_size=4, backend="cuda"), "backend"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recurrent(**kwargs)
