"""A table's part files merged into its clean (or quarantine) Parquet file, row group by row group.

Each partition writes its rows as an Arrow IPC file (``to_arrow``: the schema and pandas
metadata ``write_parquet`` writes) plus their source row numbers (``.npy``, ascending). The
merge never holds the table: for each output row group of ``GROUP_ROWS`` rows it finds how many
rows of each part come before the group's end (a search on the memory-mapped row numbers), reads
just those slices, puts them in source order and appends them to a ``ParquetWriter``. So a
worker holds one row group whatever the customers (the whole-frame merge held two copies of the
table: 3.36 GB on a worker at 1M). The row groups, types and metadata are those of
``pq.write_table`` on the in-process frame, so the file is byte-identical.

A column can get another Arrow type in a part than in the whole table: text missing from every
row of a part is ``null`` there, and an object column's ints are ``double`` where a part holds a
float. The merged schema is the parts' types unified as Arrow promotes them, with each column's
pandas metadata taken from a part that has the merged type.
Design: docs/cluster.md#ingest-on-the-cluster
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.bucketed import merged_schema
from features.ingest.io import _ARROW_STRINGS, to_arrow
from features.ingest.quarantine import REASON_COLUMN
from features.ingest.reasons import count_reasons, ordered_counts

GROUP_ROWS = 1 << 20        # pq.write_table's default row group: what in-process writes
PART_BATCH = 1 << 16        # a part's IPC record batch: what one slice read costs at most
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


def write_part(frame: pd.DataFrame, rows: np.ndarray, stem: Path) -> None:
    """One partition's rows of a table (``rows``: their source row numbers) as
    ``<stem>.arrow`` and ``<stem>.npy``, in source row order."""
    rows = np.asarray(rows, np.int64)
    if len(rows) and not (np.diff(rows) > 0).all():
        order = np.argsort(rows, kind="stable")
        frame, rows = frame.iloc[order], rows[order]
    table = to_arrow(frame.reset_index(drop=True)).combine_chunks()
    stem.parent.mkdir(parents=True, exist_ok=True)
    with pa.ipc.new_file(str(stem) + ".arrow", table.schema, options=_IPC) as writer:
        writer.write_table(table, max_chunksize=PART_BATCH)
    np.save(str(stem) + ".npy", rows)


@dataclass
class _Part:
    """An open part: its reader, its row numbers (memory-mapped) and its schema."""

    reader: pa.ipc.RecordBatchFileReader
    rows: np.ndarray

    @classmethod
    def open(cls, stem: Path) -> _Part:
        return cls(pa.ipc.open_file(pa.OSFile(str(stem) + ".arrow")),
                   np.load(str(stem) + ".npy", mmap_mode="r"))

    @property
    def schema(self) -> pa.Schema:
        return self.reader.schema

    def slice(self, start: int, stop: int) -> pa.Table:
        """Rows ``start:stop``, reading only the record batches that hold them."""
        first, last = start // PART_BATCH, max(start, stop - 1) // PART_BATCH
        batches = [self.reader.get_batch(i) for i in range(first, min(last + 1,
                                                                      self.reader.num_record_batches))]
        table = pa.Table.from_batches(batches, schema=self.schema)
        return table.slice(start - first * PART_BATCH, stop - start)


class _Head:
    """A table's earlier rows (an incremental ingest's previous Parquet file): they come
    before every part's rows, read a row group at a time."""

    def __init__(self, path: Path):
        self.file = pq.ParquetFile(path)
        sizes = [self.file.metadata.row_group(i).num_rows
                 for i in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.rows = int(self.starts[-1])

    def slice(self, start: int, stop: int) -> pa.Table:
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, stop, side="left")) - 1
        table = self.file.read_row_groups(list(range(first, last + 1)))
        return table.slice(start - int(self.starts[first]), stop - start)


def _cuts(parts: list[_Part], k: int) -> list[int]:
    """Per part, how many of its rows are among the ``k`` smallest row numbers of all parts
    (row numbers are distinct: every source row is in one part)."""
    lo = 0
    hi = 1 + max((int(p.rows[-1]) for p in parts if len(p.rows)), default=0)
    while lo < hi:                     # the smallest v with k rows below it
        mid = (lo + hi) // 2
        if sum(int(np.searchsorted(p.rows, mid)) for p in parts) >= k:
            hi = mid
        else:
            lo = mid + 1
    return [int(np.searchsorted(p.rows, lo)) for p in parts]


def merge_parts(stems: list[Path], path: Path, reasons: bool = False,
                head: Path | None = None) -> tuple[int, dict]:
    """The parts as one Parquet file at ``path`` in source row order, written atomically;
    its rows and, with ``reasons``, the quarantine reasons counted as ``count_reasons``.
    ``head``: a Parquet file of earlier rows, written first and in its own types, as
    ``incremental.append_rows`` does (an incremental ingest; the parts hold the new rows)."""
    parts = [_Part.open(s) for s in stems]
    first = _Head(head) if head is not None else None
    before = first.rows if first is not None else 0
    schema = (first.file.schema_arrow if before else merged_schema([p.schema for p in parts]))
    total = before + sum(len(p.rows) for p in parts)
    counts: Counter = Counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    done = [0] * len(parts)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            if total == 0:
                writer.write_table(schema.empty_table())
            for start in range(0, total, GROUP_ROWS):
                end = min(start + GROUP_ROWS, total)
                cuts = _cuts(parts, end - min(end, before))
                spans = [(p, a, b) for p, a, b in zip(parts, done, cuts, strict=True) if b > a]
                order = (np.argsort(np.concatenate([p.rows[a:b] for p, a, b in spans]),
                                    kind="stable") if spans else np.zeros(0, np.int64))
                tables = [p.slice(a, b).cast(schema) for p, a, b in spans]
                group = (pa.concat_tables(tables).take(pa.array(order)) if tables
                         else schema.empty_table())
                if start < before:
                    group = pa.concat_tables([first.slice(start, min(end, before)), group])
                group = group.combine_chunks()
                writer.write_table(group)
                if reasons:
                    counts.update(count_reasons(group.column(REASON_COLUMN).to_pandas(
                        types_mapper=_ARROW_STRINGS.get)))
                done = cuts
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return total, ordered_counts(counts)
