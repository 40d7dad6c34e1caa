"""Fused recurrent kernels in Triton: the time loop of an RNN, LSTM or GRU layer in one launch.

``Recurrent(..., backend="triton", layout=...)`` runs through here, one ``recurrence`` call per layer. Files:
``common.py`` (cell codes, the matrix products, tanh, the grid barrier), ``pointwise.py`` (each cell's math,
forward and backward, once for both layouts), ``forward.py`` and ``backward.py`` (the "rows" layout),
``units_forward.py`` and ``units_backward.py`` (the "units" layout), ``units.py`` (its plan and drivers),
``autograd.py`` (the autograd ``Function``: the input projection and the weight gradients as large torch matrix
products around the kernels, and ``pick_layout``). Both layouts fill the same buffers through the same cell
functions: they differ only in how the work is split and addressed.

The two layouts and their trade-offs:

- ``"rows"``: one program owns a block of 16 batch rows and all hidden units; it loops over the T steps inside
  the kernel, walking the hidden units in chunks of up to 64, with a block-wide barrier per step. Programs never
  wait on each other, so the same code runs in the interpreter and on the GPU. The cost: each step re-reads all
  of ``W_hh`` (G x H) from L2 in one streaming multiprocessor, and B <= 16 uses one program, so one SM.
- ``"units"``: hidden units (all gates of a unit together) split over up to one program per SM; each program
  reads its slice of ``W_hh`` once and keeps it on chip for all T steps (FlashRNN's and Baidu's persistent-RNN
  layout). The new ``h_t`` goes through global memory and a grid-wide barrier on an atomic counter separates the
  steps (two for the GRU with the reset before the product). The barrier needs every program resident at
  once: a cooperative launch with the grid at most the SM count, and a spin limit that turns a stuck barrier
  into an error. In the interpreter (programs run one after another, a barrier would wait forever) the same
  kernel runs one step per launch. Limits: H <= 2048; at H = 1024 ptxas spills part of an fp32 LSTM's slice.
- ``layout="auto"`` takes "units" from H = 128 at B <= 64, "rows" otherwise: a design estimate, not a
  measurement (no GPU has timed either layout yet; docs/benchmarks.md).
- Forward keeps fp32 ``h`` (and ``C``) for every step plus the gate activations (``B T G`` floats): the
  backward pass reads them instead of recomputing.
- The reverse kernels do only what is sequential (``dh``, ``dC`` through time and the per-step gate
  gradients); ``dW_hh``, ``dW_ih``, the biases and ``dx`` are one large matrix product each, outside.
"""

from seqlab.kernels.autograd import DTYPES, LAYOUTS, MAX_HIDDEN, pick_layout, recurrence, unsupported_reason, warn_once

__all__ = ["recurrence", "pick_layout", "unsupported_reason", "warn_once", "DTYPES", "LAYOUTS", "MAX_HIDDEN"]
