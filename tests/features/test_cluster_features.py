"""Feature tables built per customer bucket on two Dask worker processes are the in-process
tables (every table: same rows, order and dtypes); each bucket reads only its customers."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from features.transforms.buckets import bucket_count, load_bucket
from features.transforms.incremental import MANIFEST
from features.transforms.inputs import load_clean
from features.transforms.parallel import build_on_cluster
from features.transforms.present import ABSENT_FILE

from .conftest import TABLES, read_tables


def _assert_same_tables(out, expected: dict[str, pd.DataFrame]) -> None:
    got = read_tables(out)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=name)


def test_cluster_build_equals_in_process(feature_world, two_worker_client, tmp_path, caplog):
    out = tmp_path / "features"
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        rows = build_on_cluster(two_worker_client, feature_world.clean, out, feature_world.params,
                                previous=feature_world.out, buckets=3)
    assert rows == feature_world.rows
    _assert_same_tables(out, feature_world.tables)
    for name in TABLES:                  # byte for byte, as the world's files on the cluster
        assert (out / f"{name}.parquet").read_bytes() == (
            feature_world.out / f"{name}.parquet").read_bytes(), name
    assert (json.loads((out / ABSENT_FILE).read_text())
            == json.loads((feature_world.out / ABSENT_FILE).read_text()))
    # the in-process manifest digests whole clean tables: a full build, said so; the new
    # manifest records the split its digest combines (tests/features/test_cluster_incremental.py)
    assert "full build (the previous build was made in-process" in caplog.text
    assert json.loads((out / MANIFEST).read_text())["buckets"] == 3
    assert not (out / ".feature-parts").exists()


def test_cluster_build_with_as_of_and_default_buckets(feature_world, two_worker_client, tmp_path):
    from features.transforms import build_feature_tables

    as_of = pd.Timestamp(feature_world.tables["customer_o"]["event_timestamp"].max()).date()
    expected_dir = tmp_path / "in_process"
    expected_rows = build_feature_tables(feature_world.clean, expected_dir, feature_world.params,
                                         as_of=as_of)
    assert bucket_count(feature_world.clean, 2) == 2
    out = tmp_path / "cluster"
    rows = build_on_cluster(two_worker_client, feature_world.clean, out, feature_world.params,
                            as_of=as_of)
    assert rows == expected_rows
    _assert_same_tables(out, read_tables(expected_dir))


def test_a_bucket_reads_only_its_customers(feature_world):
    whole = load_clean(feature_world.clean)
    buckets = [load_bucket(feature_world.clean, i, 3) for i in range(3)]
    ids = [set(clean.customers["customer_id"]) for clean, _ in buckets]
    assert sum(map(len, ids)) == whole.n and set().union(*ids) == set(whole.customers["customer_id"])
    for clean, bucket in buckets:
        assert 0 < clean.n < whole.n / 2                 # a share, not everyone
        # crm positions: in crm order, pointing at the bucket's own customers
        assert np.all(np.diff(bucket.rows) > 0)
        assert (whole.customers["customer_id"].to_numpy()[bucket.rows]
                == clean.customers["customer_id"].to_numpy()).all()
        for name, table in clean.tables.items():         # codes index the bucket's customers
            assert table["code"].between(0, clean.n - 1).all(), name
    for name, table in whole.tables.items():             # every kept row in exactly one bucket
        assert sum(len(clean.tables[name]) for clean, _ in buckets) == len(table), name
