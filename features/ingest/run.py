"""``cem ingest``: source exports -> clean tables + quarantine + report.

Order of work: every table's file and required columns are checked first (a
:class:`SourceContractError` leaves nothing written); then the tables are
processed one at a time in contract order, customers first (foreign keys and the
identifier index come from the *clean* customers), invitations before responses.

Outputs: ``clean_dir/<table>.parquet`` (dtypes: see :mod:`features.ingest.schemas`),
``quarantine_dir/<table>.parquet`` (written for every table present, empty when no
row failed) and ``clean_dir/ingest_report.json``. An absent optional table
(:mod:`features.ingest.requirements`) is listed in the report, and has no files.
The company's own customer columns, when exported (``customer_attributes`` and its schema
file), are validated last, against the clean customers (:mod:`features.ingest.attributes`).

Given the ``previous`` outputs, an ingest validates only the rows appended to the event
tables since then when nothing else changed (:mod:`features.ingest.incremental`); its
outputs equal a full rebuild's. Every run writes ``clean_dir/ingest_manifest.json``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa_schema
import pyarrow as pa

from configs.settings import IngestParams
from features.ingest import identity as idn
from features.ingest import incremental as inc
from features.ingest.attributes import (
    ATTRIBUTE_TABLE,
    ingest_attributes,
    locate_attributes,
    remove_attributes,
)
from features.ingest.cluster.scope import current_scheduler
from features.ingest.coerce import to_date
from features.ingest.event_tables import ingest_events, locate_events
from features.ingest.io import (
    Source,
    check_sources,
    contract_error,
    read_source,
    to_arrow,
    write_arrow,
    write_parquet,
)
from features.ingest.known import CustomerSet, KnownCustomers
from features.ingest.quarantine import (
    REASON_COLUMN,
    clean_frame,
    extra_columns,
    quarantine_frame,
)
from features.ingest.reasons import Reasons, count_reasons
from features.ingest.report import IdentityCounts, IngestReport, TableReport
from features.ingest.requirements import (
    REQUIRED_TABLES,
    complete_columns,
    empty_clean,
    has_churn_dates,
    one_of_problem,
    required_columns,
)
from features.ingest.schemas import (
    SCHEMAS,
    STRING,
    clean_schema,
    primary_key,
    with_known_customers,
)
from features.ingest.validate import export_end, validate_rows

log = logging.getLogger(__name__)
REPORT_FILE = "ingest_report.json"
NO_INVITATION = "survey_id: no invitation to this customer sent at or before responded_at"
INVITATION_COLUMNS = ["invitation_id", "customer_id", "survey_id", "sent_at"]


@dataclass
class _Context:
    """What later tables need from earlier ones."""

    params: IngestParams
    identity: IdentityCounts
    until: pd.Timestamp | None = None        # end of the export (validate.export_end)
    customers: CustomerSet | None = None   # the clean CRM's ids, for the foreign keys
    identifiers: dict[str, pd.DataFrame] | None = None
    invitations: pd.DataFrame | None = None


def resolve_complaints(typed: pd.DataFrame, reasons: Reasons, ctx: _Context) -> pd.DataFrame:
    """Rules 1-3 on complaints (by ``contact_type``); adds ``customer_id``."""
    rows = typed.loc[~reasons.failed]
    kinds = rows["contact_type"].map(idn.COMPLAINT_KINDS)
    res = _resolve(rows["contact"], kinds, ctx)
    reasons.add_texts(idn.identity_reasons(res, "contact"))
    return typed.assign(customer_id=_text(res["customer_id"], typed.index))


def resolve_responses(typed: pd.DataFrame, reasons: Reasons, ctx: _Context) -> pd.DataFrame:
    """Rules 1-5 on survey responses; adds ``customer_id`` and ``invitation_id``."""
    rows = typed.loc[~reasons.failed]
    res = _resolve(rows["respondent"], rows["channel"].map(idn.RESPONSE_KINDS), ctx)
    reasons.add_texts(idn.identity_reasons(res, "respondent"))
    ok = (res["status"] == idn.RESOLVED).to_numpy()
    # .to_numpy(): assigning a Series to an empty frame would adopt the Series' index
    resolved = rows.loc[ok].assign(customer_id=res["customer_id"].to_numpy()[ok])
    texts, invitation_ids = link_responses(resolved, ctx.invitations)
    reasons.add_texts(texts)
    return typed.assign(
        customer_id=_text(resolved["customer_id"], typed.index),
        invitation_id=_text(invitation_ids, typed.index),
    )


def link_responses(resolved: pd.DataFrame, invitations: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Rules 4-5 on resolved responses (per customer, so a cluster runs them per customer
    bucket): the reason of each response left without an invitation or a duplicate, and
    the ``invitation_id`` of each linked one."""
    invitation = idn.link_invitations(resolved, invitations)
    missing = pd.Series(NO_INVITATION, index=invitation.index[invitation.isna()], dtype=object)
    found = invitation.notna().to_numpy()
    linked = resolved.loc[found].assign(invitation_id=invitation.to_numpy()[found])
    kept = idn.duplicate_responses(linked).dropna()
    duplicate = "response_id: duplicate response (kept response_id " + kept + ")"
    return pd.concat([missing, duplicate.astype(object)]), linked["invitation_id"]


def _text(values: pd.Series, index: pd.Index) -> pd.Series:
    """An added id column over all rows of the table (null where not resolved)."""
    return values.reindex(index).astype(STRING)


def _resolve(identifiers: pd.Series, kinds: pd.Series, ctx: _Context) -> pd.DataFrame:
    """Resolve identifiers against the customer index and count the match per kind."""
    res = idn.resolve(identifiers, kinds, ctx.identifiers, ctx.params.phone_digits)
    if res.empty:
        return res
    counts = pd.crosstab(res["kind"], res["status"] == idn.RESOLVED)
    for kind, row in counts.iterrows():  # one row per identifier kind
        ctx.identity.add(str(kind), row.sum(), row.get(True, 0))
    return res


def contract_schema(table: str, columns: tuple[str, ...], known: KnownCustomers | None
                    ) -> pa_schema.DataFrameSchema:
    """The table's checks for this export: a CRM without churn dates may hold churners
    without one; a table keyed by customer checks that the customer is a clean one."""
    schema = SCHEMAS[table]
    if table == "crm_customers" and not has_churn_dates(columns):
        schema = copy.deepcopy(schema)
        schema.checks = [c for c in schema.checks if c.name != "churn_date_required"]
    if "customer_id" in schema.columns and table != "crm_customers":
        schema = with_known_customers(schema, known)
    return schema


def process_table(
    table: str, raw: pd.DataFrame, ctx: _Context, source_columns: tuple[str, ...] | None = None,
    earlier_keys: pa.Table | None = None,
) -> tuple[pd.DataFrame, Reasons]:
    """Validate one table (plus identity resolution) and update the context.

    ``source_columns``: the columns the source file has (default: those of ``raw``); a CRM
    export without churn dates may hold churned customers without one. ``earlier_keys``: the
    keys of the clean rows before ``raw`` (an incremental ingest's appended rows).
    """
    schema = contract_schema(table, source_columns or tuple(raw.columns), ctx.customers)
    if table == "crm_customers":
        observed = to_date(raw["observed_until"]) if "observed_until" in raw else None
        ctx.until = export_end(observed)
    typed, reasons = validate_rows(raw, schema, ctx.until, earlier_keys)
    if table == "complaints":
        typed = resolve_complaints(typed, reasons, ctx)
    elif table == "survey_responses":
        typed = resolve_responses(typed, reasons, ctx)
    clean = clean_frame(typed, reasons, clean_schema(table))
    if table == "crm_customers":
        ctx.customers = CustomerSet(clean["customer_id"])
        ctx.identifiers = idn.build_identifier_index(clean, ctx.params.phone_digits)
    elif table == "survey_invitations":
        ctx.invitations = clean[INVITATION_COLUMNS]
    return clean, reasons


def ingest_table(
    source: Source, ctx: _Context, clean_dir: Path, quarantine_dir: Path
) -> TableReport:
    """Read, validate, write clean + quarantine parquet; account for every row."""
    raw = read_source(source)
    clean, reasons = process_table(
        source.table, complete_columns(raw, source.table), ctx, source.columns
    )
    quarantined = quarantine_frame(raw, reasons)
    write_parquet(clean, clean_dir / f"{source.table}.parquet")
    write_parquet(quarantined, quarantine_dir / f"{source.table}.parquet")
    return TableReport(
        table=source.table,
        source=str(source.path),
        rows_in=len(raw),
        rows_kept=len(clean),
        rows_quarantined=len(quarantined),
        reasons=count_reasons(quarantined["_reason"]),
        extra_columns=extra_columns(raw, SCHEMAS[source.table]),
    )


def append_table(
    source: Source, ctx: _Context, clean_dir: Path, quarantine_dir: Path, plan: inc.Plan
) -> TableReport:
    """:func:`ingest_table` of the rows appended since the previous ingest, written after
    the previous clean and quarantined rows; the report counts the whole table."""
    table, earlier = source.table, plan.earlier[source.table]
    raw = inc.new_rows(source, earlier)
    old_clean = inc.earlier_table(plan, "clean", table)
    keys = old_clean.select(primary_key(SCHEMAS[table]))
    clean, reasons = process_table(table, complete_columns(raw, table), ctx, source.columns, keys)
    clean = inc.append_rows(old_clean, to_arrow(clean))
    quarantined = inc.append_rows(inc.earlier_table(plan, "quarantine", table),
                                  to_arrow(quarantine_frame(raw, reasons)))
    if table == "survey_invitations":
        ctx.invitations = clean.select(INVITATION_COLUMNS).to_pandas(
            types_mapper={pa.string(): STRING}.get)
    write_arrow(clean, clean_dir / f"{table}.parquet")
    write_arrow(quarantined, quarantine_dir / f"{table}.parquet")
    return TableReport(
        table=table, source=str(source.path), rows_in=earlier.rows + len(raw),
        rows_kept=clean.num_rows, rows_quarantined=quarantined.num_rows,
        reasons=count_reasons(quarantined.column(REASON_COLUMN).to_pandas().astype(object)
                              if quarantined.num_rows else pd.Series([], dtype=object)),
        extra_columns=extra_columns(raw, SCHEMAS[table]),
    )


def check_one_of(sources: dict[str, Source]) -> None:
    """A table lacking every column of a one-of group (the CRM's status / churn_date)."""
    problems = [f"{s.path}: {why}" for s in sources.values()
                if (why := one_of_problem(s.table, s.columns))]
    if problems:
        raise contract_error(problems)


def skip_table(
    table: str, ctx: _Context, report: IngestReport, clean_dir: Path, quarantine_dir: Path
) -> None:
    """An absent optional table: reported, and no clean file left from an earlier run."""
    report.missing_tables.append(table)
    for folder in (clean_dir, quarantine_dir):
        (folder / f"{table}.parquet").unlink(missing_ok=True)
    if table == "survey_invitations":  # responses then find no invitation
        ctx.invitations = empty_clean(table)[["invitation_id", "customer_id", "survey_id",
                                              "sent_at"]]


def locate_sources(source_dir: Path, params: IngestParams):
    """Every table, the attribute table and the event tables of an export, checked before
    anything is read in full (a :class:`SourceContractError` names every problem)."""
    required = {table: required_columns(table) for table in SCHEMAS}
    optional = [t for t in SCHEMAS if t not in REQUIRED_TABLES]
    sources = check_sources(Path(source_dir), required, params.source_format, optional)
    check_one_of(sources)
    return sources, locate_attributes(Path(source_dir)), locate_events(Path(source_dir))


def run_ingest(
    source_dir: Path,
    clean_dir: Path,
    quarantine_dir: Path,
    params: IngestParams,
    on_table: Callable[[str], None] | None = None,
    previous: tuple[Path, Path] | None = None,
) -> IngestReport:
    """Ingest every contract table of ``source_dir``; see the module docstring.

    ``previous``: the clean and quarantine folders of the last ingest (may be ``clean_dir``
    and ``quarantine_dir`` themselves); their earlier rows are reused when nothing changed.
    Inside ``cluster.ingest_on(scheduler)`` (``cem ingest`` and ``cem cycle`` with
    ``cluster.address``) it runs per partition on that Dask scheduler's workers, full or
    incremental: the same files (:mod:`features.ingest.cluster`).
    """
    if (scheduler := current_scheduler()) is not None:
        from features.ingest.cluster.driver import ingest_at

        return ingest_at(scheduler, source_dir, clean_dir, quarantine_dir, params, on_table,
                         previous=previous)
    sources, attributes, events = locate_sources(Path(source_dir), params)
    plan = inc.plan_append(previous, sources, params)
    (Path(clean_dir) / inc.MANIFEST).unlink(missing_ok=True)   # stale once a table is written
    report = IngestReport()
    ctx = _Context(params=params, identity=report.identity)
    validated: dict[str, int] = {}
    for table in SCHEMAS:
        if table in sources and plan.appends and table in plan.earlier:
            report.tables[table] = append_table(
                sources[table], ctx, Path(clean_dir), Path(quarantine_dir), plan)
            validated[table] = report.tables[table].rows_in - plan.earlier[table].rows
        elif table in sources:
            report.tables[table] = ingest_table(
                sources[table], ctx, Path(clean_dir), Path(quarantine_dir)
            )
            validated[table] = report.tables[table].rows_in
            if table == "crm_customers" and plan.appends:
                plan.reason = inc.confirm(plan, ctx.until, ctx.customers)
        else:
            skip_table(table, ctx, report, Path(clean_dir), Path(quarantine_dir))
        if on_table is not None:
            on_table(table)
    if attributes is None:
        remove_attributes(Path(clean_dir), Path(quarantine_dir))
    else:
        report.tables[ATTRIBUTE_TABLE] = ingest_attributes(
            attributes, ctx.customers, Path(clean_dir), Path(quarantine_dir))
    for table_report in ingest_events(events, ctx.customers, Path(clean_dir),
                                      Path(quarantine_dir)):
        report.tables[table_report.table] = table_report
    report.write_json(Path(clean_dir) / REPORT_FILE)
    log_plan(plan, validated)
    inc.write_manifest(Path(clean_dir), inc.manifest(plan, sources, params, ctx.until, validated))
    return report


def log_plan(plan: inc.Plan, validated: dict[str, int]) -> None:
    if plan.appends:
        log.info("ingest: appended rows only (%s)",
                 ", ".join(f"{t} {validated[t]:,}" for t in plan.earlier))
    else:
        log.info("ingest: full rebuild (%s)", plan.reason)
