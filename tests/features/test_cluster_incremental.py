"""Incremental feature builds on two Dask worker processes: a month of new exports costs the
new snapshot on the cluster too, and gives the in-process incremental build's files."""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from configs.settings import FeaturesParams
from features.sources.world.step import advance_world
from features.transforms import build_feature_tables
from features.transforms.incremental import MANIFEST, new_from
from features.transforms.parallel import build_on_cluster
from tests.conftest import make_world
from tests.features.test_incremental_build import VIEWS, _ingest, _table

TABLES = (*VIEWS, "churn_labels", "nps_labels")


@pytest.fixture(scope="module")
def stepped(tmp_path_factory, two_worker_client):
    """A world built on the cluster and in-process, stepped one month, then built again:
    incrementally both ways, and whole in-process."""
    root = make_world(tmp_path_factory.mktemp("cinc"), customers=1000, months=12, seed=5)
    params = FeaturesParams()
    clean = _ingest(root)
    build_feature_tables(clean, root / "before", params)
    build_on_cluster(two_worker_client, clean, root / "before_cluster", params)
    advance_world(root / "truth", root / "raw", None)
    clean = _ingest(root)
    build_feature_tables(clean, root / "incremental", params, previous=root / "before")
    build_feature_tables(clean, root / "full", params)
    return root, params


def test_cluster_incremental_build_is_the_in_process_one(stepped, two_worker_client, tmp_path,
                                                         caplog):
    root, params = stepped
    out = tmp_path / "cluster"
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        rows = build_on_cluster(two_worker_client, root / "clean", out, params,
                                previous=root / "before_cluster")
    assert "snapshots reused, 1 new (on the cluster)" in caplog.text
    for name in TABLES:                    # byte for byte the in-process incremental files
        assert (out / f"{name}.parquet").read_bytes() == (
            root / "incremental" / f"{name}.parquet").read_bytes(), name
        pd.testing.assert_frame_equal(_table(out, name), _table(root / "full", name), obj=name)
    assert rows["customer_o"] == len(_table(root / "full", "customer_o"))
    latest = _table(out, "customer_o")["event_timestamp"].max()
    assert new_from(out) == latest == new_from(root / "incremental")
    recorded = json.loads((out / MANIFEST).read_text())
    assert recorded["buckets"] == 2 and not (out / ".feature-parts").exists()
    # the next month's build can reuse this one: the same digest as a full cluster build's
    again = tmp_path / "again"
    build_on_cluster(two_worker_client, root / "clean", again, params)
    assert json.loads((again / MANIFEST).read_text())["inputs"] == recorded["inputs"]


def test_a_changed_earlier_row_means_a_full_build(stepped, two_worker_client, tmp_path, caplog):
    root, params = stepped
    clean = tmp_path / "clean"
    shutil.copytree(root / "clean", clean)
    tickets = pq.read_table(clean / "support_tickets.parquet").to_pandas()
    first = tickets["opened_at"].idxmin()        # a late correction of a ticket before the cut
    tickets.loc[first, "category"] = ("billing" if tickets.loc[first, "category"] != "billing"
                                      else "technical")
    tickets.to_parquet(clean / "support_tickets.parquet", index=False)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        build_on_cluster(two_worker_client, clean, out, params, previous=root / "before_cluster")
    assert "full build (data before the last built snapshot changed)" in caplog.text
    assert new_from(out) is None
    fresh = tmp_path / "fresh"
    build_feature_tables(clean, fresh, params)
    for name in TABLES:
        assert (out / f"{name}.parquet").read_bytes() == (fresh / f"{name}.parquet").read_bytes()


def test_another_split_means_a_full_build(stepped, two_worker_client, tmp_path, caplog):
    root, params = stepped
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        build_on_cluster(two_worker_client, root / "clean", tmp_path / "a", params,
                         previous=root / "before")               # the in-process manifest
        build_on_cluster(two_worker_client, root / "clean", tmp_path / "b", params,
                         previous=root / "before_cluster", buckets=3)
        build_feature_tables(root / "clean", tmp_path / "c", params,
                             previous=root / "before_cluster")    # a cluster manifest in-process
    assert "full build (the previous build was made in-process" in caplog.text
    assert "full build (the previous build was made in 2 customer buckets, this one in 3)" in caplog.text
    assert "full build (the previous build was made in 2 customer buckets on a cluster" in caplog.text
    for folder in ("a", "b", "c"):
        assert new_from(tmp_path / folder) is None
        assert (tmp_path / folder / "customer_o.parquet").read_bytes() == (
            root / "full" / "customer_o.parquet").read_bytes(), folder
