"""The clean customers on a cluster, one bucket at a time: the foreign-key check of a partition
without every customer id on every worker.

The CRM is split by the SipHash bucket of its customer id's text (``parts.in_partition``), and a
clean id is the source id's text (``coerce.to_str``), so CRM partition ``i`` keeps exactly the
clean customers of bucket ``i``. It writes their ids to ``known/<i>.arrow`` (:func:`write_known`).
A table's partition then hashes its rows' customer ids the same way and looks each one up in its
bucket's file only (:class:`BucketedCustomers`). A table split by customer (usage, the company's
tables) reads one file; a table split by its own id (invoices, tickets, orders) reads each
bucket's in turn. A worker holds one bucket of ids at a time, however many customers there are
(every clean id held by each worker took 0.5 GB more at 4M customers than at 1M).
Design: docs/cluster.md#ingest-on-the-cluster
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.ingest.coerce import to_str
from features.ingest.identity import identifier_bucket
from features.ingest.known import is_known
from features.ingest.schemas import arrow_strings

from .parts import PARTS

KNOWN = "known"             # the folder of the bucket files, among the parts


def known_dir(clean_dir: Path) -> Path:
    return Path(clean_dir) / PARTS / KNOWN


def write_known(clean_dir: Path, index: int, count: int, customer_ids: pd.Series) -> None:
    """CRM partition ``index``'s clean customer ids, as its bucket's file."""
    text = to_str(customer_ids)
    stray = identifier_bucket(text, count) != index
    if stray.any():        # a clean id is its source text, so this is a bug, not bad data
        raise RuntimeError(f"crm_customers partition {index}: clean customer id "
                           f"{text[stray].iloc[0]!r} hashes to another bucket")
    folder = known_dir(clean_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ids = arrow_strings(text).combine_chunks()
    table = pa.table({"customer_id": ids})
    with pa.ipc.new_file(str(folder / f"{index:05d}.arrow"), table.schema) as writer:
        writer.write_table(table)


@dataclass(frozen=True)
class BucketedCustomers:
    """``KnownCustomers`` from the bucket files of an ingest's clean folder. ``own``: the
    partition's bucket when its table is split by ``customer_id``, whose rows then all hash
    there (the split hashed the same text: ``parts.in_partition`` of ``to_str``), so one
    file answers them without hashing them again."""

    clean_dir: Path
    count: int
    own: int | None = None

    def ids(self, bucket: int) -> pa.Array:
        with pa.OSFile(str(known_dir(self.clean_dir) / f"{bucket:05d}.arrow")) as source:
            return pa.ipc.open_file(source).read_all().column(0).combine_chunks()

    def contains(self, values: pd.Series) -> np.ndarray:
        text = to_str(values)
        arrow = arrow_strings(text).combine_chunks()
        if self.own is not None:
            return is_known(arrow, self.ids(self.own))
        buckets = np.where(text.notna().to_numpy(), identifier_bucket(text, self.count), -1)
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(self.count + 1))
        found = np.zeros(len(text), dtype=bool)
        for bucket in np.flatnonzero(np.diff(bounds)):      # the buckets these rows name
            rows = order[bounds[bucket]:bounds[bucket + 1]]
            found[rows] = is_known(arrow.take(pa.array(rows)), self.ids(int(bucket)))
        return found
