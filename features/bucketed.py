"""A table split once into one file per bucket, so a partition reads only its own rows.

A cluster stage cuts the customers into partitions (buckets) and each partition needs its
rows of every table. Filtering a whole table per partition reads it once per partition: the
reads grow with the square of the customers. Here each table is read once instead, in
pieces of consecutive row groups (one task each), and every piece writes its rows of each
bucket to ``<folder>/<bucket>/<piece>.parquet`` with each row's number in the table
(``ROW``). A partition then reads its bucket's pieces in piece order: its rows in table
order, as a filter of the whole table would keep them. Which bucket a row is in is the
caller's rule (``bucket_of`` a customer, ``identifier_bucket`` of a key).
Design: docs/cluster.md#partitioned-reads
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW = "__row"               # a row's number in the whole table
PIECE_ROWS = 1 << 20        # at least this many rows per piece (a task's share of a table)
FLUSH_ROWS = 1 << 16        # a bucket's rows buffered before they are written


def pieces(path: Path, first_group: int = 0,
           piece_rows: int | None = None) -> list[tuple[int, int, int]]:
    """A Parquet file's row groups from ``first_group`` on, cut into runs of at least
    ``piece_rows`` rows (default ``PIECE_ROWS``): (first group, end group, the run's first
    row in the file); none when there are no row groups from ``first_group`` on."""
    piece_rows = piece_rows or PIECE_ROWS
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    out, start, rows, first_row = [], first_group, 0, sum(sizes[:first_group])
    for g in range(first_group, len(sizes)):
        rows += sizes[g]
        if rows >= piece_rows or g == len(sizes) - 1:
            out.append((start, g + 1, first_row))
            start, first_row, rows = g + 1, first_row + rows, 0
    return out


def task_pieces(path: Path, first_group: int = 0) -> list[tuple[int, int, int]]:
    """``pieces``, or one piece of no row groups when there are none, so a split always
    runs and every bucket gets its (empty) files in the table's schema."""
    found = pieces(path, first_group)
    if found:
        return found
    meta = pq.ParquetFile(path).metadata
    before = sum(meta.row_group(g).num_rows for g in range(min(first_group, meta.num_row_groups)))
    return [(first_group, first_group, before)]


def bucket_path(folder: Path, bucket: int, piece: int) -> Path:
    return Path(folder) / f"{bucket:05d}" / f"{piece:05d}.parquet"


def write_buckets(batches: Iterable[pa.RecordBatch], schema: pa.Schema,
                  bucket: Callable[[pa.RecordBatch], np.ndarray], count: int, folder: Path,
                  piece: int, first_row: int) -> int:
    """Each batch's rows, numbered from ``first_row``, into their bucket's file of this
    piece (every bucket gets a file, empty or not); rows written. Holds one batch plus
    at most ``FLUSH_ROWS`` rows per bucket."""
    out = schema.append(pa.field(ROW, pa.int64()))
    writers, buffers, sizes = [], [[] for _ in range(count)], [0] * count
    for b in range(count):
        path = bucket_path(folder, b, piece)
        path.parent.mkdir(parents=True, exist_ok=True)
        writers.append(pq.ParquetWriter(path, out))

    def flush(b: int) -> None:
        if buffers[b]:
            writers[b].write_table(pa.Table.from_batches(buffers[b], schema=out))
            buffers[b], sizes[b] = [], 0

    offset = first_row
    try:
        for batch in batches:
            numbered = pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(np.arange(offset, offset + batch.num_rows))],
                schema=out)
            offset += batch.num_rows
            where = np.asarray(bucket(batch), dtype=np.int64)
            order = np.argsort(where, kind="stable")
            bounds = np.searchsorted(where[order], np.arange(count + 1))
            sorted_rows = numbered.take(pa.array(order))
            for b in range(count):
                if bounds[b + 1] > bounds[b]:
                    buffers[b].append(sorted_rows.slice(bounds[b], bounds[b + 1] - bounds[b]))
                    sizes[b] += bounds[b + 1] - bounds[b]
                    if sizes[b] >= FLUSH_ROWS:
                        flush(b)
        for b in range(count):
            flush(b)
    finally:
        for writer in writers:
            writer.close()
    return offset - first_row


def read_bucket(folder: Path, bucket: int, pieces_count: int,
                columns: list[str] | None = None) -> pa.Table:
    """Bucket ``bucket``'s rows of every piece, in table order, with ``ROW`` (``columns``:
    these and ``ROW`` only)."""
    wanted = None if columns is None else [*columns, ROW]
    tables = [pq.read_table(bucket_path(folder, bucket, p), columns=wanted)
              for p in range(pieces_count)]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def merge_runs(runs: list[Iterator[pa.RecordBatch]], keys: str | list[str],
               chunk_rows: int, ties: bool = False) -> Iterator[pa.Table]:
    """Rows of ``runs`` (each ascending in ``keys``) in ``keys`` order, as tables of exactly
    ``chunk_rows`` rows but the last: the buckets' parts merged back into table order holding
    a chunk and a batch or two per run, not the whole table.

    A row is final once every unfinished run has buffered a row past it: each round takes
    the rows up to the smallest of the runs' last buffered first keys. ``ties``: runs may
    share a first key (NPS answers in the same second), so a round takes the rows below it,
    and when that is none the runs ending on it buffer their next batch; the rows taken are
    sorted by every key, stably (rows equal in every key come from one run: a customer's
    rows are in one bucket). Without ties (a crm row number) each round takes one more row."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    first, order = keys[0], [(k, "ascending") for k in keys]
    side = "left" if ties else "right"
    runs = [iter(r) for r in runs]
    buffers: list[pa.Table | None] = [None] * len(runs)
    pending: list[pa.Table] = []
    pending_rows = 0

    def load(i: int) -> None:
        """Buffer run ``i``'s next batch (or mark it finished)."""
        batch = next(runs[i], None)
        if batch is None:
            runs[i] = None
        else:
            table = pa.Table.from_batches([batch])
            buffers[i] = table if buffers[i] is None else pa.concat_tables([buffers[i], table])

    while True:
        for i in range(len(runs)):          # every unfinished run holds a row at least
            while runs[i] is not None and (buffers[i] is None or not buffers[i].num_rows):
                load(i)
        firsts = [None if b is None or not b.num_rows else b[first].to_numpy() for b in buffers]
        if all(f is None for f in firsts):
            break
        lasts = {i: firsts[i][-1] for i, r in enumerate(runs) if r is not None}
        upto = min(lasts.values()) if lasts else None
        cuts = [0 if f is None else len(f) if upto is None else
                int(np.searchsorted(f, upto, side=side)) for f in firsts]
        if not any(cuts):                   # ties: every buffer ends on the smallest key
            for i, last in lasts.items():
                if last == upto:
                    load(i)
            continue
        taken = []
        for i, cut in enumerate(cuts):
            if cut:
                taken.append(buffers[i].slice(0, cut))
                buffers[i] = buffers[i].slice(cut)
        step = pa.concat_tables(taken)
        pending.append(step.take(pc.sort_indices(step, sort_keys=order)))
        pending_rows += step.num_rows
        while pending_rows >= chunk_rows:
            table = pa.concat_tables(pending)
            yield table.slice(0, chunk_rows).combine_chunks()
            pending, pending_rows = [table.slice(chunk_rows)], pending_rows - chunk_rows
    if pending_rows:
        yield pa.concat_tables(pending).combine_chunks()


def merged_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """The whole table's schema from its parts': types unified, pandas metadata per column
    from a part whose type is the unified one."""
    unified = pa.unify_schemas([s.remove_metadata() for s in schemas],
                               promote_options="permissive")
    metas = [json.loads(s.metadata[b"pandas"]) for s in schemas]
    meta = metas[0]
    for i, field in enumerate(unified):
        source = next((m for s, m in zip(schemas, metas, strict=True)
                       if s.field(field.name).type == field.type), metas[0])
        meta["columns"][i] = source["columns"][i]
    return unified.with_metadata({**schemas[0].metadata, b"pandas": json.dumps(meta)})
