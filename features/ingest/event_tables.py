"""The optional event tables of an export (``events/<name>.csv`` and ``events/schema.json``):
the company's own timestamped events with numeric measures (logins, call failures, ...).

Each table holds ``customer_id``, ``occurred_at`` and one column per measure the schema file
names (a mapping's ``events:`` writes both). Checked before anything is written: a folder
without its schema file, a schema naming a table that is not there, or a missing column stop
the run. Rows: ``rows in = kept + quarantined`` per table; a row is quarantined when its
customer is empty or not a clean ``crm_customers`` customer, its time does not parse, or a
measure is empty or not a finite number (the reason names the column). Clean tables go to
``clean/events/<name>.parquet`` (``occurred_at`` UTC, measures ``float64``), rejected rows
to ``quarantine/events/<name>.parquet``; the schema file is copied beside them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.ingest.attributes import known_customer_ids
from features.ingest.coerce import to_float, to_timestamp
from features.ingest.io import Source, SourceContractError, read_columns, read_source, write_parquet
from features.ingest.known import KnownCustomers
from features.ingest.quarantine import REASON_COLUMN
from features.ingest.reasons import Reasons, count_reasons
from features.ingest.report import TableReport
from features.transforms.schema import EVENT_DIR, EVENT_SCHEMA_FILE

TIME_COLUMN = "occurred_at"


def read_event_schema(folder: Path) -> dict[str, dict]:
    """Event table name -> ``{"label", "measures": {name: {"label"}}}`` of a folder's schema."""
    path = Path(folder) / EVENT_SCHEMA_FILE
    try:
        events = json.loads(path.read_text())["events"]
        bad = [n for n, e in events.items() if not isinstance(e.get("measures", {}), dict)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceContractError(f"{path}: not an event schema ({exc})") from exc
    if bad:
        raise SourceContractError(f"{path}: event table {bad[0]!r}: measures must be a mapping")
    return events


@dataclass(frozen=True)
class EventSources:
    """The located event tables and their schema."""

    sources: dict[str, Source]
    schema: dict[str, dict]


def _table_path(folder: Path, name: str) -> Path | None:
    return next((p for p in (folder / f"{name}.parquet", folder / f"{name}.csv") if p.is_file()),
                None)


def locate_events(source_dir: Path) -> EventSources | None:
    """The event tables of ``source_dir/events`` checked against the schema (None: none)."""
    folder = Path(source_dir) / EVENT_DIR
    if not folder.is_dir():
        return None
    if not (folder / EVENT_SCHEMA_FILE).is_file():
        raise SourceContractError(f"{folder}: its schema file {EVENT_SCHEMA_FILE} (measures and "
                                  "labels) is missing")
    schema = read_event_schema(folder)
    sources = {}
    for name, event in schema.items():
        path = _table_path(folder, name)
        if path is None:
            raise SourceContractError(f"{folder / EVENT_SCHEMA_FILE}: event table {name!r} has "
                                      f"no file {name}.csv or {name}.parquet")
        columns = read_columns(path)
        missing = [c for c in ("customer_id", TIME_COLUMN, *event.get("measures", {}))
                   if c not in columns]
        if missing:
            raise SourceContractError(f"{path}: missing column(s) {', '.join(missing)}")
        sources[name] = Source(f"{EVENT_DIR}/{name}", path, columns)
    return EventSources(sources, schema)


def typed_events(raw: pd.DataFrame, measures: dict, customers: KnownCustomers,
                 reasons: Reasons) -> pd.DataFrame:
    """customer_id, occurred_at and every measure typed; failing rows get their reasons."""
    ids, _ = known_customer_ids(raw, customers, reasons)
    stamps = to_timestamp(raw[TIME_COLUMN])
    reasons.add(stamps.isna().to_numpy(), f"{TIME_COLUMN}: missing or not a valid timestamp")
    typed = {"customer_id": ids, TIME_COLUMN: stamps}
    for name in measures:
        values = to_float(raw[name])
        reasons.add(values.isna().to_numpy(), f"{name}: missing or not a finite number")
        typed[name] = values
    return pd.DataFrame(typed, index=raw.index)


def ingest_event_table(name: str, source: Source, measures: dict, customers: KnownCustomers,
                       clean_dir: Path, quarantine_dir: Path) -> TableReport:
    """Validate one event table, write its clean and quarantine Parquet; account for every row."""
    raw = read_source(source)
    reasons = Reasons(len(raw))
    typed = typed_events(raw, measures, customers, reasons)
    clean = typed.loc[~reasons.failed].reset_index(drop=True)
    quarantined = raw.loc[reasons.failed].copy()
    quarantined[REASON_COLUMN] = reasons.series().to_numpy()[reasons.failed]
    write_parquet(clean, Path(clean_dir) / EVENT_DIR / f"{name}.parquet")
    write_parquet(quarantined.reset_index(drop=True),
                  Path(quarantine_dir) / EVENT_DIR / f"{name}.parquet")
    extra = [c for c in raw.columns if c not in ("customer_id", TIME_COLUMN, *measures)]
    return TableReport(table=source.table, source=str(source.path), rows_in=len(raw),
                       rows_kept=len(clean), rows_quarantined=int(np.sum(reasons.failed)),
                       reasons=count_reasons(quarantined[REASON_COLUMN]), extra_columns=extra)


def ingest_events(located: EventSources | None, customers: KnownCustomers, clean_dir: Path,
                  quarantine_dir: Path) -> list[TableReport]:
    """Every event table (tables of an earlier run removed first); one report each."""
    for folder in (clean_dir, quarantine_dir):
        shutil.rmtree(Path(folder) / EVENT_DIR, ignore_errors=True)
    if located is None:
        return []
    for folder in (clean_dir, quarantine_dir):
        (Path(folder) / EVENT_DIR).mkdir(parents=True, exist_ok=True)
    reports = [ingest_event_table(name, source, located.schema[name].get("measures", {}),
                                  customers, clean_dir, quarantine_dir)
               for name, source in located.sources.items()]
    shutil.copyfile(Path(located.sources[next(iter(located.sources))].path).parent
                    / EVENT_SCHEMA_FILE, Path(clean_dir) / EVENT_DIR / EVENT_SCHEMA_FILE)
    return reports
