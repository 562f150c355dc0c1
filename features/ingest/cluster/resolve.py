"""Identity resolution per identifier bucket, invitation linking per customer bucket.

An identifier's bucket is a hash of its normalised text (``identity.identifier_bucket``).
Bucket ``j`` builds the identifier index (``identity.build_identifier_index``) from the
clean customers' identifiers that hash to ``j``: every customer sharing an identifier is
there, so its count of owners, hence unknown / resolved / ambiguous, is the in-process one.
The complaints and responses whose identifier hashes to ``j`` are resolved against it.
A resolved response then goes to its customer's bucket (``transforms.buckets.bucket_of``),
where that customer's invitations and every response resolved to them are: the latest
invitation and the one-response-per-invitation rule (``run.link_responses``) are exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import bucketed
from features.ingest import identity as idn
from features.ingest.io import _ARROW_STRINGS
from features.ingest.requirements import empty_clean
from features.ingest.run import INVITATION_COLUMNS, link_responses
from features.transforms.buckets import bucket_of

from .parts import BATCH_ROWS, load, save

CRM = "crm_customers"
INVITATIONS = "invitations"      # the invitations' split, in the responses' part folder


def split_identifiers(clean_dir: Path, count: int, phone_digits: int, folder: Path,
                      piece: int, span: tuple[int, int, int]) -> int:
    """One piece of the clean CRM's identifiers, normalised once and written to their
    identifier bucket: a row per customer and identifier (``customer_id``, ``kind``,
    ``key``, the customer's CRM row ``crm_row``). Every bucket, for complaints and for
    responses, then reads its own identifiers instead of normalising the whole CRM. On a
    worker; identifiers written."""
    columns = ["customer_id", *idn.KIND_COLUMNS.values()]
    file = pq.ParquetFile(Path(clean_dir) / f"{CRM}.parquet")
    schema = pa.schema([("customer_id", pa.string()), ("kind", pa.string()),
                        ("key", pa.string()), ("crm_row", pa.int64())])

    def identifiers():
        offset = span[2]
        for batch in file.iter_batches(columns=columns, batch_size=BATCH_ROWS,
                                       row_groups=range(span[0], span[1])):
            frame = batch.to_pandas(types_mapper=_ARROW_STRINGS.get)
            rows = np.arange(offset, offset + len(frame))
            offset += len(frame)
            for kind, column in idn.KIND_COLUMNS.items():
                keys = idn.normalise_kind(frame[column], kind, phone_digits)
                present = keys.notna().to_numpy(dtype=bool)
                yield pa.RecordBatch.from_arrays([
                    pa.array(frame["customer_id"].to_numpy(dtype=object)[present], pa.string()),
                    pa.array(np.full(int(present.sum()), kind, dtype=object), pa.string()),
                    pa.array(keys.to_numpy(dtype=object)[present], pa.string()),
                    pa.array(rows[present], pa.int64())], schema=schema)

    def where(batch: pa.RecordBatch) -> np.ndarray:
        return idn.identifier_bucket(batch.column("key").to_pandas(), count)

    return bucketed.write_buckets(identifiers(), schema, where, count, folder, piece, 0)


def split_index(folder: Path, pieces: int, index: int) -> pd.DataFrame:
    """Bucket ``index``'s customers as ``bucket_index`` streams them: one row per customer
    with an identifier in the bucket (CRM order), identifiers of other buckets blank."""
    long = bucketed.read_bucket(folder, index, pieces).to_pandas(types_mapper=_ARROW_STRINGS.get)
    rows, at = np.unique(long["crm_row"].to_numpy(), return_inverse=True)
    first = np.unique(at, return_index=True)[1]
    wide = pd.DataFrame({"customer_id": long["customer_id"].to_numpy(dtype=object)[first]})
    for kind, column in idn.KIND_COLUMNS.items():
        values = np.full(len(rows), None, dtype=object)
        mine = (long["kind"] == kind).to_numpy(dtype=bool)
        values[at[mine]] = long["key"].to_numpy(dtype=object)[mine]
        wide[column] = values
    return wide


def submit_identifier_split(client, clean_dir: Path, count: int, phone_digits: int,
                            folder: Path) -> tuple[tuple[Path, int], list]:
    """``split_identifiers`` of every piece of the clean CRM on the workers: the split
    (folder, pieces) and its tasks."""
    spans = bucketed.task_pieces(Path(clean_dir) / f"{CRM}.parquet")
    tasks = [client.submit(split_identifiers, clean_dir, count, phone_digits, folder, i, span,
                           pure=False) for i, span in enumerate(spans)]
    return (Path(folder), len(spans)), tasks


def bucket_index(clean_dir: Path, index: int, count: int, phone_digits: int,
                 split: tuple[Path, int] | None = None) -> dict[str, pd.DataFrame]:
    """The identifier index of the identifiers hashing to ``index``, from ``split``'s files
    or the clean CRM streamed a row group at a time (identifiers of other buckets blanked)."""
    if split is not None:
        return idn.build_identifier_index(split_index(split[0], split[1], index), phone_digits)
    columns = ["customer_id", *idn.KIND_COLUMNS.values()]
    parts = []
    file = pq.ParquetFile(Path(clean_dir) / f"{CRM}.parquet")
    for batch in file.iter_batches(columns=columns, batch_size=BATCH_ROWS):
        frame = batch.to_pandas(types_mapper=_ARROW_STRINGS.get)
        keep = np.zeros(len(frame), dtype=bool)
        for kind, column in idn.KIND_COLUMNS.items():
            keys = idn.normalise_kind(frame[column], kind, phone_digits)
            mine = (idn.identifier_bucket(keys, count) == index) & keys.notna().to_numpy()
            frame[column] = keys.where(mine, None)
            keep |= mine
        parts.append(frame.loc[keep])
    customers = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    return idn.build_identifier_index(customers, phone_digits)


def resolve_bucket(folder: Path, clean_dir: Path, index: int, count: int, phone_digits: int,
                   link: bool, split: tuple[Path, int] | None, *_after) -> dict[str, tuple[int, int]]:
    """Resolve the lookups of every partition in bucket ``index`` (against ``split``'s
    identifiers when given); results back to each partition, resolved responses (``link``)
    on to their customer's bucket. Returns the rows attempted and resolved per identifier
    kind (the report's identity counts)."""
    frames = [f for f in (load(folder / f"lookup_{p:05d}_{index:05d}.pkl") for p in range(count))
              if len(f)]
    lookups = pd.concat(frames) if frames else None
    if lookups is None:
        res = pd.DataFrame({"kind": [], "customer_id": [], "n_customers": [], "status": []})
        lookups = pd.DataFrame({"_part": pd.Series([], dtype=np.int64)})
    else:
        res = idn.resolve(lookups["key"], lookups["kind"], bucket_index(
            clean_dir, index, count, phone_digits, split), phone_digits)
    for p in range(count):
        save(res.loc[(lookups["_part"] == p).to_numpy()],
             folder / f"resolved_{index:05d}_{p:05d}.pkl")
    if link:
        route(folder, index, count, lookups, res)
    ok = res["status"] == idn.RESOLVED
    return {str(kind): (int((res["kind"] == kind).sum()), int((ok & (res["kind"] == kind)).sum()))
            for kind in pd.unique(res["kind"])}


def route(folder: Path, index: int, count: int, lookups: pd.DataFrame,
          res: pd.DataFrame) -> None:
    """The resolved responses to the bucket of their customer."""
    ok = (res["status"] == idn.RESOLVED).to_numpy(dtype=bool) if len(res) else np.zeros(0, bool)
    resolved = lookups.loc[ok].drop(columns=["kind", "key"], errors="ignore")
    resolved = resolved.assign(customer_id=res["customer_id"].to_numpy()[ok])
    ids = pa.array(resolved["customer_id"].to_numpy(dtype=object), pa.string())
    buckets = bucket_of(ids, count) if len(resolved) else np.zeros(0, np.int64)
    for c in range(count):
        save(resolved.loc[buckets == c], folder / f"route_{index:05d}_{c:05d}.pkl")


def split_invitations(clean_dir: Path, count: int, folder: Path, *_after) -> int:
    """The merged clean invitations (``_after``: its merge) written once per customer
    bucket, a piece of row groups after the other (one task: the pieces' count is known
    only once the file is): each linking bucket then reads its own. Pieces written."""
    path = Path(clean_dir) / "survey_invitations.parquet"
    spans = bucketed.task_pieces(path)
    file = pq.ParquetFile(path)
    schema = pa.schema([file.schema_arrow.field(c) for c in INVITATION_COLUMNS])
    for piece, (first, end, first_row) in enumerate(spans):
        blocks = file.iter_batches(columns=INVITATION_COLUMNS, batch_size=BATCH_ROWS,
                                   row_groups=range(first, end))
        bucketed.write_buckets(blocks, schema, lambda b: bucket_of(b.column("customer_id"), count),
                               count, folder, piece, first_row)
    return len(spans)


def bucket_invitations(clean_dir: Path, index: int, count: int,
                       split: tuple[Path, int] | None = None) -> pd.DataFrame:
    """The clean invitations of the customers of bucket ``index`` (``run_ingest``'s
    ``ctx.invitations`` of those customers; none when the export has no invitations), from
    ``split_invitations``' files (folder, pieces) when given."""
    path = Path(clean_dir) / "survey_invitations.parquet"
    if not path.is_file():
        return empty_clean("survey_invitations")[INVITATION_COLUMNS]
    if split is not None:
        table = bucketed.read_bucket(split[0], index, split[1]).drop_columns([bucketed.ROW])
        return table.to_pandas(types_mapper=_ARROW_STRINGS.get).reset_index(drop=True)
    parts = [batch.filter(pa.array(bucket_of(batch.column("customer_id"), count) == index))
             for batch in pq.ParquetFile(path).iter_batches(columns=INVITATION_COLUMNS,
                                                            batch_size=BATCH_ROWS)]
    table = (pa.Table.from_batches(parts) if parts
             else pq.read_schema(path).empty_table().select(INVITATION_COLUMNS))
    return table.to_pandas(types_mapper=_ARROW_STRINGS.get).reset_index(drop=True)


def link_bucket(folder: Path, clean_dir: Path, index: int, count: int, pieces: int | None,
                *_after) -> int:
    """Rules 4-5 for the responses resolved to the customers of bucket ``index``: each
    partition gets its rows' reason (no invitation, duplicate) and invitation id back.
    ``pieces``: the invitations' split (``split_invitations``, in ``folder``/invitations)."""
    frames = [f for f in (load(folder / f"route_{j:05d}_{index:05d}.pkl") for j in range(count))
              if len(f)]
    if not frames:
        for p in range(count):
            save(pd.DataFrame({"text": [], "invitation_id": []}),
                 folder / f"linked_{index:05d}_{p:05d}.pkl")
        return 0
    resolved = pd.concat(frames) if len(frames) > 1 else frames[0]
    split = None if pieces is None else (folder / INVITATIONS, pieces)
    texts, invitation_ids = link_responses(resolved, bucket_invitations(clean_dir, index, count,
                                                                        split))
    out = pd.DataFrame({"text": texts.reindex(resolved.index),
                        "invitation_id": invitation_ids.reindex(resolved.index)},
                       index=resolved.index)
    for p in range(count):
        save(out.loc[(resolved["_part"] == p).to_numpy()],
             folder / f"linked_{index:05d}_{p:05d}.pkl")
    return len(resolved)
