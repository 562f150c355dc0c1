"""Feature tables built per customer bucket on two Dask worker processes are the in-process
tables (every table: same rows, order and dtypes); each bucket reads only its customers."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import bucketed
from features.transforms.buckets import (
    Split,
    bucket_count,
    load_bucket,
    split_columns,
    split_table,
    summarize_bucket,
)
from features.transforms.incremental import MANIFEST
from features.transforms.inputs import load_clean
from features.transforms.parallel import build_on_cluster, median_of_counts
from features.transforms.present import ABSENT_FILE

from .conftest import TABLES, read_tables


def _assert_same_tables(out, expected: dict[str, pd.DataFrame]) -> None:
    got = read_tables(out)
    for name in TABLES:
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True, obj=name)


def regrouped(clean_dir: Path, to: Path, rows: int = 400) -> Path:
    """A copy of the clean folder whose tables have row groups of ``rows`` rows."""
    shutil.copytree(clean_dir, to)
    for path in to.glob("*.parquet"):
        pq.write_table(pq.read_table(path), path, row_group_size=rows)
    return to


@pytest.mark.parametrize("piece_rows", [None, 700])
def test_cluster_build_equals_in_process(feature_world, two_worker_client, tmp_path, caplog,
                                         monkeypatch, piece_rows):
    """``piece_rows``: the clean tables in row groups of 400 rows, split in pieces of two
    row groups (the default: one piece per table)."""
    clean = feature_world.clean
    if piece_rows:
        monkeypatch.setattr(bucketed, "PIECE_ROWS", piece_rows)
        clean = regrouped(clean, tmp_path / "clean")
    out = tmp_path / "features"
    with caplog.at_level(logging.INFO, logger="features.transforms"):
        rows = build_on_cluster(two_worker_client, clean, out, feature_world.params,
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
    assert not (out / ".feature-parts").exists() and not (out / ".feature-split").exists()


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


def test_a_bucket_reads_the_same_from_its_split(feature_world, tmp_path):
    """The split files give every bucket the rows, order and crm positions of a scan."""
    clean_dir, count, pieces = regrouped(feature_world.clean, tmp_path / "clean"), 3, {}
    for name, columns in split_columns(clean_dir).items():
        path = clean_dir / f"{name}.parquet"
        spans = bucketed.pieces(path, piece_rows=700) or [(0, 0, 0)]
        pieces[name] = len(spans)
        for i, span in enumerate(spans):
            split_table(path, columns, count, tmp_path / "split" / name, i, span)
    assert pieces["billing_invoices"] > 3                 # tables in several pieces
    split = Split(tmp_path / "split", pieces)
    for i in range(count):
        (scan, scanned), (got, bucket) = load_bucket(clean_dir, i, count), load_bucket(
            clean_dir, i, count, split)
        np.testing.assert_array_equal(bucket.rows, scanned.rows)
        pd.testing.assert_frame_equal(got.customers, scan.customers, check_exact=True)
        for name, table in scan.tables.items():
            pd.testing.assert_frame_equal(got.tables[name], table, check_exact=True, obj=name)
        a, b = summarize_bucket(clean_dir, i, count), summarize_bucket(clean_dir, i, count, split)
        assert a["bounds"] == b["bounds"] and a["undated"] == b["undated"]
        assert a["usage"].keys() == b["usage"].keys()
        for month, (values, counts) in a["usage"].items():
            np.testing.assert_array_equal(values, b["usage"][month][0])
            np.testing.assert_array_equal(counts, b["usage"][month][1])


def test_the_usage_median_from_counts_is_numpys():
    """The seasonal level from the buckets' distinct values and counts equals ``np.median`` of
    every usage value, exactly: odd and even counts, values repeated across buckets."""
    rng = np.random.default_rng(3)
    for _ in range(500):
        values = rng.choice(rng.normal(100, 40, rng.integers(1, 12)).round(1), rng.integers(1, 80))
        buckets = [np.unique(b, return_counts=True)
                   for b in np.array_split(values, rng.integers(1, 5)) if len(b)]
        got = median_of_counts(np.concatenate([v for v, _ in buckets]),
                               np.concatenate([c for _, c in buckets]))
        assert got == np.median(values)
