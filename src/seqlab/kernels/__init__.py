"""Fused recurrent kernels in Triton: the time loop of an RNN, LSTM or GRU layer in one launch.

``Recurrent(..., backend="triton")`` runs through here, one ``recurrence`` call per layer. Files:
``common.py`` (cell codes, the row-block times matrix product), ``forward.py`` and ``backward.py`` (the
kernels, equations in their docstrings), ``autograd.py`` (the autograd ``Function``: the input
projection and the weight gradients as large torch matrix products around the kernels).

Design and its trade-offs:

- Persistent in time, not across programs: one program owns a block of 16 batch rows and all hidden
  units; it loops over the T steps inside the kernel, walking the hidden units in chunks of up to 64,
  with a block-wide barrier per step. Programs never wait on each other, so the same code runs in the
  interpreter (programs one after another) and on the GPU; there is no grid-wide spin barrier to
  deadlock.
- The cost of that simplicity: each step re-reads all of ``W_hh`` (G x H) from global memory (L2 once
  warm) in one streaming multiprocessor, and B <= 16 uses one program, so one SM. Small H is bound by
  the barrier and latency; large H by one SM's L2 bandwidth. The faster design splits the hidden units
  over many programs, each keeping its slice of ``W_hh`` in registers/SRAM, with a grid-wide sync per
  step on a global counter (FlashRNN's layout); it needs an interpreter-safe twin and a GPU to verify, so
  it is not here yet.
- Forward keeps fp32 ``h`` (and ``C``) for every step plus the gate activations (``B T G`` floats): the
  backward pass reads them instead of recomputing.
- The reverse kernel does only what is sequential (``dh``, ``dC`` through time and the per-step gate
  gradients); ``dW_hh``, ``dW_ih``, the biases and ``dx`` are one large matrix product each, outside.
"""

from seqlab.kernels.autograd import DTYPES, LAYOUTS, MAX_HIDDEN, pick_layout, recurrence, unsupported_reason, warn_once

__all__ = ["recurrence", "pick_layout", "unsupported_reason", "warn_once", "DTYPES", "LAYOUTS", "MAX_HIDDEN"]
