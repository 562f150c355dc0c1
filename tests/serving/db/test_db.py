"""The serving database on SQLite: atomic visibility, idempotence, lineage, outcomes export."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from serving.db.read import customer_view
from serving.db.runs import current_run
from serving.db.write import ScoringRun, make_engine, write_scoring_run
from tests.serving.db import dbchecks
from tests.serving.factory import META, make_run

DAY1, DAY2 = date(2025, 1, 6), date(2025, 1, 13)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'serving.db'}")
    yield engine
    engine.dispose()


def test_lineage_on_every_row(engine):
    write_scoring_run(engine, make_run(DAY1, seed=1))
    write_scoring_run(engine, make_run(DAY2, seed=2))
    dbchecks.check_lineage_on_every_row(engine)


def test_same_date_twice_gives_identical_tables(engine):
    dbchecks.check_idempotent(engine, DAY1, DAY2)


def test_failed_write_leaves_the_previous_run_visible(engine, monkeypatch):
    dbchecks.check_failed_write_keeps_previous_run(engine, monkeypatch, DAY1, DAY2)


def test_reader_between_write_and_flip_sees_the_previous_run(engine, monkeypatch):
    dbchecks.check_reader_between_phases(engine, monkeypatch, DAY1, DAY2)


def test_concurrent_reader_never_sees_a_mixed_run(engine):
    """A reader thread polling during a large write always gets one run's row, old or new, whole."""
    write_scoring_run(engine, make_run(DAY1, customers=3000, seed=1))
    old = make_run(DAY1, customers=3000, seed=1).customers.set_index("customer_id")["churn_probability"]
    new_run = make_run(DAY2, customers=3000, seed=2)
    new = new_run.customers.set_index("customer_id")["churn_probability"]
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            view = customer_view(engine, "C0002999")
            seen.append((view["run"].as_of, view["churn_probability"]))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        write_scoring_run(engine, new_run)
    finally:
        stop.set()
        reader.join()
    assert seen
    for as_of, p in seen:
        assert p == pytest.approx(old["C0002999"] if as_of == DAY1 else new["C0002999"])
    assert current_run(engine).as_of == DAY2


def test_outcomes_and_holdouts_export_as_interventions(engine):
    dbchecks.check_outcomes_survive_rerun(engine, DAY1, DAY2)


def test_previous_tags_for_hysteresis(engine):
    dbchecks.check_previous_tags(engine, DAY1, DAY2)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda r: r.customers.drop(columns=["churn_probability"]),
            "lacks required column(s) ['churn_probability']",
        ),
        (lambda r: r.customers.assign(churn_probability=1.5), "churn_probability outside [0.0, 1.0]"),
        (lambda r: r.customers.assign(customer_id="C1"), "duplicate customer_id"),
    ],
)
def test_a_bad_frame_is_refused_naming_the_column(engine, change, message):
    run = make_run(DAY1)
    bad = ScoringRun(run.as_of, META, change(run), run.actions, run.tags, run.tag_events, run.alerts)
    with pytest.raises(ValueError, match="frame 'customers'") as err:
        write_scoring_run(engine, bad)
    assert message in str(err.value)
    assert current_run(engine) is None


def test_missing_alert_field_is_refused(engine):
    run = make_run(DAY1)
    run.alerts = run.alerts.drop(columns=["reason"])
    with pytest.raises(ValueError, match=r"frame 'alerts' lacks required column\(s\) \['reason'\]"):
        write_scoring_run(engine, run)


def test_an_unknown_alert_kind_is_refused(engine):
    run = make_run(DAY1)
    run.alerts = run.alerts.assign(kind="weather")
    with pytest.raises(ValueError, match=r"frame 'alerts' column kind has unknown value\(s\) \['weather'\]"):
        write_scoring_run(engine, run)
