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
)

from configs.settings import Settings

metadata = MetaData()
WRITING, COMPLETE, REPLACED = "writing", "complete", "replaced"
OUTCOME_STATUSES = ("done", "declined", "no_answer")
ALERT_KINDS = ("detractor", "usage_drop")
ROLES = ("rep", "manager")


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

customer_scores = Table(
    "customer_scores",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
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
    *_lineage(),
    Index("ix_customer_scores_rep", "run_id", "rep_id"),
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
    *_lineage(),
    Index("ix_action_plan_rep", "run_id", "rep_id", "rank"),
)

customer_tags = Table(
    "customer_tags",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("customer_id", String(64), primary_key=True),
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
    *_lineage(),
)

tag_events = Table(
    "tag_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("tag", String(32), nullable=False),
    Column("old_value", String(32)),
    Column("new_value", String(32)),
    Column("changed_at", DateTime, nullable=False),
    Column("cause", Text),
    *_lineage(),
)

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
)

RUN_TABLES = (customer_scores, action_plan, customer_tags, tag_events)  # rows keyed by run_id


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers keep reading the last complete run while a run is written."""
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MB: bulk writes keep index pages in memory
    cursor.close()


def _sqlite_begin(conn) -> None:
    """A real BEGIN for every transaction, reads included, so a reader's statements see one snapshot."""
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str, create: bool = True) -> Engine:
    """Engine for ``url``; SQLite gets WAL and snapshot reads; tables created if missing."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if create:
        metadata.create_all(engine)
    return engine


def engine_for(settings: Settings) -> Engine:
    """The serving database of ``settings`` (``serving.database_url`` or SQLite under data/serving)."""
    return make_engine(settings.serving_database_url)
