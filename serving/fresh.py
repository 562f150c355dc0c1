"""Fresh scores: features from the Feast online store, scored by the batch job's own function.

The scoring function is ``serving.scoring.score_customers`` (the same code as the batch
job) unless a test injects another. A customer's fresh result is kept in a bounded
in-process cache keyed by everything it depends on (the customer's feature values, the
model versions and the scoring date), so a repeated request returns exactly what a
recomputation would, without recomputing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd

from configs.settings import Settings
from features.transforms.schema import ENTITY, FEATURE_SCHEMA
from serving.model_cache import ModelCache
from serving.online import OnlineFeatures

ScoreFn = Callable[[pd.DataFrame, Any, Settings, date], Any]
FEATURE_KINDS = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}


class ModelsNotLoaded(RuntimeError):
    """No champion models are loaded yet (readiness says why)."""


def default_score_fn() -> ScoreFn:
    from serving.scoring import score_customers  # the lead's shared scoring function

    return score_customers


def default_online(settings: Settings, service: str) -> OnlineFeatures:
    from features.store import feature_store

    return OnlineFeatures(feature_store(settings), service)


class LRU:
    def __init__(self, size: int):
        self.size, self._data, self._lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class FreshScorer:
    """Scores customers now, from the online store, with the currently loaded champions."""

    def __init__(
        self,
        settings: Settings,
        models: ModelCache,
        score_fn: ScoreFn | None = None,
        online: Callable[[Settings, str], OnlineFeatures] | None = None,
        cache_size: int = 100_000,
    ):
        self.settings, self.models = settings, models
        self._score_fn, self._online_factory = score_fn, online or default_online
        self._online: dict[str, OnlineFeatures] = {}
        self._lock = threading.Lock()
        self.cache = LRU(cache_size)

    def bundle(self):
        bundle = self.models.bundle
        if bundle is None:
            raise ModelsNotLoaded("champion models are not loaded (see /readyz)")
        return bundle

    def online(self, service: str) -> OnlineFeatures:
        with self._lock:
            if service not in self._online:
                self._online[service] = self._online_factory(self.settings, service)
            return self._online[service]

    def score(self, features: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, Any]:
        """Score a frame of feature rows with the loaded champions: (customers frame, bundle used)."""
        bundle = self.bundle()
        fn = self._score_fn or default_score_fn()
        return fn(features, bundle, self.settings, as_of).customers, bundle

    def customer(self, customer_id: str, as_of: date) -> tuple[dict, Any] | None:
        """A customer's fresh score (None: not in the online store)."""
        bundle = self.bundle()
        row = self.online(bundle.feature_service).rows([customer_id])[0]
        if row is None:
            return None
        key = (customer_id, as_of, tuple(sorted(bundle.versions.items())), tuple(row.values()))
        cached = self.cache.get(key)
        if cached is not None and cached[1] is bundle:
            return cached
        frame = pd.DataFrame([row], columns=list(row))
        customers, used = self.score(frame, as_of)
        result = (customers.iloc[0].to_dict(), used)
        self.cache.put(key, result)
        return result

    def feature_names(self) -> list[str]:
        """The features the champion's FeatureService expects (customer_id excluded)."""
        return self.online(self.bundle().feature_service).columns[1:]


def row_errors(rows: list[dict], features: list[str]) -> list[dict]:
    """Validation errors of posted feature rows, each naming ``rows[i].field``."""
    errors, expected = [], set(features)
    for i, row in enumerate(rows):
        if not isinstance(row.get(ENTITY), str) or not row.get(ENTITY):
            errors.append(
                {
                    "loc": ["body", "rows", i, ENTITY],
                    "msg": "customer_id must be a non-empty string",
                    "type": "missing",
                }
            )
        for name in sorted(expected - set(row)):
            errors.append(
                {
                    "loc": ["body", "rows", i, name],
                    "msg": f"feature {name} is missing (null is allowed)",
                    "type": "missing",
                }
            )
        for name in sorted(set(row) - expected - {ENTITY}):
            errors.append(
                {
                    "loc": ["body", "rows", i, name],
                    "msg": f"unknown feature {name}",
                    "type": "extra_forbidden",
                }
            )
        for name in sorted(expected & set(row)):
            if not _type_ok(row[name], FEATURE_KINDS.get(name, "float")):
                errors.append(
                    {
                        "loc": ["body", "rows", i, name],
                        "msg": f"feature {name} must be {FEATURE_KINDS.get(name, 'float')} or null",
                        "type": "type_error",
                    }
                )
        if len(errors) >= 50:
            break
    return errors


def _type_ok(value, kind: str) -> bool:
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float)
