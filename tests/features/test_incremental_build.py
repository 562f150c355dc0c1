"""Incremental feature builds: a new month costs one snapshot, and gives the same tables."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from configs.settings import FeaturesParams, IngestParams
from features.ingest import run_ingest
from features.sources.world.step import advance_world
from features.transforms import build_feature_tables
from features.transforms.incremental import MANIFEST, new_from
from tests.conftest import make_world

VIEWS = ("customer_o", "customer_x", "customer_fused")
LABELS = ("churn_labels", "nps_labels")


def _ingest(root):
    run_ingest(root / "raw", root / "clean", root / "quarantine", IngestParams())
    return root / "clean"


def _table(folder, name) -> pd.DataFrame:
    frame = pq.read_table(folder / f"{name}.parquet").to_pandas()
    return frame.drop(columns=["created_timestamp"], errors="ignore").reset_index(drop=True)


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    """A world built once, stepped one month, and built again both ways."""
    root = make_world(tmp_path_factory.mktemp("inc"), customers=1200, months=12, seed=5)
    params = FeaturesParams()
    build_feature_tables(_ingest(root), root / "before", params)
    advance_world(root / "truth", root / "raw", None)
    clean = _ingest(root)
    rows = build_feature_tables(clean, root / "incremental", params, previous=root / "before")
    build_feature_tables(clean, root / "full", params)
    return root, rows


def test_an_incremental_build_equals_a_full_one(stepped):
    root, rows = stepped
    for name in (*VIEWS, *LABELS):
        pd.testing.assert_frame_equal(_table(root / "incremental", name), _table(root / "full", name),
                                      obj=name)
    assert rows["customer_o"] == len(_table(root / "full", "customer_o"))


def test_only_the_new_snapshot_is_computed(stepped):
    root, _ = stepped
    before = _table(root / "before", "customer_o")["event_timestamp"].max()
    after = _table(root / "incremental", "customer_o")["event_timestamp"].max()
    assert after > before
    assert new_from(root / "incremental") == after
    assert new_from(root / "full") is None          # built whole: the online store is refilled
    created = pq.read_table(root / "incremental" / "customer_o.parquet").to_pandas()
    old = created[created["event_timestamp"] <= before]["created_timestamp"].unique()
    new = created[created["event_timestamp"] > before]["created_timestamp"].unique()
    assert len(old) == 1 and len(new) == 1 and old[0] < new[0]   # the reused rows kept as built


def test_a_change_before_the_last_snapshot_means_a_full_build(stepped, tmp_path, caplog):
    root, _ = stepped
    clean = tmp_path / "clean"
    shutil.copytree(root / "clean", clean)
    tickets = pq.read_table(clean / "support_tickets.parquet").to_pandas()
    first = tickets["opened_at"].idxmin()
    tickets.loc[first, "category"] = "billing" if tickets.loc[first, "category"] != "billing" else "technical"
    tickets.to_parquet(clean / "support_tickets.parquet", index=False)
    with caplog.at_level(logging.INFO, logger="features.transforms.incremental"):
        build_feature_tables(clean, tmp_path / "out", FeaturesParams(), previous=root / "before")
    assert "full build (data before the last built snapshot changed)" in caplog.text
    assert new_from(tmp_path / "out") is None
    fresh = tmp_path / "fresh"
    build_feature_tables(clean, fresh, FeaturesParams())
    pd.testing.assert_frame_equal(_table(tmp_path / "out", "customer_o"), _table(fresh, "customer_o"))


def test_other_settings_mean_a_full_build(stepped, tmp_path, caplog):
    root, _ = stepped
    with caplog.at_level(logging.INFO, logger="features.transforms.incremental"):
        build_feature_tables(root / "clean", tmp_path / "out", FeaturesParams(churn_horizon_days=60),
                             previous=root / "before")
    assert "full build (the feature settings changed)" in caplog.text
    assert (tmp_path / "out" / MANIFEST).is_file()
