"""Feast's SQLite online store with one batched write per feature view.

Feast's ``SqliteOnlineStore.online_write_batch`` runs one ``INSERT ... ON CONFLICT`` per
customer and feature; a month of a 100k world is 6.6 million statements, and they were most
of the cycle's features stage (BENCHMARKS.md). This store writes the same rows, in the same
table and encoding, with ``executemany`` and each entity's key and timestamps converted
once, in primary-key order (an upsert in random key order touches a random page of the table's
B-tree each time: 3x slower on a month of a 20k world); reads, ``feast apply`` and teardown
are Feast's own. Vector and OpenAI-compatible
tables (not used here) fall back to Feast's writer.

Select it with ``online_store: {type: features.online_store.BatchedSqliteOnlineStore}``
(``features.store.repo_config`` does, for the embedded default).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import to_naive_utc

STORE_TYPE = "features.online_store.BatchedSqliteOnlineStore"
NUMBERS = ("int64_val", "int32_val", "double_val", "float_val")
BUSY_TIMEOUT_MS = 600_000   # a writer waits this long for another's transaction (the online
                            # fill's parts write from several Dask workers, features.online_fill)


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    type: Literal["features.online_store.BatchedSqliteOnlineStore"] = STORE_TYPE  # type: ignore[assignment]


def _epoch(ts: datetime | None) -> int | None:
    """What Feast's SQLite adapter stores for a timestamp (whole seconds since the epoch)."""
    return None if ts is None else int(to_naive_utc(ts).timestamp())


def _text(val: ValueProto) -> str | None:
    """``value_text`` as Feast's writer fills it (``helpers.extract_text_and_num``)."""
    kind = val.WhichOneof("val")
    if kind == "string_val":
        return val.string_val
    if kind in NUMBERS:
        return str(getattr(val, kind))
    if kind == "bool_val":
        return str(val.bool_val)
    return None


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    """``SqliteOnlineStore`` whose write is one ``executemany`` per batch."""

    def online_write_batch(
        self, config: RepoConfig, table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        store = config.online_store
        if store.vector_enabled or getattr(store, "enable_openai_compatible_store", False):
            return super().online_write_batch(config, table, data, progress)
        conn = self._get_conn(config)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        name = _quote_id(_table_id(config.project, table,
                                   config.registry.enable_online_feature_view_versioning))
        version = config.entity_key_serialization_version
        rows = []
        for entity_key, values, timestamp, created_ts in data:
            key, event, created = (serialize_entity_key(entity_key, version),
                                   _epoch(timestamp), _epoch(created_ts))
            rows.extend((key, feature, val.SerializeToString(), _text(val), event, created)
                        for feature, val in values.items())
        rows.sort()          # primary-key order: each page of the table's B-tree is visited once
        with conn:
            conn.executemany(
                f"INSERT INTO {name} (entity_key, feature_name, value, value_text, event_ts, "
                "created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) "
                "DO UPDATE SET value = excluded.value, value_text = excluded.value_text, "
                "event_ts = excluded.event_ts, created_ts = excluded.created_ts", rows)
        if progress:
            progress(len(data))
