"""The compact SQLite online store holds what Feast's own SQLite store holds, in a fraction
of the bytes, and replaces an older folder's tables without leaving customers out."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pandas as pd
import pytest

import features.online_fill as fill
import features.online_store as online_store
import features.store as fs
from configs.settings import load_settings
from features.online_store import LAYOUT, STORE_TYPE, CompactSqliteOnlineStore
from features.services import CHURN_SERVICE

from .conftest import online_contents, world_customers

LATE = datetime(2100, 1, 1, tzinfo=UTC)   # an incremental fill's start after every snapshot


def _store(feature_world, root, store_type: str, monkeypatch):
    monkeypatch.setattr(fs, "ONLINE_STORE", store_type)
    settings = load_settings(data_dir=root)
    if not settings.feature_dir.exists():
        settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
        settings.feature_dir.symlink_to(feature_world.out)
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    return settings, store


def _materialized(feature_world, root, store_type: str, monkeypatch):
    """The store after materializing up to an early cut, then everything (the second run
    upserts over the first, as each cycle does)."""
    settings, store = _store(feature_world, root, store_type, monkeypatch)
    fs.materialize_latest(store, datetime(2020, 1, 1, tzinfo=UTC))
    fs.materialize_latest(store, datetime.now(UTC))
    return settings, store


@pytest.fixture(scope="module")
def feasts_own(feature_world, tmp_path_factory):
    """Feast's own ``SqliteOnlineStore``, filled the same way: the reference."""
    with pytest.MonkeyPatch.context() as mp:
        settings, store = _materialized(feature_world, tmp_path_factory.mktemp("feast"),
                                        "sqlite", mp)
    return settings, online_contents(store, world_customers(feature_world))


def _same(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs) and len(ours) == 3
    for name in ours:
        assert len(ours[name]) > 0
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)


def _no_feast_conversion(*args):
    raise AssertionError("the compact store encodes from Arrow itself")


def test_compact_store_reads_what_feasts_store_reads_in_a_fifth_of_the_bytes(
        feature_world, feasts_own, tmp_path, monkeypatch):
    monkeypatch.setattr(fill, "_convert_arrow_to_proto", _no_feast_conversion)
    settings, store = _materialized(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    assert type(store._get_provider().online_store) is CompactSqliteOnlineStore
    _same(online_contents(store, world_customers(feature_world)), feasts_own[1])
    customers = feature_world.tables["customer_o"]["customer_id"].nunique()
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        assert conn.execute('SELECT COUNT(*) FROM "cem_customer_o"').fetchone()[0] == customers
        conn.execute("VACUUM")
    with sqlite3.connect(feasts_own[0].feast_dir / "online.db") as conn:
        conn.execute("VACUUM")
    ours, theirs = ((s.feast_dir / "online.db").stat().st_size for s in (settings, feasts_own[0]))
    assert ours * 5 < theirs, (ours, theirs)


def test_columns_not_encoded_from_arrow_go_through_feasts_conversion(feature_world, feasts_own,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setattr(online_store, "values_blobs", lambda batch, features: None)
    _, store = _materialized(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    _same(online_contents(store, world_customers(feature_world)), feasts_own[1])


def test_compact_store_is_read_by_feast(feature_world, tmp_path, monkeypatch):
    _, store = _materialized(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    latest = feature_world.tables["customer_o"].sort_values("event_timestamp").groupby(
        "customer_id").tail(1).set_index("customer_id")
    customers = latest.index[:5].tolist()
    got = fs.online_features(store, customers, CHURN_SERVICE).set_index("customer_id")
    pd.testing.assert_series_equal(got.loc[customers, "tenure_days"],
                                   latest.loc[customers, "tenure_days"], check_dtype=False)


def test_an_older_folders_tables_are_replaced_and_filled_whole(feature_world, feasts_own, tmp_path,
                                                                monkeypatch):
    """A folder filled by Feast's own store (an older release): ``apply`` replaces its tables,
    and the next fill, incremental though it is, writes every customer."""
    _materialized(feature_world, tmp_path, "sqlite", monkeypatch)
    settings, store = _store(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    fs.materialize_latest(store, datetime.now(UTC), start=LATE)
    _same(online_contents(store, world_customers(feature_world)), feasts_own[1])
    fs.materialize_latest(store, datetime.now(UTC), start=LATE)   # now incremental: nothing new
    _same(online_contents(store, world_customers(feature_world)), feasts_own[1])
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        columns = [r[1] for r in conn.execute('PRAGMA table_info("cem_customer_o")')]
        assert columns == ["entity_key", "event_ts", "created_ts", "vals"]
        assert "cem_customer_o_ek" not in {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_table_written_under_other_features_is_replaced(feature_world, feasts_own, tmp_path,
                                                          monkeypatch):
    settings, store = _materialized(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        conn.execute(f"UPDATE {LAYOUT} SET features = '[\"a\", \"b\"]' "
                     "WHERE table_name = 'cem_customer_o'")
    _, store = _store(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    assert online_contents(store, world_customers(feature_world))["customer_o"].empty
    fs.materialize_latest(store, datetime.now(UTC), start=LATE)
    _same(online_contents(store, world_customers(feature_world)), feasts_own[1])


def test_values_not_matching_the_tables_features_are_refused(feature_world, tmp_path,
                                                            monkeypatch):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    _, store = _store(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    fv = store.get_feature_view("customer_o")
    key = EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val="C1")])
    values = {f.name: Value(double_val=1.0) for f in fv.features[1:]} | {"surprise": Value()}
    with pytest.raises(ValueError, match=r"cem_customer_o .*unknown \['surprise'\].*lack \["):
        store._get_provider().online_write_batch(store.config, fv,
                                                 [(key, values, datetime.now(UTC), None)], None)


def test_materialization_writes_each_customers_latest_row_in_batches(feature_world, tmp_path,
                                                                      monkeypatch):
    """Only the latest row per customer is pulled, and rows are converted and written in
    batches: converting every snapshot's row of a view at once took a 1M-customer world past
    24 GB."""
    batches: dict[str, list[int]] = {}
    write = CompactSqliteOnlineStore.write_arrow

    def counting(self, config, table, batch, keys):
        batches.setdefault(table.name, []).append(batch.num_rows)
        return write(self, config, table, batch, keys)

    monkeypatch.setattr(CompactSqliteOnlineStore, "write_arrow", counting)
    monkeypatch.setitem(fs.MATERIALIZATION, "online_write_batch_size", 250)
    _, store = _store(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    fs.materialize_latest(store, datetime.now(UTC))
    customers = feature_world.tables["customer_o"]["customer_id"].nunique()
    assert batches["customer_o"] and max(batches["customer_o"]) <= 250
    assert sum(batches["customer_o"]) == customers      # one row each, not one per snapshot


def test_the_service_says_which_online_table_is_missing(feature_world, tmp_path, monkeypatch):
    from serving.caches.online import OnlineFeatures, OnlineStoreMissing

    settings, store = _store(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        conn.execute(f"DELETE FROM {LAYOUT} WHERE table_name = 'cem_customer_o'")
    with pytest.raises(OnlineStoreMissing, match=r"no table for \['cem_customer_o'\]: run `cem features`"):
        OnlineFeatures(store, CHURN_SERVICE)
