"""Benchmark: the cluster ingest's foreign-key check of one partition, every id against a bucket.

Each partition of a table that names a customer checks its rows' customers against the clean
CRM. The baseline is what a worker did before (``known.CustomerSet`` over every clean id: the
Arrow set of all ids built for the task, then the probe); against it, the bucket files
(``cluster.known.BucketedCustomers``): a table split by customer reads its own bucket
(``own``), a table split by its own id hashes its rows and reads each bucket in turn. Both are
timed on partition 0 of a real clean folder, with the Arrow memory they allocate at their
peak (``pyarrow.total_allocated_bytes``, sampled after each step: a floor, not the RSS).

    .venv/bin/python bench/bench_known_customers.py --clean DATA/clean [--buckets 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.ingest.cluster.known import BucketedCustomers, write_known
from features.ingest.cluster.parts import in_partition
from features.ingest.io import _ARROW_STRINGS
from features.ingest.known import CustomerSet


def column(path: Path, name: str) -> pd.Series:
    return pq.read_table(path, columns=[name]).column(0).to_pandas(
        types_mapper=_ARROW_STRINGS.get)


def timed(label: str, run) -> tuple[float, np.ndarray]:
    before = pa.total_allocated_bytes()
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    print(f"  {label:46s} {seconds:7.2f} s  (Arrow {(pa.total_allocated_bytes() - before) / 1e6:6.0f} MB"
          " still held)")
    return seconds, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", type=Path, required=True)
    ap.add_argument("--buckets", type=int, default=16)
    args = ap.parse_args()
    count = args.buckets
    ids = column(args.clean / "crm_customers.parquet", "customer_id")
    invoices = pq.read_table(args.clean / "billing_invoices.parquet",
                             columns=["invoice_id", "customer_id"]).to_pandas(
        types_mapper=_ARROW_STRINGS.get)
    by_invoice = invoices.loc[in_partition(invoices["invoice_id"], 0, count), "customer_id"]
    usage = column(args.clean / "product_usage.parquet", "customer_id")
    by_customer = usage[in_partition(usage, 0, count)]
    del invoices, usage
    print(f"{len(ids):,} clean customers, {count} buckets; partition 0: {len(by_invoice):,} "
          f"invoice rows, {len(by_customer):,} usage rows")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            write_known(Path(tmp), i, count, ids[in_partition(ids, i, count)])
        for name, probe, own in (("invoices (split by invoice id)", by_invoice, None),
                                 ("usage (split by customer)", by_customer, 0)):
            print(name)
            base, want = timed("every id: CustomerSet(all).contains",
                               lambda p=probe: CustomerSet(ids).contains(p))
            took, got = timed(f"bucket files: BucketedCustomers(own={own}).contains",
                              lambda p=probe, o=own: BucketedCustomers(Path(tmp), count, o)
                              .contains(p))
            assert (got == want).all(), "the bucket files answer otherwise"
            print(f"  bucket files / every id: {took / base:.2f}x the time")


if __name__ == "__main__":
    main()
