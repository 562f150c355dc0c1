"""The client's side of ``ingest_on_cluster``: it reads headers and Parquet footers only.

Order: the export's end (one CRM column, on a worker) and each Parquet table's null columns;
the CRM per partition, merged (later tables read its clean customers); then every other
table side by side: validate per partition and merge, or, for complaints and responses,
validate, resolve per identifier bucket, link per customer bucket (responses, after the
invitations are merged), finish per partition and merge; the company's attribute and event
tables per partition too (:mod:`.side`). The report, the manifest and the absent tables are
written here as ``run_ingest`` writes them.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from configs.settings import IngestParams
from features.ingest import incremental as inc
from features.ingest.coerce import to_date
from features.ingest.io import _ARROW_STRINGS, Source
from features.ingest.quarantine import extra_columns
from features.ingest.report import IngestReport, TableReport
from features.ingest.run import (
    REPORT_FILE,
    _Context,
    locate_sources,
    log_plan,
    run_ingest,
    skip_table,
)
from features.ingest.schemas import SCHEMAS
from features.ingest.validate import export_end
from features.transforms.buckets import BUCKET_CUSTOMERS

from .known import BucketedCustomers
from .parts import (
    PARTS,
    batches,
    float_text_columns,
    merge_table,
    part_dir,
    partition_key,
    submit_split,
    whole_nulls,
)
from .resolve import (
    INVITATIONS,
    link_bucket,
    resolve_bucket,
    split_invitations,
    submit_identifier_split,
)
from .scope import ingest_on
from .side import submit_side_tables
from .tables import (
    CRM,
    IDENTIFIED,
    PartJob,
    finish_part,
    validate_part,
)

log = logging.getLogger(__name__)


def ingest_at(scheduler: str, source_dir: Path, clean_dir: Path, quarantine_dir: Path,
              params: IngestParams, on_table: Callable[[str], None] | None = None,
              previous: tuple[Path, Path] | None = None) -> IngestReport:
    """:func:`ingest_on_cluster` through a client of the scheduler at ``scheduler``."""
    from distributed import Client

    with Client(scheduler, timeout=10) as client:
        return ingest_on_cluster(client, source_dir, clean_dir, quarantine_dir, params, on_table,
                                 previous=previous)


def export_until(source: Source) -> pd.Timestamp:
    """``validate.export_end`` of the whole CRM, one column read a block at a time."""
    if "observed_until" not in source.columns:
        return export_end(None)
    latest = [to_date(b.column(0).to_pandas(types_mapper=_ARROW_STRINGS.get)).max()
              for b in batches(source, ["observed_until"])]
    return export_end(pd.Series(latest, dtype="datetime64[us]"))


def partitions(client, sources: dict[str, Source]) -> int:
    """One per worker, more when a worker's share of the CRM passes ``BUCKET_CUSTOMERS``
    (the feature build's rule; a CSV's rows are not counted before it is read)."""
    workers = len(client.scheduler_info()["workers"])
    crm = sources[CRM]
    rows = pq.ParquetFile(crm.path).metadata.num_rows if crm.format == "parquet" else 0
    return max(1, workers, math.ceil(rows / BUCKET_CUSTOMERS))


def ingest_on_cluster(client, source_dir: Path, clean_dir: Path, quarantine_dir: Path,
                      params: IngestParams, on_table: Callable[[str], None] | None = None,
                      buckets: int | None = None,
                      previous: tuple[Path, Path] | None = None) -> IngestReport:
    """``run_ingest`` per partition on the workers of ``client``: the same clean tables,
    quarantine, report and manifest. ``buckets``: partitions (default :func:`partitions`).
    ``previous``: the last ingest's clean and quarantine folders; when their earlier rows
    hold (``incremental.plan_append``, ``confirm``), an event table's partitions validate its
    appended row groups only and its merge writes the earlier rows first, as
    ``run.append_table`` does. An export whose text columns are stored as floats is
    ingested in-process (logged)."""
    clean_dir, quarantine_dir = Path(clean_dir), Path(quarantine_dir)
    sources, attributes, events = locate_sources(Path(source_dir), params)
    if floats := float_text_columns(sources):
        log.info("ingest: in-process, not on the cluster (text stored as floats: %s)",
                 ", ".join(floats))
        with ingest_on(None):          # run_ingest would send it back here
            return run_ingest(source_dir, clean_dir, quarantine_dir, params, on_table,
                              previous=previous)
    started, count = time.perf_counter(), buckets or partitions(client, sources)
    plan = inc.plan_append(previous, sources, params)
    (clean_dir / inc.MANIFEST).unlink(missing_ok=True)
    until = client.submit(export_until, sources[CRM], pure=False)
    nulls = dict(zip(sources, client.gather([client.submit(whole_nulls, s, pure=False)
                                             for s in sources.values()]), strict=True))
    new_nulls = dict(zip(plan.earlier, client.gather(
        [client.submit(whole_nulls, sources[t], e.row_groups, pure=False)
         for t, e in plan.earlier.items()]), strict=True))
    until = until.result()
    report = IngestReport()
    ctx = _Context(params=params, identity=report.identity, until=until)

    def appended(table: str) -> bool:
        return plan.appends and table in plan.earlier

    def jobs(table: str) -> tuple[list[PartJob], list]:
        """The partitions' jobs, and the tasks splitting the source that they read."""
        if appended(table):
            earlier = plan.earlier[table]
            extra = {"nulls": tuple(new_nulls[table]), "first_group": earlier.row_groups,
                     "first_row": earlier.rows, "earlier": plan.clean}
        else:
            extra = {"nulls": tuple(nulls[table])}
        key, folder = partition_key(table), part_dir(clean_dir, table)
        split, tasks = submit_split(client, sources[table], key, count, folder,
                                    extra.get("first_group", 0), extra.get("first_row", 0))
        return [PartJob(sources[table], key, i, count, folder, clean_dir, until,
                        phone_digits=params.phone_digits, split=split, **extra)
                for i in range(count)], tasks

    def heads(table: str) -> tuple[Path, Path] | None:
        return (plan.clean, plan.quarantine) if appended(table) else None

    for table in (t for t in SCHEMAS if t not in sources):   # before any task reads them
        skip_table(table, ctx, report, clean_dir, quarantine_dir)
    try:
        pending = {CRM: _submit_plain(client, *jobs(CRM), quarantine_dir)}
        crm_report = _table_report(sources[CRM], *client.gather(list(pending[CRM][:2])))
        identifiers = (submit_identifier_split(client, clean_dir, count, params.phone_digits,
                                               clean_dir / PARTS / "identifiers")
                       if any(t in sources for t in IDENTIFIED) else None)
        if plan.appends:
            plan.reason = client.submit(_confirm, plan, until, clean_dir, count,
                                        pure=False).result()
        for table in SCHEMAS:
            if table != CRM and table in sources:
                after = pending.get("survey_invitations", (None, None, None))[1]
                pending[table] = (_submit_identified(client, *jobs(table), quarantine_dir,
                                                     identifiers, after)
                                  if table in IDENTIFIED
                                  else _submit_plain(client, *jobs(table), quarantine_dir,
                                                     heads(table)))
        side = submit_side_tables(client, attributes, events, clean_dir, quarantine_dir, count)
        for table in SCHEMAS:
            if table == CRM:
                report.tables[table] = crm_report
            elif table in sources:
                parts, merged, counts = pending[table]
                before = plan.earlier[table].rows if appended(table) else 0
                report.tables[table] = _table_report(sources[table], before + parts.result(),
                                                     merged.result())
                if counts is not None:
                    _add_identity(report, client.gather(counts))
            if on_table is not None:
                on_table(table)
        for table_report in client.gather(side):
            report.tables[table_report.table] = table_report
    finally:
        shutil.rmtree(clean_dir / PARTS, ignore_errors=True)
    report.write_json(clean_dir / REPORT_FILE)
    validated = {t: report.tables[t].rows_in - (plan.earlier[t].rows if appended(t) else 0)
                 for t in SCHEMAS if t in sources}
    log_plan(plan, validated)
    inc.write_manifest(clean_dir, inc.manifest(plan, sources, params, until, validated))
    log.info("ingest on the cluster: %d partitions, %.1fs", count, time.perf_counter() - started)
    return report


def _confirm(plan: inc.Plan, until: pd.Timestamp, clean_dir: Path, count: int) -> str | None:
    """``incremental.confirm`` against the merged clean CRM, on a worker."""
    return inc.confirm(plan, until, BucketedCustomers(clean_dir, count))


def _submit_plain(client, jobs: list[PartJob], split: list, quarantine_dir: Path,
                  earlier: tuple[Path, Path] | None = None):
    """Validate every partition (once ``split`` has written its rows), then merge (after
    ``earlier``'s rows of the table, an incremental ingest): (rows in, merged, no identity
    counts)."""
    parts = [client.submit(validate_part, j, *split, pure=False) for j in jobs]
    job = jobs[0]
    merged = client.submit(merge_table, job.clean_dir, quarantine_dir, job.table, job.count,
                           *parts, earlier=earlier, pure=False)
    return client.submit(_rows_in, *parts, pure=False), merged, None


def _submit_identified(client, jobs: list[PartJob], split: list, quarantine_dir: Path,
                       identifiers: tuple, invitations=None):
    """Validate (once ``split`` has written the rows), resolve per identifier bucket (the
    CRM's ``identifiers``: their split and its tasks), link per customer bucket (responses,
    once ``invitations`` are merged), finish per partition, merge: (rows in, merged,
    counts)."""
    job, count = jobs[0], jobs[0].count
    parts = [client.submit(validate_part, j, *split, pure=False) for j in jobs]
    link = job.table == "survey_responses"
    counts = [client.submit(resolve_bucket, job.folder, job.clean_dir, j, count,
                            job.phone_digits, link, identifiers[0], *parts, *identifiers[1],
                            pure=False) for j in range(count)]
    before = counts
    if link:
        pieces = None
        if invitations is not None:          # the export has invitations: split once merged
            pieces = client.submit(split_invitations, job.clean_dir, count,
                                   job.folder / INVITATIONS, invitations, pure=False)
        before = [client.submit(link_bucket, job.folder, job.clean_dir, c, count, pieces,
                                *counts, pure=False) for c in range(count)]
    done = [client.submit(finish_part, j, *before, pure=False) for j in jobs]
    merged = client.submit(merge_table, job.clean_dir, quarantine_dir, job.table, count, *done,
                           pure=False)
    return client.submit(_rows_in, *parts, pure=False), merged, counts


def _rows_in(*parts: dict) -> int:
    return sum(p["rows_in"] for p in parts)


def _table_report(source: Source, rows_in: int, merged: dict) -> TableReport:
    return TableReport(table=source.table, source=str(source.path), rows_in=rows_in,
                       rows_kept=merged["kept"], rows_quarantined=merged["quarantined"],
                       reasons=merged["reasons"],
                       extra_columns=extra_columns(pd.DataFrame(columns=list(source.columns)),
                                                   SCHEMAS[source.table]))


def _add_identity(report: IngestReport, counts: list[dict[str, tuple[int, int]]]) -> None:
    """The identifier buckets' counts per kind, added as ``run._resolve`` adds a table's."""
    kinds = sorted({k for c in counts for k in c})
    for kind in kinds:
        report.identity.add(kind, sum(c.get(kind, (0, 0))[0] for c in counts),
                            sum(c.get(kind, (0, 0))[1] for c in counts))
