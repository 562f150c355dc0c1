"""Incremental ingest: validate only the rows appended to the event exports since last time.

The built-in world (and any export written the same way) adds a month to each event table
as new Parquet row groups after the old ones, unchanged, and replaces the customer snapshot
whole. Every ingest leaves a manifest beside the clean tables (``ingest_manifest.json``): a
digest of the code and the ingest settings, the export's end, and per Parquet source its row
groups, rows, schema and a SHA-256 of the file's bytes up to the end of its last row group.

The next ingest (given the previous outputs) hashes the same byte range of each new file:
the compressed pages of the earlier row groups. Equal bytes under an equal schema decode to
equal rows, so this is safe; it reads no page twice and decodes nothing, so it is cheap
(about the cost of reading the files once). A value rewritten in place, a re-encoded or
reordered file, a CSV source, other settings or code: a full rebuild, with the reason logged.

When the earlier rows are unchanged, only the appended row groups of the event tables
(``APPENDED``) are validated, on the same code path; the earlier clean and quarantined rows
are copied before them. This is exact because an earlier row's outcome depends on nothing
else but: the clean customers (checked to be a superset of the earlier ones, and no earlier
"unknown customer" row's customer known now), the export's end (checked not to move back,
and no earlier row quarantined for lying after it) and the earlier rows' claimed keys (the
new rows' duplicate check sees them). The customer snapshot, the tables whose identities are
resolved against it (complaints, survey responses: matches, invitation links and duplicate
responses can change for earlier rows) and the company's own attribute and event tables are
ingested whole every time. Design: docs/features.md#incremental-ingest
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.settings import IngestParams
from features.ingest.coerce import to_str
from features.ingest.io import Source, read_source
from features.ingest.known import KnownCustomers
from features.ingest.quarantine import REASON_COLUMN

log = logging.getLogger(__name__)
MANIFEST = "ingest_manifest.json"
#: event tables whose new rows are validated alone (the others: whole every time)
APPENDED = ("billing_invoices", "product_usage", "support_tickets", "orders",
            "survey_invitations", "interventions")
UNKNOWN_CUSTOMER = "customer_id: unknown customer"
AFTER_EXPORT = "after the export date"
_CODE_DIR = Path(__file__).resolve().parent


def code_digest() -> str:
    """The ingest's own source and the readers' versions: other code may judge rows otherwise."""
    h = hashlib.sha256(f"{version('pandas')} {version('pyarrow')}".encode())
    for path in sorted(_CODE_DIR.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def params_digest(params: IngestParams) -> str:
    return hashlib.sha256(params.model_dump_json().encode()).hexdigest()


def _group_end(meta: pq.FileMetaData, groups: int) -> int:
    """Byte offset just past the pages of the first ``groups`` row groups (4: the magic)."""
    end = 4
    for i in range(groups):
        rg = meta.row_group(i)
        for j in range(rg.num_columns):
            col = rg.column(j)
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            end = max(end, start + col.total_compressed_size)
    return end


def _hashes(path: Path, ends: list[int]) -> list[str]:
    """SHA-256 of the bytes ``[0, end)`` for each of the ascending ``ends``, in one pass."""
    h, out, done = hashlib.sha256(), [], 0
    with open(path, "rb") as fh:
        for end in ends:
            while done < end:
                chunk = fh.read(min(1 << 22, end - done))
                if not chunk:
                    break
                h.update(chunk)
                done += len(chunk)
            out.append(h.copy().hexdigest())
    return out


def _schema_digest(schema: pa.Schema) -> str:
    return hashlib.sha256(schema.serialize().to_pybytes()).hexdigest()


def describe(source: Source, earlier_groups: int | None = None) -> tuple[dict, str | None]:
    """The manifest entry of a Parquet source (all its row groups), and the digest of its
    first ``earlier_groups`` row groups (None unless asked)."""
    meta = pq.ParquetFile(source.path).metadata
    groups = meta.num_row_groups
    ends = [_group_end(meta, groups)]
    if earlier_groups is not None and earlier_groups <= groups:
        ends.insert(0, _group_end(meta, earlier_groups))
    digests = _hashes(source.path, ends)
    entry = {"format": "parquet", "row_groups": groups, "rows": meta.num_rows,
             "rows_by_group": [meta.row_group(i).num_rows for i in range(groups)],
             "schema": _schema_digest(meta.schema.to_arrow_schema()), "digest": digests[-1]}
    return entry, (digests[0] if len(digests) == 2 else None)


@dataclass
class Earlier:
    """The rows of one table the previous ingest validated: its first ``row_groups``."""

    row_groups: int
    rows: int


@dataclass
class Plan:
    """What an incremental ingest takes from the previous outputs; ``reason``: why it takes
    nothing (a full rebuild), None when it appends."""

    clean: Path | None
    quarantine: Path | None
    until: str | None = None
    reason: str | None = None
    earlier: dict[str, Earlier] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)   # this run's manifest entries

    @property
    def appends(self) -> bool:
        return self.reason is None


def read_manifest(clean_dir: Path) -> dict | None:
    path = Path(clean_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _rows(path: Path) -> int | None:
    return pq.ParquetFile(path).metadata.num_rows if path.is_file() else None


def _table_problem(table: str, source: Source, old: dict | None, plan: Plan) -> str | None:
    """Why the earlier rows of ``table`` cannot be reused (None: they can)."""
    if source.format != "parquet":
        return f"{table} is not a Parquet export"
    entry, earlier = describe(source, old["row_groups"] if old else None)
    plan.entries[table] = entry
    if old is None or old.get("format") != "parquet":
        return f"{table} has no earlier Parquet rows on record"
    if (entry["schema"] != old["schema"] or earlier != old["digest"]
            or entry["rows_by_group"][:old["row_groups"]] != old["rows_by_group"]):
        return f"{table}: earlier rows changed"
    kept, dropped = (_rows(plan.clean / f"{table}.parquet"),
                     _rows(plan.quarantine / f"{table}.parquet"))
    if kept is None or dropped is None or kept + dropped != old["rows"]:
        return f"{table}: the previous clean and quarantine tables do not match the manifest"
    plan.earlier[table] = Earlier(old["row_groups"], old["rows"])
    return None


def plan_append(previous: tuple[Path, Path] | None, sources: dict[str, Source],
                params: IngestParams) -> Plan:
    """The reusable part of the previous ingest (``reason`` set: none, a full rebuild)."""
    old = read_manifest(previous[0]) if previous is not None else None
    if old is None:
        return Plan(None, None, reason="no previous ingest manifest")
    plan = Plan(Path(previous[0]), Path(previous[1]), old.get("until"))
    plan.reason = (("the ingest code changed" if old.get("code") != code_digest() else None)
                   or ("the ingest settings changed"
                       if old.get("params") != params_digest(params) else None))
    for table in (t for t in APPENDED if t in sources):
        plan.reason = plan.reason or _table_problem(table, sources[table],
                                                    old["tables"].get(table), plan)
    if plan.reason is None and set(old["tables"]) != set(sources) & set(APPENDED):
        plan.reason = "the exported event tables changed"
    return plan


def confirm(plan: Plan, until: pd.Timestamp, customers: KnownCustomers) -> str | None:
    """Once the customers are ingested: why the earlier rows might now be judged otherwise.
    The earlier customers are read a block at a time."""
    if plan.until is None or until < pd.Timestamp(plan.until):
        return "the export's end moved back"
    earlier = pq.ParquetFile(plan.clean / "crm_customers.parquet")
    for batch in earlier.iter_batches(columns=["customer_id"]):
        if not customers.contains(to_str(batch.column(0).to_pandas())).all():
            return "customers left the clean customer table"
    for table in plan.earlier:
        dropped = pd.read_parquet(plan.quarantine / f"{table}.parquet")
        reasons = dropped[REASON_COLUMN].astype(str)
        if reasons.str.contains(AFTER_EXPORT, regex=False).any():
            return f"{table}: earlier rows were quarantined as after the export date"
        unknown = reasons.str.contains(UNKNOWN_CUSTOMER, regex=False)
        if unknown.any() and customers.contains(to_str(dropped.loc[unknown, "customer_id"])).any():
            return f"{table}: a customer of an earlier quarantined row is known now"
    return None


def new_rows(source: Source, earlier: Earlier) -> pd.DataFrame:
    """The rows of the row groups after the earlier ones (read as :func:`read_source` reads)."""
    return read_source(source, first_group=earlier.row_groups)


def earlier_table(plan: Plan, folder: str, table: str) -> pa.Table:
    return pq.read_table((plan.clean if folder == "clean" else plan.quarantine)
                         / f"{table}.parquet")


def append_rows(earlier: pa.Table, new: pa.Table) -> pa.Table:
    """The earlier rows then the new ones, typed as a whole rebuild would type them."""
    if earlier.num_rows == 0:
        return new
    if new.num_rows == 0:
        return earlier
    return pa.concat_tables([earlier, new.cast(earlier.schema)])


def manifest(plan: Plan, sources: dict[str, Source], params: IngestParams,
             until: pd.Timestamp | None, validated: dict[str, int]) -> dict:
    """What the next ingest checks; ``rows_validated``: rows this run read and validated."""
    entries = {}
    for table, source in sources.items():
        if table in APPENDED:
            entries[table] = plan.entries.get(table) or (
                describe(source)[0] if source.format == "parquet" else {"format": source.format})
    return {"code": code_digest(), "params": params_digest(params),
            "until": None if until is None else until.isoformat(),
            "mode": "incremental" if plan.appends else "full",
            "full_rebuild_reason": plan.reason, "tables": entries, "rows_validated": validated}


def write_manifest(clean_dir: Path, content: dict) -> None:
    (Path(clean_dir) / MANIFEST).write_text(json.dumps(content, indent=1) + "\n")
