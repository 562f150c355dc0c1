"""The same serving-database guarantees against a real PostgreSQL server (COPY bulk path)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from serving.db.schema import make_engine as _make
from serving.db.upgrade import drop_all
from serving.db.write import make_engine
from tests.servers import postgres_server
from tests.serving.db import dbchecks

DAY1, DAY2 = date(2025, 1, 6), date(2025, 1, 13)


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def engine(pg_url):
    engine = make_engine(pg_url)
    yield engine
    drop_all(engine)
    engine.dispose()


def test_postgres_is_really_used(engine):
    with engine.connect() as conn:
        assert "PostgreSQL" in conn.execute(text("select version()")).scalar()


def test_lineage_and_idempotence_on_postgres(engine):
    dbchecks.check_idempotent(engine, DAY1, DAY2)
    dbchecks.check_lineage_on_every_row(engine)


def test_failed_write_leaves_the_previous_run_visible_on_postgres(engine, monkeypatch):
    dbchecks.check_failed_write_keeps_previous_run(engine, monkeypatch, DAY1, DAY2)


def test_reader_between_write_and_flip_on_postgres(engine, monkeypatch):
    dbchecks.check_reader_between_phases(engine, monkeypatch, DAY1, DAY2)


def test_outcomes_export_and_previous_tags_on_postgres(engine, pg_url):
    dbchecks.check_outcomes_survive_rerun(engine, DAY1, DAY2)
    drop_all(engine)
    _make(pg_url).dispose()                                  # a fresh schema
    dbchecks.check_previous_tags(engine, DAY1, DAY2)
