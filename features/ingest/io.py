"""Reading source exports (Parquet or CSV) and writing Parquet outputs.

Sources are checked for presence and required columns *before* anything is read
in full or written: :func:`check_sources` raises :class:`SourceContractError`
naming every missing file and every missing column at once.

CSV files are read with every column as text (identifiers keep leading zeros,
phone numbers their formatting) and only empty fields as null; typing is the
job of :mod:`features.ingest.coerce`.

Text is held as Arrow-backed ``string[pyarrow]`` while processing (a fraction of
the memory of Python str objects; null checks, ``isin`` and key hashing run in
Arrow). Parquet outputs are marked so that ``pd.read_parquet`` gives the usual
``object`` columns of ``str`` back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.ingest.schemas import STRING


class SourceContractError(ValueError):
    """A source table is missing, or lacks a column the data contract requires."""


@dataclass(frozen=True)
class Source:
    """One located source table."""

    table: str
    path: Path
    columns: tuple[str, ...]

    @property
    def format(self) -> str:
        return self.path.suffix.lstrip(".")


def locate(source_dir: Path, table: str, source_format: str) -> Path:
    """The file of ``table``: per ``source_format``; ``auto`` prefers Parquet over CSV."""
    parquet, csv = source_dir / f"{table}.parquet", source_dir / f"{table}.csv"
    if source_format == "parquet":
        candidates = [parquet]
    elif source_format == "csv":
        candidates = [csv]
    else:
        candidates = [parquet, csv]
    for path in candidates:
        if path.is_file():
            return path
    wanted = " or ".join(str(p) for p in candidates)
    raise SourceContractError(f"missing source table {table!r}: {wanted} not found")


def read_columns(path: Path) -> tuple[str, ...]:
    """Column names of a source file, without reading its rows."""
    if path.suffix == ".parquet":
        return tuple(pq.read_schema(path).names)
    header = pd.read_csv(path, nrows=0, dtype=str)
    return tuple(str(c) for c in header.columns)


def absent(source_dir: Path, table: str) -> bool:
    """No file of ``table`` in any format (an optional table may be absent)."""
    return not any((Path(source_dir) / f"{table}.{ext}").is_file() for ext in ("parquet", "csv"))


def check_sources(
    source_dir: Path,
    required: dict[str, Iterable[str]],
    source_format: str = "auto",
    optional_tables: Iterable[str] = (),
) -> dict[str, Source]:
    """Locate every table and check its required columns; one error lists all problems.

    A table of ``optional_tables`` with no file in any format is left out of the result;
    one present only in the other format than ``source_format`` is still an error.
    """
    sources: dict[str, Source] = {}
    problems: list[str] = []
    optional = set(optional_tables)
    for table, columns in required.items():
        if table in optional and absent(Path(source_dir), table):
            continue
        path = Path(source_dir) / table
        try:
            path = locate(Path(source_dir), table, source_format)
            found = read_columns(path)
        except SourceContractError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # unreadable file: name it
            problems.append(f"cannot read source table {table!r} at {path}: {exc}")
            continue
        missing = [c for c in columns if c not in found]
        if missing:
            problems.append(f"{path}: missing required column(s) {', '.join(missing)}")
        sources[table] = Source(table, path, found)
    if problems:
        raise SourceContractError("source data breaks the contract:\n  " + "\n  ".join(problems))
    return sources


def read_source(source: Source) -> pd.DataFrame:
    """All columns of a source table with a fresh RangeIndex; CSV as text, '' as null."""
    if source.format == "parquet":
        table = pq.read_table(source.path)
    else:
        convert = pacsv.ConvertOptions(
            column_types={c: pa.string() for c in source.columns},
            null_values=[""],
            strings_can_be_null=True,
        )
        parse = pacsv.ParseOptions(newlines_in_values=True)  # free text may span lines
        table = pacsv.read_csv(source.path, parse_options=parse, convert_options=convert)
    df = table.to_pandas(date_as_object=False, types_mapper=_ARROW_STRINGS.get)
    return df.reset_index(drop=True)


_ARROW_STRINGS = {pa.string(): STRING, pa.large_string(): STRING}


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table whose pandas metadata reads text back as ``object`` (not ``string``)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    plain = [pa.field(f.name, pa.string()) if f.type == pa.large_string() else f
             for f in table.schema]
    table = table.cast(pa.schema(plain, metadata=table.schema.metadata))
    meta = json.loads(table.schema.metadata[b"pandas"])
    for col in meta["columns"]:
        if col["numpy_type"] == "string":
            col["pandas_type"], col["numpy_type"] = "unicode", "object"
    return table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(meta)})


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(to_arrow(df), tmp)
    os.replace(tmp, path)
