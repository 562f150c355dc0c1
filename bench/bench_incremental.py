"""Benchmark: one new month of exports, ingested and built incrementally vs in full.

Simulates a world, ingests it and builds its feature tables; steps the world one month
(``advance_world``, no plan). The stepped export is ingested in full (baseline) and
incrementally from the first ingest (only the appended row groups validated), and the
clean tables compared. Then, on the same clean tables, times the full build (baseline) and
the incremental build that reuses the earlier snapshots, and checks that both give the same
feature rows.

    .venv/bin/python bench/bench_incremental.py [--customers 100000] [--months 24]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from configs.settings import FeaturesParams, IngestParams, SimulateParams
from features.ingest import run_ingest
from features.sources.world import simulate_world
from features.sources.world.step import advance_world
from features.transforms import build_feature_tables


def timed(fn, *args, **kwargs) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def same_rows(a: Path, b: Path, name: str) -> bool:
    left, right = (pq.read_table(p / f"{name}.parquet").to_pandas()
                   .drop(columns="created_timestamp", errors="ignore") for p in (a, b))
    return left.equals(right)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cem-incremental-"))
    params = FeaturesParams()
    try:
        simulate_world(SimulateParams(customers=args.customers, months=args.months,
                                      seed=args.seed), root / "raw", root / "truth")
        run_ingest(root / "raw", root / "first", root / "q0", IngestParams())
        first = timed(build_feature_tables, root / "first", root / "before", params)
        step = timed(advance_world, root / "truth", root / "raw", None)
        ingest = timed(run_ingest, root / "raw", root / "clean", root / "q", IngestParams())
        ingest_inc = timed(run_ingest, root / "raw", root / "clean_inc", root / "q_inc",
                           IngestParams(), previous=(root / "first", root / "q0"))
        clean_equal = all(same_rows(root / "clean", root / "clean_inc", p.stem)
                          for p in (root / "clean").glob("*.parquet"))
        full = timed(build_feature_tables, root / "clean", root / "full", params)
        incremental = timed(build_feature_tables, root / "clean", root / "incremental", params,
                            previous=root / "before")
        snaps = pd.read_parquet(root / "full" / "customer_o.parquet",
                                columns=["event_timestamp"])["event_timestamp"].nunique()
        equal = all(same_rows(root / "full", root / "incremental", n)
                    for n in ("customer_o", "customer_x", "customer_fused", "churn_labels"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"{args.customers:,} customers, {args.months} months + 1 stepped: {snaps} snapshots")
        print(f"first build {first:.1f} s; world step {step:.1f} s")
        print(f"ingest of the stepped export: full (baseline) {ingest:.1f} s; incremental "
              f"{ingest_inc:.1f} s; ratio {ingest_inc / ingest:.2f}; same clean rows: {clean_equal}")
        print(f"full build (baseline) {full:.1f} s; incremental build {incremental:.1f} s; "
              f"ratio {incremental / full:.2f}; same rows: {equal}; peak RSS {peak:.2f} GB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
