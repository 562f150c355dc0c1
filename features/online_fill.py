"""Filling the online store a slice of the customers at a time, here or on the Dask workers.

Feast's ``materialize`` (its local engine) holds every latest row of a view several times
over in one process (the source read, the filter's and the de-duplication's outputs, all
kept to the end of the view), so the first fill of a 1M-customer world took 4.28 GB in the
`cem` process and a 4M one would not fit beside the workers (BENCHMARKS.md#online-store-memory).
Here each view is read part by part: the customers whose key hashes to the part, each one's
newest row in the window (``features.offline_store.pull_latest``), converted and written
``online_write_batch_size`` rows at a time (``features.store.MATERIALIZATION``) with Feast's
own conversion and the configured online store's writer (the compact SQLite store encodes
from Arrow itself: ``features.online_encode``), so the online rows are the ones
``materialize`` writes (tested), and memory is a part's. On a cluster the parts run on the
workers; SQLite takes their writes one transaction at a time (``features.online_store``),
Redis side by side. An empty online table is filled from the first snapshot even when the
build was incremental. The registry records the materialized window as ``materialize`` does.
"""

from __future__ import annotations

import heapq
import logging
import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import FeatureStore, RepoConfig
from feast.infra.provider import get_provider
from feast.utils import _convert_arrow_to_proto  # the conversion materialize itself uses

from features import bucketed
from features.offline_store import pull_latest
from features.transforms.buckets import bucket_of

log = logging.getLogger(__name__)

ROWS_PER_PART = 2_000_000   # snapshot rows of a view per part: bounds a part's memory
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPLIT = ".online-split"     # beside the feature tables while a cluster fill runs
MERGE_PARTS = True          # the compact store's parts written merged in key order (False:
                            # each part upserts its own rows; the benchmark's baseline)


def parts_of(path: str, minimum: int = 1) -> int:
    """Parts for the feature table at ``path``: enough for ``ROWS_PER_PART``, at least ``minimum``."""
    rows = pq.ParquetFile(path).metadata.num_rows
    return max(minimum, math.ceil(rows / ROWS_PER_PART))


def write_part(config: RepoConfig, fv, provider, part: int, parts: int, start: datetime,
               end: datetime, split: tuple[Path, int] | None = None,
               encoded: Path | None = None) -> int:
    """Write the latest rows in [start, end] of the customers of ``part`` of the view ``fv``
    through ``provider``; returns how many customers were written. ``split``: read the
    part's rows from ``split_view``'s files (folder, pieces) instead of hashing every key
    of the table. ``encoded``: with the compact store, the part's rows are encoded into
    this file in key order instead (``publish_view`` writes every part's, merged)."""
    src = fv.batch_source
    keys = {e.name: e.dtype.to_value_type() for e in fv.entity_columns}
    path, which = ((src.path, (part, parts)) if split is None else
                   ([str(bucketed.bucket_path(split[0], part, i)) for i in range(split[1])], None))
    table = pull_latest(path, list(keys), [f.name for f in fv.features], src.timestamp_field,
                        src.created_timestamp_column or None, start, end, which)
    direct = getattr(provider.online_store, "write_arrow", None)   # the compact store's
    encode = getattr(provider.online_store, "encode_arrow", None) if encoded else None
    rows: list[tuple] = []
    for batch in table.to_batches(max_chunksize=config.materialization_config.online_write_batch_size):
        if not batch.num_rows:
            continue
        if encode is not None and (got := encode(config, fv, batch, keys)) is not None:
            rows += got
        elif not (direct and direct(config, fv, batch, keys)):
            provider.online_write_batch(config, fv, _convert_arrow_to_proto(batch, fv, keys), None)
    if encoded is not None:
        save_encoded(sorted(rows), encoded)
    return table.num_rows


ENCODED = pa.schema([("entity_key", pa.binary()), ("event_ts", pa.int64()),
                     ("created_ts", pa.int64()), ("vals", pa.binary())])


def save_encoded(rows: list[tuple], path: Path) -> None:
    """A part's encoded rows (in key order) as Parquet, a row group of 8,192 at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    table = pa.table([pa.array(c, f.type) for c, f in zip(columns, ENCODED, strict=True)],
                     schema=ENCODED)
    pq.write_table(table, path, row_group_size=8192, compression="none")


def _encoded_rows(path: Path) -> Iterator[tuple]:
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        yield from zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True)


def publish_view(config: RepoConfig, view: str, files: list[Path], *_after) -> int:
    """Every part's encoded rows of ``view``, merged in key order (the parts hold disjoint
    customers), into its online table: the table is written in key order, not part after
    part of scattered keys. On a worker; rows written."""
    fv = FeatureStore(config=config).get_feature_view(view)
    store = get_provider(config).online_store
    return store.write_sorted(config, fv, heapq.merge(*(_encoded_rows(f) for f in files)))


def fill_part(config: RepoConfig, view: str, part: int, parts: int, start: datetime,
              end: datetime, split: tuple[Path, int] | None = None,
              encoded: Path | None = None, *_after) -> int:
    """``write_part`` on a Dask worker: its own store and provider from the shipped config.
    ``split``: the part's files of ``split_view`` (``_after``: the tasks writing them)."""
    fv = FeatureStore(config=config).get_feature_view(view)
    return write_part(config, fv, get_provider(config), part, parts, start, end, split, encoded)


def split_view(path: str, key: str, ts: str, start: datetime, end: datetime, parts: int,
               folder: Path, piece: int, span: tuple[int, int, int]) -> int:
    """One piece of a feature table's rows in [start, end] written once per part (the
    customer's ``bucket_of``): a part then reads its own rows, not the whole table (whose
    scan every part repeated). On a worker; rows written."""
    file = pq.ParquetFile(path)
    low, high = pa.scalar(start, pa.timestamp("us", "UTC")), pa.scalar(end, pa.timestamp("us", "UTC"))

    def window() -> Iterator[pa.RecordBatch]:
        for batch in file.iter_batches(batch_size=1 << 17, row_groups=range(span[0], span[1])):
            at = pc.cast(batch.column(ts), pa.timestamp("us", "UTC"))
            yield batch.filter(pc.and_(pc.greater_equal(at, low), pc.less_equal(at, high)))

    return bucketed.write_buckets(window(), file.schema_arrow,
                                  lambda b: bucket_of(b.column(key), parts),
                                  parts, folder, piece, span[2])


def submit_split(client, fv, parts: int, start: datetime, end: datetime,
                 folder: Path) -> tuple[tuple[Path, int], list]:
    """``split_view`` of every piece of the view's table on the workers: the split (folder,
    pieces) and the tasks writing it."""
    src = fv.batch_source
    spans = bucketed.task_pieces(src.path)
    key = fv.entity_columns[0].name
    tasks = [client.submit(split_view, src.path, key, src.timestamp_field, start, end, parts,
                           folder, i, span, pure=False) for i, span in enumerate(spans)]
    return (folder, len(spans)), tasks


def view_start(config: RepoConfig, provider, fv, start: datetime | None) -> datetime:
    """Where a view's fill starts: ``start`` (an incremental build's new snapshots), but from
    the beginning when the view's online table is empty (new, or replaced by ``feast apply``:
    ``features.online_store``), so no customer is left out of it."""
    if start is None:
        return EPOCH
    has_rows = getattr(provider.online_store, "has_rows", None)
    if has_rows is not None and not has_rows(config, fv):
        log.info("online table of %s is empty: filled from the first snapshot", fv.name)
        return EPOCH
    return start


def fill_online_store(store: FeatureStore, end: datetime, start: datetime | None = None,
                      client=None) -> dict[str, int]:
    """Every view's latest rows in [start, end] into the online store, part by part (on the
    workers of the Dask ``client`` when given); customers written per view."""
    views = store.list_feature_views()
    provider = get_provider(store.config)
    starts = {fv.name: view_start(store.config, provider, fv, start) for fv in views}
    workers = len(client.scheduler_info()["workers"]) if client is not None else 0
    jobs = [(fv, k, n) for fv in views
            for n in [parts_of(fv.batch_source.path, 2 * workers)] for k in range(n)]
    if client is None:   # one store and provider (one online-store connection) for every part
        counts = [write_part(store.config, fv, provider, k, n, starts[fv.name], end)
                  for fv, k, n in jobs]
    else:
        counts = _fill_on(client, store.config, views, jobs, starts, end)
    written: dict[str, int] = {}
    for (fv, _, _), count in zip(jobs, counts, strict=True):
        written[fv.name] = written.get(fv.name, 0) + count
    for fv in views:
        store.registry.apply_materialization(fv, store.project, starts[fv.name], end)
    log.info("online store filled up to %s in %d parts: %s", end.isoformat(), len(jobs), written)
    return written


def _fill_on(client, config: RepoConfig, views: list, jobs: list, starts: dict,
             end: datetime) -> list[int]:
    """The parts on the workers, each view's window rows first split once per part (in a
    folder beside the view's table, removed at the end). With the compact store the parts
    encode their rows and one task per view writes them merged in key order."""
    from distributed import wait

    merged = MERGE_PARTS and hasattr(get_provider(config).online_store, "encode_arrow")
    splits = {}
    try:
        for fv in views:
            n = next(n for f, _, n in jobs if f.name == fv.name)
            folder = Path(fv.batch_source.path).parent / SPLIT / fv.name
            splits[fv.name] = submit_split(client, fv, n, starts[fv.name], end, folder)
        futures, encoded = [], {fv.name: [] for fv in views}
        for fv, k, n in jobs:
            file = (Path(fv.batch_source.path).parent / SPLIT / fv.name / f"encoded_{k:05d}.parquet"
                    if merged else None)
            futures.append(client.submit(fill_part, config, fv.name, k, n, starts[fv.name], end,
                                         splits[fv.name][0], file, *splits[fv.name][1],
                                         pure=False, key=f"online-fill-{fv.name}-{k}-of-{n}"))
            encoded[fv.name].append((file, futures[-1]))
        published = [client.submit(publish_view, config, name, [f for f, _ in parts],
                                   *[task for _, task in parts], pure=False,
                                   key=f"online-publish-{name}")
                     for name, parts in encoded.items() if merged]
        try:
            counts = client.gather(futures)
            client.gather(published)      # a view is written as soon as its parts are done
        except BaseException:
            wait(futures + published)     # no task still reads the files removed below
            raise
        return counts
    finally:
        for folder in {Path(fv.batch_source.path).parent / SPLIT for fv in views}:
            shutil.rmtree(folder, ignore_errors=True)
