"""Per-customer event windows as array operations, without row loops.

``Events`` sorts one kind of event by (customer, time) once. For a cut-off ``t``,
one ``searchsorted`` then gives, for every customer at once, the position of their
first event at or after ``t``: the number of earlier events, the latest event
before ``t`` and any window ``[t - days, t)`` are index arithmetic on it. Sums and
maxima reduce each customer's own slice (``ufunc.reduceat``), so a customer's
value never depends on other customers' rows (bit-for-bit reproducible).

``MonthGrid`` holds monthly values (product usage) as a dense customer x month
matrix, so month-over-month trends are column slices.

Point-in-time rule: every method takes an exclusive upper bound ``t``; an event
exactly at ``t`` is not seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import NS_PER_DAY

_NS_PER_S = 10**9
_SHIFT = np.int64(2**34)   # room for +-2**33 seconds (272 years) per customer
_BIAS = np.int64(2**33)


class Events:
    """Events of one kind, sorted by (customer code, time) for windowed lookups."""

    def __init__(self, code: np.ndarray, time_ns: np.ndarray, n: int, **values: np.ndarray):
        if n >= 2**28:
            raise ValueError("too many customers for the packed (customer, time) key")
        secs = np.floor_divide(np.asarray(time_ns, np.int64), _NS_PER_S)
        key = np.asarray(code, np.int64) * _SHIFT + (secs + _BIAS)
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.n = n
        self.size = len(key)
        # a sentinel after the last event lets reduceat take slices that end at the array end
        self.values = {k: _with_sentinel(np.asarray(v)[order]) for k, v in values.items()}
        self._base = np.arange(n, dtype=np.int64) * _SHIFT + _BIAS
        self._first = np.searchsorted(self.key, self._base - _BIAS)
        self._cache: dict[int, np.ndarray] = {}

    @classmethod
    def from_frame(cls, df: pd.DataFrame, time, n: int, **values) -> Events:
        """Events from a frame with a ``code`` column.

        ``time`` is a UTC datetime column or int64 nanoseconds; ``values`` name
        columns or give arrays aligned with ``df``.
        """
        arrays = {k: (df[v].to_numpy() if isinstance(v, str) else np.asarray(v))
                  for k, v in values.items()}
        if isinstance(time, pd.Series):
            time = time.to_numpy(dtype="datetime64[ns]").view("int64")
        return cls(df["code"].to_numpy(), time, n, **arrays)

    def pos(self, t: int) -> np.ndarray:
        """Per customer, the index of their first event at or after ``t`` (ns, whole seconds)."""
        if t % _NS_PER_S:
            raise ValueError("cut-offs must fall on whole seconds")
        if t not in self._cache:
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[t] = np.searchsorted(self.key, self._base + t // _NS_PER_S)
        return self._cache[t]

    def bounds(self, t: int, days: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Slice [lo, hi) of each customer's events in [t - days, t) (all history if None)."""
        hi = self.pos(t)
        lo = self._first if days is None else self.pos(t - int(days * NS_PER_DAY))
        return lo, hi

    def count(self, t: int, days: float | None = None) -> np.ndarray:
        """Number of events in the window."""
        lo, hi = self.bounds(t, days)
        return (hi - lo).astype(np.int64)

    def reduce(self, col, t: int, days: float | None, ufunc=np.add, empty=np.nan) -> np.ndarray:
        """``ufunc`` over each customer's values in the window; ``empty`` where it holds none.

        ``col`` names a stored value, or is an array aligned with the stored order
        (``self.aligned``) for conditions that depend on ``t``.
        """
        vals = self.values[col] if isinstance(col, str) else _with_sentinel(col)
        vals = vals.astype(np.float64, copy=False)
        lo, hi = self.bounds(t, days)
        idx = np.empty(2 * self.n, np.int64)
        idx[0::2], idx[1::2] = lo, hi
        out = ufunc.reduceat(vals, idx)[0::2] if self.n else np.empty(0)
        out[hi == lo] = empty
        return out

    def mean(self, col, t: int, days: float | None) -> np.ndarray:
        """Mean of the window's values (NaN when the window is empty)."""
        total = self.reduce(col, t, days)
        return total / np.maximum(self.count(t, days), 1)

    def latest(self, col: str, t: int, back: int = 0) -> np.ndarray:
        """The value of the (back+1)-th latest event before ``t``; NaN (or -1 codes) if none."""
        lo, hi = self._first, self.pos(t)
        idx = hi - 1 - back
        ok = idx >= lo
        vals = self.values[col][np.where(ok, idx, self.size)]   # sentinel where none
        return vals

    def days_since_latest(self, t: int) -> np.ndarray:
        """Days from the latest event before ``t`` to ``t``; NaN if there is none."""
        lo, hi = self._first, self.pos(t)
        ok = hi > lo
        secs = self.key[np.where(ok, hi - 1, 0)] - self._base if self.size else np.zeros(self.n)
        out = (t / _NS_PER_S - secs) / 86_400.0
        return np.where(ok, out, np.nan)

    def aligned(self, name: str) -> np.ndarray:
        """A stored value without its sentinel, aligned with the sorted events."""
        return self.values[name][:-1]


def _with_sentinel(a: np.ndarray) -> np.ndarray:
    """Append a missing marker: NaN for floats, -1 for integer codes, None otherwise."""
    if a.dtype.kind == "f":
        fill = np.nan
    elif a.dtype.kind in "iub":
        a = a.astype(np.int64) if a.dtype.kind == "b" else a
        fill = -1
    else:
        fill = None
    return np.append(a, np.array([fill], dtype=a.dtype))


class MonthGrid:
    """Monthly per-customer values as a customer x month float matrix (NaN = no row)."""

    def __init__(self, code: np.ndarray, month: pd.Series, n: int, **values: np.ndarray):
        m = month.dt.year.to_numpy() * 12 + month.dt.month.to_numpy() - 1
        self.base = int(m.min()) if len(m) else 0
        cols = (m - self.base).astype(np.int64)
        width = int(cols.max()) + 1 if len(cols) else 1
        self.values = {}
        for name, v in values.items():
            grid = np.full((n, width), np.nan, np.float64)
            grid[np.asarray(code), cols] = np.asarray(v, np.float64)
            self.values[name] = grid

    def block(self, name: str, t: pd.Timestamp, back: int, length: int) -> np.ndarray:
        """Columns for the ``length`` months starting ``back`` months before t's month.

        Only months that ended at or before ``t`` exist in a block; months outside the
        grid come back as NaN.
        """
        grid = self.values[name]
        now = t.year * 12 + t.month - 1 - self.base        # t's own month: not complete
        first = now - back
        cols = np.arange(first, first + length)
        inside = (cols >= 0) & (cols < grid.shape[1]) & (cols < now)
        out = np.full((grid.shape[0], length), np.nan)
        out[:, inside] = grid[:, cols[inside]]
        return out

    def month(self, name: str, t: pd.Timestamp, back: int) -> np.ndarray:
        """The single month ``back`` months before t's month (1 = the last complete month)."""
        return self.block(name, t, back, 1)[:, 0]
