"""Bounds on what one command may ask for: a generation length, a horizon, a number of sample paths.

A request is checked before anything is allocated: ``check_output_size("--samples x --horizon", (1e9, 5))``
multiplies the sizes, compares the bytes with ``memory_budget()`` and refuses with one line naming the
quantity, what it would take and the limit.
"""

from __future__ import annotations

import math
import numbers
import os

from seqlab.errors import SeqlabError

MEMORY_FRACTION = 0.25  # one output may take at most this share of the machine's memory
FALLBACK_MEMORY_BYTES = 8 * 2**30  # when the operating system does not say how much there is


def memory_budget() -> int:
    """Bytes one output may take: ``MEMORY_FRACTION`` of physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = FALLBACK_MEMORY_BYTES
    return int(total * MEMORY_FRACTION)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def positive_count(name: str, value) -> int:
    """``value`` as an int >= 1, or a one-line error naming the option: refuses 0, negatives, fractions,
    NaN, inf and booleans."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SeqlabError(f"{name} must be a whole number >= 1, got {value!r}")
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise SeqlabError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def check_output_size(what: str, sizes: tuple, bytes_per_element: int = 8, budget: int | None = None) -> int:
    """Refuse an output of ``prod(sizes)`` elements of ``bytes_per_element`` bytes larger than ``budget``
    (default ``memory_budget()``); returns the number of elements. ``what`` names the options, e.g.
    ``"--samples x --horizon"``."""
    counts = [positive_count(what, s) for s in sizes]
    elements = math.prod(counts)
    need, limit = elements * bytes_per_element, memory_budget() if budget is None else budget
    if need > limit:
        shown = " x ".join(f"{c:,}" for c in counts)
        raise SeqlabError(
            f"{what} = {shown} asks for {_human(need)} of output, over the limit of {_human(limit)} "
            f"({MEMORY_FRACTION:.0%} of this machine's memory); ask for less"
        )
    return elements
