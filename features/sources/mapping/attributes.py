"""The ``attributes:`` of a mapping: the company's own customer columns (contract type,
monthly charge, age, ...) kept as features, as the optional table ``customer_attributes``.

Each attribute names one source column, its kind (numeric, categorical, boolean, date) and
a label in plain words (what reasons and key drivers call it). The rows are those of
``crm_customers`` (its first file; other files are joined on their key), so an attribute
never holds a customer the CRM table does not. Staged like a contract table, as text:
``<staging>/customer_attributes.csv`` plus ``customer_attributes.schema.json`` (kinds and
labels), which ingest validates (:mod:`features.ingest.attributes`).
Format: docs/data_contract.md#customer-attributes
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from features.ingest.attributes import ATTRIBUTE_TABLE, schema_path
from features.sources.mapping.read import read_table_sources
from features.sources.mapping.spec import AttributeSpec, MappingSpec, TableSpec
from features.sources.mapping.values import ISO_DATE, formatted_dates, mapped_values

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
ID_KEY = "tables.crm_customers.columns.customer_id"
#: The value-map targets each kind accepts.
TARGETS = {"numeric": (int, float), "categorical": (str,), "boolean": (bool,), "date": (str,)}


def attribute_problems(spec: MappingSpec) -> list[str]:
    """Every problem of the ``attributes:`` section (empty: it may be applied)."""
    if not spec.attributes:
        return []
    crm = spec.tables.get("crm_customers")
    if crm is None:
        return []                              # reported by the table rules
    problems = []
    ident = crm.columns.get("customer_id")
    if ident is not None and not ident.column:
        problems.append("attributes: crm_customers.customer_id must be read from a column "
                        "to key the attributes")
    for name, at in spec.attributes.items():
        problems += _problems(spec, crm, name, at, f"attributes.{name}")
    files = attribute_files(spec, crm)
    if len(files) > len(crm.files):        # crm's own files: checked by the table rules
        problems += [f"files.{f}.key: needed to join {f!r} into customer_attributes"
                     for f in files if f in spec.files and not spec.files[f].key]
    return sorted(set(problems), key=problems.index)


def _problems(spec: MappingSpec, crm: TableSpec, name: str, at: AttributeSpec,
              where: str) -> list[str]:
    problems = []
    if not NAME.match(name) or name == "customer_id":
        problems.append(f"{where}: name attributes in snake_case (a-z, 0-9, _; at most 48 "
                        "characters; not customer_id)")
    if at.column in spec.never_features:
        problems.append(f"{where}: {at.column!r} is an outcome column (never_features): "
                        "it cannot be an attribute")
    if at.file is not None and at.file not in spec.files:
        problems.append(f"{where}.file: {at.file!r} is not defined under files")
    if at.date_format is not None and at.kind != "date":
        problems.append(f"{where}.date_format: only for kind date (this is {at.kind})")
    bad = [v for v in (at.values or {}).values() if not _fits(v, at.kind)]
    if bad:
        problems.append(f"{where}.values: {', '.join(map(repr, bad))} not a {at.kind} value")
    return problems


def _fits(value, kind: str) -> bool:
    if kind == "numeric" and isinstance(value, bool):
        return False
    return isinstance(value, TARGETS[kind])


def attribute_files(spec: MappingSpec, crm: TableSpec) -> list[str]:
    """crm_customers' files, then any other file an attribute names (joined on its key)."""
    extra = [a.file for a in spec.attributes.values() if a.file and a.file not in crm.files]
    return list(dict.fromkeys([*crm.files, *extra]))


def build_attributes(spec: MappingSpec, source_dir: Path) -> pd.DataFrame:
    """The staged text of ``customer_attributes``: customer_id, then one column per attribute."""
    crm = spec.tables["crm_customers"]
    ident = crm.columns["customer_id"]
    wanted = {ID_KEY: (ident.column, ident.file)}
    wanted |= {f"attributes.{n}": (a.column, a.file) for n, a in spec.attributes.items()}
    src = read_table_sources(spec, source_dir, TableSpec(files=attribute_files(spec, crm),
                                                         columns={}), wanted)
    out = {"customer_id": src.of(ID_KEY)[0].to_numpy()}
    for name, at in spec.attributes.items():
        text, origin = src.of(f"attributes.{name}")
        if at.values is not None:
            text = mapped_values(text, at, f"attributes.{name}", origin)
        if at.date_format is not None:
            text = formatted_dates(text, at.date_format, ISO_DATE)
        out[name] = text.to_numpy()
    return pd.DataFrame(out, index=range(src.rows))


def attribute_schema(spec: MappingSpec) -> dict:
    """Kinds, labels and source columns of the attributes (the table's schema file)."""
    return {"table": ATTRIBUTE_TABLE,
            "attributes": {n: {"kind": a.kind, "label": a.label, "column": a.column}
                           for n, a in spec.attributes.items()}}


def write_attributes(spec: MappingSpec, frame: pd.DataFrame, staging_dir: Path) -> None:
    """Write the staged table and its schema file."""
    frame.to_csv(Path(staging_dir) / f"{ATTRIBUTE_TABLE}.csv", index=False)
    schema_path(staging_dir).write_text(json.dumps(attribute_schema(spec), indent=2) + "\n")
