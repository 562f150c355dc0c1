"""One contract column's staged text from its mapping: value maps, date formats, constants,
dates derived from the export date.

What cannot be read is handled per case (docs/data_contract.md#values-the-mapping-cannot-read):
a source value a value map does not cover is an error naming the mapping key, the file, the
column and the values (``on_unmapped: quarantine`` passes it on instead, so ingest quarantines
the row with the contract's reason); a date that does not match ``date_format`` is passed on
as written and quarantined by ingest; a tenure that is not a whole number of months is an error.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.sources.mapping.spec import ColumnSpec, MappingError

ISO_DATE = "%Y-%m-%d"
ISO_TIME = "%Y-%m-%dT%H:%M:%S"


def as_text(value) -> str:
    """A constant or value-map target as the text ingest parses (``true``/``false`` for bools)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _examples(values: pd.Series, n: int = 5) -> str:
    counts = values.value_counts()
    shown = ", ".join(f"{v!r} ({k} rows)" for v, k in counts.head(n).items())
    return shown + (f" and {len(counts) - n} more" if len(counts) > n else "")


def mapped_values(text: pd.Series, cs: ColumnSpec, where: str, origin: str) -> pd.Series:
    """Apply the value map; empty stays empty; uncovered values per ``on_unmapped``."""
    targets = {k: as_text(v) for k, v in cs.values.items()}
    out = text.map(targets)
    uncovered = text.ne("") & out.isna()
    if uncovered.any() and cs.on_unmapped == "error":
        raise MappingError(f"{where}.values: {origin} has values the value map does not cover: "
                           f"{_examples(text[uncovered])}")
    return out.where(~uncovered, text).fillna("")


def formatted_dates(text: pd.Series, fmt: str, out_format: str) -> pd.Series:
    """Dates written as ``fmt`` -> ISO text; a value that does not parse is passed on as is."""
    parsed = pd.to_datetime(text.where(text.ne("")), format=fmt, errors="coerce")
    return parsed.dt.strftime(out_format).where(parsed.notna(), text)


def months_before(export: pd.Series, months: np.ndarray) -> pd.Series:
    """``export`` dates minus whole ``months`` (day clipped to the month's length)."""
    day0 = export.to_numpy(dtype="datetime64[D]")
    month = day0.astype("datetime64[M]") - months.astype(np.int64)
    day = (day0 - day0.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    length = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)
    return pd.Series(month.astype("datetime64[D]") + np.minimum(day, length - 1), index=export.index)


def derived_signup(text: pd.Series, export: pd.Series, where: str, origin: str) -> pd.Series:
    """Export date minus a tenure in whole months; an empty tenure gives an empty date."""
    months = pd.to_numeric(text.where(text.ne("")), errors="coerce")
    bad = text.ne("") & (months.isna() | (months % 1 != 0) | (months < 0))
    if bad.any():
        raise MappingError(f"{where}.months_before_export: {origin} holds values that are not "
                           f"whole months >= 0: {_examples(text[bad])}")
    known = months.notna() & export.notna()
    out = pd.Series("", index=text.index, dtype=object)
    shifted = months_before(export[known], months[known].to_numpy())
    out[known] = shifted.dt.strftime(ISO_DATE)
    return out


def column_text(cs: ColumnSpec, kind: str, source: pd.Series | None, export: pd.Series | None,
                rows: int, where: str, origin: str) -> pd.Series:
    """The staged text of one contract column (``kind``: its contract type)."""
    if cs.constant is not None:
        return pd.Series(as_text(cs.constant), index=range(rows), dtype=object)
    if cs.export_date:
        return export.dt.strftime(ISO_DATE if kind == "date" else ISO_TIME).fillna("")
    if cs.months_before_export:
        return derived_signup(source, export, where, origin)
    text = source
    if cs.values is not None:
        text = mapped_values(text, cs, where, origin)
    if cs.date_format is not None:
        text = formatted_dates(text, cs.date_format, ISO_DATE if kind == "date" else ISO_TIME)
    return text


def export_dates(observed, column: pd.Series | None, fmt: str | None, rows: int,
                 where: str) -> pd.Series:
    """The export date of every row: one date for the whole export, or a column of dates."""
    if isinstance(observed, date):
        return pd.Series(pd.Timestamp(observed), index=range(rows))
    parsed = pd.to_datetime(column.where(column.ne("")), format=fmt or ISO_DATE, errors="coerce")
    bad = column.ne("") & parsed.isna()
    if bad.any():
        raise MappingError(f"{where}: not dates ({fmt or ISO_DATE}): {_examples(column[bad])}")
    return parsed
