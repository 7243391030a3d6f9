"""Compiled loops for the per-step detector code (numba), all with the same options.

A time step of the suite was about 350 small numpy operations whatever the number of series, so
an array of 100 records of one source cost 100 times that fixed overhead (docs/benchmarks.md). The
detectors' `raw`/`learn`/`band` and the calibration are loops over series compiled once and
cached on disk (`cache=True`: a worker starts without recompiling). `error_model="numpy"` gives
numpy's float semantics (x / 0 is inf or NaN, not an exception); no fast-math, so results are
IEEE float64 like the numpy code they replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])
PAIRWISE_BLOCK = 128
"""numpy's pairwise summation sums blocks of up to this many values 8 ways unrolled."""


def kernel(fn: F) -> F:
    """Compile `fn` in nopython mode with the project's options (cached on disk)."""
    return cast(F, numba.njit(cache=True, error_model="numpy", nogil=True)(fn))


@kernel
def _block_sum(a: np.ndarray, start: int, n: int) -> float:
    """numpy's sum of up to PAIRWISE_BLOCK values: 8 accumulators (scalars: this runs per
    series per time step, and an array of them was an allocation each time), then the rest in
    order."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = start + 8
    end = start + n - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(i, start + n):
        res += a[j]
    return float(res)


@kernel
def pairwise_sum(a: np.ndarray, start: int, n: int) -> float:
    """Sum of `a[start : start + n]` in numpy's order, so that a kernel's sum equals numpy's
    `.sum()` of the same row to the last bit: blocks as `_block_sum`, longer runs halved (at a
    multiple of 8) and the halves' sums added. Iterative with an explicit stack: numba's
    on-disk cache crashes on recursive functions (numba issue 6061)."""
    if n <= PAIRWISE_BLOCK:  # a seasonal profile's bins: no stack to allocate
        return _block_sum(a, start, n)
    depth = 64
    starts = np.empty(depth, dtype=np.int64)
    sizes = np.empty(depth, dtype=np.int64)
    opened = np.zeros(depth, dtype=np.bool_)
    sums = np.empty(depth)
    starts[0], sizes[0], top, done = start, n, 1, 0
    while top > 0:
        s, m = starts[top - 1], sizes[top - 1]
        if m <= PAIRWISE_BLOCK:
            sums[done] = _block_sum(a, s, m)
            done += 1
            top -= 1
        elif not opened[top - 1]:  # push the right half, then the left (done first)
            opened[top - 1] = True
            half = m // 2 - (m // 2) % 8
            starts[top], sizes[top], opened[top] = s + half, m - half, False
            starts[top + 1], sizes[top + 1], opened[top + 1] = s, half, False
            top += 2
        else:  # both halves summed: left + right
            sums[done - 2] = sums[done - 2] + sums[done - 1]
            done -= 1
            top -= 1
    return float(sums[0])
