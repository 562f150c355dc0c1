"""Splitting a validated table into its clean rows and its quarantined rows.

Quarantined rows keep every original source column exactly as read (so a bad
value stays visible) plus ``_reason``; nothing is dropped silently.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from features.ingest.coerce import to_clean_dtypes
from features.ingest.reasons import Reasons

REASON_COLUMN = "_reason"


def quarantine_frame(raw: pd.DataFrame, reasons: Reasons) -> pd.DataFrame:
    """The failing source rows, original columns plus ``_reason``."""
    failed = reasons.failed
    out = raw.loc[failed].copy()
    out[REASON_COLUMN] = reasons.series().to_numpy()[failed]
    return out.reset_index(drop=True)


def clean_frame(typed: pd.DataFrame, reasons: Reasons, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """The passing rows, contract columns only (in contract order), clean dtypes."""
    kept = typed.loc[~reasons.failed, list(schema.columns)]
    return to_clean_dtypes(kept, schema).reset_index(drop=True)


def extra_columns(raw: pd.DataFrame, schema: pa.DataFrameSchema) -> list[str]:
    """Source columns the contract does not know (ignored, reported)."""
    return [str(c) for c in raw.columns if c not in schema.columns]
