"""The source mapping file (``configs/sources/*.yaml``) as pydantic models, and its loading.

A mapping says which source files feed each contract table and how every contract column
is made from them (a column, renamed and value-mapped; a constant; a date derived from the
export date), so that a company export reaches ``cem ingest`` with no code of its own.
Checks against the contract: :mod:`.rules`. Format, with an annotated example:
docs/data_contract.md#the-source-mapping-file
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.ingest.io import SourceContractError

#: Declared answer scales of survey columns: (low, high).
SCALES = {"nps_0_10": (0, 10), "csat_1_5": (1, 5), "stars_1_5": (1, 5), "effort_1_7": (1, 7)}
#: Where a column's value comes from: exactly one of these keys.
SOURCES = ("column", "constant", "months_before_export", "export_date")


class MappingError(SourceContractError):
    """A mapping file, or the source files it names, cannot be applied; one line, naming the
    mapping key and the file/column."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Strict):
    """One source file, relative to ``--source``; ``key``: its customer key column."""

    path: str
    key: str | None = None
    encoding: str = "utf-8"     # text encoding of a CSV file (e.g. cp1252, latin-1)


class ExportColumn(_Strict):
    """The export date given per row, in a source column."""

    column: str
    date_format: str | None = None


class ColumnSpec(_Strict):
    """How one contract column is made; a plain string in YAML means ``{column: ...}``."""

    column: str | None = None
    constant: str | int | float | bool | None = None
    months_before_export: str | None = None   # a column of whole months -> export date - months
    export_date: bool = False
    file: str | None = None                   # which of the table's files (default: the first
                                              # that has the column)
    values: dict[str, str | bool | int] | None = None
    on_unmapped: Literal["error", "quarantine"] = "error"
    date_format: str | None = None            # strftime format of the source dates
    scale: Literal["nps_0_10", "csat_1_5", "stars_1_5", "effort_1_7"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        return {"column": data} if isinstance(data, str) else data

    @field_validator("values", mode="before")
    @classmethod
    def _text_keys(cls, values):
        """Source values are compared as text: YAML keys ``1`` or ``1.5`` mean ``"1"``, ``"1.5"``."""
        if not isinstance(values, dict):
            return values
        return {(str(k).lower() if isinstance(k, bool) else str(k)): v for k, v in values.items()}

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in SOURCES
                 if (self.constant is not None if k == "constant" else getattr(self, k))]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SOURCES)} (got {given or 'none'})")
        if self.column is None and (self.values or self.date_format or self.scale):
            raise ValueError("values, date_format and scale apply to a column only")
        return self

    @property
    def source_column(self) -> str | None:
        """The source column read (a column, or the months of a derived date)."""
        return self.column or self.months_before_export


class TableSpec(_Strict):
    """One contract table: its files (the first gives the rows; the others are joined on their
    ``key``) and its columns by contract name."""

    files: list[str]
    columns: dict[str, ColumnSpec]


class AttributeSpec(_Strict):
    """One of the company's own customer columns kept as a feature (``attributes:``): its
    source column, its kind and the plain words that name it in reasons and key drivers."""

    column: str
    file: str | None = None                   # default: the first crm_customers file with it
    kind: Literal["numeric", "categorical", "boolean", "date"]
    label: str = Field(min_length=1)
    values: dict[str, str | bool | int | float] | None = None
    on_unmapped: Literal["error", "quarantine"] = "error"
    date_format: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _text_keys(cls, values):
        return ColumnSpec._text_keys(values)


class MeasureSpec(_Strict):
    """One numeric measure of an event table: its source column and the words that name it."""

    column: str
    label: str = Field(min_length=1)


class EventSpec(_Strict):
    """One table of timestamped events (``events:``): its file (with the customer ``key``),
    when each event happened and the numeric measures it carries."""

    file: str
    label: str | None = None                  # what one event is called (default: the name)
    timestamp: ExportColumn
    measures: dict[str, MeasureSpec] = {}


class MappingSpec(_Strict):
    """A whole mapping file."""

    name: str = ""
    observed_until: date | ExportColumn | None = None
    files: dict[str, FileSpec]
    never_features: list[str] = []
    tables: dict[str, TableSpec]
    attributes: dict[str, AttributeSpec] = {}
    events: dict[str, EventSpec] = {}
