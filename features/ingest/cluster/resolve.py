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

from features.ingest import identity as idn
from features.ingest.io import _ARROW_STRINGS
from features.ingest.requirements import empty_clean
from features.ingest.run import INVITATION_COLUMNS, link_responses
from features.transforms.buckets import bucket_of

from .parts import BATCH_ROWS, load, save

CRM = "crm_customers"


def bucket_index(clean_dir: Path, index: int, count: int,
                 phone_digits: int) -> dict[str, pd.DataFrame]:
    """The identifier index of the identifiers hashing to ``index``, from the clean CRM
    streamed a row group at a time (identifiers of other buckets blanked)."""
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
                   link: bool, *_after) -> dict[str, tuple[int, int]]:
    """Resolve the lookups of every partition in bucket ``index``; results back to each
    partition, resolved responses (``link``) on to their customer's bucket. Returns the
    rows attempted and resolved per identifier kind (the report's identity counts)."""
    frames = [f for f in (load(folder / f"lookup_{p:05d}_{index:05d}.pkl") for p in range(count))
              if len(f)]
    lookups = pd.concat(frames) if frames else None
    if lookups is None:
        res = pd.DataFrame({"kind": [], "customer_id": [], "n_customers": [], "status": []})
        lookups = pd.DataFrame({"_part": pd.Series([], dtype=np.int64)})
    else:
        res = idn.resolve(lookups["key"], lookups["kind"], bucket_index(
            clean_dir, index, count, phone_digits), phone_digits)
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


def bucket_invitations(clean_dir: Path, index: int, count: int) -> pd.DataFrame:
    """The clean invitations of the customers of bucket ``index`` (``run_ingest``'s
    ``ctx.invitations`` of those customers; none when the export has no invitations)."""
    path = Path(clean_dir) / "survey_invitations.parquet"
    if not path.is_file():
        return empty_clean("survey_invitations")[INVITATION_COLUMNS]
    parts = [batch.filter(pa.array(bucket_of(batch.column("customer_id"), count) == index))
             for batch in pq.ParquetFile(path).iter_batches(columns=INVITATION_COLUMNS,
                                                            batch_size=BATCH_ROWS)]
    table = (pa.Table.from_batches(parts) if parts
             else pq.read_schema(path).empty_table().select(INVITATION_COLUMNS))
    return table.to_pandas(types_mapper=_ARROW_STRINGS.get).reset_index(drop=True)


def link_bucket(folder: Path, clean_dir: Path, index: int, count: int, *_after) -> int:
    """Rules 4-5 for the responses resolved to the customers of bucket ``index``: each
    partition gets its rows' reason (no invitation, duplicate) and invitation id back."""
    frames = [f for f in (load(folder / f"route_{j:05d}_{index:05d}.pkl") for j in range(count))
              if len(f)]
    if not frames:
        for p in range(count):
            save(pd.DataFrame({"text": [], "invitation_id": []}),
                 folder / f"linked_{index:05d}_{p:05d}.pkl")
        return 0
    resolved = pd.concat(frames) if len(frames) > 1 else frames[0]
    texts, invitation_ids = link_responses(resolved, bucket_invitations(clean_dir, index, count))
    out = pd.DataFrame({"text": texts.reindex(resolved.index),
                        "invitation_id": invitation_ids.reindex(resolved.index)},
                       index=resolved.index)
    for p in range(count):
        save(out.loc[(resolved["_part"] == p).to_numpy()],
             folder / f"linked_{index:05d}_{p:05d}.pkl")
    return len(resolved)
