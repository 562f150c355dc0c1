"""Benchmark: the SQLite online store's fill and size, the compact store vs Feast's own.

Two fills per store: the first, from empty up to the previous snapshot (what `cem features`
does on a new folder), then a cycle's, the newest snapshot into the store that holds the
previous one (every row an upsert, after the incremental build). The baseline is Feast's own
``SqliteOnlineStore`` (a row per customer and feature), the product's
``features.online_store.CompactSqliteOnlineStore`` (a row per customer and view). Printed:
the seconds of each fill, the file's bytes, and whether Feast reads the same values and
timestamps of every customer from both.

Either point it at a built data folder (``--data``, e.g. a world kept by bench_cycle.py;
read only: the features are linked, the store copied) or let it build a world
(``--customers``: simulate, ingest, features, fill the store up to the previous snapshot).

    .venv/bin/python bench/bench_online_store.py [--data DIR | --customers 100000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

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
    """A data folder linking ``data``'s features, with a store filled up to ``before``;
    the seconds of that first fill."""
    settings = load_settings(data_dir=work)
    settings.feature_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.feature_dir.symlink_to(Path(data, "features").resolve())
    fs.ONLINE_STORE = store_type
    store = fs.feature_store(settings)
    fs.apply_definitions(store, settings)
    started = time.perf_counter()
    fs.materialize_latest(store, before.to_pydatetime() + timedelta(seconds=1))
    return settings, store, time.perf_counter() - started


def contents_digest(store, customers: list[str]) -> str:
    """A digest of every view's values and timestamps of ``customers`` as Feast reads them."""
    provider, digest = store._get_provider(), hashlib.sha256()
    for fv in sorted(store.list_feature_views(), key=lambda v: v.name):
        names = sorted(f.name for f in fv.features)
        for i in range(0, len(customers), 20_000):
            keys = [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=c)])
                    for c in customers[i:i + 20_000]]
            for ts, values in provider.online_read(store.config, fv, keys, names):
                digest.update(repr(ts).encode())
                for n in names if values else []:
                    digest.update(values[n].SerializeToString())
    return digest.hexdigest()


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
        customers = sorted(pd.read_parquet(Path(data, "features", "customer_o.parquet"),
                                           columns=["customer_id"])["customer_id"].unique())
        first: dict[str, list[float]] = {FEAST_SQLITE: [], STORE_TYPE: []}
        month: dict[str, list[float]] = {FEAST_SQLITE: [], STORE_TYPE: []}
        size, digest = {}, {}
        for i in range(args.repeat):
            for kind in first:
                work = root / f"{kind.rsplit('.', 1)[-1]}-{i}"
                settings, store, took = prepared(data, work, kind, before)
                first[kind].append(took)
                started = time.perf_counter()
                fs.materialize_latest(store, last.to_pydatetime() + timedelta(seconds=1),
                                      start=before.to_pydatetime() + timedelta(seconds=1))
                month[kind].append(time.perf_counter() - started)
                size[kind] = (settings.feast_dir / "online.db").stat().st_size
                digest[kind] = contents_digest(store, customers)
                shutil.rmtree(work)
        new = (pd.read_parquet(Path(data, "features", "customer_o.parquet"),
                               columns=["event_timestamp"])["event_timestamp"] == last).sum()
        print(f"{len(customers):,} customers; newest snapshot {last:%Y-%m-%d}: {new:,}; "
              f"Feast reads the same from both stores: {digest[FEAST_SQLITE] == digest[STORE_TYPE]}")
        for label, seconds in (("first fill", first), ("a month's fill", month)):
            base, ours = min(seconds[FEAST_SQLITE]), min(seconds[STORE_TYPE])
            print(f"{label}: Feast's SqliteOnlineStore (baseline) {base:.1f} s; "
                  f"CompactSqliteOnlineStore {ours:.1f} s; ratio {ours / base:.2f} (best of "
                  f"{args.repeat}; runs {[round(s, 1) for s in seconds[FEAST_SQLITE]]} / "
                  f"{[round(s, 1) for s in seconds[STORE_TYPE]]})")
        print(f"file: Feast's {size[FEAST_SQLITE] / 1e6:,.1f} MB; compact "
              f"{size[STORE_TYPE] / 1e6:,.1f} MB; ratio {size[STORE_TYPE] / size[FEAST_SQLITE]:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
