"""The embedded online store: SQLite, one row per customer and feature view.

Feast's ``SqliteOnlineStore`` keeps a row per customer *and feature* (66 a customer here),
each with the serialized entity key, a protobuf value, a text copy of it and timestamps,
under a primary key on (entity key, feature) plus a second index on the entity key alone.
At 1,000,000 customers that was a 14.5 GB file (tables 5.7 GB, primary keys 5.1, the second
index 3.7: BENCHMARKS.md, "The chain on a LocalCluster"), and the fill's time went to 66
upserts a customer. Here a view's table has one row per customer: the entity key (Feast's
encoding) as a ``WITHOUT ROWID`` primary key, the timestamps, and the view's values as one
``RepeatedValue`` protobuf in the order of the view's features, which the ``cem_online_layout``
table records per table. Feast reads it through ``online_read`` (same values and timestamps as
its own store: tested); the service reads it directly (``serving.caches.online``).

A table in Feast's layout (a data folder filled by an older release) or written under other
features is dropped and created again by ``feast apply`` (``update``); the next fill sees it
empty and fills it whole (``features.online_fill``).

Select it with ``online_store: {type: features.online_store.CompactSqliteOnlineStore}``
(``features.store.repo_config`` does, for the embedded default).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from feast import Entity
from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import RepeatedValue
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import _build_entity_keys, _columns_to_proto_values, to_naive_utc

from features.online_encode import entity_keys, epochs, values_blobs

log = logging.getLogger(__name__)

STORE_TYPE = "features.online_store.CompactSqliteOnlineStore"
LAYOUT = "cem_online_layout"      # table -> JSON list of its features, in the values' order
BUSY_TIMEOUT_MS = 600_000   # a writer waits this long for another's transaction (the online
                            # fill's parts write from several Dask workers, features.online_fill)
READ_CHUNK = 10_000         # keys per SELECT (below SQLite's limit on bound parameters)
SORTED_CHUNK = 50_000       # rows per transaction of a write in key order


class CompactSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    type: Literal["features.online_store.CompactSqliteOnlineStore"] = STORE_TYPE  # type: ignore[assignment]


def table_name(config: RepoConfig, view) -> str:
    """The view's table (Feast's naming, so an older folder's table is found and replaced)."""
    return _table_id(config.project, view,
                     getattr(config.registry, "enable_online_feature_view_versioning", False))


def epoch(ts: datetime | None) -> int | None:
    """A timestamp as stored: whole seconds since the epoch (what Feast's store keeps)."""
    return None if ts is None else int(to_naive_utc(ts).replace(tzinfo=UTC).timestamp())


def from_epoch(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def pack(values: dict[str, ValueProto], names: list[str], table: str) -> bytes:
    """A customer's values in the layout's order, as one ``RepeatedValue``."""
    if len(values) != len(names) or values.keys() != set(names):
        unknown = sorted(set(values) - set(names))
        missing = sorted(set(names) - set(values))
        raise ValueError(f"online table {table} holds features {names}: the values written "
                         f"have unknown {unknown} and lack {missing}; run `feast apply` "
                         "(`cem features`) first")
    return RepeatedValue(val=[values[n] for n in names]).SerializeToString()


def unpack(blob: bytes, names: list[str]) -> dict[str, ValueProto]:
    values = RepeatedValue.FromString(blob).val
    if len(values) != len(names):
        raise ValueError(f"an online row holds {len(values)} values, its table's layout "
                         f"{len(names)}: the online store was written by other definitions")
    return dict(zip(names, values, strict=True))


def layouts(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every table's features, in their stored order (empty before the first ``apply``)."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (LAYOUT,)).fetchone():
        return {}
    return {t: json.loads(f) for t, f in conn.execute(f"SELECT table_name, features FROM {LAYOUT}")}


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({_quote_id(table)})")]


def _upsert(conn: sqlite3.Connection, table: str, rows) -> None:
    """(key, event, created, values) rows into ``table`` in one transaction, in primary-key
    order: each page of the table's B-tree is visited once."""
    with conn:
        conn.executemany(f"INSERT OR REPLACE INTO {_quote_id(table)} (entity_key, event_ts, "
                         "created_ts, vals) VALUES (?, ?, ?, ?)", sorted(rows))


class CompactSqliteOnlineStore(SqliteOnlineStore):
    """SQLite online store with one row per customer and view (module docstring)."""

    def _conn_for_write(self, config: RepoConfig) -> sqlite3.Connection:
        conn = self._get_conn(config)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _names(self, conn: sqlite3.Connection, table: str) -> list[str]:
        names = layouts(conn).get(table)
        if names is None:
            raise ValueError(f"online table {table} is not registered: run `feast apply` "
                             "(`cem features`) first")
        return names

    def update(self, config: RepoConfig, tables_to_delete: Sequence[FeatureView],
               tables_to_keep: Sequence[FeatureView], entities_to_delete: Sequence[Entity],
               entities_to_keep: Sequence[Entity], partial: bool) -> None:
        conn = self._conn_for_write(config)
        with conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {LAYOUT} "
                         "(table_name TEXT PRIMARY KEY, features TEXT NOT NULL)")
            known = layouts(conn)
            for view in tables_to_keep:
                name, names = table_name(config, view), [f.name for f in view.features]
                columns = _columns(conn, name)
                if columns and (known.get(name) != names or "vals" not in columns):
                    log.warning("online table %s was written under another layout: dropped, "
                                "the next fill writes it whole", name)
                    conn.execute(f"DROP TABLE {_quote_id(name)}")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {_quote_id(name)} (entity_key BLOB "
                             "PRIMARY KEY, event_ts INTEGER, created_ts INTEGER, vals BLOB NOT "
                             "NULL) WITHOUT ROWID")
                conn.execute(f"INSERT OR REPLACE INTO {LAYOUT} VALUES (?, ?)",
                             (name, json.dumps(names)))
            for view in tables_to_delete:
                name = table_name(config, view)
                conn.execute(f"DROP TABLE IF EXISTS {_quote_id(name)}")
                conn.execute(f"DELETE FROM {LAYOUT} WHERE table_name = ?", (name,))

    def plan(self, config: RepoConfig, desired_registry_proto) -> list:
        """No Feast infra objects: they would create tables in Feast's own layout."""
        return []

    def has_rows(self, config: RepoConfig, view: FeatureView) -> bool:
        """Whether the view's table holds any customer (an empty one is filled whole)."""
        conn = self._get_conn(config)
        name = table_name(config, view)
        if not _columns(conn, name):
            return False
        return conn.execute(f"SELECT 1 FROM {_quote_id(name)} LIMIT 1").fetchone() is not None

    def online_write_batch(
        self, config: RepoConfig, table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        conn = self._conn_for_write(config)
        name = table_name(config, table)
        names = self._names(conn, name)
        version = config.entity_key_serialization_version
        _upsert(conn, name, ((serialize_entity_key(key, version), epoch(ts), epoch(created),
                              pack(values, names, name)) for key, values, ts, created in data))
        if progress:
            progress(len(data))

    def write_arrow(self, config: RepoConfig, table: FeatureView, batch,
                    join_keys: dict) -> bool:
        """Write a batch of the view's rows straight from Arrow (``features.online_encode``:
        the same rows as Feast's conversion, without a protobuf per value); False, with
        nothing written, when a column needs Feast's conversion."""
        rows = self.encode_arrow(config, table, batch, join_keys)
        if rows is None:
            return False
        _upsert(self._conn_for_write(config), table_name(config, table), rows)
        return True

    def write_sorted(self, config: RepoConfig, table: FeatureView, rows) -> int:
        """Rows of ``encode_arrow`` in entity-key order, upserted ``SORTED_CHUNK`` at a time:
        a table filled in key order grows at its end instead of splitting pages all over
        its B-tree (measured 5x faster at 1M rows, and no slower per row as it grows)."""
        conn, name, written = self._conn_for_write(config), table_name(config, table), 0
        rows = iter(rows)
        for chunk in iter(lambda: list(itertools.islice(rows, SORTED_CHUNK)), []):
            _upsert(conn, name, chunk)
            written += len(chunk)
        return written

    def encode_arrow(self, config: RepoConfig, table: FeatureView, batch,
                     join_keys: dict) -> list[tuple] | None:
        """A batch of the view's rows as the table stores them (entity key, event and
        created epochs, values blob); None when a column needs Feast's conversion."""
        conn = self._get_conn(config)
        name = table_name(config, table)
        by_name = {f.name: f for f in table.features}
        names = self._names(conn, name)
        if set(names) != set(by_name):
            return None
        blobs = values_blobs(batch, [by_name[n] for n in names])
        if blobs is None:
            return None
        version = config.entity_key_serialization_version
        keys = entity_keys(batch, join_keys, version)
        if keys is None:
            protos = _columns_to_proto_values(batch, list(join_keys.items()))
            keys = [serialize_entity_key(k, version)
                    for k in _build_entity_keys(batch.num_rows, join_keys, protos)]
        source = table.batch_source
        events = epochs(batch.column(source.timestamp_field))
        created = (epochs(batch.column(source.created_timestamp_column))
                   if source.created_timestamp_column else [None] * batch.num_rows)
        return list(zip(keys, events, created, blobs, strict=True))

    def online_read(
        self, config: RepoConfig, table: FeatureView, entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config)
        name = table_name(config, table)
        names = self._names(conn, name)
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, version) for k in entity_keys]
        found: dict[bytes, tuple[int, bytes]] = {}
        for i in range(0, len(keys), READ_CHUNK):
            chunk = keys[i:i + READ_CHUNK]
            found.update((k, (ts, blob)) for k, ts, blob in conn.execute(
                f"SELECT entity_key, event_ts, vals FROM {_quote_id(name)} "
                f"WHERE entity_key IN ({','.join('?' * len(chunk))})", chunk))
        wanted = None if requested_features is None else set(requested_features)
        out: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            if key not in found:
                out.append((None, None))
                continue
            ts, blob = found[key]
            values = unpack(blob, names)
            if wanted is not None:
                values = {n: v for n, v in values.items() if n in wanted}
            out.append((from_epoch(ts), values))
        return out
