"""One customer bucket of the clean tables, read without loading the whole tables.

A customer's bucket is a hash of their ``customer_id`` (``pandas.util.hash_array``: SipHash
with a fixed key, the same in every process and on every host) modulo the number of buckets,
computed at read time: the clean tables stay single files in the format the ingest writes,
and a customer's rows, old or appended, fall in the same bucket whatever their order. A
cluster build first writes each table once per bucket (``submit_split``, a ``Split``) and
each bucket reads its own files; without a split a table is streamed one row group at a
time and only the bucket's rows are kept, so a reader holds its bucket plus one row group.
``load_bucket`` then gives the same ``Clean`` as ``load_clean`` restricted to the bucket's
customers (in crm order), with each customer's row in the whole crm table (``rows``): the
order the in-process build writes them in.
Design: docs/cluster.md#feature-tables-on-the-cluster
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features import bucketed

from .event_tables import read_event_schema
from .inputs import ACTIVITY, COLUMNS, CONSENT_COLUMNS, Clean, _arrow_type, _link_surveys, _to_frame
from .schema import ATTRIBUTE_VIEW, EVENT_DIR

CRM = "crm_customers"
BUCKET_CUSTOMERS = 250_000   # at most this many customers per bucket: a worker's share


def bucket_count(clean_dir: Path, workers: int) -> int:
    """One bucket per worker at least, more when a worker's share would pass
    ``BUCKET_CUSTOMERS``; never more buckets than customers (the feature build and scoring
    split the same way)."""
    customers = pq.ParquetFile(Path(clean_dir) / f"{CRM}.parquet").metadata.num_rows
    return max(1, min(customers, max(workers, math.ceil(customers / BUCKET_CUSTOMERS))))


def bucket_of(ids: pa.Array, buckets: int) -> np.ndarray:
    """Each customer id's bucket, 0 .. buckets-1 (deterministic across processes)."""
    values = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    return (pd.util.hash_array(values) % np.uint64(buckets)).astype(np.int64)


@dataclass(frozen=True)
class Split:
    """The clean tables written once per bucket (``submit_split``): where, pieces per table."""

    folder: Path
    pieces: dict[str, int]

    def read(self, name: str, index: int, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
        """Bucket ``index``'s rows of table ``name`` (``columns``) and their rows in it."""
        table = bucketed.read_bucket(self.folder / name, index, self.pieces[name], columns)
        rows = table[bucketed.ROW].to_numpy().astype(np.int64)
        return table.drop_columns([bucketed.ROW]), rows


def split_columns(clean_dir: Path) -> dict[str, list[str]]:
    """What a bucket reads of each clean table there is (``load_bucket``,
    ``summarize_bucket``): the columns a split writes."""
    names = pq.read_schema(Path(clean_dir) / f"{CRM}.parquet").names
    crm = crm_columns(clean_dir)
    out = {CRM: crm + [c for c in ("status",) if c in names and c not in crm]}
    out.update({name: cols for name, cols in COLUMNS.items()
                if name != CRM and (Path(clean_dir) / f"{name}.parquet").is_file()})
    out.update({name: pq.read_schema(Path(clean_dir) / f"{name}.parquet").names
                for name in side_tables(clean_dir)})
    return out


def side_tables(clean_dir: Path) -> list[str]:
    """The company's own tables of the export, by their path in the clean folder without
    ``.parquet``: ``customer_attributes`` and ``events/<table>`` (read whole, every column)."""
    out = [ATTRIBUTE_VIEW] if (Path(clean_dir) / f"{ATTRIBUTE_VIEW}.parquet").is_file() else []
    return out + [f"{EVENT_DIR}/{name}" for name in read_event_schema(clean_dir) or {}]


def split_table(path: Path, columns: list[str], count: int, folder: Path, piece: int,
                span: tuple[int, int, int]) -> int:
    """One piece of a clean table written once per customer bucket; rows. On a worker."""
    file = pq.ParquetFile(path)
    first, end, first_row = span
    blocks = file.iter_batches(columns=columns, batch_size=1 << 17, row_groups=range(first, end))
    schema = pa.schema([file.schema_arrow.field(c) for c in columns])
    return bucketed.write_buckets(blocks, schema, lambda b: bucket_of(b.column("customer_id"),
                                                                        count),
                                  count, folder, piece, first_row)


def submit_split(client, clean_dir: Path, count: int, folder: Path) -> tuple[Split, list]:
    """Every clean table the build reads split into ``count`` buckets on the workers, a
    piece of row groups per task: the ``Split`` and the tasks writing it."""
    pieces, tasks = {}, []
    for name, columns in split_columns(clean_dir).items():
        path = Path(clean_dir) / f"{name}.parquet"
        spans = bucketed.task_pieces(path)
        pieces[name] = len(spans)
        tasks += [client.submit(split_table, path, columns, count, Path(folder) / name, i, span,
                                pure=False) for i, span in enumerate(spans)]
    return Split(Path(folder), pieces), tasks


def _stream(path: Path, columns: list[str], keep) -> pa.Table:
    """The rows of ``path`` that ``keep(batch)`` selects, read one row group at a time."""
    source = pq.ParquetFile(path)
    parts = [batch.filter(pa.array(keep(batch)))
             for batch in source.iter_batches(columns=columns, batch_size=1 << 17)]
    if not parts:
        return source.schema_arrow.empty_table().select(columns)
    return pa.Table.from_batches(parts, schema=parts[0].schema)


@dataclass
class Bucket:
    """The bucket's crm rows: customer ids (crm order) and their rows in the whole table."""

    index: int
    count: int
    ids: pa.Array
    rows: np.ndarray

    def select(self, batch) -> np.ndarray:
        """Rows of a batch whose customer is in the bucket."""
        return pc.fill_null(pc.is_in(batch.column("customer_id"), value_set=self.ids),
                            False).to_numpy(zero_copy_only=False)


def crm_columns(clean_dir: Path, wanted: tuple[str, ...] = ("notice_date",)) -> list[str]:
    """The crm columns the features read (consent and ``wanted`` when the export has them)."""
    names = pq.read_schema(Path(clean_dir) / f"{CRM}.parquet").names
    return COLUMNS[CRM] + [c for c in (*CONSENT_COLUMNS, *wanted) if c in names]


def read_bucket_crm(clean_dir: Path, index: int, count: int, columns: list[str],
                    split: Split | None = None) -> tuple[Bucket, pa.Table]:
    """The bucket's crm rows (``columns``) and the bucket itself (from ``split`` if given)."""
    if split is not None:
        crm, found = split.read(CRM, index, columns)
        return Bucket(index, count, crm["customer_id"].combine_chunks(), found), crm
    path = Path(clean_dir) / f"{CRM}.parquet"
    rows, parts, offset = [], [], 0
    for batch in pq.ParquetFile(path).iter_batches(columns=columns, batch_size=1 << 17):
        mine = bucket_of(batch.column("customer_id"), count) == index
        rows.append(np.flatnonzero(mine) + offset)
        parts.append(batch.filter(pa.array(mine)))
        offset += batch.num_rows
    crm = (pa.Table.from_batches(parts, schema=parts[0].schema) if parts
           else pq.read_schema(path).empty_table().select(columns))
    ids = crm["customer_id"].combine_chunks()
    found = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return Bucket(index, count, ids, found.astype(np.int64)), crm


def read_bucket_table(clean_dir: Path, name: str, columns: list[str], bucket: Bucket,
                      split: Split | None = None) -> pa.Table:
    """One clean table's rows of the bucket's customers, with their ``code`` in the bucket
    (an optional table that was not exported reads as no rows, as in ``read_table``)."""
    path = Path(clean_dir) / f"{name}.parquet"
    if split is not None and name in split.pieces:
        tab = split.read(name, bucket.index, columns)[0]
    elif not path.is_file():
        tab = pa.table({c: pa.array([], _arrow_type(c)) for c in columns})
    else:
        tab = _stream(path, columns, bucket.select)
    code = pc.index_in(tab["customer_id"], value_set=bucket.ids)
    return tab.append_column("code", code).filter(pc.is_valid(code))


def read_bucket_frame(clean_dir: Path, name: str, bucket: Bucket,
                      split: Split | None = None) -> pd.DataFrame:
    """A table's rows of the bucket's customers, every column, as ``pd.read_parquet`` gives
    the whole table (its pandas metadata: the same dtypes), in file order."""
    path = Path(clean_dir) / f"{name}.parquet"
    schema = pq.read_schema(path)
    if split is not None and name in split.pieces:
        tab = split.read(name, bucket.index, schema.names)[0]
    else:
        tab = _stream(path, schema.names, bucket.select)
    return tab.replace_schema_metadata(schema.metadata).to_pandas()


def load_bucket(clean_dir: Path, index: int, count: int,
                split: Split | None = None, *_after) -> tuple[Clean, Bucket]:
    """``load_clean`` for one bucket's customers (plus ``notice_date`` when exported);
    ``split``: read from its files (``_after``: the tasks writing them)."""
    bucket, crm = read_bucket_crm(clean_dir, index, count, crm_columns(clean_dir), split)
    customers = _to_frame(crm, keep_ids=True)
    raw = {name: read_bucket_table(Path(clean_dir), name, cols, bucket, split)
           for name, cols in COLUMNS.items() if name != CRM}
    raw["survey_invitations"], raw["survey_responses"] = _link_surveys(
        raw["survey_invitations"], raw["survey_responses"])
    tables = {name: _to_frame(tab, keep_ids=name == "survey_responses")
              for name, tab in raw.items()}
    return Clean(customers, tables), bucket


def summarize_bucket(clean_dir: Path, index: int, count: int, split: Split | None = None,
                     *_after) -> dict:
    """What the client needs from a bucket before the build: the first and last event time
    of each table (the history, hence the snapshots), whether a churner has no churn date
    (a one-window export), and the bucket's usage per month as distinct values and their counts
    (the seasonal level's median, exact, in a few thousand numbers a month)."""
    names = pq.read_schema(Path(clean_dir) / f"{CRM}.parquet").names
    columns = [c for c in ("status",) if c in names]
    bucket, crm = read_bucket_crm(clean_dir, index, count, ["customer_id", "churn_date", *columns],
                                  split)
    undated = ("status" in columns and bool(pc.any(pc.and_(
        pc.equal(crm["status"].cast(pa.string()), "churned"),
        pc.is_null(crm["churn_date"]))).as_py()))
    bounds = {}
    for name, col in ACTIVITY.items():
        times = _to_frame(read_bucket_table(Path(clean_dir), name, ["customer_id", col],
                                            bucket, split), keep_ids=False)[col].dropna()
        if len(times):
            bounds[name] = (times.min(), times.max())
    use = _to_frame(read_bucket_table(Path(clean_dir), "product_usage",
                                      ["customer_id", "month", "usage_units"], bucket, split),
                    False)
    month = (use["month"].dt.year * 12 + use["month"].dt.month - 1).to_numpy(np.int64)
    units = use["usage_units"].to_numpy(np.float64)
    seen = np.isfinite(units)
    month, units = month[seen], units[seen]
    order = np.argsort(month, kind="stable")
    months, starts = np.unique(month[order], return_index=True)
    usage = ({m: np.unique(u, return_counts=True)       # distinct values, counts: a median
              for m, u in zip(months.tolist(), np.split(units[order], starts[1:]), strict=True)}
             if len(months) else {})
    return {"customers": len(bucket.ids), "undated": undated, "bounds": bounds, "usage": usage}
