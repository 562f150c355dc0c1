"""The company's attribute table and event tables per partition of ``customer_id``.

Their rules are per row but for one: an attribute row whose customer appears more than once
is quarantined. Every copy of a customer id hashes to one partition (``read_partition``), so
that rule stays exact. Each partition task validates its rows with the in-process functions
(``typed_attributes``, ``typed_events``) against the clean customers and writes its part
files; one task per table merges them a row group at a time (:mod:`.merge`), so the files
are the in-process files and no task holds a whole table. A Parquet table storing the
customer id (or a categorical attribute) as floats is validated whole on one worker, as the
contract tables are ingested in-process then: ``to_str`` of floats depends on the whole column.
Design: docs/cluster.md#ingest-on-the-cluster
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.ingest.attributes import (
    ATTRIBUTE_TABLE,
    AttributeSource,
    ingest_attributes,
    remove_attributes,
    schema_path,
    typed_attributes,
)
from features.ingest.event_tables import (
    TIME_COLUMN,
    EventSources,
    ingest_event_table,
    typed_events,
)
from features.ingest.io import Source
from features.ingest.quarantine import quarantine_frame
from features.ingest.reasons import Reasons
from features.ingest.report import TableReport
from features.transforms.schema import EVENT_DIR, EVENT_SCHEMA_FILE

from .known import BucketedCustomers
from .merge import merge_parts
from .parts import part_dir, read_partition, save_outputs, submit_split, whole_nulls


@dataclass(frozen=True)
class SideJob:
    """One partition of an attribute or event table."""

    table: str                   # its name in the report: customer_attributes, events/<name>
    source: Source
    spec: dict                   # the attribute schema, or the event table's measures
    index: int
    count: int
    clean_dir: Path
    nulls: tuple[str, ...]
    split: tuple[Path, int] | None = None    # parts.split_source's folder and piece count

    @property
    def folder(self) -> Path:
        return part_dir(self.clean_dir, self.table)


def text_as_floats(source: Source, columns: list[str]) -> bool:
    """Whether a Parquet source stores any of ``columns`` (read as text) as floats."""
    if source.format != "parquet":
        return False
    schema = pq.read_schema(source.path)
    return any(pa.types.is_floating(schema.field(c).type) for c in columns if c in schema.names)


def validate_side(job: SideJob, *_after) -> dict[str, int]:
    """The partition's rows validated as in-process, written as part files (``_after``:
    the ``split_source`` tasks it reads)."""
    raw, rows = read_partition(job.source, "customer_id", job.index, job.count, list(job.nulls),
                               split=job.split)
    reasons = Reasons(len(raw))
    customers = BucketedCustomers(job.clean_dir, job.count, own=job.index)   # split by customer
    typed = (typed_attributes(raw, job.spec, customers, reasons) if job.table == ATTRIBUTE_TABLE
             else typed_events(raw, job.spec, customers, reasons))
    clean = typed.loc[~reasons.failed].reset_index(drop=True)
    return save_outputs(job.folder, job.index, clean, quarantine_frame(raw, reasons), rows,
                        reasons.failed)


def merge_side(job: SideJob, clean_path: Path, quarantine_path: Path, *parts: dict) -> TableReport:
    """The table's parts merged into its clean and quarantine files; its report."""
    kept, _ = merge_parts([job.folder / f"clean_{i:05d}" for i in range(job.count)], clean_path)
    quarantined, reasons = merge_parts([job.folder / f"quarantine_{i:05d}" for i in range(job.count)],
                                       quarantine_path, reasons=True)
    known = {"customer_id", *job.spec} | ({TIME_COLUMN} if job.table != ATTRIBUTE_TABLE else set())
    return TableReport(table=job.table, source=str(job.source.path),
                       rows_in=sum(p["rows_in"] for p in parts), rows_kept=kept,
                       rows_quarantined=quarantined, reasons=reasons,
                       extra_columns=[c for c in job.source.columns if c not in known])


def _submit(client, table: str, source: Source, spec: dict, count: int, clean_dir: Path,
            clean_path: Path, quarantine_path: Path):
    nulls = tuple(client.submit(whole_nulls, source, pure=False).result())
    split, tasks = submit_split(client, source, "customer_id", count, part_dir(clean_dir, table))
    jobs = [SideJob(table, source, spec, i, count, clean_dir, nulls, split) for i in range(count)]
    parts = [client.submit(validate_side, j, *tasks, pure=False) for j in jobs]
    return client.submit(merge_side, jobs[0], clean_path, quarantine_path, *parts, pure=False)


def submit_side_tables(client, attributes: AttributeSource | None, events: EventSources | None,
                       clean_dir: Path, quarantine_dir: Path, count: int) -> list:
    """Futures of the attribute and event tables' reports, once the clean CRM is written.
    Event tables of an earlier run are removed first, as ``ingest_events`` does."""
    clean_dir, quarantine_dir = Path(clean_dir), Path(quarantine_dir)
    futures = []
    if attributes is None:
        remove_attributes(clean_dir, quarantine_dir)
    elif text_as_floats(attributes.source, ["customer_id", *(
            n for n, a in attributes.schema.items() if a["kind"] == "categorical")]):
        futures.append(client.submit(_whole_attributes, attributes, clean_dir, quarantine_dir,
                                     count, pure=False))
    else:
        futures.append(_submit(client, ATTRIBUTE_TABLE, attributes.source, attributes.schema,
                               count, clean_dir, clean_dir / f"{ATTRIBUTE_TABLE}.parquet",
                               quarantine_dir / f"{ATTRIBUTE_TABLE}.parquet"))
        shutil.copyfile(schema_path(attributes.source.path.parent), schema_path(clean_dir))
    for folder in (clean_dir, quarantine_dir):
        shutil.rmtree(folder / EVENT_DIR, ignore_errors=True)
    if events is None:
        return futures
    for folder in (clean_dir, quarantine_dir):
        (folder / EVENT_DIR).mkdir(parents=True, exist_ok=True)
    for name, source in events.sources.items():
        measures = events.schema[name].get("measures", {})
        clean_path = clean_dir / EVENT_DIR / f"{name}.parquet"
        quarantine_path = quarantine_dir / EVENT_DIR / f"{name}.parquet"
        if text_as_floats(source, ["customer_id", TIME_COLUMN]):
            futures.append(client.submit(_whole_events, name, source, measures, clean_dir,
                                         quarantine_dir, count, pure=False))
        else:
            futures.append(_submit(client, source.table, source, measures, count, clean_dir,
                                   clean_path, quarantine_path))
    shutil.copyfile(Path(next(iter(events.sources.values())).path).parent / EVENT_SCHEMA_FILE,
                    clean_dir / EVENT_DIR / EVENT_SCHEMA_FILE)
    return futures


def _whole_attributes(attributes: AttributeSource, clean_dir: Path, quarantine_dir: Path,
                      count: int) -> TableReport:
    return ingest_attributes(attributes, BucketedCustomers(clean_dir, count), clean_dir,
                             quarantine_dir)


def _whole_events(name: str, source: Source, measures: dict, clean_dir: Path,
                  quarantine_dir: Path, count: int) -> TableReport:
    return ingest_event_table(name, source, measures, BucketedCustomers(clean_dir, count),
                              clean_dir, quarantine_dir)
