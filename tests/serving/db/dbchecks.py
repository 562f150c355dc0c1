"""Checks of the serving database shared by the SQLite and PostgreSQL tests."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import Engine, func, inspect, select, text

import serving.db.write as db
from serving.db.events import Outcome, record_outcome
from serving.db.read import customer_view
from serving.db.runs import current_run
from serving.db.schema import (
    RUN_KINDS,
    action_outcomes,
    action_plan,
    alerts,
    customer_scores,
    customer_tags,
    metadata,
    partition,
    scoring_runs,
    tag_events,
)
from serving.db.write import export_outcomes, read_previous_tags, write_scoring_run
from tests.serving.factory import META, make_run

# columns that differ between two writes of the same run by design: ids and wall-clock times
VOLATILE = {
    "run_id",
    "started_at",
    "finished_at",
    "event_id",
    "alert_id",
    "outcome_id",
    "reading_id",
    "created_at",
    "token_hash",
}


def table_contents(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every table and view, volatile columns dropped, rows sorted: comparable across writes."""
    out = {}
    names = [t.name for t in metadata.sorted_tables] + list(RUN_KINDS)
    with engine.connect() as conn:
        for name in names:
            frame = pd.read_sql(text(f'SELECT * FROM "{name}"'), conn)
            frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
            out[name] = frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)
        out["partitions"] = pd.DataFrame({"n": [sum("__r" in t for t in inspect(conn).get_table_names())]})
    return out


def count(engine: Engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def check_lineage_on_every_row(engine: Engine) -> None:
    for table in (customer_scores, customer_tags, action_plan, tag_events):
        with engine.connect() as conn:
            rows = conn.execute(
                select(table.c.run_id, table.c.model_versions, table.c.feature_service, table.c.data_version)
            ).all()
        assert rows, table.name
        for run_id, versions, service, data_version in rows:
            assert run_id and json.loads(versions) == META.model_versions, table.name
            assert service == META.feature_service and data_version == META.data_version, table.name


def check_idempotent(engine: Engine, day1, day2) -> None:
    write_scoring_run(engine, make_run(day1, seed=1))
    write_scoring_run(engine, make_run(day2, seed=2))
    before = table_contents(engine)
    events, raised = count(engine, tag_events), count(engine, alerts)
    write_scoring_run(engine, make_run(day2, seed=2))
    after = table_contents(engine)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    assert count(engine, tag_events) == events and count(engine, alerts) == raised
    with engine.connect() as conn:
        statuses = conn.execute(select(scoring_runs.c.as_of, scoring_runs.c.status)).all()
    assert sorted(s for _, s in statuses) == ["complete", "complete"]


def check_failed_write_keeps_previous_run(engine: Engine, monkeypatch, day1, day2) -> None:
    first = write_scoring_run(engine, make_run(day1, seed=1))
    real = db.bulk_insert

    def failing(conn, table, frame):
        if table.name == "alerts":  # the customers, plan, tags and events are already in
            raise RuntimeError("disk full")
        return real(conn, table, frame)

    monkeypatch.setattr(db, "bulk_insert", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_scoring_run(engine, make_run(day2, seed=2))
    assert current_run(engine).run_id == first
    assert customer_view(engine, "C0000001")["run"].run_id == first
    assert count(engine, scoring_runs) == 1  # the failed run is gone, rows and all
    assert count(engine, customer_scores, customer_scores.c.run_id != first) == 0


def check_reader_between_phases(engine: Engine, monkeypatch, day1, day2) -> None:
    first = write_scoring_run(engine, make_run(day1, seed=1))
    expected = make_run(day1, seed=1).customers.set_index("customer_id").loc["C0000001", "churn_probability"]
    real_flip, seen = db._flip, {}

    def flip(engine_, run_id, as_of, counts):
        seen["rows_written"] = count(engine, partition("customer_scores", run_id))
        seen["run"] = current_run(engine).run_id
        seen["p"] = customer_view(engine, "C0000001")["churn_probability"]
        real_flip(engine_, run_id, as_of, counts)

    monkeypatch.setattr(db, "_flip", flip)
    second = write_scoring_run(engine, make_run(day2, seed=2))
    assert seen["rows_written"] == 60  # the new run's rows are all in ...
    assert seen["run"] == first and seen["p"] == pytest.approx(expected)  # ... yet readers see the old run
    assert current_run(engine).run_id == second  # and after the flip, the new one


def check_outcomes_survive_rerun(engine: Engine, day1, day2) -> None:
    write_scoring_run(engine, make_run(day1, seed=1))
    run = make_run(day2, seed=2)
    write_scoring_run(engine, run)
    treated = run.actions[~run.actions["control_group"]].iloc[0]
    record_outcome(
        engine,
        Outcome(treated["customer_id"], treated["action_id"], "declined", "too expensive", "not now"),
        rep_id=treated["rep_id"],
        recorded_by=treated["rep_id"],
    )
    before = export_outcomes(engine)
    write_scoring_run(engine, make_run(day2, seed=2))  # re-run the date the outcome belongs to
    after = export_outcomes(engine)
    pd.testing.assert_frame_equal(before, after)
    row = after[after["outcome"] != "holdout"]
    assert len(row) == 1 and row.iloc[0]["customer_id"] == treated["customer_id"]
    assert row.iloc[0]["outcome"] == "declined" and row.iloc[0]["cost"] == treated["cost"]
    holdouts = after[after["outcome"] == "holdout"]
    assert holdouts["control_group"].all() and (holdouts["cost"] == 0).all()
    assert len(holdouts) == 12  # 6 per run, both runs
    assert count(engine, action_outcomes) == 1


def check_previous_tags(engine: Engine, day1, day2) -> None:
    write_scoring_run(engine, make_run(day1, seed=1))
    write_scoring_run(engine, make_run(day2, seed=2))
    assert read_previous_tags(engine, day1) is None
    tags = read_previous_tags(engine, day2)
    expected = make_run(day1, seed=1).tags
    assert tags.attrs["as_of"] == day1 and len(tags) == len(expected)
    merged = tags.merge(expected, on="customer_id", suffixes=("", "_in"))
    assert (merged["churn_risk_tier"] == merged["churn_risk_tier_in"]).all()
    assert merged["p_churn"].to_numpy() == pytest.approx(merged["p_churn_in"].to_numpy())
    assert (merged["streak"] == 1).all()  # a column beyond the declared ones round-trips
    assert read_previous_tags(engine, day2 + pd.Timedelta(days=1)).attrs["as_of"] == day2
