"""The view ``customer_events``: aggregates of the company's own event tables at each snapshot.

Read from ``clean/events/<name>.parquet`` and ``clean/events/schema.json`` (labels, from the
mapping's ``events:``). Per event table ``e`` and window ``w`` (30, 90, 365 days, all
history): ``evt_<e>_count_<w>``, and per measure ``m`` ``evt_<e>_<m>_sum_<w>`` and
``evt_<e>_<m>_mean_<w>`` (NaN when the window holds no event); ``evt_<e>_days_since_last``
(NaN: never). Point in time: an event counts at a snapshot only when it happened strictly
before it (``Events``: whole seconds, exclusive bound). The schema of the view (feature ->
label) is published next to the feature table, where the Feast definitions read it.
Design: docs/features.md#event-tables
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .events import Events
from .inputs import to_utc
from .schema import EVENT_DIR, EVENT_PREFIX, EVENT_SCHEMA_FILE, EVENT_VIEW

TIME_COLUMN = "occurred_at"
#: Window suffix -> days (None: all history before the snapshot).
WINDOWS = {"30d": 30, "90d": 90, "365d": 365, "all": None}
SCHEMA_FILE = f"{EVENT_VIEW}.schema.json"


def _span(window: str) -> str:
    days = WINDOWS[window]
    return "all history" if days is None else f"last {days} days"


def event_features(schema: dict[str, dict]) -> dict[str, str]:
    """Feature name -> label of every aggregate of the event tables ``schema`` describes."""
    out = {}
    for name, event in schema.items():
        label = event.get("label") or name.replace("_", " ").capitalize()
        for w in WINDOWS:
            out[f"{EVENT_PREFIX}{name}_count_{w}"] = f"{label} events, {_span(w)}"
            for m, measure in event.get("measures", {}).items():
                out[f"{EVENT_PREFIX}{name}_{m}_sum_{w}"] = f"{measure['label']}, {_span(w)}"
                out[f"{EVENT_PREFIX}{name}_{m}_mean_{w}"] = (f"{measure['label']} per event, "
                                                            f"{_span(w)}")
        out[f"{EVENT_PREFIX}{name}_days_since_last"] = f"Days since the last {label.lower()} event"
    return out


def read_event_schema(clean_dir: Path) -> dict[str, dict] | None:
    """Event table -> its label and measures, of a clean folder (None: the export has none)."""
    path = Path(clean_dir) / EVENT_DIR / EVENT_SCHEMA_FILE
    return json.loads(path.read_text())["events"] if path.is_file() else None


def event_kinds(schema: dict[str, dict]) -> dict[str, str]:
    """Feature name -> feature kind (all floats) of the view's columns."""
    return {f: "float" for f in event_features(schema)}


def read_event_features(feature_dir: Path) -> dict[str, str]:
    """Feature -> label of the published event view ({} when the export has none)."""
    path = Path(feature_dir) / SCHEMA_FILE
    return json.loads(path.read_text())["features"] if path.is_file() else {}


@dataclass
class EventTables:
    """The clean event tables indexed per customer code, and their schema."""

    schema: dict[str, dict]
    events: dict[str, Events]
    customers: pd.Index

    @classmethod
    def load(cls, clean_dir: Path, customer_ids,
             read: Callable[[str], pd.DataFrame] | None = None) -> EventTables | None:
        """The ingested event tables of ``clean_dir`` for ``customer_ids``; None when the
        export has none. ``read``: how to read a table by name (``events/<table>``; default:
        the whole file; a bucket: its rows)."""
        schema = read_event_schema(clean_dir)
        if schema is None:
            return None
        customers = pd.Index(np.asarray(customer_ids, dtype=object))
        read = read or (lambda name: pd.read_parquet(Path(clean_dir) / f"{name}.parquet"))
        events = {name: _indexed(read(f"{EVENT_DIR}/{name}"), customers,
                                 list(event.get("measures", {})))
                  for name, event in schema.items()}
        return cls(schema, events, customers)

    @property
    def kinds(self) -> dict[str, str]:
        """Feature name -> feature kind (all floats), the columns of the view."""
        return event_kinds(self.schema)

    def at(self, snapshot: pd.Timestamp) -> dict[str, np.ndarray]:
        """Every aggregate for every customer code, from events strictly before ``snapshot``."""
        t, out = snapshot.value, {}
        for name, event in self.schema.items():
            ev, prefix = self.events[name], f"{EVENT_PREFIX}{name}"
            for w, days in WINDOWS.items():
                out[f"{prefix}_count_{w}"] = ev.count(t, days).astype(np.float64)
                for m in event.get("measures", {}):
                    out[f"{prefix}_{m}_sum_{w}"] = ev.reduce(m, t, days, empty=0.0)
                    out[f"{prefix}_{m}_mean_{w}"] = ev.mean(m, t, days)
            out[f"{prefix}_days_since_last"] = ev.days_since_latest(t)
        return out

    def rows(self, spine_rows: tuple, snapshot: pd.Timestamp) -> tuple:
        """The view's batch for the spine rows ``(ids, stamps, ...)`` of one snapshot."""
        ids, stamps = spine_rows[0], spine_rows[1]
        ids_np = ids.to_numpy(zero_copy_only=False) if isinstance(ids, pa.Array) else ids
        codes = self.customers.get_indexer(np.asarray(ids_np, dtype=object))
        return ids, stamps, {f: v[codes] for f, v in self.at(snapshot).items()}


def _indexed(table: pd.DataFrame, customers: pd.Index, measures: list[str]) -> Events:
    """One event table as ``Events`` by customer code (rows of unknown customers dropped)."""
    code = customers.get_indexer(table["customer_id"].astype(object).to_numpy())
    table = table.assign(code=code)[code >= 0]
    return Events.from_frame(table, to_utc(table[TIME_COLUMN]), len(customers),
                             **{m: table[m].to_numpy(np.float64) for m in measures})


def publish_event_schema(schema: dict[str, dict] | None, out_dir: Path) -> None:
    """Write the view's features and labels next to the feature tables, or remove a stale
    view (and schema) when this export has no event tables (``schema`` None)."""
    target = Path(out_dir) / SCHEMA_FILE
    if schema is None:
        target.unlink(missing_ok=True)
        (Path(out_dir) / f"{EVENT_VIEW}.parquet").unlink(missing_ok=True)
        return
    target.write_text(json.dumps({"view": EVENT_VIEW, "features": event_features(schema)},
                                 indent=2) + "\n")
