"""Tables of the serving database (SQLAlchemy Core) and the engine that reaches them.

SQLite by default (one file under ``data/serving``), PostgreSQL through a
``postgresql+psycopg://`` URL. Every row a scoring run writes carries its lineage
(run id, model versions, FeatureService, data version). Scoring-run rows are
replaced as a whole (see ``serving.db``); outcomes, event alerts and reps outlive runs.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
)

from configs.settings import Settings
from serving.db.sqlite import sqlite_begin, sqlite_pragmas

metadata = MetaData()
WRITING, COMPLETE, REPLACED = "writing", "complete", "replaced"
ALERT_KINDS = ("detractor", "usage_drop", "high_risk", "save_desk")
DEFAULT_ARM = "policy"   # action_plan.arm of runs written before plans had arms


def _lineage() -> list[Column]:
    return [
        Column("model_versions", Text, nullable=False),
        Column("feature_service", String(64), nullable=False),
        Column("data_version", String(128), nullable=False),
    ]


scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("as_of", Date, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("model_versions", Text, nullable=False),  # JSON {"churn": "3", "nps": "2", ...}
    Column("feature_service", String(64), nullable=False),
    Column("data_version", String(128), nullable=False),
    Column("counts", Text),  # JSON {"customers": n, ...}
    Column("params", Text),  # JSON of the run's parameters
)

action_plan = Table(
    "action_plan",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("customer_id", String(64), primary_key=True),  # at most one action per customer per run
    Column("rep_id", String(64), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("action_id", String(64), nullable=False),
    Column("action_label", String(128)),
    Column("channel", String(32)),
    Column("expected_value", Float),
    Column("p_churn", Float),
    Column("uplift", Float),
    Column("cost", Float),
    Column("why", Text),
    Column("control_group", Boolean, nullable=False),  # randomized hold-out: reps never see it
    Column("arm", String(16)),  # policy | experiment | risk_ranked | random (empty in older runs: policy)
    Column("assignment_probability", Float),  # design probability of what happened to the row
    *_lineage(),
    Index("ix_action_plan_rep", "run_id", "rep_id", "rank"),
)


# ------------------------------------------------------------------ per-run partitions
# The three per-customer tables of a run (a million rows each at scale) live in one table
# per run, ``<kind>__<run_id>``: written without indexes and indexed once loaded, dropped
# whole when the run is replaced or pruned (no row-by-row deletes), and read through a
# view named ``<kind>`` over the complete runs. run_id and lineage are column defaults of
# the partition, so a bulk insert does not bind them for every row, yet every row has them.


def _score_columns() -> list[Column]:
    return [
        Column("customer_id", String(64), nullable=False),
        Column("rep_id", String(64)),
        Column("churn_probability", Float, nullable=False),
        Column("churn_risk_tier", String(32)),
        Column("predicted_nps", Float),
        Column("nps_class", String(16)),
        Column("p_detractor", Float),
        Column("p_passive", Float),
        Column("p_promoter", Float),
        Column("last_nps", Float),
        Column("relationship_stage", String(32)),
        Column("value_at_risk", Float),
        Column("reasons", Text),  # JSON [{"concept","label","sentence","impact"}]
        Column("recommended_action", String(64)),
        Column("expected_value", Float),
        Column("latest_comment", Text),  # shown escaped, never logged
        Column("alert", Text),
        Column("latest_comment_at", DateTime),  # when the latest comment was given
        Column("contact_channels", Text),  # JSON {"phone": "ok"|"opted_out"|"none"|"unknown", "email": ...}
    ]


def _tag_columns() -> list[Column]:
    return [
        Column("customer_id", String(64), nullable=False),
        Column("relationship_stage", String(32)),
        Column("churn_risk_tier", String(32)),
        Column("nps_class", String(16)),
        # what tag hysteresis reads back next run (models/prescribe/tags.py TAG_COLUMNS)
        Column("p_churn", Float),
        Column("nps_score", Float),
        Column("nps_source", String(16)),
        Column("usage_drop_ratio", Float),
        Column("tenure_days", Float),
        Column("state", Text),  # JSON of any further columns the tagger keeps per customer
    ]


def _event_columns() -> list[Column]:
    return [
        Column("customer_id", String(64), nullable=False),
        Column("tag", String(32), nullable=False),
        Column("old_value", String(32)),
        Column("new_value", String(32)),
        Column("changed_at", DateTime, nullable=False),
        Column("cause", Text),
    ]


RUN_KINDS = {"customer_scores": _score_columns, "customer_tags": _tag_columns, "tag_events": _event_columns}
PARTITION_INDEXES = {  # created after the load: (column, unique)
    "customer_scores": [("customer_id", True), ("rep_id", False)],
    "customer_tags": [("customer_id", True)],
    "tag_events": [("customer_id", False)],
}
PRUNED_KINDS = ("customer_scores", "customer_tags")  # tag events are history: kept for every run
TEMPLATE = "template"  # an always-empty partition: the views exist before the first run
_partitions = MetaData()


def partition_name(kind: str, run_id: str) -> str:
    return f"{kind}__{run_id}"


def _run_table(
    name: str, kind: str, meta: MetaData, run_id: str | None, lineage: dict[str, str] | None
) -> Table:
    lineage = lineage or {}
    return Table(
        name,
        meta,
        Column("run_id", String(64), nullable=False, server_default=run_id),
        *RUN_KINDS[kind](),
        *[
            Column(col, type_, nullable=False, server_default=lineage.get(col))
            for col, type_ in (
                ("model_versions", Text),
                ("feature_service", String(64)),
                ("data_version", String(128)),
            )
        ],
    )


def _partition_table(kind: str, run_id: str, meta: MetaData, lineage: dict[str, str] | None) -> Table:
    return _run_table(partition_name(kind, run_id), kind, meta, run_id, lineage)


def partition(kind: str, run_id: str) -> Table:
    """The run's table of this kind, for reading and writing (cached)."""
    name = partition_name(kind, run_id)
    if name in _partitions.tables:
        return _partitions.tables[name]
    return _partition_table(kind, run_id, _partitions, None)


def create_partition(conn: Connection, kind: str, run_id: str, lineage: dict[str, str]) -> None:
    """An empty partition whose run_id and lineage columns default to the run's values."""
    _partition_table(kind, run_id, MetaData(), lineage).create(conn)


def index_partition(conn: Connection, kind: str, run_id: str) -> None:
    table = partition(kind, run_id)
    for column, unique in PARTITION_INDEXES[kind]:
        Index(f"ix_{table.name}_{column}", table.c[column], unique=unique).create(conn)


def drop_partitions(conn: Connection, run_id: str, kinds=tuple(RUN_KINDS)) -> None:
    for kind in kinds:
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{partition_name(kind, run_id)}"')


def sync_views(conn: Connection, run_ids: list[str], exclude: set[str] = frozenset()) -> None:
    """Views ``customer_scores``, ``customer_tags``, ``tag_events`` over the given runs' partitions."""
    existing = set(inspect(conn).get_table_names())
    for kind in RUN_KINDS:
        names = [partition_name(kind, r) for r in [TEMPLATE, *run_ids]]
        names = [n for n in names if n in existing and n not in exclude]
        columns = ", ".join(f'"{c.name}"' for c in partition(kind, TEMPLATE).columns)
        conn.exec_driver_sql(f'DROP VIEW IF EXISTS "{kind}"')
        union = " UNION ALL ".join(f'SELECT {columns} FROM "{n}"' for n in names)
        conn.exec_driver_sql(f'CREATE VIEW "{kind}" AS {union}')


for _kind in RUN_KINDS:  # the templates are ordinary tables of the schema
    _partition_table(
        _kind, TEMPLATE, metadata, {"model_versions": "", "feature_service": "", "data_version": ""}
    )

# The views, as tables to select from (every complete run, ``run_id`` on every row); they are
# declared in their own MetaData so ``create_all`` never creates tables by these names.
views = MetaData()
customer_scores = _run_table("customer_scores", "customer_scores", views, None, None)
customer_tags = _run_table("customer_tags", "customer_tags", views, None, None)
tag_events = _run_table("tag_events", "tag_events", views, None, None)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("rep_id", String(64), index=True),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("comment", Text),  # a detractor's comment: shown escaped, never logged
    Column("raised_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),  # event | scoring
    Column("run_id", String(64), index=True),  # scoring alerts only: replaced with their run
    Column("resolved_at", DateTime),
)

action_outcomes = Table(
    "action_outcomes",
    metadata,
    Column("outcome_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("rep_id", String(64), nullable=False),
    Column("action_id", String(64), nullable=False),
    Column("run_id", String(64), index=True),
    Column("status", String(16), nullable=False),
    Column("decline_reason", Text),
    Column("customer_response", Text),
    Column("recorded_at", DateTime, nullable=False),
    Column("recorded_by", String(64), nullable=False),
)

# Customers whose open alerts or last outcome changed (each outcome or event alert adds a row in
# its own transaction): a service process reads it to drop its in-memory views of them.
customer_changes = Table(
    "customer_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), nullable=False),
    Column("changed_at", DateTime, nullable=False, index=True),
    sqlite_autoincrement=True,  # never reuse a number, even after old rows are pruned
)

usage_readings = Table(
    "usage_readings",
    metadata,
    Column("reading_id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("month", Date, nullable=False),
    Column("usage_units", Float, nullable=False),
    Column("recorded_at", DateTime, nullable=False),
)

reps = Table(
    "reps",
    metadata,
    Column("rep_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex; never the token
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime),  # None: no expiry
)

# Signed-in sessions of the reps' page: the cookie holds a random id, never the API token;
# a session ends at its own expiry or when the token it was opened with is rotated.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),  # sha256 hex of the cookie's value
    Column("token_hash", String(64), nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

SHARED_RUN_TABLES = (action_plan, alerts)  # shared tables with rows keyed by run_id


def make_engine(url: str, create: bool = True) -> Engine:
    """Engine for ``url``; SQLite gets WAL and snapshot reads; tables created if missing."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", sqlite_pragmas)
        event.listen(engine, "begin", sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if create:
        metadata.create_all(engine)
        with engine.begin() as conn:
            if "customer_scores" not in inspect(conn).get_view_names():
                sync_views(conn, [])
            else:   # a database made by an earlier release
                from serving.db.upgrade import add_new_columns

                add_new_columns(conn)
    return engine


def engine_for(settings: Settings) -> Engine:
    """The serving database of ``settings`` (``serving.database_url`` or SQLite under data/serving)."""
    return make_engine(settings.serving_database_url)
