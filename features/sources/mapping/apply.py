"""Apply a mapping: read the source files, write each mapped contract table as
``<staging>/<table>.csv``, which the normal ``cem ingest`` then validates.

Only mapped contract columns are written (an unmapped optional column is left out and read
as empty by ingest); a contract table the mapping does not name is not written (ingest
reports it missing). The ``attributes:`` are staged as ``customer_attributes`` (:mod:`.attributes`),
the ``events:`` as ``events/<name>.csv`` (:mod:`.events`).
Staged files of an earlier run are removed first.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.ingest.attributes import ATTRIBUTE_TABLE, schema_path
from features.ingest.schemas import SCHEMAS, column_kind
from features.sources.mapping.attributes import build_attributes, write_attributes
from features.sources.mapping.events import build_event, write_events
from features.sources.mapping.load import load_mapping
from features.sources.mapping.read import TableSources, read_table_sources
from features.sources.mapping.spec import ExportColumn, MappingError, MappingSpec, TableSpec
from features.sources.mapping.values import column_text, export_dates

EXPORT_KEY = "observed_until"


def stage_mapping(mapping: Path, source_dir: Path, staging_dir: Path) -> dict[str, int]:
    """Load the mapping file and stage the export; errors name the mapping file first."""
    spec = load_mapping(mapping)
    try:
        return stage_tables(spec, source_dir, staging_dir)
    except MappingError as exc:
        raise MappingError(f"{mapping}: {exc}") from exc


def stage_tables(spec: MappingSpec, source_dir: Path, staging_dir: Path) -> dict[str, int]:
    """Write every mapped table into ``staging_dir``; rows written per table."""
    tables = {table: build_table(spec, table, ts, Path(source_dir))
              for table, ts in spec.tables.items()}   # all read before anything is written
    attributes = build_attributes(spec, Path(source_dir)) if spec.attributes else None
    events = {name: build_event(spec, name, Path(source_dir)) for name in spec.events}
    staging_dir = Path(staging_dir)
    staging_dir.mkdir(parents=True, exist_ok=True)
    for table in (*SCHEMAS, ATTRIBUTE_TABLE):
        for ext in ("csv", "parquet"):
            (staging_dir / f"{table}.{ext}").unlink(missing_ok=True)
    schema_path(staging_dir).unlink(missing_ok=True)
    for table, frame in tables.items():
        frame.to_csv(staging_dir / f"{table}.csv", index=False)
    rows = {table: len(frame) for table, frame in tables.items()}
    if attributes is not None:
        write_attributes(spec, attributes, staging_dir)
        rows[ATTRIBUTE_TABLE] = len(attributes)
    write_events(spec, events, staging_dir)
    rows |= {f"events/{name}": len(frame) for name, frame in events.items()}
    return rows


def _wanted(spec: MappingSpec, table: str, ts: TableSpec) -> dict[str, tuple[str, str | None]]:
    """Mapping key -> (source column, file or None) for every column the table reads."""
    wanted = {f"tables.{table}.columns.{col}": (cs.source_column, cs.file)
              for col, cs in ts.columns.items() if cs.source_column}
    derived = any(cs.months_before_export or cs.export_date for cs in ts.columns.values())
    derived = derived or table == "crm_customers"      # the export date is written there too
    if derived and isinstance(spec.observed_until, ExportColumn):
        wanted[f"{EXPORT_KEY}.column"] = (spec.observed_until.column, None)
    return wanted


def build_table(spec: MappingSpec, table: str, ts: TableSpec, source_dir: Path) -> pd.DataFrame:
    """The staged text of one contract table, contract columns in contract order."""
    wanted = _wanted(spec, table, ts)
    src = read_table_sources(spec, source_dir, ts, wanted)
    export = _export(spec, src, wanted)
    schema = SCHEMAS[table]
    out = {}
    for col in (c for c in schema.columns if c in ts.columns):
        cs, where = ts.columns[col], f"tables.{table}.columns.{col}"
        source, origin = src.of(where) if cs.source_column else (None, "")
        out[col] = column_text(cs, column_kind(schema, col), source, export, src.rows,
                               where, origin).to_numpy()
    if table == "crm_customers" and export is not None and EXPORT_KEY not in ts.columns:
        # what the customer's status was observed at: the end of its observation window
        out[EXPORT_KEY] = export.dt.strftime("%Y-%m-%d").fillna("").to_numpy()
    return pd.DataFrame(out, index=range(src.rows))


def _export(spec: MappingSpec, src: TableSources, wanted: dict) -> pd.Series | None:
    observed = spec.observed_until
    if observed is None:
        return None
    if not isinstance(observed, ExportColumn):
        return export_dates(observed, None, None, src.rows, EXPORT_KEY)
    if f"{EXPORT_KEY}.column" not in wanted:
        return None
    column, origin = src.of(f"{EXPORT_KEY}.column")
    return export_dates(observed, column, observed.date_format, src.rows,
                        f"{EXPORT_KEY}.column ({origin})")
