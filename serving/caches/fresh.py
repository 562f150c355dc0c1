"""Fresh scores: features from the Feast online store, scored by the batch job's own function.

The scoring function is ``models.scoring.score_customers`` (the same code as the batch
job) unless a test injects another. Scoring one customer through it takes tens of ms
here (pandas and five LightGBM models per call), so results are kept in a bounded
in-process cache (``serving.fresh_cache_size`` customers), serialized
(``views.FreshScore``), keyed by everything they depend on (a digest of the customer's
stored online feature values, the model versions and the scoring date) and filled in
batches (``warm``): a request reads the customer's features from the online store
(a tenth of a millisecond, nothing decoded on a hit) and returns exactly what a
recomputation would, recomputing only when something changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from configs.settings import Settings
from features.transforms.schema import ENTITY, FEATURE_SCHEMA
from models.frame import feature_kinds
from models.nps.scale import bundle_scale
from serving.caches.model_cache import ModelCache
from serving.caches.online import OnlineFeatures, OnlineRow
from serving.views import FreshScore, fresh_score

ScoreFn = Callable[[pd.DataFrame, Any, Settings, date], Any]
FEATURE_KINDS = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}


log = logging.getLogger(__name__)
WARM_CHUNK = 2_000  # customers scored per batch when warming


class ModelsNotLoaded(RuntimeError):
    """No champion models are loaded yet (readiness says why)."""


def default_score_fn() -> ScoreFn:
    from models.scoring import score_customers  # the lead's shared scoring function

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

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


@dataclass
class WarmState:
    versions: dict[str, str]
    as_of: date | None
    customers: int = 0
    seconds: float = 0.0
    finished: bool = False
    error: str | None = None


def _key(row: OnlineRow, as_of: date, versions: dict) -> tuple:
    """Everything a fresh score depends on: the customer's feature values, models and date."""
    return row.customer_id, as_of, tuple(sorted(versions.items())), row.digest


class FreshScorer:
    """Scores customers now, from the online store, with the currently loaded champions.

    ``warm`` scores the latest run's customers in batches into the cache (after start and
    whenever the champions or the run date change), so a request finds its result unless
    the customer's online features changed since; then it is scored on the spot.
    """

    def __init__(
        self,
        settings: Settings,
        models: ModelCache,
        score_fn: ScoreFn | None = None,
        online: Callable[[Settings, str], OnlineFeatures] | None = None,
    ):
        self.settings, self.models = settings, models
        self._score_fn, self._online_factory = score_fn, online or default_online
        self._online: dict[str, OnlineFeatures] = {}
        self._lock, self._warm_lock = threading.Lock(), threading.Lock()
        self.cache = LRU(settings.serving.fresh_cache_size)
        self.warmed = WarmState({}, None)

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

    def _scored(self, frame: pd.DataFrame, bundle, as_of: date) -> pd.DataFrame:
        fn = self._score_fn or default_score_fn()
        return fn(frame, bundle, self.settings, as_of).customers

    def score(self, features: pd.DataFrame, as_of: date) -> tuple[pd.DataFrame, Any]:
        """Score a frame of feature rows with the loaded champions: (customers frame, bundle used)."""
        bundle = self.bundle()
        return self._scored(features, bundle, as_of), bundle

    def lookup(self, customer_id: str, as_of: date) -> tuple[OnlineRow | None, FreshScore | None, Any]:
        """(online feature row, cached score or None, bundle); the row is None for an unknown customer.

        Cheap (one online read): the service calls it on the event loop and scores a miss elsewhere.
        """
        bundle = self.bundle()
        row = self.online(bundle.feature_service).read([customer_id])[0]
        if row is None:
            return None, None, bundle
        return row, self.cache.get(_key(row, as_of, bundle.versions)), bundle

    def compute(self, row: OnlineRow, bundle, as_of: date) -> FreshScore:
        """Score one customer's feature row (the slow path) and keep the result."""
        values = row.values()
        record = self._scored(pd.DataFrame([values], columns=list(values)), bundle, as_of).iloc[0].to_dict()
        score = fresh_score(record, bundle_scale(bundle).code)
        self.cache.put(_key(row, as_of, bundle.versions), score)
        return score

    def customer(self, customer_id: str, as_of: date) -> tuple[FreshScore, Any] | None:
        """A customer's fresh score and the bundle behind it (None: not in the online store)."""
        row, cached, bundle = self.lookup(customer_id, as_of)
        if row is None:
            return None
        return (cached if cached is not None else self.compute(row, bundle, as_of)), bundle

    def warm(self, customer_ids: list[str], as_of: date, chunk: int = WARM_CHUNK) -> WarmState:
        """Score these customers' current online features in batches into the cache."""
        bundle = self.bundle()
        state = WarmState(dict(bundle.versions), as_of)
        started = time.perf_counter()
        with self._warm_lock:
            online = self.online(bundle.feature_service)
            for start in range(0, len(customer_ids), chunk):
                rows = [r for r in online.read(customer_ids[start : start + chunk]) if r is not None]
                if not rows:
                    continue
                frame = pd.DataFrame([r.values() for r in rows], columns=online.columns)
                scored = self._scored(frame, bundle, as_of)
                for row, record in zip(rows, scored.to_dict("records"), strict=True):
                    self.cache.put(_key(row, as_of, bundle.versions),
                                   fresh_score(record, bundle_scale(bundle).code))
                state.customers += len(rows)
            state.seconds, state.finished = time.perf_counter() - started, True
            self.warmed = state
        log.info("fresh-score cache warmed: %d customers in %.1f s", state.customers, state.seconds)
        return state

    def needs_warming(self, as_of: date | None) -> bool:
        bundle = self.models.bundle
        return (
            bundle is not None
            and as_of is not None
            and (self.warmed.versions != dict(bundle.versions) or self.warmed.as_of != as_of)
        )

    def feature_names(self) -> list[str]:
        """The features the champions read (customer_id excluded): the batch rows' contract."""
        bundle = self.bundle()
        names = getattr(bundle, "features", None)
        return list(names) if names else self.online(bundle.feature_service).columns[1:]


    def feature_kinds(self) -> dict[str, str]:
        """Kind of every feature the champions read, the company's attributes included."""
        bundle = self.bundle()
        spec = getattr(getattr(bundle, "churn", None), "spec", None)
        return feature_kinds(attributes=getattr(spec, "attributes", None) or {})


def row_errors(rows: list[dict], features: list[str], kinds: dict[str, str] | None = None) -> list[dict]:
    """Validation errors of posted feature rows, each naming ``rows[i].field``."""
    kinds = FEATURE_KINDS if kinds is None else kinds
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
            if not _type_ok(row[name], kinds.get(name, "float")):
                errors.append(
                    {
                        "loc": ["body", "rows", i, name],
                        "msg": f"feature {name} must be {kinds.get(name, 'float')} or null",
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
