"""The online store filled part by part holds exactly what Feast's own materialize writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

import features.online_fill as fill
import features.store as fs
from configs.settings import load_settings
from features import bucketed
from features.offline_store import pull_latest

from .conftest import online_contents, world_customers

CUT = datetime(2020, 1, 1, tzinfo=UTC)   # an early cut, then everything: a cycle's upsert too
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _store(feature_world, root, offline: str):
    settings = load_settings(data_dir=root).model_copy(update={"feast_offline_store": offline})
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(feature_world.out)
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    return settings, store


def _online(store, feature_world) -> dict[str, pd.DataFrame]:
    return online_contents(store, world_customers(feature_world))


@pytest.fixture(scope="module")
def feasts(feature_world, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Feast's materialize over its own DuckDB offline store (ibis pull), up to the cut, then all."""
    settings, store = _store(feature_world, tmp_path_factory.mktemp("feast"), "duckdb")
    now = datetime.now(UTC)
    store.materialize(start_date=EPOCH, end_date=CUT)
    store.materialize(start_date=EPOCH, end_date=now)
    return _online(store, feature_world)


def _same(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs) and len(ours) == 3
    for name in ours:
        assert len(ours[name]) > 0
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)


@pytest.mark.parametrize("rows_per_part", [10**9, 2_000])
def test_fill_in_parts_writes_what_feasts_materialize_writes(feature_world, feasts, tmp_path,
                                                            monkeypatch, rows_per_part):
    monkeypatch.setattr(fill, "ROWS_PER_PART", rows_per_part)
    settings, store = _store(feature_world, tmp_path, "asof")
    fs.materialize_latest(store, CUT)
    written = fs.materialize_latest(store, datetime.now(UTC))
    _same(_online(store, feature_world), feasts)
    customers = feature_world.tables["customer_o"]["customer_id"].nunique()
    assert written["customer_o"] == customers          # each customer once, in exactly one part
    fv = store.get_feature_view("customer_o")
    assert [end.year for _, end in fv.materialization_intervals] == [2020, datetime.now(UTC).year]


@pytest.mark.parametrize("piece_rows", [None, 1])
def test_fill_on_the_workers_writes_what_feasts_materialize_writes(feature_world, feasts, tmp_path,
                                                                   two_worker_client, monkeypatch,
                                                                   piece_rows):
    """Four parts written by two worker processes into one SQLite file (they take turns),
    each view split once per part first (``piece_rows`` 1: a piece per snapshot)."""
    if piece_rows:
        monkeypatch.setattr(bucketed, "PIECE_ROWS", piece_rows)
    settings, store = _store(feature_world, tmp_path, "asof")
    fs.materialize_latest(store, CUT, client=two_worker_client)
    fs.materialize_latest(store, datetime.now(UTC), client=two_worker_client)
    _same(_online(store, feature_world), feasts)
    assert not (feature_world.out / fill.SPLIT).exists()


def test_latest_row_breaks_timestamp_ties_by_created_time(tmp_path):
    path = tmp_path / "view.parquet"
    ts = pd.Timestamp("2024-03-01", tz="UTC")
    pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "x": [1.0, 2.0, 3.0, 4.0],
                  "event_timestamp": [ts, ts, ts - pd.Timedelta(days=31), ts],
                  "created": pd.to_datetime(["2024-03-02", "2024-03-05", "2024-03-09",
                                             "2024-03-01"], utc=True)}).to_parquet(path)
    got = pull_latest(str(path), ["customer_id"], ["x"], "event_timestamp", "created", EPOCH,
                      datetime(2030, 1, 1, tzinfo=UTC)).to_pandas().set_index("customer_id")
    assert got["x"].to_dict() == {"a": 2.0, "b": 4.0}     # newest snapshot, then newest created
    early = pull_latest(str(path), ["customer_id"], ["x"], "event_timestamp", None, EPOCH,
                        datetime(2024, 2, 1, tzinfo=UTC)).to_pandas()
    assert early.to_dict("list") == {"customer_id": ["b"], "x": [3.0],
                                     "event_timestamp": [ts - pd.Timedelta(days=31)]}
