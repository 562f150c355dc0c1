"""What the experiments read of the customers' features: the arms' driver columns and the
risk offset, encoded.

``plan_experiments`` draws each pooled customer's effect from the driver posterior, which
needs only the few columns the arms' drivers use and the risk booster's prior log-odds. On a
cluster each bucket encodes these for its own customers (``encode_drivers``) and sends the
``DriverInputs``, not its customers' features: the client then never holds a feature row of
the book (on a 250,000-customer world, one bucket's features for the experiments took 0.64 KB
per scored customer in memory, its inputs 0.18 KB, most of it the ids). Encoding is row by
row (LightGBM's prediction and the frame's encoding), so the values are those the client
would compute from the features.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.uplift.driver import DriverArm

ENCODE_BLOCK = 50_000   # customers whose model matrix is encoded at once


@dataclass
class DriverInputs:
    """The driver columns (``x``: customers x the arms' used columns, in their order) and the
    risk offset (``r``) of the customers ``customer_id``."""

    customer_id: np.ndarray
    x: np.ndarray
    r: np.ndarray

    @classmethod
    def concat(cls, parts: list[DriverInputs]) -> DriverInputs:
        return cls(np.concatenate([p.customer_id for p in parts]), np.concatenate([p.x for p in parts]),
                   np.concatenate([p.r for p in parts]))


def driver_arms(uplift) -> dict[str, DriverArm]:
    """The uplift model's arms that have a driver posterior (the experiments' cells)."""
    arms = {a: getattr(m, "driver", None) for a, m in (getattr(uplift, "arms", None) or {}).items()}
    return {a: d for a, d in arms.items() if d is not None and len(d.mean)}


def _used(arms: dict[str, DriverArm]) -> np.ndarray:
    return np.unique(np.concatenate([np.asarray(d.index, dtype=int) for d in arms.values()]))


def customer_ids(features: pd.DataFrame | DriverInputs) -> np.ndarray:
    """The customers ``features`` covers."""
    if isinstance(features, DriverInputs):
        return features.customer_id
    return features["customer_id"].to_numpy()


def encode_drivers(uplift, features: pd.DataFrame, ids: np.ndarray,
                   arms: dict[str, DriverArm] | None = None) -> DriverInputs:
    """The driver columns and risk offset of the customers ``ids`` (rows of ``features``),
    encoded ENCODE_BLOCK customers at a time: the whole model matrix is never held."""
    arms = driver_arms(uplift) if arms is None else arms
    used = _used(arms)
    where = pd.Index(features["customer_id"]).get_indexer(ids)
    x, r = np.empty((len(ids), len(used))), np.empty(len(ids))
    for start in range(0, len(ids), ENCODE_BLOCK):
        rows = slice(start, start + ENCODE_BLOCK)
        block = uplift.spec.array(features.iloc[where[rows]].reset_index(drop=True))
        r[rows] = uplift.risk.logit_x(block)
        x = x.astype(block.dtype, copy=False)
        x[rows] = block[:, used]
    return DriverInputs(np.asarray(ids, dtype=object), x, r)


def driver_inputs(uplift, features: pd.DataFrame | DriverInputs, ids: np.ndarray,
                  arms: dict[str, DriverArm]) -> tuple[np.ndarray, np.ndarray, dict[str, DriverArm]]:
    """The arms' driver columns and the risk offset for the customers ``ids``, from their
    features or from inputs already encoded; the arms come back indexing the compact columns."""
    if isinstance(features, DriverInputs):
        where = pd.Index(features.customer_id).get_indexer(ids)
        if (where < 0).any():
            raise ValueError(f"experiments: no driver inputs for {int((where < 0).sum())} pooled customers")
        x, r = features.x[where], features.r[where]
    else:
        encoded = encode_drivers(uplift, features, ids, arms)
        x, r = encoded.x, encoded.r
    used = _used(arms)
    remapped = {a: replace(d, index=np.searchsorted(used, np.asarray(d.index, dtype=int)))
                for a, d in arms.items()}
    return x, r, remapped
