"""Reading the source files of one contract table and joining them on their keys.

Only the columns the mapping names are read (plus the join keys): a column the mapping
does not map is never loaded, so it cannot reach a table. Values are text, stripped, with
``""`` for empty; typing is the job of ingest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.ingest.io import SourceContractError, csv_header, read_columns, unreadable
from features.sources.mapping.spec import MappingError, MappingSpec, TableSpec


@dataclass(frozen=True)
class TableSources:
    """The source columns of one contract table, aligned on the rows of its first file."""

    rows: int
    values: dict[tuple[str, str], pd.Series]   # (file name, column) -> text per row
    paths: dict[str, Path]
    located: dict[str, tuple[str, str]]        # mapping key -> (file name, column)

    def of(self, where: str) -> tuple[pd.Series, str]:
        """The values read for a mapping key, and how an error names their origin."""
        file, column = self.located[where]
        return self.values[(file, column)], f"{self.paths[file]} column {column!r}"


def file_path(spec: MappingSpec, source_dir: Path, name: str) -> Path:
    path = Path(source_dir) / spec.files[name].path
    if not path.is_file():
        raise MappingError(f"files.{name}: {path} not found")
    return path


def locate_column(headers: dict[str, tuple[str, ...]], paths: dict[str, Path], files: list[str],
                  column: str, file: str | None, where: str) -> str:
    """The file (name) of ``column``: the given one, else the first of ``files`` that has it."""
    for name in [file] if file else files:
        if column in headers[name]:
            return name
    searched = ", ".join(str(paths[n]) for n in ([file] if file else files))
    raise MappingError(f"{where}: column {column!r} not in {searched}")


def read_text(path: Path, columns: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    """``columns`` of a CSV or Parquet file as stripped text, ``""`` where empty; a file that
    cannot be read is named (with the line of a byte not in ``encoding``)."""
    try:
        if path.suffix == ".parquet":
            frame = pq.read_table(path, columns=columns).to_pandas()
            frame = frame.astype(object).where(frame.notna(), "").astype(str)
        else:
            delimiter = csv_header(path, encoding)[1]
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False,
                                usecols=columns, sep=delimiter, encoding=encoding)
    except SourceContractError as exc:
        raise MappingError(str(exc)) from exc
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(exc, UnicodeDecodeError) and encoding.lower().replace("-", "") != "utf8":
            raise MappingError(f"{path}: not {encoding} text ({exc.reason}); check the "
                               "`encoding:` of its `files:` entry") from exc
        raise MappingError(str(unreadable(path, exc))) from exc
    return frame[columns].apply(lambda s: s.str.strip())


def _header(path: Path, encoding: str) -> tuple[str, ...]:
    try:
        return read_columns(path, encoding)
    except SourceContractError as exc:
        raise MappingError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - an unreadable file is named, whatever broke
        raise MappingError(str(unreadable(path, exc))) from exc


def read_table_sources(spec: MappingSpec, source_dir: Path, ts: TableSpec,
                       wanted: dict[str, tuple[str, str | None]]) -> TableSources:
    """Read ``wanted`` (mapping key -> (column, file or None)) from the table's files.

    The first file gives the rows; every other file is joined on its ``key`` (a left join:
    a customer missing there gets empty values; a key twice there is an error).
    """
    paths = {f: file_path(spec, source_dir, f) for f in ts.files}
    headers = {f: _header(p, spec.files[f].encoding) for f, p in paths.items()}
    keyed = len(ts.files) > 1
    for f in ts.files if keyed else ():
        key = spec.files[f].key
        if key not in headers[f]:
            raise MappingError(f"files.{f}.key: column {key!r} not in {paths[f]}")
    where_of = {}
    for where, (column, file) in wanted.items():
        where_of[where] = (locate_column(headers, paths, ts.files, column, file, where), column)
    needed = {f: sorted({c for g, c in where_of.values() if g == f}
                        | ({spec.files[f].key} if keyed else set())) for f in ts.files}
    base = ts.files[0]
    needed[base] = needed[base] or [headers[base][0]]     # the first file gives the rows
    frames = {f: read_text(paths[f], cols, spec.files[f].encoding)
              for f, cols in needed.items() if cols}
    rows = len(frames[base])
    values = {}
    for f, frame in frames.items():
        joined = frame if f == base else _join(frame, frames[base], spec, f, base, paths[f])
        for col in frame.columns:
            values[(f, col)] = joined[col].reset_index(drop=True)
    return TableSources(rows, values, paths, where_of)


def _join(frame: pd.DataFrame, base: pd.DataFrame, spec: MappingSpec, name: str, base_name: str,
          path: Path) -> pd.DataFrame:
    """``frame``'s rows in the order of ``base``'s keys; empty where a key is not there."""
    key = spec.files[name].key
    dup = frame[key].duplicated()
    if dup.any():
        raise MappingError(f"files.{name}.key: {key!r} is not unique in {path} "
                           f"(e.g. {frame.loc[dup, key].iloc[0]!r}): cannot join")
    indexed = frame.set_index(key)
    joined = indexed.reindex(base[spec.files[base_name].key].to_numpy()).fillna("")
    return joined.reset_index(drop=True).assign(**{key: base[spec.files[base_name].key].to_numpy()})
