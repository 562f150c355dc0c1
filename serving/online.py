"""Online features for the service: the same values as Feast's ``get_online_features``, faster.

Feast's SDK call resolves the FeatureService in the registry and builds a protobuf
response on every request (about 25 ms a customer here). The service resolves the
service's views once and calls the online store's own ``online_read`` (SQLite or
Redis, whichever the settings choose) per view: under a millisecond. A test checks
the frame equals ``features.store.online_features`` for the same customers.
"""

from __future__ import annotations

import threading

import pandas as pd
from feast import FeatureStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type

from features.transforms.schema import ENTITY


class OnlineFeatures:
    """Reads the latest materialized features of a FeatureService, one frame row per customer."""

    def __init__(self, store: FeatureStore, service: str):
        projections = store.get_feature_service(service).feature_view_projections
        self.service = service
        self._store = store
        self._views = [(store.get_feature_view(p.name), [f.name for f in p.features]) for p in projections]
        self.columns = [ENTITY] + [name for _, names in self._views for name in names]
        self._lock = threading.Lock()  # the SQLite online store shares one connection

    def rows(self, customer_ids: list[str]) -> list[dict | None]:
        """Feature dicts per customer (None where no view has the customer)."""
        keys = [EntityKey(join_keys=[ENTITY], entity_values=[Value(string_val=c)]) for c in customer_ids]
        out: list[dict] = [{ENTITY: c} for c in customer_ids]
        found = [False] * len(customer_ids)
        provider = self._store._get_provider()
        for view, names in self._views:
            with self._lock:
                read = provider.online_read(self._store.config, view, keys, names)
            for i, (_, values) in enumerate(read):
                values = values or {}
                found[i] = found[i] or bool(values)
                for name in names:
                    v = values.get(name)
                    out[i][name] = None if v is None else feast_value_type_to_python_type(v)
        return [row if hit else None for row, hit in zip(out, found, strict=True)]

    def frame(self, customer_ids: list[str]) -> pd.DataFrame:
        """Known customers only, columns in the service's order (as Feast's ``to_df``)."""
        rows = [r for r in self.rows(customer_ids) if r is not None]
        return pd.DataFrame(rows, columns=self.columns)

    def value(self, customer_id: str, feature: str):
        """One feature of one customer (None when unknown)."""
        row = self.rows([customer_id])[0]
        return None if row is None else row.get(feature)
