"""Candidate rows looked up by (customer, action) with integer positions, not string keys.

The policy evaluation values every candidate row (customers x actions) with known effects
and with the feature ceiling's. A ``MultiIndex`` of customer id strings over those rows held several
copies of every id and a hash table over all of them (at millions of customers, gigabytes in
the scoring client, docs/cluster.md "Where the client's memory goes"); here a customer is
found once in a ``pd.Index`` of the unique ids and an action by its category code, and the
values sit in a customers x actions matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def positions(values: pd.Series | np.ndarray, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1: absent). A categorical is looked up by its
    categories only, so each distinct id is hashed once."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = pd.Series(values).cat
        of_category = np.append(index.get_indexer(cat.categories), -1)
        return of_category[cat.codes.to_numpy()]          # code -1 (missing) -> the -1 appended
    return index.get_indexer(np.asarray(values, dtype=object))


@dataclass
class Keys:
    """Each candidate row's customer (position in ``customers``) and action (in ``actions``)."""

    customers: pd.Index
    actions: pd.Index
    row: np.ndarray          # customer position per candidate row
    col: np.ndarray          # action position per candidate row

    @classmethod
    def of(cls, candidates: pd.DataFrame) -> Keys:
        row, customers = pd.factorize(candidates["customer_id"].to_numpy(), sort=False)
        action = candidates["action_id"]
        if isinstance(action.dtype, pd.CategoricalDtype):
            actions = pd.Index(action.cat.categories.astype(str))
            col = action.cat.codes.to_numpy().astype(np.int64)
        else:
            col, actions = pd.factorize(action.astype(str).to_numpy(), sort=True)   # as groupby orders them
            actions = pd.Index(actions)
        return cls(pd.Index(customers), actions, row.astype(np.int64), col.astype(np.int64))

    def wide(self, values: np.ndarray) -> np.ndarray:
        """The rows' ``values`` as a customers x actions matrix (NaN where no row)."""
        out = np.full((len(self.customers), len(self.actions)), np.nan)
        out[self.row, self.col] = values
        return out

    def take(self, wide: np.ndarray, customers: pd.Series | np.ndarray, actions: pd.Series) -> np.ndarray:
        """``wide``'s value for each (customer, action) pair (NaN: a customer or action not here)."""
        r = positions(customers, self.customers)
        c = self.actions.get_indexer(pd.Series(actions).astype(str).to_numpy())
        ok = (r >= 0) & (c >= 0)
        out = np.full(len(r), np.nan)
        out[ok] = wide[r[ok], c[ok]]
        return out


def effects_matrix(effects: pd.DataFrame, keys: Keys) -> np.ndarray:
    """``effects`` (customer_id index x action columns) as a matrix on ``keys``' customers and
    actions (NaN where the frame has no value)."""
    out = np.full((len(keys.customers), len(keys.actions)), np.nan)
    r = positions(effects.index.to_series(), keys.customers)
    c = keys.actions.get_indexer(effects.columns.astype(str))
    rows, cols = np.flatnonzero(r >= 0), np.flatnonzero(c >= 0)
    out[np.ix_(r[rows], c[cols])] = effects.to_numpy(np.float64)[np.ix_(rows, cols)]
    return out


def long_matrix(rows: pd.DataFrame, keys: Keys, value: str) -> np.ndarray:
    """A long frame (customer_id, action, ``value``) as a matrix on ``keys``' customers and
    actions (NaN where it has no row)."""
    out = np.full((len(keys.customers), len(keys.actions)), np.nan)
    r = positions(rows["customer_id"], keys.customers)
    c = positions(rows["action"], keys.actions)
    ok = (r >= 0) & (c >= 0)
    out[r[ok], c[ok]] = rows[value].to_numpy(np.float64)[ok]
    return out


def long_wide(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """A long frame (customer_id, action, ``value``) as customer_id x action (columns sorted;
    customers or actions without any value left out), as ``pivot_table`` gives it, without its
    groupby of every row."""
    r, ids = pd.factorize(rows["customer_id"])
    c, actions = pd.factorize(rows["action"].astype(str))
    values = np.full((len(ids), len(actions)), np.nan)
    values[r, c] = rows[value].to_numpy(np.float64)
    known = ~np.isnan(values)
    keep, cols = known.any(axis=1), known.any(axis=0)
    wide = pd.DataFrame(values[keep][:, cols], index=pd.Index(np.asarray(ids, dtype=object)[keep],
                        name="customer_id"), columns=pd.Index(np.asarray(actions)[cols], name="action"))
    return wide.sort_index(axis=1)


def with_columns(frame: pd.DataFrame, drop: tuple[str, ...] = (), **columns) -> pd.DataFrame:
    """``frame.assign(**columns)`` (and ``drop``) without copying the columns it keeps: a
    shallow copy whose set columns are new arrays, so ``frame`` is never written. Each
    comparison plan of the book's candidates otherwise held a whole copy of them."""
    out = frame.copy(deep=False)
    for name in drop:
        if name in out:
            del out[name]
    for name, values in columns.items():
        out[name] = values
    return out
