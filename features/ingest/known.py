"""Which customer ids are clean ``crm_customers`` customers: the foreign-key check of every
table that names a customer (contract tables, the company's attribute and event tables).

The checks ask a ``KnownCustomers`` object, not a set of ids, so that a cluster worker can answer
from one bucket of customers at a time (``features.ingest.cluster.known``) while the in-process
ingest keeps every clean id (:class:`CustomerSet`). Both answer the same for the same ids: a
value is known when its text equals a clean customer's id.
Design: docs/cluster.md#ingest-on-the-cluster
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.ingest.schemas import arrow_strings


class KnownCustomers(Protocol):
    def contains(self, values: pd.Series) -> np.ndarray:
        """Per value, whether it is a clean customer's id (a missing value is not)."""


def is_known(values: pa.Array | pa.ChunkedArray, ids: pa.Array) -> np.ndarray:
    """``values`` (Arrow text) found in ``ids``, in Arrow: pandas' ``isin`` of millions of
    strings against a million ids is several times slower."""
    found = pc.fill_null(pc.is_in(values, value_set=ids), False)
    return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)


class CustomerSet:
    """Every clean customer id, held once for all the tables of an in-process ingest."""

    def __init__(self, customer_ids) -> None:
        self.ids = arrow_strings(pd.Series(customer_ids)).combine_chunks()

    def contains(self, values: pd.Series) -> np.ndarray:
        return is_known(arrow_strings(values), self.ids)
