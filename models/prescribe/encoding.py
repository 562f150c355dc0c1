"""Arbitration inputs as dense arrays: candidates as customers x actions matrices (with
customer, action and rep codes) and each customer's contact history aligned to them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.prescribe.actions import Catalogue

REQUIRED = ("customer_id", "rep_id", "action_id", "expected_value", "cost", "handling_minutes", "eligible")
CONTACT_COLUMNS = ("days_since_last_action", "days_since_last_invitation", "contacts_7d")


@dataclass(frozen=True)
class Encoded:
    """Candidates as dense customers x actions matrices (row = -1 where a pair is absent)."""

    customers: np.ndarray   # customer ids, one per customer code
    row: np.ndarray         # candidate row per (customer, action)
    rep: np.ndarray         # rep group per customer; the last group is "no rep" (capacity 0)
    reps: np.ndarray        # rep ids per group (without the "no rep" group)


def action_codes(actions: pd.Series, ids: list[str]) -> np.ndarray:
    """Catalogue position of each row's action (-1: unknown); cheap for a categorical column."""
    if isinstance(actions.dtype, pd.CategoricalDtype):
        lookup = pd.Index(ids).get_indexer(actions.cat.categories.astype(str))
        codes = actions.cat.codes.to_numpy()
        return np.where(codes >= 0, np.append(lookup, -1)[codes], -1)
    return pd.Index(ids).get_indexer(actions.astype(str))


def encode(candidates: pd.DataFrame, catalogue: Catalogue, rows: np.ndarray | None = None) -> Encoded:
    """Codes for customers, actions and reps; refuses unknown actions and duplicate pairs.
    ``rows``: positions of the rows to encode (None: all); ``Encoded.row`` then holds
    positions in the whole frame, so a slice of the book is planned without a copy of it."""
    missing = [c for c in REQUIRED if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates: missing column {missing[0]!r}")
    positions = np.arange(len(candidates)) if rows is None else np.asarray(rows, dtype=np.int64)
    column = (lambda c: candidates[c]) if rows is None else (lambda c: candidates[c].take(positions))
    cust, customers = pd.factorize(column("customer_id"), sort=False)
    act = action_codes(column("action_id"), catalogue.ids)
    if (act < 0).any():
        bad = column("action_id").to_numpy()[act < 0][0]
        raise ValueError(f"candidates: action {bad!r} is not in the catalogue ({catalogue.source})")
    n, k = len(customers), len(catalogue)
    flat = cust.astype(np.int64) * k + act
    if len(flat) and np.bincount(flat, minlength=n * k).max() > 1:
        raise ValueError("candidates: a (customer_id, action_id) pair appears twice")
    row = np.full(n * k, -1, dtype=np.int64)
    row[flat] = positions
    rep_rows, reps = pd.factorize(column("rep_id"), sort=True)
    rep_rows = np.where(rep_rows < 0, len(reps), rep_rows)
    rep = np.full(n, len(reps), dtype=np.int64)
    rep[cust] = rep_rows                          # any row of the customer; checked just below
    if (rep[cust] != rep_rows).any():
        raise ValueError("candidates: a customer has more than one rep_id")
    return Encoded(np.asarray(customers, dtype=object), row.reshape(n, k), rep,
                   np.asarray(reps, dtype=object))


def dense(values: np.ndarray, row: np.ndarray, fill) -> np.ndarray:
    """A per-candidate column laid out as customers x actions."""
    out = np.where(row >= 0, values[np.maximum(row, 0)] if len(values) else fill, fill)
    return out


def contact_history(contacts: pd.DataFrame | None, customers: np.ndarray) -> pd.DataFrame:
    """Each customer's contact history aligned to the customer codes; absent = never."""
    if contacts is None:
        contacts = pd.DataFrame(columns=["customer_id", *CONTACT_COLUMNS])
    missing = [c for c in ("customer_id", *CONTACT_COLUMNS) if c not in contacts.columns]
    if missing:
        raise ValueError(f"contacts: missing column {missing[0]!r}")
    if contacts["customer_id"].duplicated().any():
        raise ValueError("contacts: duplicate customer_id")
    out = contacts.set_index("customer_id")[list(CONTACT_COLUMNS)].reindex(customers)
    out = out.apply(pd.to_numeric, errors="coerce")
    out["contacts_7d"] = out["contacts_7d"].fillna(0.0)
    return out
