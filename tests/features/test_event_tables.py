"""The company's own event tables as features (view ``customer_events``), point in time, and a
missing contract table whose features are absent (not zero) from the tables and services."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.services import CHURN_SERVICE, NPS_SERVICE
from features.store import apply_definitions, feature_store, service_features, training_frame
from features.transforms import build_feature_tables
from features.transforms.event_tables import EventTables, event_features
from features.transforms.present import absent_features

SCHEMA = {"events": {"app_sessions": {"label": "App sessions", "measures": {
    "minutes": {"label": "Minutes in the app"}, "crashes": {"label": "App crashes"}}}}}
SNAP = pd.Timestamp("2024-03-01", tz="UTC")
SECOND = pd.Timedelta(seconds=1)


def write_events(clean, rows: pd.DataFrame) -> None:
    folder = clean / "events"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(folder / "app_sessions.parquet", index=False)
    (folder / "schema.json").write_text(json.dumps(SCHEMA))


def test_an_event_counts_only_before_the_snapshot(tmp_path):
    rows = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b"],
        "occurred_at": [SNAP - SECOND, SNAP - pd.Timedelta(days=60), SNAP + SECOND, SNAP],
        "minutes": [10.0, 30.0, 500.0, 7.0], "crashes": [1.0, 0.0, 9.0, 1.0]})
    write_events(tmp_path, rows)
    at = EventTables.load(tmp_path, ["a", "b", "c"]).at(SNAP)
    # a: the event one second before counts, the one a second after does not
    assert at["evt_app_sessions_count_30d"].tolist() == [1.0, 0.0, 0.0]
    assert at["evt_app_sessions_count_90d"].tolist() == [2.0, 0.0, 0.0]
    assert at["evt_app_sessions_minutes_sum_90d"].tolist() == [40.0, 0.0, 0.0]
    assert at["evt_app_sessions_minutes_mean_all"][0] == 20.0
    assert np.isnan(at["evt_app_sessions_minutes_mean_all"][1:]).all()   # no event: unknown
    assert at["evt_app_sessions_crashes_sum_all"][0] == 1.0
    assert at["evt_app_sessions_days_since_last"][0] == pytest.approx(1 / 86_400)
    assert np.isnan(at["evt_app_sessions_days_since_last"][1:]).all()    # b's is at the snapshot
    later = EventTables.load(tmp_path, ["a", "b", "c"]).at(SNAP + 2 * SECOND)
    assert later["evt_app_sessions_count_30d"].tolist() == [2.0, 1.0, 0.0]


def test_features_are_named_by_the_labels():
    labels = event_features(SCHEMA["events"])
    assert labels["evt_app_sessions_crashes_sum_90d"] == "App crashes, last 90 days"
    assert labels["evt_app_sessions_minutes_mean_all"] == "Minutes in the app per event, all history"
    assert labels["evt_app_sessions_count_30d"] == "App sessions events, last 30 days"
    assert len(labels) == 4 * (1 + 2 * 2) + 1


def app_sessions(customers: pd.Series, n: int, days: int, seed: int, pick: int) -> pd.DataFrame:
    """``n`` app sessions of customers drawn from ``customers``, over ``days`` from 2023-01-01."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": customers.sample(n, replace=True, random_state=pick).to_numpy(),
        "occurred_at": pd.Timestamp("2023-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s"),
        "minutes": rng.gamma(2.0, 10.0, n), "crashes": rng.poisson(0.3, n).astype(float)})


@pytest.fixture(scope="module")
def evented(feature_world, tmp_path_factory) -> SimpleNamespace:
    """The feature world with an event table and without the orders table, applied to Feast."""
    root = tmp_path_factory.mktemp("evented")
    clean = root / "clean"
    shutil.copytree(feature_world.clean, clean)
    (clean / "orders.parquet").unlink()
    ids = pd.read_parquet(clean / "crm_customers.parquet")["customer_id"]
    write_events(clean, app_sessions(ids, 4000, 365, seed=0, pick=1))
    rows = build_feature_tables(clean, root / "features", feature_world.params)
    settings = load_settings(data_dir=root)
    store = feature_store(settings)
    apply_definitions(store, settings)
    return SimpleNamespace(root=root, rows=rows, store=store, settings=settings)


def test_the_event_view_is_served_with_its_labels(evented, feature_world):
    assert evented.rows["customer_events"] == evented.rows["customer_o"]
    churn = service_features(evented.store, CHURN_SERVICE)
    names = list(event_features(SCHEMA["events"]))
    assert churn[-len(names):] == names
    assert set(names) <= set(service_features(evented.store, NPS_SERVICE))
    labels = feature_world.tables["churn_labels"].sample(n=200, random_state=0)
    frame = training_frame(evented.store, labels, CHURN_SERVICE)
    assert frame["evt_app_sessions_count_all"].notna().all()
    assert frame.attrs["attributes"]["evt_app_sessions_crashes_sum_90d"] == {
        "kind": "numeric", "label": "App crashes, last 90 days"}


def test_a_missing_table_has_no_features(evented, feature_world):
    gone = absent_features(["orders"])
    assert gone == ["orders_90d", "failed_orders_90d"]
    o = pd.read_parquet(evented.root / "features" / "customer_o.parquet")
    assert not set(gone) & set(o.columns)
    for service in (CHURN_SERVICE, NPS_SERVICE):
        assert not set(gone) & set(service_features(evented.store, service))
    # the other features are those of the full world, value for value
    full = feature_world.tables["customer_o"]
    pd.testing.assert_frame_equal(o, full.drop(columns=gone))
    # frames carry them as unknown, so rules that name them read "unknown", not a crash
    labels = feature_world.tables["churn_labels"].head(50)
    frame = training_frame(evented.store, labels, CHURN_SERVICE)
    assert frame["orders_90d"].isna().all()


def test_without_surveys_the_experience_views_shrink(feature_world, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(feature_world.clean, clean)
    for table in ("survey_invitations", "survey_responses", "complaints"):
        (clean / f"{table}.parquet").unlink()
    rows = build_feature_tables(clean, tmp_path / "features", feature_world.params)
    assert "customer_x" not in rows and "customer_fused" not in rows
    assert not (tmp_path / "features" / "customer_x.parquet").exists()
    settings = load_settings(data_dir=tmp_path)
    store = feature_store(settings)
    apply_definitions(store, settings)
    served = service_features(store, CHURN_SERVICE)
    assert "last_nps" not in served and "tickets_90d" in served
