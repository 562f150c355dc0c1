"""Impact slices: small, sticky random shares of customers on which the plan is compared.

As a decision hub's impact analysis does, three slices of customers are set aside at
random and kept from cycle to cycle (a customer's slice depends on the customer only):
``no_action`` gets no retention action at all (the global control), ``risk_ranked`` and
``random`` are planned by the rules a team would use instead of the model, at the same
budget per customer. Everyone else is in ``policy``. Comparing the slices' realized
outcomes measures what the product's policy is worth, without any hidden effect.
Design: docs/prescribe.md#impact-slices
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

SLICES = ("policy", "no_action", "risk_ranked", "random")
SALT = "cem-impact-slice"


def slice_position(customer_ids) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by the id (stable across runs and machines)."""
    ids = pd.Series(customer_ids, dtype="string").fillna("")
    out = np.empty(len(ids))
    for i, cid in enumerate(ids.to_numpy()):
        digest = hashlib.blake2b(f"{SALT}:{cid}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def impact_slices(customer_ids, share: float) -> np.ndarray:
    """Each customer's slice name: ``share`` of customers in each comparison slice, the rest ``policy``.

    ``share`` is ``prescribe.impact_slice_share``; 0 puts everyone in ``policy``.
    """
    if not 0 <= share <= 0.2:
        raise ValueError(f"impact slice share must be between 0 and 0.2, not {share}")
    u = slice_position(customer_ids)
    index = np.where(u < share, 1, np.where(u < 2 * share, 2, np.where(u < 3 * share, 3, 0)))
    return np.asarray(SLICES, dtype=object)[index]
