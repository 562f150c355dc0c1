"""A mapping checked against the data contract, before any source file is read.

Each problem names the mapping key (``tables.crm_customers.columns.status``) and what is
wrong. The outcome rule lives here: a column listed under ``never_features`` may feed only
``crm_customers.status`` and ``churn_date``, so the label never becomes anything else.
"""

from __future__ import annotations

from features.ingest.requirements import ONE_OF, required_columns
from features.ingest.schemas import SCHEMAS, column_kind
from features.sources.mapping.attributes import attribute_problems
from features.sources.mapping.events import event_problems
from features.sources.mapping.spec import SCALES, ColumnSpec, MappingSpec, TableSpec

#: The only contract columns an outcome (``never_features``) column may feed.
OUTCOME_TARGETS = {("crm_customers", "status"), ("crm_customers", "churn_date")}
#: Which declared scales each survey column accepts (the answer keeps its scale).
SCALE_COLUMNS = {"nps": ("nps_0_10",), "csat": ("csat_1_5", "stars_1_5"),
                 "effort": ("effort_1_7",)}
DATE_KINDS = ("date", "timestamp")


def check_spec(spec: MappingSpec) -> list[str]:
    """Every contract problem of the mapping (empty: it may be applied)."""
    problems: list[str] = []
    if not spec.tables.get("crm_customers"):
        problems.append("tables.crm_customers: required (the customers, with a status or a "
                        "churn date)")
    for name, fs in spec.files.items():
        if fs.key and fs.key in spec.never_features:
            problems.append(f"files.{name}.key: {fs.key!r} is listed in never_features")
    for table, ts in spec.tables.items():
        where = f"tables.{table}"
        if table not in SCHEMAS:
            problems.append(f"{where}: unknown contract table (known: {', '.join(SCHEMAS)})")
            continue
        problems += _table_problems(spec, table, ts, where)
    return problems + attribute_problems(spec) + event_problems(spec)


def _table_problems(spec: MappingSpec, table: str, ts: TableSpec, where: str) -> list[str]:
    problems = [f"{where}.files: {f!r} is not defined under files"
                for f in ts.files if f not in spec.files]
    if not ts.files:
        problems.append(f"{where}.files: name at least one file")
    if len(ts.files) > 1:
        problems += [f"files.{f}.key: needed to join {f!r} into {table}"
                     for f in ts.files if f in spec.files and not spec.files[f].key]
    unknown = [c for c in ts.columns if c not in SCHEMAS[table].columns]
    problems += [f"{where}.columns.{c}: not a column of the contract table {table}"
                 for c in unknown]
    missing = [c for c in required_columns(table) if c not in ts.columns]
    if missing:
        problems.append(f"{where}.columns: required contract column(s) not mapped: "
                        f"{', '.join(missing)}")
    group = ONE_OF.get(table, ())
    if group and not set(group) & set(ts.columns):
        problems.append(f"{where}.columns: map {' or '.join(group)}")
    for col, cs in ts.columns.items():
        if col not in unknown:
            problems += _column_problems(spec, table, col, cs, ts, f"{where}.columns.{col}")
    return problems


def _column_problems(spec: MappingSpec, table: str, col: str, cs: ColumnSpec, ts: TableSpec,
                     where: str) -> list[str]:
    problems = []
    kind = column_kind(SCHEMAS[table], col)
    if cs.source_column in spec.never_features and (table, col) not in OUTCOME_TARGETS:
        problems.append(f"{where}: {cs.source_column!r} is an outcome column (never_features): "
                        "only crm_customers.status and churn_date may read it")
    if cs.file is not None and cs.file not in ts.files:
        problems.append(f"{where}.file: {cs.file!r} is not one of the table's files")
    if (cs.months_before_export or cs.export_date or cs.date_format) and kind not in DATE_KINDS:
        problems.append(f"{where}: a date mapping on a {kind} column")
    if (cs.months_before_export or cs.export_date) and spec.observed_until is None:
        problems.append(f"{where}: derived from the export date, but observed_until is not set")
    if cs.scale is not None and cs.scale not in SCALE_COLUMNS.get(col, ()):
        accepted = ", ".join(SCALE_COLUMNS.get(col, ())) or "none (not a survey answer)"
        problems.append(f"{where}.scale: {cs.scale} ({SCALES[cs.scale][0]}-"
                        f"{SCALES[cs.scale][1]}) does not fit {col}; accepted: {accepted}")
    if cs.values is not None:
        problems += _value_problems(table, col, kind, cs.values, f"{where}.values")
    return problems


def _value_problems(table: str, col: str, kind: str, values: dict, where: str) -> list[str]:
    """Value-map targets must be values the contract accepts."""
    allowed = contract_values(table, col)
    if kind == "bool":
        bad = [v for v in values.values() if not isinstance(v, bool)]
    elif allowed is not None:
        bad = [v for v in values.values() if v not in allowed]
    else:
        return []
    if not bad:
        return []
    accepted = "true, false" if kind == "bool" else ", ".join(allowed)
    return [f"{where}: {', '.join(map(repr, bad))} not accepted by {table}.{col} "
            f"(accepted: {accepted})"]


def contract_values(table: str, col: str) -> tuple | None:
    """The values a contract column accepts when it is a fixed list (``one_of``), else None."""
    for check in SCHEMAS[table].columns[col].checks:
        allowed = (check.statistics or {}).get("allowed_values")
        if allowed is not None:
            return tuple(allowed)
    return None
