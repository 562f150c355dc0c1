"""The batched SQLite online store writes exactly what Feast's own SQLite store writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pandas as pd

import features.store as fs
from configs.settings import load_settings
from features.online_store import STORE_TYPE
from features.services import CHURN_SERVICE


def _materialized(feature_world, tmp_path, store_type: str, monkeypatch) -> tuple[dict, object]:
    """Every online table's rows after materializing the world's features twice (the second
    run upserts over the first, as each cycle does)."""
    monkeypatch.setattr(fs, "ONLINE_STORE", store_type)
    settings = load_settings(data_dir=tmp_path)
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(feature_world.out)
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    fs.materialize_latest(store, datetime(2020, 1, 1, tzinfo=UTC))   # an early cut, then all
    fs.materialize_latest(store, datetime.now(UTC))
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        tables = {n: pd.read_sql(f'SELECT * FROM "{n}" ORDER BY entity_key, feature_name', conn)
                  for n in names if n.startswith("cem_")}
    return tables, store


def test_batched_store_writes_the_same_rows_as_feasts_store(feature_world, tmp_path, monkeypatch):
    ours, store = _materialized(feature_world, tmp_path / "ours", STORE_TYPE, monkeypatch)
    theirs, _ = _materialized(feature_world, tmp_path / "feast", "sqlite", monkeypatch)
    assert sorted(ours) == sorted(theirs) and len(ours) == 3
    for name in ours:
        assert len(ours[name]) > 0
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert type(store._get_provider().online_store).__name__ == "BatchedSqliteOnlineStore"


def test_batched_store_is_read_by_feast(feature_world, tmp_path, monkeypatch):
    _, store = _materialized(feature_world, tmp_path, STORE_TYPE, monkeypatch)
    latest = feature_world.tables["customer_o"].sort_values("event_timestamp").groupby(
        "customer_id").tail(1).set_index("customer_id")
    customers = latest.index[:5].tolist()
    got = fs.online_features(store, customers, CHURN_SERVICE).set_index("customer_id")
    pd.testing.assert_series_equal(got.loc[customers, "tenure_days"],
                                   latest.loc[customers, "tenure_days"], check_dtype=False)


def test_materialization_writes_each_customers_latest_row_in_batches(feature_world, tmp_path,
                                                                      monkeypatch):
    """Only the latest row per customer is pulled, and rows are converted and written in
    batches: converting every snapshot's row of a view at once took a 1M-customer world past
    24 GB."""
    from features.online_store import BatchedSqliteOnlineStore

    batches: dict[str, list[int]] = {}
    write = BatchedSqliteOnlineStore.online_write_batch

    def counting(self, config, table, data, progress):
        batches.setdefault(table.name, []).append(len(data))
        return write(self, config, table, data, progress)

    monkeypatch.setattr(BatchedSqliteOnlineStore, "online_write_batch", counting)
    monkeypatch.setitem(fs.MATERIALIZATION, "online_write_batch_size", 250)
    settings = load_settings(data_dir=tmp_path)
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(feature_world.out)
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    fs.materialize_latest(store, datetime.now(UTC))
    customers = feature_world.tables["customer_o"]["customer_id"].nunique()
    assert batches["customer_o"] and max(batches["customer_o"]) <= 250
    assert sum(batches["customer_o"]) == customers      # one row each, not one per snapshot
