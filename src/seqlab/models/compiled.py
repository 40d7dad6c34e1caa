"""numba compilation on first call, for the models' compiled loops (ETS's objective, GARCH's filters).

A loop that carries its state from one value to the next (EGARCH's ``z_t`` needs ``sigma2_t``) cannot be a NumPy
expression; numba compiles the same Python source. Importing seqlab does not import numba: a ``Compiled``
function imports and compiles on its first call (about a second, or its cache beside the source, written on the
first compile); without a writable place for that cache (a read-only install and home) it compiles for the
process instead. ``NUMBA_DISABLE_JIT=1`` runs the source as Python. ``error_model="numpy"``: a division by zero
gives inf or nan instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable


class Compiled:
    """``function`` compiled by numba on its first call."""

    def __init__(self, function: Callable) -> None:
        self.function = function
        self.compiled: Callable | None = None

    def compile(self) -> Callable:
        """The compiled function (numba's dispatcher: a caller in a loop keeps it and calls it directly)."""
        if self.compiled is None:
            from numba import njit  # a second of import and cache load, paid by the first call only

            try:
                self.compiled = njit(cache=True, error_model="numpy")(self.function)
            except RuntimeError:  # no writable place for numba's cache: compile for this process
                self.compiled = njit(error_model="numpy")(self.function)
        return self.compiled

    def __call__(self, *args):
        return self.compile()(*args)
