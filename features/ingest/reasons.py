"""Per-row quarantine reasons, accumulated vectorized.

A row's reason is ``"<column>: <check>"``; several are joined with ``"; "``.
Work is proportional to the number of failing rows, not to the table size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

SEPARATOR = "; "
_DETAIL = re.compile(r"\s*\([^()]*\)$")


class Reasons:
    """Reason strings for the rows of one table (positional, ``""`` = no failure)."""

    def __init__(self, n_rows: int) -> None:
        self._text = np.full(n_rows, "", dtype=object)

    def __len__(self) -> int:
        return len(self._text)

    def add(self, mask, text) -> None:
        """Append ``text`` (a string, or one string per row) to the rows where ``mask``."""
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        if idx.size == 0:
            return
        new = np.full(idx.size, text, dtype=object) if isinstance(text, str) else (
            np.asarray(text, dtype=object)[idx]
        )
        cur = self._text[idx]
        self._text[idx] = np.where(cur == "", new, cur + SEPARATOR + new)

    def add_texts(self, texts: pd.Series) -> None:
        """Append per-row texts given as a Series indexed by row position (``""`` = none)."""
        texts = texts[texts.notna() & texts.ne("")]
        full = np.full(len(self), "", dtype=object)
        full[texts.index.to_numpy(dtype=np.int64)] = texts.to_numpy(dtype=object)
        self.add(full != "", full)

    @property
    def failed(self) -> np.ndarray:
        """Boolean mask of the rows with at least one reason."""
        return self._text != ""

    def series(self) -> pd.Series:
        return pd.Series(self._text, name="_reason")


def reason_key(reason: str) -> str:
    """The countable part of a reason: a trailing detail in parentheses is dropped."""
    return _DETAIL.sub("", reason)


def count_reasons(reasons: pd.Series) -> dict[str, int]:
    """How often each reason occurs (a row with two reasons counts in both), most common first."""
    parts = reasons[reasons != ""].str.split(SEPARATOR).explode()
    if parts.empty:
        return {}
    keys = parts.str.replace(_DETAIL, "", regex=True)
    return ordered_counts(keys.value_counts())


def ordered_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Reason counts most common first, then by name (the report's order)."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {str(k): int(n) for k, n in ordered}
