"""A partition of a source table, read without loading the table, and the part files.

A partition is the rows whose partition key hashes to it (``pandas.util.hash_array``, the
feature build's hash): each task streams the source (Parquet row groups or CSV blocks) and
keeps its rows with their row number in the file. Its frame must be the rows the in-process
``read_source`` would give: Arrow turns an integer column with a null into ``float64`` and
a boolean one into ``object``, by the whole table, so such columns (``whole_nulls``, from the
Parquet statistics) are cast alike in every partition.

A partition's clean and quarantined rows are written as Arrow with their source row numbers
(:mod:`.merge`), which puts them back in source order a row group at a time and writes the
bytes ``write_parquet`` writes in-process. Design: docs/cluster.md#ingest-on-the-cluster
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features import bucketed
from features.ingest.coerce import to_str
from features.ingest.identity import identifier_bucket
from features.ingest.io import _ARROW_STRINGS, Source, unreadable
from features.ingest.schemas import SCHEMAS, column_kind, primary_key

from .merge import merge_parts, write_part

PARTS = ".ingest-parts"          # in the clean folder while the tasks run
BATCH_ROWS = 1 << 17


def partition_key(table: str) -> str:
    """The column a table is split by: its key's first column, so every occurrence of a key
    is in one partition (the duplicate-key rule stays exact); ``customer_id`` for the CRM
    and usage (whose key is customer and month)."""
    return primary_key(SCHEMAS[table])[0]


def batches(source: Source, columns: list[str] | None = None, first_group: int = 0,
            end_group: int | None = None) -> Iterator[pa.RecordBatch]:
    """The source's rows in order, a block at a time (CSV: every column as text, as
    ``read_source`` reads it); ``first_group``, ``end_group``: a Parquet file's rows of
    those row groups only (an incremental ingest's appended rows, a piece)."""
    try:
        if source.format == "parquet":
            file = pq.ParquetFile(source.path)
            end = file.num_row_groups if end_group is None else end_group
            yield from file.iter_batches(columns=columns, batch_size=BATCH_ROWS,
                                         row_groups=range(first_group, end))
            return
        if first_group:
            raise ValueError(f"{source.path}: only a Parquet export is read from a row group")
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in source.columns},
                                       null_values=[""], strings_can_be_null=True,
                                       include_columns=columns)
        parse = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True)
        yield from pacsv.open_csv(source.path, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise unreadable(source.path, exc) from exc


def whole_nulls(source: Source, first_group: int = 0) -> list[str]:
    """Integer and boolean columns of a Parquet source with a null anywhere (pandas gives
    them another dtype than a partition without one would get); from row group
    ``first_group`` on when given (what the in-process read of the appended rows sees)."""
    if source.format != "parquet":
        return []
    file = pq.ParquetFile(source.path)
    schema = file.schema_arrow
    groups = range(first_group, file.num_row_groups)
    wanted = [i for i, f in enumerate(schema)
              if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)]
    found = []
    for i in wanted:
        stats = [file.metadata.row_group(g).column(i).statistics for g in groups]
        if all(s is not None and s.has_null_count for s in stats):
            nulls = sum(s.null_count for s in stats)
        else:
            nulls = file.read_row_groups(groups, columns=[schema[i].name]).column(0).null_count
        if nulls:
            found.append(schema[i].name)
    return found


def float_text_columns(sources: dict[str, Source]) -> list[str]:
    """Contract text columns a Parquet source stores as floats: their text depends on the
    whole column (``coerce.to_str``), so such an export is ingested in-process."""
    found = []
    for table, source in sources.items():
        if source.format != "parquet":
            continue
        for field in pq.read_schema(source.path):
            col = SCHEMAS[table].columns.get(field.name)
            if (col is not None and pa.types.is_floating(field.type)
                    and column_kind(SCHEMAS[table], field.name) == "str"):
                found.append(f"{table}.{field.name}")
    return found


def _frame(table: pa.Table, nulls: list[str]) -> pd.DataFrame:
    df = table.to_pandas(date_as_object=False, types_mapper=_ARROW_STRINGS.get)
    for name in nulls:
        if pa.types.is_boolean(table.schema.field(name).type):
            df[name] = df[name].astype(object)
        elif df[name].dtype != np.float64:
            df[name] = df[name].astype(np.float64)
    return df


def in_partition(ids: pd.Series, index: int, count: int) -> np.ndarray:
    """Which of these key values (source text or clean values) fall in partition ``index``."""
    return identifier_bucket(to_str(ids), count) == index      # the same SipHash


def source_pieces(source: Source, first_group: int = 0,
                  first_row: int = 0) -> list[tuple[int, int | None, int]]:
    """The runs of row groups a source is split in (one task each): a CSV is one piece, and
    so is a Parquet file with no row groups from ``first_group`` on (no rows)."""
    if source.format != "parquet":
        return [(first_group, None, first_row)]
    return bucketed.task_pieces(source.path, first_group)


def split_source(source: Source, key: str, count: int, folder: Path, piece: int,
                 span: tuple[int, int | None, int]) -> int:
    """One piece of the source written once per partition (``bucketed.write_buckets``), so
    a partition reads its rows without scanning the source; rows read. On a worker."""
    first_group, end_group, first_row = span
    blocks = batches(source, first_group=first_group, end_group=end_group)
    first = next(blocks, None)
    if first is not None:
        blocks = itertools.chain([first], blocks)
        schema = first.schema
    elif source.format == "parquet":
        schema = pq.read_schema(source.path)
    else:
        schema = pa.schema([(c, pa.string()) for c in source.columns])

    def where(batch: pa.RecordBatch) -> np.ndarray:
        ids = batch.column(key).to_pandas(types_mapper=_ARROW_STRINGS.get)
        return identifier_bucket(to_str(ids), count)       # ``in_partition``'s hash

    return bucketed.write_buckets(blocks, schema, where, count, folder, piece, first_row)


def read_partition(source: Source, key: str, index: int, count: int, nulls: list[str],
                   first_group: int = 0, first_row: int = 0,
                   split: tuple[Path, int] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The partition's rows as ``read_source`` gives them (fresh RangeIndex) and their row
    numbers in the file; ``first_group``, ``first_row``: read from that row group, whose
    first row is that row of the file (an incremental ingest). ``split``: the folder and
    piece count of ``split_source``'s files, read instead of the source."""
    if split is not None:
        table = bucketed.read_bucket(split[0], index, split[1])
        rows = table[bucketed.ROW].to_numpy()
        table = table.drop_columns([bucketed.ROW])
        return _frame(table, nulls).reset_index(drop=True), rows.astype(np.int64)
    parts, rows, offset, schema = [], [], first_row, None
    for batch in batches(source, first_group=first_group):
        schema = batch.schema
        mine = in_partition(batch.column(key).to_pandas(types_mapper=_ARROW_STRINGS.get),
                            index, count)
        parts.append(batch.filter(pa.array(mine)))
        rows.append(np.flatnonzero(mine) + offset)
        offset += batch.num_rows
    if schema is None:        # a header and no rows
        table = (pq.read_schema(source.path).empty_table() if source.format == "parquet"
                 else pa.table({c: pa.array([], pa.string()) for c in source.columns}))
    else:
        table = pa.Table.from_batches(parts, schema=schema)
    found = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return _frame(table, nulls).reset_index(drop=True), found.astype(np.int64)


def part_dir(clean_dir: Path, table: str) -> Path:
    return Path(clean_dir) / PARTS / table


def save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: Path):
    with open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own part files, written by this run


def save_outputs(folder: Path, index: int, clean: pd.DataFrame, quarantined: pd.DataFrame,
                 rows: np.ndarray, failed: np.ndarray) -> dict[str, int]:
    """A partition's clean and quarantined rows as part files (:func:`.merge.write_part`)."""
    write_part(clean, rows[~failed], folder / f"clean_{index:05d}")
    write_part(quarantined, rows[failed], folder / f"quarantine_{index:05d}")
    return {"rows_in": len(rows), "kept": int((~failed).sum()), "quarantined": int(failed.sum())}


def merge_table(clean_dir: Path, quarantine_dir: Path, table: str, count: int,
                *_after, earlier: tuple[Path, Path] | None = None) -> dict:
    """The partitions' parts of one table in source order, written as the in-process path
    writes them, a row group at a time; the kept and quarantined rows and the reason counts.
    ``earlier``: the previous clean and quarantine folders, whose rows of the table come
    first (an incremental ingest). On a worker (``_after``: tasks that must be done first)."""
    folder = part_dir(clean_dir, table)
    head = (None, None) if earlier is None else tuple(Path(d) / f"{table}.parquet"
                                                      for d in earlier)
    kept, _ = merge_parts([folder / f"clean_{i:05d}" for i in range(count)],
                          Path(clean_dir) / f"{table}.parquet", head=head[0])
    quarantined, reasons = merge_parts([folder / f"quarantine_{i:05d}" for i in range(count)],
                                       Path(quarantine_dir) / f"{table}.parquet", reasons=True,
                                       head=head[1])
    return {"kept": kept, "quarantined": quarantined, "reasons": reasons}


def submit_split(client, source: Source, key: str, count: int, folder: Path,
                 first_group: int = 0, first_row: int = 0) -> tuple[tuple[Path, int], list]:
    """``split_source`` of every piece on the workers: the split (folder, pieces) for the
    partitions' jobs, and the tasks they must wait for."""
    spans = source_pieces(source, first_group, first_row)
    where = Path(folder) / "split"
    tasks = [client.submit(split_source, source, key, count, where, i, span, pure=False)
             for i, span in enumerate(spans)]
    return (where, len(spans)), tasks
