"""One partition of one table on a worker: the in-process validation of its rows.

Every table is validated by ``validate_rows`` with the in-process schema
(``run.contract_schema``), the export's end (``until``, from the whole CRM) and the clean
customers (a bucket at a time, :mod:`.known`: the CRM's partitions write the buckets). A table
without identifiers is then done: its clean and quarantined rows go to part files. Complaints
and survey responses keep their validated rows (``pending``) and send the identifiers of the
rows that passed to the identifier buckets (:mod:`.resolve`); ``finish_part`` adds what came
back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ingest import identity as idn
from features.ingest.io import _ARROW_STRINGS, Source
from features.ingest.quarantine import clean_frame, quarantine_frame
from features.ingest.requirements import complete_columns
from features.ingest.run import _text, contract_schema
from features.ingest.schemas import SCHEMAS, clean_schema, primary_key
from features.ingest.validate import validate_rows

from .known import BucketedCustomers, write_known
from .parts import in_partition, load, read_partition, save, save_outputs

CRM = "crm_customers"
#: tables resolved by an identifier: (identifier column, its kind per row, kind column)
IDENTIFIED = {"complaints": ("contact", "contact_type", idn.COMPLAINT_KINDS),
              "survey_responses": ("respondent", "channel", idn.RESPONSE_KINDS)}
#: what a response carries to its customer's bucket (``run.link_responses`` reads these)
LINK_COLUMNS = ["survey_id", "responded_at", "response_id"]


@dataclass(frozen=True)
class PartJob:
    """One partition of one table, and what the client decided for the whole export."""

    source: Source
    key: str
    index: int
    count: int
    folder: Path                 # the table's part folder
    clean_dir: Path
    until: pd.Timestamp
    nulls: tuple[str, ...]       # parts.whole_nulls
    phone_digits: int
    first_group: int = 0         # an incremental ingest: the appended row groups only,
    first_row: int = 0           # whose first row is this row of the file,
    earlier: Path | None = None  # after the clean rows of the table in this folder
    split: tuple[Path, int] | None = None   # parts.split_source's folder and piece count

    @property
    def table(self) -> str:
        return self.source.table


def earlier_keys(job: PartJob) -> pa.Table | None:
    """The keys the partition's earlier clean rows claimed (an incremental ingest), for the
    duplicate-key rule: a key's every occurrence hashes to one partition, earlier or new."""
    if job.earlier is None:
        return None
    keys = pq.read_table(Path(job.earlier) / f"{job.table}.parquet",
                         columns=primary_key(SCHEMAS[job.table]))
    first = keys.column(job.key).to_pandas(types_mapper=_ARROW_STRINGS.get)
    return keys.filter(pa.array(in_partition(first, job.index, job.count)))


def validate_part(job: PartJob, *_after) -> dict[str, int]:
    """Validate the partition's rows; write its parts (or its pending rows and lookups).
    ``_after``: the ``split_source`` tasks it reads."""
    raw, rows = read_partition(job.source, job.key, job.index, job.count, list(job.nulls),
                               job.first_group, job.first_row, job.split)
    known = (None if job.table == CRM else BucketedCustomers(
        job.clean_dir, job.count, job.index if job.key == "customer_id" else None))
    schema = contract_schema(job.table, job.source.columns, known)
    typed, reasons = validate_rows(complete_columns(raw, job.table), schema, job.until,
                                   earlier_keys(job))
    if job.table not in IDENTIFIED:
        clean = clean_frame(typed, reasons, clean_schema(job.table))
        if job.table == CRM:
            write_known(job.clean_dir, job.index, job.count, clean["customer_id"])
        return save_outputs(job.folder, job.index, clean, quarantine_frame(raw, reasons), rows,
                            reasons.failed)
    save((raw, typed, reasons, rows), job.folder / f"pending_{job.index:05d}.pkl")
    send_lookups(job, typed.loc[~reasons.failed], rows[~reasons.failed])
    return {"rows_in": len(rows)}


def send_lookups(job: PartJob, passed: pd.DataFrame, rows: np.ndarray) -> None:
    """The normalised identifier and kind of each row that passed, to its identifier bucket
    (a response also carries what its customer's bucket needs to link it)."""
    column, kind_column, kinds = IDENTIFIED[job.table]
    kind = passed[kind_column].map(kinds).astype(object)
    key = pd.Series(None, index=passed.index, dtype=object)
    for name in pd.unique(kind.dropna()):
        mask = (kind == name).to_numpy(dtype=bool)
        key[mask] = idn.normalise_kind(passed[column][mask], name, job.phone_digits).astype(object)
    key = key.where(key.notna(), None)
    lookups = pd.DataFrame({"kind": kind.to_numpy(), "key": key.to_numpy()}, index=pd.Index(rows))
    if job.table == "survey_responses":
        lookups = pd.concat([lookups, passed[LINK_COLUMNS].set_axis(lookups.index)], axis=1)
    lookups["_part"] = job.index
    buckets = idn.identifier_bucket(lookups["key"], job.count)
    for j in range(job.count):
        save(lookups.loc[buckets == j], job.folder / f"lookup_{job.index:05d}_{j:05d}.pkl")


def _gather(paths: list[Path], rows: np.ndarray) -> pd.DataFrame:
    """Frames indexed by source row, re-indexed by the partition's positions."""
    frames = [f for f in (load(p) for p in paths) if len(f)]
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames) if len(frames) > 1 else frames[0]
    return out.set_axis(pd.Index(np.searchsorted(rows, out.index.to_numpy()))).sort_index()


def finish_part(job: PartJob, *_after) -> dict[str, int]:
    """The partition's rows with what their identifier and customer buckets returned, as
    ``run.resolve_complaints`` / ``run.resolve_responses`` leave them; parts written."""
    raw, typed, reasons, rows = load(job.folder / f"pending_{job.index:05d}.pkl")
    column = IDENTIFIED[job.table][0]
    res = _gather([job.folder / f"resolved_{j:05d}_{job.index:05d}.pkl"
                   for j in range(job.count)], rows)
    if len(res):
        reasons.add_texts(idn.identity_reasons(res, column))
    ids = res["customer_id"] if len(res) else pd.Series([], dtype=object)
    if job.table == "complaints":
        typed = typed.assign(customer_id=_text(ids, typed.index))
    else:
        linked = _gather([job.folder / f"linked_{c:05d}_{job.index:05d}.pkl"
                          for c in range(job.count)], rows)
        texts = linked["text"].dropna() if len(linked) else pd.Series([], dtype=object)
        reasons.add_texts(texts)
        invitations = (linked["invitation_id"].dropna() if len(linked)
                       else pd.Series([], dtype=object))
        resolved = ids[res["status"] == idn.RESOLVED] if len(res) else ids
        typed = typed.assign(customer_id=_text(resolved, typed.index),
                             invitation_id=_text(invitations, typed.index))
    clean = clean_frame(typed, reasons, clean_schema(job.table))
    return save_outputs(job.folder, job.index, clean, quarantine_frame(raw, reasons), rows,
                        reasons.failed)
