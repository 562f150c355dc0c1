"""The latest run's customer views, serialized once and kept in memory.

A complete scoring run never changes once visible (the next run gets a new id and
replaces it in one transaction), so a customer's view is read from the database and
serialized once per run (``views.stored_entry``), then served as bytes: filled in
bulk in the background when a run becomes visible (``warm``), and one by one for a
customer asked for before that or evicted since (``lookup``). Only a customer's open
alerts and last outcome change within a run, and only through ``serving.db.events``:
each such write lists the customer in ``customer_changes`` in its own transaction.
This process forgets a customer as soon as it writes for them (``forget``) and reads
what other processes wrote every ``poll_seconds`` (``poll``).

Bounded: at most ``size`` customers (``serving.view_cache_size``), least recently
used first out; only the current run's views are kept.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from sqlalchemy import Engine

from serving.db import read as db_read
from serving.db.runs import RunCache, with_run
from serving.schemas import ViewCacheReady
from serving.views import StoredView, stored_entry

LOOKBACK = 100  # change numbers re-read below the highest seen: a later number may commit first
WARM_CHUNK = 500  # customers read and serialized per step of the warm-up


class ViewCache:
    """Customer id -> ``StoredView`` of one run."""

    def __init__(self, size: int, poll_seconds: float = 1.0):
        self.size, self.poll_seconds = size, poll_seconds
        self.run_id: str | None = None
        self.generation = 0  # bumped by every forget: a fill that read before it is not kept
        self.hits = self.misses = 0
        self._data: OrderedDict[str, StoredView] = OrderedDict()
        self._lock, self._poll_lock = threading.Lock(), threading.Lock()
        self._polled_at = -float("inf")
        self._seen: set[int] = set()  # change numbers within LOOKBACK of the highest seen
        self._high = 0
        self.warmed_run: str | None = None  # the run whose customers the last warm-up filled

    def __len__(self) -> int:
        return len(self._data)

    def status(self) -> ViewCacheReady:
        return ViewCacheReady(
            run_id=self.run_id,
            warmed_run=self.warmed_run,
            cached=len(self._data),
            size=self.size,
            hits=self.hits,
            misses=self.misses,
        )

    def _switch(self, run_id: str) -> None:
        """A new run became visible: the old views go at once (call under the lock)."""
        if run_id != self.run_id:
            self._data.clear()
            self.run_id, self.generation = run_id, self.generation + 1

    def get(self, run_id: str, customer_id: str) -> StoredView | None:
        with self._lock:
            self._switch(run_id)
            view = self._data.get(customer_id)
            if view is None:
                self.misses += 1
                return None
            self._data.move_to_end(customer_id)
            self.hits += 1
            return view

    def put(self, run_id: str, customer_id: str, view: StoredView, generation: int) -> bool:
        """Keep a view read when ``generation`` was current, unless a forget or new run came since."""
        return self.put_many(run_id, {customer_id: view}, generation)

    def put_many(self, run_id: str, views: dict[str, StoredView], generation: int) -> bool:
        with self._lock:
            if generation != self.generation or run_id != self.run_id or self.size == 0:
                return False
            for customer_id, view in views.items():
                self._data[customer_id] = view
                self._data.move_to_end(customer_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
            return True

    def warm(self, engine: Engine, runs: RunCache, chunk: int = WARM_CHUNK) -> int:
        """Fill the views of the latest run's customers (``size`` at most) before they are asked
        for; returns how many. Once per run; a chunk read while a write landed is left to ``lookup``.
        """
        run = runs.get(engine)
        if run is None or self.size == 0 or run.run_id == self.warmed_run:
            return 0
        self.poll(engine)  # changes written before the reads below are in them: not to forget later
        with self._lock:
            self._switch(run.run_id)
        ids, filled = db_read.run_customers(engine, run.run_id, self.size), 0
        for start in range(0, len(ids), chunk):
            generation = self.generation
            rows = db_read.customer_views(engine, ids[start : start + chunk], run)
            if self.put_many(run.run_id, {r["customer_id"]: stored_entry(r) for r in rows}, generation):
                filled += len(rows)
            elif run.run_id != self.run_id:  # a newer run meanwhile: the next warm-up fills that one
                return filled
        self.warmed_run = run.run_id
        return filled

    def forget(self, *customer_ids: str) -> None:
        with self._lock:
            self.generation += 1
            for customer_id in customer_ids:
                self._data.pop(customer_id, None)

    def poll(self, engine: Engine, now: float | None = None) -> None:
        """Forget the customers other writers changed, at most every ``poll_seconds`` (one caller
        at a time; the others go on with what is cached)."""
        now = time.monotonic() if now is None else now
        if now - self._polled_at < self.poll_seconds or not self._poll_lock.acquire(blocking=False):
            return
        try:
            self._polled_at = now
            new = [(seq, c) for seq, c in db_read.changes_after(engine, self._high - LOOKBACK)
                   if seq not in self._seen]
            if new:
                self._high = max(self._high, max(seq for seq, _ in new))
                seen = self._seen.union(seq for seq, _ in new)
                self._seen = {seq for seq in seen if seq > self._high - LOOKBACK}
                self.forget(*{c for _, c in new})
        finally:
            self._poll_lock.release()


def lookup(cache: ViewCache, runs: RunCache, engine: Engine, customer_id: str) -> StoredView | None:
    """The customer's view of the latest complete run (None: the run did not score them).

    From memory when cached; else read in one snapshot, serialized and kept. If the cached
    run's tables are gone (its date was re-run meanwhile), the latest run is read again.
    """
    cache.poll(engine)
    run = runs.get(engine)
    if run is None:
        return None
    view = cache.get(run.run_id, customer_id)
    if view is not None:
        return view
    generation = cache.generation
    row = with_run(engine, runs, lambda run: db_read.customer_view(engine, customer_id, run))
    if row is None:
        return None
    view = stored_entry(row)
    cache.put(row["run"].run_id, customer_id, view, generation)
    return view
