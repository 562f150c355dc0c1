"""The Feast store: FeatureServices, point-in-time training sets, online lookups, Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.feast_defs import NOT_FOR_NPS
from features.services import CHURN_SERVICE, NPS_SERVICE
from features.store import (
    apply_definitions,
    feature_store,
    materialize_latest,
    online_features,
    training_frame,
)
from features.transforms import FEATURE_COLUMNS
from tests.servers import redis_server

CHECK = ["tenure_days", "usage_last_month", "tickets_unresolved_90d", "last_nps",
         "sentiment_180d", "detractor_with_open_ticket", "plan"]


@pytest.fixture(scope="module")
def feast_env(feature_world):
    settings = load_settings(data_dir=feature_world.root)
    store = feature_store(settings)
    apply_definitions(store, settings)
    return settings, store


def _entity_rows(feature_world, n=400, seed=0) -> pd.DataFrame:
    """Random customers at random instants, including exact snapshot instants."""
    rng = np.random.default_rng(seed)
    o = feature_world.tables["customer_o"]
    picks = o.sample(n=n, random_state=seed)
    shift = pd.Series(pd.to_timedelta(rng.choice([0, 1, 17 * 24, 40 * 24, 60 * 24], n), unit="h"))
    stamps = (picks["event_timestamp"].reset_index(drop=True) + shift).dt.as_unit("us")
    return pd.DataFrame({"customer_id": picks["customer_id"].to_numpy(), "event_timestamp": stamps})


def _reference(feature_world, entity: pd.DataFrame, ttl_days: int) -> pd.DataFrame:
    """Point-in-time join by hand: the latest snapshot at or before each row, within TTL."""
    out = entity.sort_values("event_timestamp").reset_index(drop=True)
    for name in ("customer_o", "customer_x", "customer_fused"):
        table = feature_world.tables[name].drop(columns="created_timestamp")
        table = table.assign(_snap=table["event_timestamp"]).sort_values("event_timestamp")
        out = pd.merge_asof(out, table, on="event_timestamp", by="customer_id")
        stale = out["event_timestamp"] - out["_snap"] > timedelta(days=ttl_days)
        out.loc[stale, FEATURE_COLUMNS[name]] = np.nan
        out = out.drop(columns="_snap")
    return out


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["customer_id", "event_timestamp"]).reset_index(drop=True)


def _joined_as_by_hand(feature_world, settings, store, entity: pd.DataFrame) -> pd.DataFrame:
    """The store's point-in-time join of ``entity``, checked against the join by hand."""
    got = _sorted(training_frame(store, entity, CHURN_SERVICE))
    want = _sorted(_reference(feature_world, entity, settings.features.feature_ttl_days))
    assert len(got) == len(entity)
    for col in CHECK:
        pd.testing.assert_series_equal(got[col], want[col], check_dtype=False, check_names=False,
                                       obj=col)
    return got


def test_feature_services_name_exactly_each_models_features(feast_env):
    _, store = feast_env
    every = {c for cols in FEATURE_COLUMNS.values() for c in cols}

    def names(service):
        return {f.name for p in store.get_feature_service(service).feature_view_projections
                for f in p.features}

    assert names(CHURN_SERVICE) == every
    assert names(NPS_SERVICE) == every - NOT_FOR_NPS
    assert len(every) >= 40


def test_training_set_is_the_point_in_time_join(feature_world, feast_env):
    settings, store = feast_env
    entity = _entity_rows(feature_world)
    got = _joined_as_by_hand(feature_world, settings, store, entity)
    assert got["tenure_days"].isna().any()          # rows beyond the TTL get no features


@pytest.mark.parametrize("snapshot, days_after", [(-2, 0), (-2, 17), (-1, 44), (-1, 46)])
def test_one_date_of_some_customers_is_the_point_in_time_join(feature_world, feast_env, snapshot,
                                                              days_after):
    # a scoring run: every row at one instant, one bucket of the customers; each view is cut
    # to those customers and to the rows the TTL leaves pickable before the join
    settings, store = feast_env
    o = feature_world.tables["customer_o"]
    snaps = np.sort(o["event_timestamp"].unique())
    at = pd.Timestamp(snaps[snapshot]) + pd.Timedelta(days=days_after)
    ids = o["customer_id"].drop_duplicates().sample(frac=0.3, random_state=days_after)
    entity = pd.DataFrame({"customer_id": ids.to_numpy(), "event_timestamp": at}).astype(
        {"event_timestamp": "datetime64[us, UTC]"})
    got = _joined_as_by_hand(feature_world, settings, store, entity)
    # after the newest snapshot's TTL nothing is fresh; before it, the snapshot is picked
    assert got["tenure_days"].isna().all() == (days_after > settings.features.feature_ttl_days)


def test_asof_store_agrees_with_feasts_own_duckdb_store(feature_world, feast_env):
    settings, _ = feast_env
    entity = _entity_rows(feature_world, n=200, seed=1)
    ours = _sorted(training_frame(feature_store(settings), entity, NPS_SERVICE))
    feasts = feature_store(settings.model_copy(update={"feast_offline_store": "duckdb"}))
    theirs = _sorted(training_frame(feasts, entity, NPS_SERVICE))
    pd.testing.assert_frame_equal(ours[theirs.columns], theirs, check_dtype=False)


def test_training_rows_need_a_timestamp(feast_env):
    _, store = feast_env
    with pytest.raises(ValueError, match="event_timestamp"):
        training_frame(store, pd.DataFrame({"customer_id": ["C0000001"]}), CHURN_SERVICE)


def _latest(feature_world, customers):
    o = feature_world.tables["customer_o"]
    last = o.sort_values("event_timestamp").groupby("customer_id").tail(1)
    return last.set_index("customer_id").loc[customers]


def test_online_lookup_returns_each_customers_latest_features(feature_world, feast_env):
    _, store = feast_env
    materialize_latest(store, datetime.now(UTC))
    customers = feature_world.tables["customer_o"]["customer_id"].drop_duplicates().sample(
        5, random_state=3).tolist()
    got = online_features(store, customers, CHURN_SERVICE).set_index("customer_id").loc[customers]
    want = _latest(feature_world, customers)
    for col in ("tenure_days", "usage_last_month", "plan"):
        pd.testing.assert_series_equal(got[col], want[col], check_dtype=False, check_names=False)


def test_unknown_customer_gets_empty_features(feast_env):
    _, store = feast_env
    row = online_features(store, ["NOBODY"], CHURN_SERVICE).iloc[0]
    assert row["customer_id"] == "NOBODY" and pd.isna(row["usage_last_month"])


def test_redis_online_store_serves_the_same_features(feature_world, tmp_path):
    with redis_server(tmp_path) as url:
        settings = load_settings(data_dir=feature_world.root).model_copy(
            update={"feast_online_store": "redis", "feast_redis_url": url})
        settings = settings.model_copy(update={"data_dir": tmp_path / "data"})
        settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
        settings.feature_dir.symlink_to(feature_world.out)
        store = feature_store(settings)
        apply_definitions(store, settings)
        materialize_latest(store, datetime.now(UTC))
        customers = feature_world.tables["customer_o"]["customer_id"].iloc[:3].tolist()
        got = online_features(store, customers, CHURN_SERVICE).set_index("customer_id")
        want = _latest(feature_world, customers)
        assert store.config.online_store.type == "redis"
        pd.testing.assert_series_equal(got.loc[customers, "usage_last_month"],
                                       want["usage_last_month"], check_names=False,
                                       check_dtype=False)


def test_materialization_reaches_snapshots_ahead_of_the_clock(tmp_path):
    """A world stepped past today has snapshots in the future: the materialization window
    must end after them, or Feast refuses a start after the end (and the cycle stops)."""
    from features.store import materialize_end

    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    snaps = pd.to_datetime(["2026-12-01", "2027-01-01"], utc=True)
    pd.DataFrame({"customer_id": ["a", "b"], "event_timestamp": snaps}).to_parquet(
        tmp_path / "customer_o.parquet")
    assert materialize_end(tmp_path, now) == datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert materialize_end(tmp_path / "none", now) == now                  # no tables yet
    pd.DataFrame({"customer_id": ["a"], "event_timestamp": snaps[:1]}).to_parquet(
        tmp_path / "customer_o.parquet")
    assert materialize_end(tmp_path, now) == now                           # the past: now
