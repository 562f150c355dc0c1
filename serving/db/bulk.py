"""Bulk inserts of DataFrames into the serving database, fast enough for a million rows.

SQLite: one ``executemany`` per chunk inside the caller's transaction. PostgreSQL:
``COPY ... FROM STDIN`` through psycopg. Values are turned into plain Python values
column by column (vectorised), chunk by chunk so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Boolean, Connection, Date, DateTime, Float, Integer, Table

CHUNK_ROWS = 100_000


def _nullable(values: np.ndarray, missing: np.ndarray) -> list:
    out = values.astype(object)
    out[missing] = None
    return out.tolist()


def _dates(series: pd.Series, fmt: str) -> list:
    """Timestamps as text, formatted once per distinct value (a run's events share a few times)."""
    stamps = pd.to_datetime(series)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    codes, uniques = pd.factorize(stamps)
    text = np.append(pd.DatetimeIndex(uniques).strftime(fmt).to_numpy(dtype=object), None)
    return text[codes].tolist()  # code -1 (missing) picks the trailing None


def column_values(series: pd.Series, column) -> list:
    """Plain Python values (None for missing) that SQLite and COPY both accept for ``column``."""
    kind = column.type
    if isinstance(kind, DateTime):
        return _dates(series, "%Y-%m-%d %H:%M:%S.%f")
    if isinstance(kind, Date):
        return _dates(series, "%Y-%m-%d")
    if isinstance(kind, Boolean):
        return _nullable(series.fillna(False).astype(bool).to_numpy(), series.isna().to_numpy())
    if isinstance(kind, Float):
        arr = pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)
        return _nullable(arr, np.isnan(arr))
    if isinstance(kind, Integer):
        missing = series.isna().to_numpy()
        return _nullable(series.fillna(0).astype(np.int64).to_numpy(), missing)
    missing = series.isna().to_numpy()
    values = (
        series.to_numpy(dtype=object) if series.dtype == object else series.astype(str).to_numpy(dtype=object)
    )
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values.tolist()


def _rows(frame: pd.DataFrame, table: Table, columns: list[str]) -> Iterator[Iterator[tuple]]:
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start : start + CHUNK_ROWS]
        values = [column_values(part[c], table.c[c]) for c in columns]
        yield zip(*values, strict=True)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` (its columns must be columns of ``table``); returns the count."""
    if frame.empty:
        return 0
    columns = list(frame.columns)
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for chunk in _rows(frame, table, columns):
                for row in chunk:
                    copy.write_row(row)
    else:
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(columns))})'
        cursor = conn.connection.driver_connection.cursor()  # the transaction's own connection
        try:
            for chunk in _rows(frame, table, columns):
                cursor.executemany(sql, chunk)  # streams the rows, no list of tuples
        finally:
            cursor.close()
    return len(frame)
