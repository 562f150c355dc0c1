"""Benchmark: point-in-time training-set assembly through Feast, against a hand-written
DuckDB ``ASOF JOIN`` over the same Parquet files (the baseline), in one run.

Builds a world big enough for ``--rows`` customer-snapshots, ingests it, builds the
feature tables, then times ``get_historical_features(churn_v1)`` -> DataFrame for the
project's ASOF offline store and for Feast's own DuckDB store, and the baseline query
-> DataFrame. Goal (issue 3): the project's store at most 1.5x the baseline.

    .venv/bin/python bench/bench_features_pit.py [--rows 1000000] [--customers 65000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from configs.settings import load_settings
from features.ingest import run_ingest
from features.services import CHURN_SERVICE
from features.sources.world import simulate_world
from features.store import apply_definitions, feature_store, training_frame
from features.transforms import FEATURE_SCHEMA, build_feature_tables


def prepare(root: Path, customers: int):
    settings = load_settings(data_dir=root)
    params = settings.simulate.model_copy(update={"customers": customers})
    simulate_world(params, settings.raw_dir, settings.truth_dir)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    return settings


def baseline(settings, entity: pd.DataFrame) -> pd.DataFrame:
    """The hand-written ASOF join: one per feature table, TTL ignored."""
    con = duckdb.connect()
    con.register("entity_df", entity)
    select, joins = ["e.*"], []
    for i, (name, cols) in enumerate(FEATURE_SCHEMA.items()):
        path = settings.feature_dir / f"{name}.parquet"
        select += [f"f{i}.{c}" for c in cols]
        joins.append(f"ASOF LEFT JOIN read_parquet('{path}') f{i} ON e.customer_id = f{i}.customer_id "
                     f"AND e.event_timestamp >= f{i}.event_timestamp")
    sql = f"SELECT {', '.join(select)} FROM entity_df e {' '.join(joins)}"
    return con.sql(sql).to_arrow_table().to_pandas()   # DuckDB's fastest route to pandas


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=65_000)
    ap.add_argument("--skip-feast-duckdb", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cem-bench-pit-"))
    try:
        settings = prepare(root, args.customers)
        spine = pd.read_parquet(settings.feature_dir / "customer_o.parquet",
                                columns=["customer_id", "event_timestamp"])
        entity = spine.sample(n=args.rows, random_state=0,
                              replace=len(spine) < args.rows).reset_index(drop=True)
        entity["event_timestamp"] = pd.to_datetime(entity["event_timestamp"], utc=True)
        n_features = sum(len(c) for c in FEATURE_SCHEMA.values())
        baseline(settings, entity.head(1000))               # warm the file cache for both sides
        base_s, base = timed(baseline, settings, entity)
        store = feature_store(settings)
        apply_definitions(store, settings)
        asof_s, asof = timed(training_frame, store, entity, CHURN_SERVICE)
        print(f"entity rows {len(entity):,}; features {n_features}; "
              f"feature rows {len(spine):,} per view x {len(FEATURE_SCHEMA)} views")
        print(f"  baseline DuckDB ASOF JOIN -> DataFrame  {base_s:7.2f} s")
        print(f"  Feast, project ASOF store              {asof_s:7.2f} s   ratio {asof_s / base_s:.2f}x")
        assert len(asof) == len(base) and asof.shape[1] >= n_features
        if not args.skip_feast_duckdb:
            feast_settings = settings.model_copy(update={"feast_offline_store": "duckdb"})
            feast_s, _ = timed(training_frame, feature_store(feast_settings), entity, CHURN_SERVICE)
            print(f"  Feast, built-in DuckDB store           {feast_s:7.2f} s   "
                  f"ratio {feast_s / base_s:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
