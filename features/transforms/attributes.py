"""The view ``customer_attributes``: the company's own customer columns at each snapshot.

Read from ``clean/customer_attributes.parquet`` and its schema file (kinds and labels, from
the mapping's ``attributes:``). One row per customer of the spine per snapshot, feature
``attr_<attribute>``: numbers as they are; booleans 1/0; categoricals as text (null =
unknown); a date becomes its age in days at the snapshot (unknown when the date is after
the snapshot: the snapshot cannot have known it).

The values are the export's current values, as a CRM snapshot is: the same for every
snapshot of that export (docs/data_contract.md#customer-attributes). The schema file is
copied next to the feature table, where the Feast definitions read kinds and labels.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .inputs import NS_PER_DAY, ns
from .schema import ATTRIBUTE_KINDS, ATTRIBUTE_PREFIX, ATTRIBUTE_VIEW

SCHEMA_FILE = f"{ATTRIBUTE_VIEW}.schema.json"


def read_attribute_schema(folder: Path) -> dict[str, dict]:
    """Attribute name -> ``{"kind", "label", ...}`` of a clean or feature folder ({} if none)."""
    path = Path(folder) / SCHEMA_FILE
    return json.loads(path.read_text())["attributes"] if path.is_file() else {}


def attribute_features(schema: dict[str, dict]) -> dict[str, dict]:
    """Feature name -> ``{"kind": feature kind, "attribute_kind", "label"}`` per attribute."""
    return {f"{ATTRIBUTE_PREFIX}{name}": {"kind": ATTRIBUTE_KINDS[a["kind"]],
                                          "attribute_kind": a["kind"], "label": a["label"]}
            for name, a in schema.items()}


def attribute_kinds(schema: dict[str, dict]) -> dict[str, str]:
    """Feature name -> feature kind of the view's columns (what its table declares)."""
    return {f: meta["kind"] for f, meta in attribute_features(schema).items()}


def feature_values(values: pd.Series, kind: str, snapshot: pd.Timestamp) -> np.ndarray:
    """One attribute's feature values at ``snapshot`` (``values`` in clean dtypes)."""
    if kind == "categorical":
        out = values.astype(object).to_numpy()
        out[pd.isna(out)] = None
        return out
    if kind == "date":
        known = values.notna().to_numpy()
        stamp = np.where(known, ns(pd.to_datetime(values.where(values.notna()), utc=True)), 0)
        age = (snapshot.value - stamp) / NS_PER_DAY
        return np.where(known & (age >= 0), age, np.nan)
    return pd.to_numeric(values.astype("Float64"), errors="coerce").to_numpy(np.float64,
                                                                             na_value=np.nan)


@dataclass
class Attributes:
    """The clean attribute table (one row per customer) and its schema."""

    table: pd.DataFrame
    schema: dict[str, dict]

    @classmethod
    def load(cls, clean_dir: Path, read: Callable[[str], pd.DataFrame] | None = None
             ) -> Attributes | None:
        """The ingested attributes of ``clean_dir``; None when the export has none. ``read``:
        how to read the table by name (default: the whole file; a bucket: its rows)."""
        path = Path(clean_dir) / f"{ATTRIBUTE_VIEW}.parquet"
        if not path.is_file():
            return None
        table = pd.read_parquet(path) if read is None else read(ATTRIBUTE_VIEW)
        return cls(table.set_index("customer_id"), read_attribute_schema(clean_dir))

    @property
    def kinds(self) -> dict[str, str]:
        """Feature name -> feature kind, the columns of the view."""
        return attribute_kinds(self.schema)

    def at(self, ids: np.ndarray, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        """The features of the customers ``ids`` at ``snapshot`` (unknown where a customer has
        no attribute row: quarantined at ingest)."""
        rows = self.table.reindex(pd.Index(ids, dtype=object))
        return {f"{ATTRIBUTE_PREFIX}{name}": feature_values(rows[name], a["kind"], snapshot)
                for name, a in self.schema.items()}

    def rows(self, spine_rows: tuple, snapshot: pd.Timestamp) -> tuple:
        """The view's batch for the spine rows ``(ids, stamps, ...)`` of one snapshot."""
        ids, stamps = spine_rows[0], spine_rows[1]
        ids_np = ids.to_numpy(zero_copy_only=False) if isinstance(ids, pa.Array) else ids
        return ids, stamps, self.at(np.asarray(ids_np, dtype=object), snapshot)


def publish_schema(schema: dict[str, dict] | None, clean_dir: Path, out_dir: Path) -> None:
    """Copy the schema file next to the feature tables, or remove a stale view (and schema)
    when this export has no attributes (``schema`` None)."""
    target = Path(out_dir) / SCHEMA_FILE
    if schema is None:
        target.unlink(missing_ok=True)
        (Path(out_dir) / f"{ATTRIBUTE_VIEW}.parquet").unlink(missing_ok=True)
        return
    shutil.copyfile(Path(clean_dir) / SCHEMA_FILE, target)
