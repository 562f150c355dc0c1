"""The ``events:`` of a mapping: the company's own timestamped event tables (logins, call
failures, app sessions, ...), each with numeric measures, staged for ingest.

Each event table names one file of ``files:`` (its ``key`` is the customer id), the column
of the event time (and its format) and the measures it carries, each with a label in plain
words. Staged as text, one table per event kind: ``<staging>/events/<name>.csv`` with
``customer_id``, ``occurred_at`` (ISO) and one column per measure, plus
``<staging>/events/schema.json`` (labels), which ingest validates
(:mod:`features.ingest.event_tables`). Format: docs/data_contract.md#event-tables
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd

from features.ingest.io import read_columns
from features.sources.mapping.read import file_path, read_text
from features.sources.mapping.spec import EventSpec, MappingError, MappingSpec
from features.sources.mapping.values import formatted_dates
from features.transforms.schema import EVENT_DIR, EVENT_SCHEMA_FILE

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TIME_COLUMN = "occurred_at"
ISO_STAMP = "%Y-%m-%dT%H:%M:%S%z"


def event_problems(spec: MappingSpec) -> list[str]:
    """Every problem of the ``events:`` section (empty: it may be applied)."""
    problems = []
    for name, ev in spec.events.items():
        problems += _problems(spec, name, ev, f"events.{name}")
    return problems


def _problems(spec: MappingSpec, name: str, ev: EventSpec, where: str) -> list[str]:
    problems = []
    if not NAME.match(name):
        problems.append(f"{where}: name event tables in snake_case (a-z, 0-9, _; at most 32 "
                        "characters)")
    if ev.file not in spec.files:
        problems.append(f"{where}.file: {ev.file!r} is not defined under files")
    elif not spec.files[ev.file].key:
        problems.append(f"{where}.file: files.{ev.file}.key is needed (the customer id of "
                        "each event)")
    columns = {"timestamp": ev.timestamp.column} | {
        f"measures.{m}": ms.column for m, ms in ev.measures.items()}
    for key, column in columns.items():
        if column in spec.never_features:
            problems.append(f"{where}.{key}: {column!r} is an outcome column (never_features)")
    for m in ev.measures:
        if not NAME.match(m) or m in ("count", TIME_COLUMN, "customer_id"):
            problems.append(f"{where}.measures.{m}: name measures in snake_case (a-z, 0-9, _; "
                            "not count, occurred_at or customer_id)")
    return problems


def build_event(spec: MappingSpec, name: str, source_dir: Path) -> pd.DataFrame:
    """The staged text of one event table: customer_id, occurred_at, one column per measure."""
    ev, where = spec.events[name], f"events.{name}"
    path = file_path(spec, source_dir, ev.file)
    header = read_columns(path)
    key = spec.files[ev.file].key
    wanted = {f"files.{ev.file}.key": key, f"{where}.timestamp.column": ev.timestamp.column}
    wanted |= {f"{where}.measures.{m}.column": ms.column for m, ms in ev.measures.items()}
    for mapping_key, column in wanted.items():
        if column not in header:
            raise MappingError(f"{mapping_key}: column {column!r} not in {path}")
    text = read_text(path, list(dict.fromkeys(wanted.values())))
    stamps = text[ev.timestamp.column]
    if ev.timestamp.date_format is not None:
        stamps = formatted_dates(stamps, ev.timestamp.date_format, ISO_STAMP)
    out = {"customer_id": text[key], TIME_COLUMN: stamps}
    out |= {m: text[ms.column] for m, ms in ev.measures.items()}
    return pd.DataFrame(out)


def event_schema(spec: MappingSpec) -> dict:
    """Labels and source columns of the event tables (the schema file)."""
    return {"events": {n: {"label": ev.label or n.replace("_", " ").capitalize(),
                           "measures": {m: {"label": ms.label, "column": ms.column}
                                        for m, ms in ev.measures.items()}}
                       for n, ev in spec.events.items()}}


def write_events(spec: MappingSpec, frames: dict[str, pd.DataFrame], staging_dir: Path) -> None:
    """Write the staged event tables and their schema file (none: the folder is removed)."""
    folder = Path(staging_dir) / EVENT_DIR
    shutil.rmtree(folder, ignore_errors=True)
    if not frames:
        return
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / EVENT_SCHEMA_FILE).write_text(json.dumps(event_schema(spec), indent=2) + "\n")
