"""Compiled loops for the per-step detector code (numba), all with the same options.

A time step of the suite was about 350 small numpy operations whatever the number of series, so
an array of 100 records of one source cost 100 times that fixed overhead (0.75 ms a step). The
detectors' `raw`/`learn`/`band` and the calibration are loops over series compiled once and
cached on disk (`cache=True`: a worker starts without recompiling). `error_model="numpy"` gives
numpy's float semantics (x / 0 is inf or NaN, not an exception); no fast-math, so results are
IEEE float64 like the numpy code they replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile `fn` in nopython mode with the project's options (cached on disk)."""
    return cast(F, numba.njit(cache=True, error_model="numpy", nogil=True)(fn))
