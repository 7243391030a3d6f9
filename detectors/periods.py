"""Finding a series' period in its coarse history, by autocorrelation.

The seasonal detector keeps `RING` bucket means of a series (each the mean of `m` consecutive
values; `m` doubles as the history grows, up to four weeks). A rhythm shows as a peak of the
autocorrelation at its lag that stands above the value at half that lag (a trend or a random walk
correlates at every lag, a rhythm does not at half its period). Calendar candidates (a day, a
week of local time) are tested at their exact lag; a rhythm in samples is the strongest such
peak, refined between buckets by a parabola. Run every `RING // 8` new buckets per series, so the
cost is a 256-point FFT per a few dozen values.

>>> import numpy as np
>>> wave = np.sin(2 * np.pi * np.arange(256) / 37.5)
>>> length, unit, strength = find_period(wave, m=16.0, bucket_seconds=16.0, periods=("samples",))
>>> abs(length - 600) < 6, unit  # 37.5 buckets of 16 samples: 600 samples
(True, 1.0)
"""

from __future__ import annotations

import numpy as np

DAY = 86_400.0
WEEK = 7 * DAY
MONDAY = 4 * DAY
"""1970-01-05, a Monday: weekly phases start on Monday 00:00 local time."""
RING = 128
"""Buckets of coarse history per series."""
MIN_ACF = 0.3
"""Autocorrelation a rhythm needs at its lag ..."""
CONTRAST = 0.2
"""... and by how much it must beat the autocorrelation at half its lag."""
MIN_LAG = 4.0
"""Buckets per period at the least: a shorter rhythm is noise to a profile of this history."""
SNAP = 0.1
"""A rhythm this close to a whole number of samples is taken to be that number: a sampled
process with a period of 13 samples, read as 13.02, drifts a whole sample in 50 periods."""
SAME = 0.05
"""A rhythm in samples within this relative distance of a day or a week is that calendar period."""


def autocorrelation(y: np.ndarray) -> np.ndarray:
    """Autocorrelation of each row of `y` (linear trend removed) at lags 0 .. n // 2, unbiased.

    Rows are histories of the same length, done in one FFT: the series due for a check in one
    time step usually are (sources in a batch move in step).
    """
    rows = np.atleast_2d(y)
    n = rows.shape[1]
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    centred = rows - rows.mean(axis=1, keepdims=True)
    # elementwise and a reduction per row, not a matrix product: BLAS may round a row
    # differently in a block of rows, and scores must not depend on how batches were cut
    slope = (centred * x).sum(axis=1) / float((x * x).sum())
    resid = centred - slope[:, None] * x
    size = 1 << int(2 * n - 1).bit_length()
    spec = np.fft.rfft(resid, size, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), size, axis=1)[:, : n // 2 + 1]
    acov /= n - np.arange(n // 2 + 1)
    scale = 1e-12 * (1.0 + np.mean(rows**2, axis=1))
    flat = acov[:, 0] <= scale
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.where(flat[:, None], 0.0, acov / acov[:, :1])
    return out.reshape((*y.shape[:-1], n // 2 + 1))


def _at(r: np.ndarray, lag: float) -> float:
    """Autocorrelation at a fractional lag (linear interpolation)."""
    return float(np.interp(lag, np.arange(len(r)), r))


def _rhythm(r: np.ndarray, lag: float) -> float | None:
    """Strength of a rhythm of `lag` buckets, or None when the autocorrelation does not show one
    (noise alone reaches about 2 / sqrt(n) at some lag of a history of n buckets)."""
    if lag < MIN_LAG or lag > len(r) - 1:
        return None
    strength = _at(r, lag)
    floor = max(MIN_ACF, 4.0 / np.sqrt(2.0 * (len(r) - 1)))
    if strength < floor or strength - _at(r, lag / 2) < CONTRAST:
        return None
    return strength


def _peak(r: np.ndarray) -> float | None:
    """Lag of the fundamental rhythm in samples' buckets: the first peak nearly as high as the
    highest, refined by a parabola through it and its neighbours."""
    lo = int(MIN_LAG)
    inner = r[lo:-1]
    is_peak = (inner > r[lo - 1 : -2]) & (inner >= r[lo + 1 :]) & (inner >= MIN_ACF)
    peaks = np.flatnonzero(is_peak) + lo
    if not len(peaks):
        return None
    top = float(r[peaks].max())
    k = int(peaks[np.flatnonzero(r[peaks] >= 0.8 * top)[0]])
    lag = _vertex(r, k)
    # The peaks at multiples of the period pin it down that many times more precisely.
    multiple = 2
    while round(multiple * lag) + 2 < len(r):
        near = round(multiple * lag)
        j = near - 1 + int(np.argmax(r[near - 1 : near + 2]))
        if r[j] < MIN_ACF or not (r[j] >= r[j - 1] and r[j] >= r[j + 1]):
            break
        lag = _vertex(r, j) / multiple
        multiple += 1
    return lag


def _vertex(r: np.ndarray, k: int) -> float:
    """Lag of the top of the parabola through the autocorrelation at k - 1, k, k + 1."""
    a, b, c = r[k - 1], r[k], r[k + 1]
    bend = a - 2 * b + c
    shift = 0.5 * (a - c) / bend if bend < 0 else 0.0
    return k + float(np.clip(shift, -0.5, 0.5))


def find_period(
    history: np.ndarray,
    m: float,
    bucket_seconds: float,
    periods: tuple[str, ...],
    sample_seconds: float = 0.0,
) -> tuple[float, float, float] | None:
    """(length, unit, strength) of the history's rhythm: unit 0 = seconds (a day or a week),
    1 = samples; None when it shows none of the candidate `periods`."""
    if len(history) < 4 * MIN_LAG:
        return None
    return read_period(autocorrelation(history), m, bucket_seconds, periods, sample_seconds)


def read_period(
    r: np.ndarray,
    m: float,
    bucket_seconds: float,
    periods: tuple[str, ...],
    sample_seconds: float = 0.0,
) -> tuple[float, float, float] | None:
    """`find_period` from the history's autocorrelation `r`."""
    found: dict[float, float] = {}
    if bucket_seconds > 0:
        for name, length in (("day", DAY), ("week", WEEK)):
            if name in periods:
                strength = _rhythm(r, length / bucket_seconds)
                if strength is not None:
                    found[length] = strength
    if found:
        day, week = found.get(DAY), found.get(WEEK)
        if day is not None and (week is None or week < day + 0.1):
            return DAY, 0.0, day
        assert week is not None
        return WEEK, 0.0, week
    if "samples" not in periods:
        return None
    lag = _peak(r)
    if lag is None or lag > 2.0 * (len(r) - 1) / 3.0:
        return None  # a rhythm in samples shows three periods before it counts
    strength = _rhythm(r, lag)
    if strength is None:
        return None
    # in seconds by the history's span, or by the usual sampling interval (gaps stretch the span)
    for seconds in (lag * bucket_seconds, lag * m * sample_seconds):
        for name, length in (("day", DAY), ("week", WEEK)):
            if name in periods and abs(seconds - length) <= SAME * length:
                return length, 0.0, strength
    length = lag * m
    if abs(length - round(length)) <= SNAP:  # a whole number of samples: counting stays in phase
        length = float(round(length))
    return length, 1.0, strength
