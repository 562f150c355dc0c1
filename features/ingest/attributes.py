"""The optional table ``customer_attributes``: the company's own customer columns, typed.

Source: ``customer_attributes.csv`` (or ``.parquet``) with ``customer_id`` and one column per
attribute, and ``customer_attributes.schema.json`` beside it naming each attribute's kind
(numeric, categorical, boolean, date) and label (a mapping's ``attributes:`` writes both).
Checked before any table is written: a table without its schema file, a schema without its
table, an unknown kind or an attribute column missing from the file stop the run.

Rows: ``rows in = kept + quarantined``. A row is quarantined when its ``customer_id`` is
empty, repeated or not a clean ``crm_customers`` customer, or when a value does not parse as
its kind (the reason names the column). Clean dtypes: numeric ``float64``, boolean nullable
``boolean``, date ``datetime64`` (midnight), categorical text. The schema file is copied to
``clean/customer_attributes.schema.json`` next to the table.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.ingest.coerce import is_missing, to_bool, to_date, to_float, to_str
from features.ingest.io import Source, SourceContractError, read_columns, read_source, write_parquet
from features.ingest.known import KnownCustomers
from features.ingest.quarantine import REASON_COLUMN
from features.ingest.reasons import Reasons, count_reasons
from features.ingest.report import TableReport

ATTRIBUTE_TABLE = "customer_attributes"
KINDS = {"numeric": (to_float, "not a finite number"),
         "categorical": (to_str, None),
         "boolean": (to_bool, "not a boolean (true/false)"),
         "date": (to_date, "not a valid date (YYYY-MM-DD)")}


def schema_path(folder: Path) -> Path:
    """Where the attributes' schema file (kinds and labels) sits in a folder of tables."""
    return Path(folder) / f"{ATTRIBUTE_TABLE}.schema.json"


def read_schema(folder: Path) -> dict[str, dict]:
    """Attribute name -> ``{"kind", "label", ...}`` from the folder's schema file."""
    path = schema_path(folder)
    try:
        attributes = json.loads(path.read_text())["attributes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceContractError(f"{path}: not a customer_attributes schema ({exc})") from exc
    bad = [n for n, a in attributes.items() if not isinstance(a, dict) or a.get("kind") not in KINDS]
    if bad:
        raise SourceContractError(f"{path}: attribute {bad[0]!r}: kind must be one of "
                                  f"{', '.join(KINDS)}")
    return attributes


@dataclass(frozen=True)
class AttributeSource:
    """The located attribute table and its schema."""

    source: Source
    schema: dict[str, dict]


def locate_attributes(source_dir: Path) -> AttributeSource | None:
    """The attribute table of ``source_dir`` checked against its schema (None: not exported)."""
    source_dir = Path(source_dir)
    paths = [p for p in (source_dir / f"{ATTRIBUTE_TABLE}.parquet",
                         source_dir / f"{ATTRIBUTE_TABLE}.csv") if p.is_file()]
    has_schema = schema_path(source_dir).is_file()
    if not paths and not has_schema:
        return None
    if not paths:
        raise SourceContractError(f"{schema_path(source_dir)}: no {ATTRIBUTE_TABLE} table beside it")
    if not has_schema:
        raise SourceContractError(f"{paths[0]}: its schema file {schema_path(source_dir)} "
                                  "(kinds and labels) is missing")
    schema = read_schema(source_dir)
    columns = read_columns(paths[0])
    missing = [c for c in ("customer_id", *schema) if c not in columns]
    if missing:
        raise SourceContractError(f"{paths[0]}: missing column(s) {', '.join(missing)} "
                                  f"(named in {schema_path(source_dir).name})")
    return AttributeSource(Source(ATTRIBUTE_TABLE, paths[0], columns), schema)


def known_customer_ids(raw: pd.DataFrame, customers: KnownCustomers,
                       reasons: Reasons) -> tuple[pd.Series, np.ndarray]:
    """The rows' customer ids as text, and where they are missing; a missing or unknown id
    gets its reason (a company table keyed by customer, beside the contract's own)."""
    ids = to_str(raw["customer_id"])
    missing = is_missing(raw["customer_id"]).to_numpy()
    reasons.add(missing, "customer_id: missing")
    unknown = ~missing & ~customers.contains(ids)
    reasons.add(unknown, "customer_id: unknown customer (not in crm_customers)")
    return ids, missing


def typed_attributes(raw: pd.DataFrame, schema: dict[str, dict], customers: KnownCustomers,
                     reasons: Reasons) -> pd.DataFrame:
    """customer_id and every attribute in its type; failing rows get their reasons."""
    ids, missing = known_customer_ids(raw, customers, reasons)
    repeated = ~missing & ids.duplicated(keep=False).to_numpy()
    reasons.add(repeated, "customer_id: appears more than once")
    typed = {"customer_id": ids}
    for name, attribute in schema.items():
        parse, message = KINDS[attribute["kind"]]
        values = parse(raw[name])
        if message is not None:
            bad = values.isna().to_numpy() & ~is_missing(raw[name]).to_numpy()
            reasons.add(bad, f"{name}: {message}")
        typed[name] = values
    return pd.DataFrame(typed, index=raw.index)


def ingest_attributes(located: AttributeSource, customers: KnownCustomers, clean_dir: Path,
                      quarantine_dir: Path) -> TableReport:
    """Validate, write clean + quarantine Parquet and the schema file; account for every row."""
    raw = read_source(located.source)
    reasons = Reasons(len(raw))
    typed = typed_attributes(raw, located.schema, customers, reasons)
    clean = typed.loc[~reasons.failed].reset_index(drop=True)
    quarantined = raw.loc[reasons.failed].copy()
    quarantined[REASON_COLUMN] = reasons.series().to_numpy()[reasons.failed]
    write_parquet(clean, Path(clean_dir) / f"{ATTRIBUTE_TABLE}.parquet")
    write_parquet(quarantined.reset_index(drop=True),
                  Path(quarantine_dir) / f"{ATTRIBUTE_TABLE}.parquet")
    shutil.copyfile(schema_path(located.source.path.parent), schema_path(clean_dir))
    extra = [c for c in raw.columns if c != "customer_id" and c not in located.schema]
    return TableReport(table=ATTRIBUTE_TABLE, source=str(located.source.path), rows_in=len(raw),
                       rows_kept=len(clean), rows_quarantined=int(np.sum(reasons.failed)),
                       reasons=count_reasons(quarantined[REASON_COLUMN]), extra_columns=extra)


def remove_attributes(clean_dir: Path, quarantine_dir: Path) -> None:
    """No attributes exported: no table (nor schema) left from an earlier run."""
    for folder in (clean_dir, quarantine_dir):
        (Path(folder) / f"{ATTRIBUTE_TABLE}.parquet").unlink(missing_ok=True)
    schema_path(clean_dir).unlink(missing_ok=True)
