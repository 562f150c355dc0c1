"""The company's own views (``customer_attributes``, ``customer_events``) built per customer
bucket on two Dask worker processes are the in-process files, byte for byte: each bucket reads
its customers' attribute and event rows from the split, in the whole table's dtypes."""

from __future__ import annotations

import json
import logging
import shutil

import pandas as pd
import pytest

from features import bucketed
from features.transforms import build_feature_tables
from features.transforms.incremental import MANIFEST
from features.transforms.parallel import build_on_cluster

from .test_attributes import SCHEMA as ATTRIBUTES
from .test_attributes import attribute_table
from .test_event_tables import app_sessions, write_events

FILES = ("customer_o.parquet", "customer_x.parquet", "customer_fused.parquet",
         "churn_labels.parquet", "nps_labels.parquet", "customer_attributes.parquet",
         "customer_events.parquet", "customer_attributes.schema.json",
         "customer_events.schema.json")


@pytest.fixture(scope="module")
def own_views(feature_world, tmp_path_factory):
    """The feature world's clean tables with an attribute table (the last customer without
    a row) and an event table over customers of every bucket, events before and after the
    snapshots; built in-process."""
    root = tmp_path_factory.mktemp("own_views")
    clean = root / "clean"
    shutil.copytree(feature_world.clean, clean)
    customers = pd.read_parquet(clean / "crm_customers.parquet")["customer_id"]
    attribute_table(customers).to_parquet(clean / "customer_attributes.parquet", index=False)
    (clean / "customer_attributes.schema.json").write_text(json.dumps(ATTRIBUTES))
    write_events(clean, app_sessions(customers, 6000, 700, seed=5, pick=2))
    rows = build_feature_tables(clean, root / "in_process", feature_world.params)
    return root, clean, rows


@pytest.mark.parametrize("piece_rows", [None, 700])
def test_own_views_on_the_cluster_equal_in_process(own_views, feature_world, two_worker_client,
                                                   tmp_path, caplog, monkeypatch, piece_rows):
    """``piece_rows``: the tables split in pieces of a few row groups (the default: one)."""
    root, clean, rows = own_views
    if piece_rows:
        monkeypatch.setattr(bucketed, "PIECE_ROWS", piece_rows)
    out = tmp_path / "cluster"
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        got = build_on_cluster(two_worker_client, clean, out, feature_world.params, buckets=3,
                               previous=feature_world.out)
    assert got == rows and rows["customer_attributes"] == rows["customer_o"] > 0
    for name in FILES:
        assert (out / name).read_bytes() == (root / "in_process" / name).read_bytes(), name
    assert "built in-process" not in caplog.text
    # as in-process: the own tables are not in the digest, so every build is a full one
    assert "full build (the export maps its own attribute or event tables)" in caplog.text
    assert not (out / MANIFEST).exists() and not (root / "in_process" / MANIFEST).exists()
    assert not (out / ".feature-parts").exists() and not (out / ".feature-split").exists()


def test_a_cluster_build_without_own_tables_removes_their_views(own_views, feature_world,
                                                                two_worker_client, tmp_path):
    """A later export without them leaves no stale view or schema next to the tables."""
    _, clean, _ = own_views
    out = tmp_path / "cluster"
    build_on_cluster(two_worker_client, clean, out, feature_world.params, buckets=2)
    assert (out / "customer_events.parquet").is_file()
    build_on_cluster(two_worker_client, feature_world.clean, out, feature_world.params, buckets=2)
    for name in FILES[5:]:
        assert not (out / name).exists(), name
