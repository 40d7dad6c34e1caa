"""Each cell's pointwise math, forward and backward, once for both layouts.

A layout (``forward.py``/``backward.py``: rows; ``units_forward.py``/``units_backward.py``: units) computes the
recurrent products of a tile (``BLOCK_B`` batch rows x a block of hidden units) and the addresses of the tile in
each buffer; the functions here load what the cell needs at those addresses, apply the cell and store its
results. Every ``*_at`` argument is a tile of pointers to step t of a buffer, gate k at ``+ k * H``:

    gx_at, gates_at, dgx_at, dgh_at   (B, T, G) at t          aux_at             (B, T, H) at t
    h_prev_at, c_prev_at              (B, T+1, H) at t: h_{t-1}, C_{t-1}; h_t, C_t at + H
    dh_carry_at, dc_carry_at          (B, H)                  b_hn_at            (1, block) of b_hn

Forward, from the recurrent products ``a_k = W_hk h_{t-1}`` (gru_before: ``a_n = W_hn rh_t``):

    rnn         h_t = tanh(gx_t + a)
    lstm        [i, f, C~, o] = [sigma, sigma, tanh, sigma](gx_t + a);  C_t = f C_{t-1} + i C~;  h_t = o tanh(C_t)
    gru_after   [r, z] = sigma(gx_t + a_{r,z});  hn_t = a_n + b_hn;  n = tanh(gx_n + r hn_t)
    gru_before  [r, z] = sigma(gx_t + a_{r,z});  rh_t = r h_{t-1};  then n = tanh(gx_n + a_n)
    gru         h_t = (1 - z) n + z h_{t-1}

Backward, per step with ``dh_t = dy_t + dL/dh_t`` through step t + 1 (sigma' = s(1 - s), tanh' = 1 - tanh^2), the
gradients of the pre-activations ``dgx`` (w.r.t. ``gx``) and ``dgh`` (w.r.t. the recurrent term; the same except
for the gru_after candidate):

    rnn         dgx = dh_t (1 - h_t^2)
    lstm        dC = dC_{t+1 -> t} + dh_t o tanh'(C_t);  dC_{t -> t-1} = dC f
                dgx = [dC C~ sigma'(i), dC C_{t-1} sigma'(f), dC i tanh'(C~), dh_t tanh(C_t) sigma'(o)]
    gru         dn = dh_t (1 - z) tanh'(n);  dz = dh_t (h_{t-1} - n) sigma'(z);  direct dh_{t-1} += dh_t z
    gru_after   dr = dn hn_t sigma'(r);  dgx = [dr, dz, dn];  dgh = [dr, dz, r dn]
    gru_before  drh = W_hn^T dn (every unit's dn: a second half);  dr = drh h_{t-1} sigma'(r);  dh_{t-1} += drh r
"""

from __future__ import annotations

import triton
import triton.language as tl

from seqlab.kernels.common import tanh


@triton.jit
def cell_forward(CELL: tl.constexpr, a0, a1, a2, a3, gx_at, gates_at, h_prev_at, c_prev_at, aux_at, b_hn_at, mask, H):
    """Step t of ``CELL`` on one tile from its recurrent products ``a0..a3`` (the gates in order; those past the
    cell's gates are ignored): stores ``h_t`` (and ``C_t``), the gate activations and ``aux``. For gru_before
    this is the first half (r, z, ``rh_t`` into ``aux``); ``candidate_forward`` finishes the step."""
    h_prev = tl.load(h_prev_at, mask, other=0.0)
    if CELL == "rnn":
        tl.store(h_prev_at + H, tanh(tl.load(gx_at, mask, other=0.0) + a0), mask)
    elif CELL == "lstm":
        i = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + a0)
        f = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + a1)
        C_tilde = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + a2)
        o = tl.sigmoid(tl.load(gx_at + 3 * H, mask, other=0.0) + a3)
        C = f * tl.load(c_prev_at, mask, other=0.0) + i * C_tilde
        tl.store(c_prev_at + H, C, mask)
        tl.store(h_prev_at + H, o * tanh(C), mask)
        tl.store(gates_at, i, mask)
        tl.store(gates_at + H, f, mask)
        tl.store(gates_at + 2 * H, C_tilde, mask)
        tl.store(gates_at + 3 * H, o, mask)
    else:  # both GRUs: r and z
        r = tl.sigmoid(tl.load(gx_at, mask, other=0.0) + a0)
        z = tl.sigmoid(tl.load(gx_at + H, mask, other=0.0) + a1)
        if CELL == "gru_after":
            hn = a2 + tl.load(b_hn_at, mask, other=0.0)
            n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + r * hn)
            tl.store(h_prev_at + H, (1.0 - z) * n + z * h_prev, mask)
            tl.store(gates_at + 2 * H, n, mask)
            tl.store(aux_at, hn, mask)
        else:  # gru_before: rh_t, which every unit's candidate reads
            tl.store(aux_at, r * h_prev, mask)
        tl.store(gates_at, r, mask)
        tl.store(gates_at + H, z, mask)


@triton.jit
def candidate_forward(a_n, gx_at, gates_at, h_prev_at, mask, H):
    """gru_before, second half of step t: ``n = tanh(gx_n + a_n)`` with ``a_n = W_hn rh_t``, then ``h_t``."""
    z = tl.load(gates_at + H, mask, other=0.0)
    n = tanh(tl.load(gx_at + 2 * H, mask, other=0.0) + a_n)
    tl.store(gates_at + 2 * H, n, mask)
    tl.store(h_prev_at + H, (1.0 - z) * n + z * tl.load(h_prev_at, mask, other=0.0), mask)


@triton.jit
def cell_backward(
    CELL: tl.constexpr, dh, gates_at, dgx_at, dgh_at, h_prev_at, c_prev_at, aux_at, dh_carry_at, dc_carry_at, mask, H
):
    """Step t of ``CELL`` in reverse on one tile, given ``dh = dL/dh_t`` (every term): stores the gate gradients
    that need only this tile's units (``dgx``; ``dgh`` for gru_after) and the carries to step t - 1. For
    gru_before the reset gate's gradient waits for every unit's ``dn``: ``reset_backward``."""
    if CELL == "rnn":
        h = tl.load(h_prev_at + H, mask, other=0.0)
        tl.store(dgx_at, dh * (1.0 - h * h), mask)
        tl.store(dh_carry_at, tl.zeros_like(dh), mask)
    elif CELL == "lstm":
        i = tl.load(gates_at, mask, other=0.0)
        f = tl.load(gates_at + H, mask, other=0.0)
        C_tilde = tl.load(gates_at + 2 * H, mask, other=0.0)
        o = tl.load(gates_at + 3 * H, mask, other=0.0)
        C_prev = tl.load(c_prev_at, mask, other=0.0)
        tanh_C = tanh(tl.load(c_prev_at + H, mask, other=0.0))
        dC = tl.load(dc_carry_at, mask, other=0.0) + dh * o * (1.0 - tanh_C * tanh_C)
        tl.store(dgx_at, dC * C_tilde * i * (1.0 - i), mask)
        tl.store(dgx_at + H, dC * C_prev * f * (1.0 - f), mask)
        tl.store(dgx_at + 2 * H, dC * i * (1.0 - C_tilde * C_tilde), mask)
        tl.store(dgx_at + 3 * H, dh * tanh_C * o * (1.0 - o), mask)
        tl.store(dc_carry_at, dC * f, mask)
        tl.store(dh_carry_at, tl.zeros_like(dh), mask)
    else:  # both GRUs
        z = tl.load(gates_at + H, mask, other=0.0)
        n = tl.load(gates_at + 2 * H, mask, other=0.0)
        h_prev = tl.load(h_prev_at, mask, other=0.0)
        dn = dh * (1.0 - z) * (1.0 - n * n)
        dz = dh * (h_prev - n) * z * (1.0 - z)
        tl.store(dgx_at + H, dz, mask)
        tl.store(dgx_at + 2 * H, dn, mask)
        tl.store(dh_carry_at, dh * z, mask)
        if CELL == "gru_after":
            r = tl.load(gates_at, mask, other=0.0)
            dr = dn * tl.load(aux_at, mask, other=0.0) * r * (1.0 - r)
            tl.store(dgx_at, dr, mask)
            tl.store(dgh_at, dr, mask)
            tl.store(dgh_at + H, dz, mask)
            tl.store(dgh_at + 2 * H, r * dn, mask)


@triton.jit
def reset_backward(drh, gates_at, dgx_at, h_prev_at, dh_carry_at, mask):
    """gru_before, second half of step t in reverse, given ``drh = W_hn^T dn`` (every unit's ``dn``): the reset
    gate's gradient ``dr = drh h_{t-1} sigma'(r)`` and ``dh_{t-1} += drh r``."""
    r = tl.load(gates_at, mask, other=0.0)
    h_prev = tl.load(h_prev_at, mask, other=0.0)
    tl.store(dgx_at, drh * h_prev * r * (1.0 - r), mask)
    tl.store(dh_carry_at, tl.load(dh_carry_at, mask, other=0.0) + drh * r, mask)
