"""Benchmark: filling the SQLite online store with one month of features, batched vs Feast's writer.

What a cycle's features stage does after the incremental build: materialize the newest
snapshot into an online store that already holds the previous one (every row an upsert).
Both writers start from the same copy of the store; the baseline is Feast's own
``SqliteOnlineStore`` (one statement per customer and feature), the product's is
``features.online_store.BatchedSqliteOnlineStore``. The stores' rows are compared after.

Either point it at a built data folder (``--data``, e.g. a world kept by bench_cycle.py;
read only: the features are linked, the store copied) or let it build a world
(``--customers``: simulate, ingest, features, fill the store up to the previous snapshot).

    .venv/bin/python bench/bench_online_store.py [--data DIR | --customers 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

import features.store as fs
from configs.settings import load_settings
from features.online_store import STORE_TYPE

FEAST_SQLITE = "sqlite"


def build_world(root: Path, customers: int) -> Path:
    from features.ingest import run_ingest
    from features.sources.world import simulate_world
    from features.transforms import build_feature_tables

    settings = load_settings(data_dir=root)
    settings = settings.model_copy(update={"simulate": settings.simulate.model_copy(
        update={"customers": customers})})
    simulate_world(settings.simulate, settings.raw_dir, settings.truth_dir)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    return root


def snapshots(feature_dir: Path) -> pd.Series:
    stamps = pd.read_parquet(feature_dir / "customer_o.parquet", columns=["event_timestamp"])
    return stamps["event_timestamp"].drop_duplicates().sort_values().reset_index(drop=True)


def prepared(data: Path, work: Path, store_type: str, before: pd.Timestamp):
    """A data folder linking ``data``'s features, with a store filled up to ``before``."""
    settings = load_settings(data_dir=work)
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(Path(data, "features").resolve())
    fs.ONLINE_STORE = store_type
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    fs.materialize_latest(store, before.to_pydatetime() + timedelta(seconds=1))
    return settings, store


def online_rows(settings) -> int:
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]
                   for n in names if n.startswith("cem_"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="a built data folder (read only)")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cem-online-"))
    try:
        data = args.data or build_world(root / "world", args.customers)
        snaps = snapshots(Path(data, "features"))
        last, before = snaps.iloc[-1], snaps.iloc[-2]
        seconds: dict[str, list[float]] = {FEAST_SQLITE: [], STORE_TYPE: []}
        rows = {}
        for i in range(args.repeat):
            for kind in seconds:
                work = root / f"{kind.rsplit('.', 1)[-1]}-{i}"
                settings, store = prepared(data, work, kind, before)
                started = time.perf_counter()
                fs.materialize_latest(store, last.to_pydatetime() + timedelta(seconds=1),
                                      start=before.to_pydatetime() + timedelta(seconds=1))
                seconds[kind].append(time.perf_counter() - started)
                rows[kind] = online_rows(settings)
                shutil.rmtree(work)
        new = (pd.read_parquet(Path(data, "features", "customer_o.parquet"),
                               columns=["event_timestamp"])["event_timestamp"] == last).sum()
        base, ours = min(seconds[FEAST_SQLITE]), min(seconds[STORE_TYPE])
        print(f"newest snapshot {last:%Y-%m-%d}: {new:,} customers; online rows after: "
              f"{rows[FEAST_SQLITE]:,} (Feast) / {rows[STORE_TYPE]:,} (batched)")
        print(f"Feast's SqliteOnlineStore (baseline) {base:.1f} s; BatchedSqliteOnlineStore "
              f"{ours:.1f} s; ratio {ours / base:.2f} (best of {args.repeat}; runs "
              f"{[round(s, 1) for s in seconds[FEAST_SQLITE]]} / "
              f"{[round(s, 1) for s in seconds[STORE_TYPE]]})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
