"""An incremental ingest (a cycle's new month) per partition on two Dask worker processes
writes the in-process incremental ingest's files, byte for byte: the earlier rows first,
the appended row groups validated alone (their duplicate keys judged against the earlier
rows of their partition), and a full rebuild when the earlier rows changed."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

from configs.settings import load_settings
from features.ingest import run_ingest
from features.ingest.cluster.driver import ingest_on_cluster
from features.ingest.incremental import APPENDED, MANIFEST

from .test_cluster_ingest import BUCKETS, assert_same_outputs
from .test_incremental_ingest import _copy, _rewrite, stepped  # noqa: F401 - the fixture


def _both(root, client):
    """``root/raw`` ingested incrementally from ``root``'s outputs, in-process and on the
    cluster: the two output roots."""
    settings = load_settings(data_dir=root)
    previous = (settings.clean_dir, settings.quarantine_dir)
    run_ingest(settings.raw_dir, root / "here" / "clean", root / "here" / "quarantine",
               settings.ingest, previous=previous)
    ingest_on_cluster(client, settings.raw_dir, root / "there" / "clean",
                      root / "there" / "quarantine", settings.ingest, buckets=BUCKETS,
                      previous=previous)
    return root / "here", root / "there"


def _manifest(out) -> dict:
    return json.loads((out / "clean" / MANIFEST).read_text())


def test_a_stepped_month_on_the_cluster_equals_in_process(stepped, two_worker_client,  # noqa: F811
                                                          tmp_path):
    here, there = _both(_copy(stepped, tmp_path / "w"), two_worker_client)
    assert _manifest(there)["mode"] == "incremental"
    assert_same_outputs(here, there)
    validated = _manifest(there)["rows_validated"]
    report = json.loads((there / "clean" / "ingest_report.json").read_text())["tables"]
    assert all(validated[t] < report[t]["rows_in"] / 3 for t in APPENDED)


def test_bad_rows_of_the_new_month_on_the_cluster(stepped, two_worker_client,  # noqa: F811
                                                  tmp_path):
    root = _copy(stepped, tmp_path / "w")
    orders = root / "raw" / "orders.parquet"
    earlier = pq.ParquetFile(orders).read_row_group(0).column("order_id").to_pylist()
    last = pq.ParquetFile(orders).num_row_groups - 1

    def break_rows(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[0, "order_id"] = earlier[0]           # earlier orders' keys again
        frame.loc[4, "order_id"] = earlier[1]
        frame.loc[5, "order_id"] = frame.loc[6, "order_id"]   # a key twice in the new month
        frame.loc[1, "customer_id"] = "NOBODY"
        frame.loc[2, "status"] = "lost"
        return frame

    _rewrite(orders, last, break_rows)
    here, there = _both(root, two_worker_client)
    assert _manifest(there)["mode"] == "incremental"
    assert_same_outputs(here, there)
    reasons = pd.read_parquet(there / "quarantine" / "orders.parquet")["_reason"]
    assert reasons.str.contains("duplicate key").sum() >= 3


def test_a_changed_earlier_row_is_a_full_rebuild_on_the_cluster(stepped,  # noqa: F811
                                                                 two_worker_client, tmp_path):
    root = _copy(stepped, tmp_path / "w")

    def late_fee(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[3, "amount"] = frame.loc[3, "amount"] + 1.0
        return frame

    _rewrite(root / "raw" / "billing_invoices.parquet", 0, late_fee)
    here, there = _both(root, two_worker_client)
    assert _manifest(there)["full_rebuild_reason"] == "billing_invoices: earlier rows changed"
    assert_same_outputs(here, there)
