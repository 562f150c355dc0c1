"""Benchmark: the online store's fill on a LocalCluster, parts merged in key order or not.

On the cluster each part of a view (the customers hashing to it) pulls and encodes its
customers' latest rows. The baseline: each part upserts its own rows into the compact
SQLite store, so every transaction scatters its keys over the whole table's B-tree. The
product: the parts write their encoded rows to files, and one task per view writes them
merged in key order (``features.online_fill.publish_view``). Two fills each: the first, from
empty up to the previous snapshot, then a month's (the newest snapshot, every row an
upsert). Printed: seconds, the file's bytes, and whether Feast reads the same values and
timestamps of every customer from both.

    .venv/bin/python bench/bench_online_fill.py --data DIR [--workers 2]

``--data``: a built data folder, read only (its features are linked), e.g. one kept by
``bench_cluster_chain.py --keep``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from bench_online_store import contents_digest, snapshots
from distributed import Client, LocalCluster

import features.online_fill as fill
import features.store as fs
from configs.settings import load_settings


def timed_fills(data: Path, work: Path, client, merged: bool, before,
                last) -> tuple[float, float, int, object]:
    """First and month fill seconds, the file's bytes, and the store (for the digest)."""
    fill.MERGE_PARTS = merged
    settings = load_settings(data_dir=work)
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(Path(data, "features").resolve())
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    started = time.perf_counter()
    fs.materialize_latest(store, before.to_pydatetime() + timedelta(seconds=1), client=client)
    first = time.perf_counter() - started
    started = time.perf_counter()
    fs.materialize_latest(store, last.to_pydatetime() + timedelta(seconds=1),
                          start=before.to_pydatetime() + timedelta(seconds=1), client=client)
    month = time.perf_counter() - started
    return first, month, (settings.feast_dir / "online.db").stat().st_size, store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a built data folder (read only)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--check-customers", type=int, default=0,
                    help="compare the stores on this many customers (default: all)")
    args = ap.parse_args()
    snaps = snapshots(Path(args.data, "features"))
    last, before = snaps.iloc[-1], snaps.iloc[-2]
    customers = sorted(pd.read_parquet(Path(args.data, "features", "customer_o.parquet"),
                                       columns=["customer_id"])["customer_id"].unique())
    checked = (customers if not args.check_customers else
               sorted(pd.Series(customers).sample(args.check_customers, random_state=0)))
    root = Path(tempfile.mkdtemp(prefix="cem-online-fill-"))
    results, digests = {}, {}
    try:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          memory_limit=args.memory_limit) as cluster, Client(cluster) as client:
            for label, merged in (("each part upserts its rows (baseline)", False),
                                  ("parts merged in key order", True)):
                work = root / ("merged" if merged else "direct")
                first, month, size, store = timed_fills(args.data, work, client, merged,
                                                        before, last)
                results[label] = (first, month, size)
                digests[label] = contents_digest(store, checked)
                print(f"{label}: first fill {first:.1f} s, a month's fill {month:.1f} s",
                      flush=True)
                shutil.rmtree(work)
        base, ours = results.values()
        print(f"{len(customers):,} customers, LocalCluster {args.workers}x1; the same contents "
              f"(of {len(checked):,} customers): {len(set(digests.values())) == 1}")
        for label, (first, month, size) in results.items():
            print(f"{label}: first fill {first:.1f} s, a month's fill {month:.1f} s, "
                  f"file {size / 1e6:,.1f} MB")
        print(f"ratio (merged / baseline): first fill {ours[0] / base[0]:.2f}, a month's fill "
              f"{ours[1] / base[1]:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
