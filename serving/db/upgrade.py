"""Keeping an existing serving database in step with the schema: columns a newer release
added to the run tables, and removing the whole schema (tests, resets). Apart from
:mod:`serving.db.schema`, which declares the tables, because only old databases and resets
need it."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, select

from serving.db.schema import (
    COMPLETE,
    RUN_KINDS,
    TEMPLATE,
    action_plan,
    metadata,
    partition,
    partition_name,
    scoring_runs,
    sync_views,
)


def add_plain_columns(conn: Connection, tables=(action_plan,)) -> None:
    """Columns a newer release added to an ordinary table (``action_plan``'s ``arm`` and
    ``assignment_probability``), nullable: rows of older runs read them as empty."""
    inspector = inspect(conn)
    for table in tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in (c for c in table.columns if c.name not in have):
            kind_sql = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind_sql}')


def add_new_columns(conn: Connection) -> None:
    """A database made before a run-table column existed gets it (nullable: older runs read it as
    empty) in its template and every partition, and its views are rebuilt over the complete runs."""
    add_plain_columns(conn)
    inspector = inspect(conn)
    tables = inspector.get_table_names()
    changed = False
    for kind in RUN_KINDS:
        have = {c["name"] for c in inspector.get_columns(partition_name(kind, TEMPLATE))}
        missing = [c for c in partition(kind, TEMPLATE).columns if c.name not in have]
        for name in (t for t in tables if t == partition_name(kind, TEMPLATE) or t.startswith(f"{kind}__r")):
            for column in missing:
                kind_sql = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE "{name}" ADD COLUMN "{column.name}" {kind_sql}')
        changed = changed or bool(missing)
    if changed:
        runs = conn.execute(select(scoring_runs.c.run_id).where(scoring_runs.c.status == COMPLETE))
        sync_views(conn, list(runs.scalars()))


def drop_all(engine: Engine) -> None:
    """Remove the whole serving schema: views, every run's partitions, then the tables."""
    with engine.begin() as conn:
        for kind in RUN_KINDS:
            conn.exec_driver_sql(f'DROP VIEW IF EXISTS "{kind}"')
        for name in inspect(conn).get_table_names():
            if any(name.startswith(f"{kind}__r") for kind in RUN_KINDS):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')
    metadata.drop_all(engine)
