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

import logging
import math
from datetime import UTC, datetime

import pyarrow.parquet as pq
from feast import FeatureStore, RepoConfig
from feast.infra.provider import get_provider
from feast.utils import _convert_arrow_to_proto  # the conversion materialize itself uses

from features.offline_store import pull_latest

log = logging.getLogger(__name__)

ROWS_PER_PART = 2_000_000   # snapshot rows of a view per part: bounds a part's memory
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parts_of(path: str, minimum: int = 1) -> int:
    """Parts for the feature table at ``path``: enough for ``ROWS_PER_PART``, at least ``minimum``."""
    rows = pq.ParquetFile(path).metadata.num_rows
    return max(minimum, math.ceil(rows / ROWS_PER_PART))


def write_part(config: RepoConfig, fv, provider, part: int, parts: int, start: datetime,
               end: datetime) -> int:
    """Write the latest rows in [start, end] of the customers of ``part`` of the view ``fv``
    through ``provider``; returns how many customers were written."""
    src = fv.batch_source
    keys = {e.name: e.dtype.to_value_type() for e in fv.entity_columns}
    table = pull_latest(src.path, list(keys), [f.name for f in fv.features], src.timestamp_field,
                        src.created_timestamp_column or None, start, end, (part, parts))
    direct = getattr(provider.online_store, "write_arrow", None)   # the compact store's
    for batch in table.to_batches(max_chunksize=config.materialization_config.online_write_batch_size):
        if batch.num_rows and not (direct and direct(config, fv, batch, keys)):
            provider.online_write_batch(config, fv, _convert_arrow_to_proto(batch, fv, keys), None)
    return table.num_rows


def fill_part(config: RepoConfig, view: str, part: int, parts: int, start: datetime,
              end: datetime) -> int:
    """``write_part`` on a Dask worker: its own store and provider from the shipped config."""
    fv = FeatureStore(config=config).get_feature_view(view)
    return write_part(config, fv, get_provider(config), part, parts, start, end)


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
        futures = [client.submit(fill_part, store.config, fv.name, k, n, starts[fv.name], end,
                                 pure=False, key=f"online-fill-{fv.name}-{k}-of-{n}")
                   for fv, k, n in jobs]
        counts = client.gather(futures)
    written: dict[str, int] = {}
    for (fv, _, _), count in zip(jobs, counts, strict=True):
        written[fv.name] = written.get(fv.name, 0) + count
    for fv in views:
        store.registry.apply_materialization(fv, store.project, starts[fv.name], end)
    log.info("online store filled up to %s in %d parts: %s", end.isoformat(), len(jobs), written)
    return written
