"""Reading source exports (Parquet or CSV) and writing Parquet outputs.

Sources are checked for presence and required columns *before* anything is read
in full or written: :func:`check_sources` raises :class:`SourceContractError`
naming every missing file and every missing column at once.

CSV files: the delimiter (``,`` ``;`` or tab) is sniffed from the header line and a
UTF-8 byte-order mark is skipped. A file that cannot be read (not UTF-8, a broken row,
a corrupt Parquet body) stops the run with a :class:`SourceContractError` naming the
file (and the line of a bad byte). CSV files are read with every column as text
(identifiers keep leading zeros, phone numbers their formatting) and only empty fields
as null; typing is the job of :mod:`features.ingest.coerce`.

Text is held as Arrow-backed ``string[pyarrow]`` while processing (a fraction of
the memory of Python str objects; null checks, ``isin`` and key hashing run in
Arrow). Parquet outputs are marked so that ``pd.read_parquet`` gives the usual
``object`` columns of ``str`` back.
"""

from __future__ import annotations

import csv
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
    delimiter: str = ","

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


BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "\t")
ENCODING_HINT = ("save it as UTF-8, or name its encoding in the mapping's `files:` entry "
                 "(e.g. `encoding: cp1252`)")


def first_line(path: Path, encoding: str = "utf-8") -> str:
    """The header line of a CSV file, without a byte-order mark."""
    with open(path, "rb") as fh:
        raw = fh.readline(1 << 20)
    if not raw.strip():
        raise SourceContractError(f"{path}: empty file (no header line)")
    try:
        return raw.removeprefix(BOM).decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError as exc:
        name = "UTF-8" if encoding.lower().replace("-", "") == "utf8" else encoding
        raise SourceContractError(f"{path}: not {name} text at line 1 (byte {exc.start}); "
                                  f"{ENCODING_HINT}") from exc


def sniff_delimiter(header: str) -> str:
    """The most frequent of ``,`` ``;`` tab in the header line (``,`` when none)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def csv_header(path: Path, encoding: str = "utf-8") -> tuple[tuple[str, ...], str]:
    """Column names of a CSV file and its delimiter."""
    line = first_line(path, encoding)
    delimiter = sniff_delimiter(line)
    names = next(csv.reader([line], delimiter=delimiter))
    return tuple(names), delimiter


def read_columns(path: Path, encoding: str = "utf-8") -> tuple[str, ...]:
    """Column names of a source file, without reading its rows."""
    if path.suffix == ".parquet":
        return tuple(pq.read_schema(path).names)
    return csv_header(path, encoding)[0]


def bad_byte(path: Path, encoding: str = "utf-8") -> tuple[int, int] | None:
    """(line, byte offset) of the first byte that is not valid ``encoding``, or None."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    line, offset = 1, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start - len(decoder.getstate()[0])
                fh.seek(0)
                return line + fh.read(max(bad, 0)).count(b"\n"), bad
            line, offset = line + chunk.count(b"\n"), offset + len(chunk)
    return None


def unreadable(path: Path, exc: Exception) -> SourceContractError:
    """The error of a source file the readers reject, naming the file (and a bad byte)."""
    text = str(exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    if path.suffix != ".parquet" and ("UTF8" in detail or isinstance(exc, UnicodeDecodeError)):
        where = bad_byte(path)
        at = f" at line {where[0]} (byte {where[1]})" if where else ""
        return SourceContractError(f"{path}: not UTF-8 text{at}; {ENCODING_HINT}")
    kind = "Parquet" if path.suffix == ".parquet" else "CSV"
    return SourceContractError(f"{path}: cannot read the {kind} file ({detail})")


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
            found, delimiter = (read_columns(path), ",") if path.suffix == ".parquet" else (
                csv_header(path))
        except SourceContractError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # unreadable file: name it
            problems.append(str(unreadable(path, exc)))
            continue
        missing = [c for c in columns if c not in found]
        if missing:
            problems.append(f"{path}: missing required column(s) {', '.join(missing)}"
                            + _one_column_hint(found))
        sources[table] = Source(table, path, found, delimiter)
    if problems:
        raise contract_error(problems)
    return sources


def contract_error(problems: list[str]) -> SourceContractError:
    """One line for one problem; a list for several."""
    if len(problems) == 1:
        return SourceContractError(f"source data breaks the contract: {problems[0]}")
    return SourceContractError("source data breaks the contract:\n  " + "\n  ".join(problems))


def _one_column_hint(found: tuple[str, ...]) -> str:
    if len(found) != 1:
        return ""
    return (f" (the header reads as one column {found[0][:60]!r}: "
            "the delimiter is none of ',' ';' tab)")


def read_source(source: Source, first_group: int = 0) -> pd.DataFrame:
    """All columns of a source table with a fresh RangeIndex; CSV as text, '' as null.
    ``first_group``: a Parquet file's rows from that row group on (an incremental ingest)."""
    try:
        table = _read_arrow(source, first_group)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise unreadable(source.path, exc) from exc
    df = table.to_pandas(date_as_object=False, types_mapper=_ARROW_STRINGS.get)
    return df.reset_index(drop=True)


def _read_arrow(source: Source, first_group: int = 0) -> pa.Table:
    if source.format == "parquet" and first_group:
        file = pq.ParquetFile(source.path)
        groups = range(first_group, file.num_row_groups)
        return file.read_row_groups(groups) if groups else file.schema_arrow.empty_table()
    if source.format == "parquet":
        return pq.read_table(source.path)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in source.columns},
        null_values=[""],
        strings_can_be_null=True,
    )
    # free text may span lines
    parse = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True)
    return pacsv.read_csv(source.path, parse_options=parse, convert_options=convert)


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
    write_arrow(to_arrow(df), path)


def write_arrow(table: pa.Table, path: Path) -> None:
    """:func:`write_parquet` of a table already in Arrow (see :func:`to_arrow`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
