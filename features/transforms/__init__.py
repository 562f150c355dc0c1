"""Feature engineering: clean X + O tables -> point-in-time feature and label tables.

Entry point ``build_feature_tables(clean_dir, out_dir, params, as_of=None)`` writes
``customer_o`` (operations), ``customer_x`` (experience), ``customer_fused`` (X x O),
``churn_labels`` and ``nps_labels`` as Parquet, keyed by ``customer_id`` and
``event_timestamp`` (the snapshot; a feature row uses only events strictly before
it). ``FEATURE_SCHEMA`` / ``FEATURE_COLUMNS`` name each table's features and kinds.
"""

from .build import build_feature_tables
from .inputs import load_clean, to_utc
from .schema import (
    CREATED_TIMESTAMP,
    ENTITY,
    EVENT_TIMESTAMP,
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    LABEL_SCHEMA,
)
from .spine import build_spine, open_mask, snapshot_dates

__all__ = [
    "CREATED_TIMESTAMP",
    "ENTITY",
    "EVENT_TIMESTAMP",
    "FEATURE_COLUMNS",
    "FEATURE_SCHEMA",
    "LABEL_SCHEMA",
    "build_feature_tables",
    "build_spine",
    "load_clean",
    "open_mask",
    "snapshot_dates",
    "to_utc",
]
