"""A cluster run on PostgreSQL, its customers' rows written by the buckets' workers: the same
tables, row for row, as the in-process run; invisible to readers until the client's flip;
and a worker that fails mid-write, or a client that never finishes, leaves no visible run
and nothing the next write does not remove. On a real PostgreSQL server and a LocalCluster
of 2 worker processes (serving.db.partitioned_write)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text

import serving.db.partitioned_write as pw
import serving.db.write as db
from models.bundle import load_champions
from serving.batch import run_batch_scoring
from serving.batch_inputs import latest_snapshot
from serving.cluster_scoring import score_on_cluster
from serving.db.read import customer_view
from serving.db.runs import current_run
from serving.db.schema import RUN_KINDS, action_plan, alerts, customer_scores, partition, scoring_runs
from serving.db.upgrade import drop_all
from tests.servers import postgres_server

pytestmark = pytest.mark.slow
VOLATILE = ["run_id", "alert_id", "started_at", "finished_at"]
real_finish = pw.finish_run


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def settings(trained_world, pg_url):
    """The trained world's settings on a fresh PostgreSQL schema, one earlier run written
    (in-process) so that both runs read previous tags."""
    serving = trained_world.settings.serving.model_copy(update={"database_url": pg_url})
    out = trained_world.settings.model_copy(update={"serving": serving})
    engine = db.make_engine(pg_url)
    run_batch_scoring(out, latest_snapshot(out) - timedelta(days=28))
    yield out
    drop_all(engine)
    engine.dispose()


def run_rows(engine, run_id: str) -> dict[str, pd.DataFrame]:
    """Every row of one run in every table (ids and wall-clock times dropped), sorted."""
    queries = {kind: f'SELECT * FROM "{partition(kind, run_id).name}"' for kind in RUN_KINDS}
    for table in (action_plan, alerts, scoring_runs):
        queries[table.name] = f"SELECT * FROM {table.name} WHERE run_id = '{run_id}'"
    out = {}
    with engine.connect() as conn:
        for name, sql in queries.items():
            frame = pd.read_sql(text(sql), conn).drop(columns=VOLATILE, errors="ignore")
            out[name] = frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def run_counts(engine, run_id: str) -> dict:
    import json

    with engine.connect() as conn:
        return json.loads(conn.execute(select(scoring_runs.c.counts).where(
            scoring_runs.c.run_id == run_id)).scalar())


def run_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(scoring_runs.c.run_id)).scalars())


def partition_tables(engine) -> list[str]:
    return sorted(t for t in inspect(engine).get_table_names() if "__r" in t)


def test_the_run_written_per_bucket_is_the_in_process_run(settings, two_worker_client, monkeypatch):
    engine = db.make_engine(settings.serving_database_url)
    here = run_batch_scoring(settings)["run_id"]
    expected = run_rows(engine, here)
    counts = run_counts(engine, here)
    finished = []
    monkeypatch.setattr(pw, "finish_run", lambda *a: finished.append(a[2]) or real_finish(*a))
    there = run_batch_scoring(settings, client=two_worker_client)
    assert [p.run_id for p in finished] == [there["run_id"]]     # the buckets wrote it
    assert 0 < len(finished[0].changed) < len(expected["customer_scores"]) / 2
    # the buckets' tags and events stayed on the workers: the client finished on their counts
    assert finished[0].written == {"customer_scores": len(expected["customer_scores"]),
                                   "customer_tags": len(expected["customer_tags"]),
                                   "tag_events": len(expected["tag_events"])}
    assert run_counts(engine, there["run_id"]) == counts
    got = run_rows(engine, there["run_id"])
    assert len(expected["customer_scores"]) > 1000 and len(expected["tag_events"])
    assert expected["customer_scores"]["reasons"].ne("None").sum() > len(expected["action_plan"])
    for name in expected:
        pd.testing.assert_frame_equal(expected[name], got[name], obj=name)
    assert current_run(engine).run_id == there["run_id"]
    assert here not in run_ids(engine) and not any(here in t for t in partition_tables(engine))


def test_the_run_is_invisible_until_the_flip(settings, two_worker_client, monkeypatch):
    engine = db.make_engine(settings.serving_database_url)
    before = current_run(engine).run_id
    customer = customer_view(engine, "C0000001") or {}
    real_flip, seen = db._flip, {}

    def flip(engine_, run_id, as_of, counts):
        seen["rows"] = {k: db_count(engine, partition(k, run_id)) for k in RUN_KINDS}
        seen["run"] = current_run(engine).run_id
        seen["visible"] = db_count(engine, customer_scores, customer_scores.c.run_id == run_id)
        seen["view"] = customer_view(engine, "C0000001") or {}
        real_flip(engine_, run_id, as_of, counts)

    monkeypatch.setattr(db, "_flip", flip)
    run_id = run_batch_scoring(settings, client=two_worker_client)["run_id"]
    assert seen["rows"]["customer_scores"] > 1000 and seen["rows"]["customer_tags"] > 1000
    assert seen["run"] == before and seen["visible"] == 0
    assert seen["view"].get("run") == customer.get("run")
    assert current_run(engine).run_id == run_id


def db_count(engine, table, *where) -> int:
    from sqlalchemy import func

    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def fail_on_tag_events() -> None:
    """On a worker: its buckets' writes fail once scores and tags are in (same transaction)."""
    import serving.db.partitioned_write as pw

    real = pw.__dict__.setdefault("_real_bulk_insert", pw.bulk_insert)

    def failing(conn, table, frame):
        if table.name.startswith("tag_events__"):
            raise RuntimeError("disk full")
        return real(conn, table, frame)

    pw.bulk_insert = failing


def restore_bulk_insert() -> None:
    import serving.db.partitioned_write as pw

    pw.bulk_insert = pw.__dict__.pop("_real_bulk_insert", pw.bulk_insert)


def test_a_worker_failing_mid_write_leaves_no_visible_run(settings, two_worker_client):
    engine = db.make_engine(settings.serving_database_url)
    before, tables = run_ids(engine), partition_tables(engine)
    first = sorted(two_worker_client.scheduler_info()["workers"])[0]
    two_worker_client.run(fail_on_tag_events, workers=[first])
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            run_batch_scoring(settings, client=two_worker_client)
    finally:
        two_worker_client.run(restore_bulk_insert)
    assert run_ids(engine) == before and partition_tables(engine) == tables
    assert current_run(engine).run_id == before[0]
    with engine.connect() as conn:
        assert set(conn.execute(select(action_plan.c.run_id).distinct()).scalars()) <= set(before)


def test_a_run_the_client_never_finishes_is_ignored_then_removed(settings, two_worker_client):
    engine = db.make_engine(settings.serving_database_url)
    before = current_run(engine).run_id
    bundle = load_champions(settings)
    result = score_on_cluster(two_worker_client, settings, bundle, latest_snapshot(settings), None)
    left = result.pending.run_id      # the client "dies" here
    assert db_count(engine, partition("customer_scores", left)) == len(result.scored.customers)
    assert current_run(engine).run_id == before
    assert db_count(engine, customer_scores, customer_scores.c.run_id == left) == 0
    after = run_batch_scoring(settings)["run_id"]     # the next write, in-process
    assert left not in run_ids(engine) and not any(left in t for t in partition_tables(engine))
    assert current_run(engine).run_id == after
