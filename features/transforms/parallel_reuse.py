"""Incremental feature builds on the cluster: the earlier snapshots reused with no process
loading a whole clean table.

In-process, ``incremental.plan_reuse`` compares a digest of the whole clean tables as seen
before the last built snapshot. On the cluster each bucket digests its own customers' inputs
as seen before that instant (``incremental.input_digest`` of its ``load_bucket`` rows, plus
its customers' rows in the crm table, which place their feature rows among everyone's), and
the client hashes the buckets' digests in bucket order into one (``combine``). The manifest
records it with the bucket count. A customer's bucket is a hash of their id, so with the same
count every customer is digested in the same bucket each time; a manifest of the in-process
build, or of another bucket count, holds a digest of another split: a full build, logged.
The seasonal usage level needs nothing here: its months before the cut read only usage rows
before the cut, which every bucket's digest covers.
Design: docs/cluster.md#feature-tables-on-the-cluster
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from .buckets import Split, load_bucket
from .incremental import (
    Reuse,
    built_snapshots,
    input_digest,
    previous_manifest,
    unchanged_reason,
)

log = logging.getLogger(__name__)


def bucket_digest(clean_dir: Path, index: int, count: int, split: Split | None,
                  cut: pd.Timestamp) -> str:
    """One bucket's inputs as a build up to ``cut`` reads them. On a worker, which loads the
    bucket for this and drops it: the build loads it again rather than every worker holding
    all its buckets until every digest is in."""
    clean, bucket = load_bucket(clean_dir, index, count, split)
    return input_digest(clean, cut, bucket.rows)


def combine(digests: list[str]) -> str:
    """The buckets' digests, in bucket order, as one."""
    return hashlib.sha256("|".join(digests).encode()).hexdigest()


def split_reason(old: dict, count: int) -> str | None:
    """Why a previous manifest's digest cannot be compared with this split's (None: it can)."""
    split = old.get("buckets")
    if split is None:
        return "the previous build was made in-process: its digest covers whole clean tables"
    if split != count:
        return f"the previous build was made in {split} customer buckets, this one in {count}"
    return None


def plan_on_cluster(client, previous: Path | None, snapshots: pd.DatetimeIndex, settings: dict,
                    schema: dict, clean_dir: Path, count: int, split: Split | None,
                    whole_only: str | None = None) -> Reuse | None:
    """The reusable part of the previous build, or None (and why, in the log). Each of the
    ``count`` buckets is digested on a worker (read from ``split``); only the digests come
    back. ``whole_only``: why this export is always built whole (``plan_reuse``'s)."""
    old = previous_manifest(previous)
    if old is None:
        return None
    done = built_snapshots(old)
    reason = (whole_only or split_reason(old, count)
              or unchanged_reason(old, snapshots, settings, schema))
    if reason is None:
        digests = client.gather([client.submit(bucket_digest, clean_dir, i, count, split,
                                               done[-1], pure=False) for i in range(count)])
        if combine(digests) != old["inputs"]:
            reason = "data before the last built snapshot changed"
    if reason is not None:
        log.info("features: full build (%s)", reason)
        return None
    log.info("features: %d snapshots reused, %d new (on the cluster)", len(done),
             len(snapshots) - len(done))
    return Reuse(Path(previous), done[-1], len(done))
