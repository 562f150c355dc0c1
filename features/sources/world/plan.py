"""How the world answers a product's plan: which planned actions reps can deliver.

A plan is one row per customer (``customer_id``, ``action_id``, ``rep_id``, ``control_group``,
optionally ``rank``, the rep's order of work, ``arm`` and ``assignment_probability``, the
design probability logged with the row). On the first day of the month each planned
row gets a status, in this order:

- ``not_open``: the customer is unknown, has no account yet, or has left;
- ``not_allowed``: the world's rules forbid the action (no phone or a do-not-call flag
  for a call, no e-mail or an opt-out for an e-mail offer, no upgrade from the top plan),
  for held-out rows as for the others so that both groups answer the same question;
- ``held_out``: the product's control group: recorded, nothing delivered;
- ``over_capacity``: the owning rep has already delivered ``capacity`` actions this
  month (in the plan's rank order): not delivered, not in the CRM's log;
- ``delivered``.

Design: docs/world.md (stepping the world).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import mechanisms as mech
from .campaigns import allowed_actions
from .dynamics import WorldState
from .population import Population
from .tables import PRODUCT_ARMS

STATUS = np.array(["delivered", "held_out", "over_capacity", "not_allowed", "not_open"])
DELIVERED, HELD_OUT, OVER_CAPACITY, NOT_ALLOWED, NOT_OPEN = range(len(STATUS))


def plan_rows(plan: pd.DataFrame | None, customers: int) -> pd.DataFrame:
    """The plan in the reps' order of work, with each customer's number and action code.

    ``customers``: the highest customer number given so far (new customers of stepped
    months carry on the history's numbers). Unknown customers and actions get number /
    action -1 (they end up ``not_open``).
    """
    cols = ["customer_id", "action_id", "control_group"]
    frame = pd.DataFrame(columns=cols) if plan is None else plan.reset_index(drop=True)
    if "rank" in frame:          # first: every column below must follow the rows' new order
        frame = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    arm = (frame["arm"] if "arm" in frame else pd.Series(None, index=frame.index, dtype=object))
    arm = arm.astype(object).where(arm.isin(PRODUCT_ARMS), "policy")   # older plans: the policy
    prob = pd.to_numeric(frame["assignment_probability"], errors="coerce") \
        if "assignment_probability" in frame else pd.Series(np.nan, index=frame.index)
    ids = frame["customer_id"].astype(str)
    number = pd.to_numeric(ids.str.extract(r"^C(\d+)$")[0], errors="coerce").fillna(-1)
    number = number.astype(np.int64).where(number.between(1, customers), -1)
    codes = {a: i for i, a in enumerate(mech.ACTIONS)}
    return pd.DataFrame({
        "customer_id": ids, "number": number.to_numpy(),
        "action": frame["action_id"].map(codes).fillna(-1).astype(int).to_numpy(),
        "control": frame["control_group"].astype(bool).to_numpy(),
        "arm": arm.to_numpy(dtype=object),
        "probability": prob.to_numpy(np.float64),
    })


def eligibility(pop: Population, st: WorldState, cust: np.ndarray, action: np.ndarray,
                t: int, day0: int) -> np.ndarray:
    """``not_open`` / ``not_allowed`` / ``delivered`` (so far) per planned row of one chunk."""
    known = (cust >= 0) & (action >= 0)
    c, a = np.where(known, cust, 0), np.where(known, action, 0)
    gone = (st.churn_day[c] >= 0) & (st.churn_day[c] < day0)
    open_ = known & (pop.signup_month[c] < t) & ~gone & ~np.isnan(st.last_logit[c])
    allowed = allowed_actions(pop, st, c)[np.arange(len(c)), a]
    return np.where(~open_, NOT_OPEN, np.where(allowed, DELIVERED, NOT_ALLOWED))


def apply_capacity(status: np.ndarray, control: np.ndarray, rep: np.ndarray,
                   capacity: int) -> np.ndarray:
    """Held-out rows aside, each rep delivers its first ``capacity`` actions in plan order."""
    status = np.where((status == DELIVERED) & control, HELD_OUT, status)
    todo = status == DELIVERED
    nth = pd.Series(rep[todo]).groupby(rep[todo]).cumcount().to_numpy()
    over = np.zeros(len(status), bool)
    over[np.flatnonzero(todo)] = nth >= capacity
    return np.where(over, OVER_CAPACITY, status)
