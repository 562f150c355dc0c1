"""The "why" a rep reads beside each planned action, in plain words.

It says what the action is expected to do for this customer (churn risk before and
after, the value net of its cost) and which of the customer's own risk reasons it
addresses: the reasons whose business concept is among the action's ``addresses``,
otherwise the customer's top reason, flagged as not addressed by this action.

A batch run words every planned action (up to a few hundred thousand on a 1M-customer
book), so the columns are read once as arrays and the catalogue is looked up once per
action rather than per row (``DataFrame.iterrows`` cost more than the wording itself).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.concepts.wording import fmt_money, fmt_percent
from models.prescribe.actions import Catalogue


def _reasons(payload) -> list[dict]:
    if payload is None or (isinstance(payload, float) and pd.isna(payload)):
        return []
    return json.loads(payload) if isinstance(payload, str) else list(payload)


def _addressed(reasons: list[dict], concepts: frozenset[str]) -> str:
    hits = [r["sentence"] for r in reasons if r.get("concept") in concepts]
    if hits:
        return "Addresses: " + "; ".join(hits[:2]) + "."
    if reasons:
        return f"Main risk, not addressed by this action: {reasons[0]['sentence']}."
    return ""


def action_why(actions: pd.DataFrame, reasons: pd.Series, catalogue: Catalogue) -> list[str]:
    """One sentence pair per planned action (rows of ``actions``: action_id, p_churn, uplift,
    expected_value, cost); ``reasons`` holds each row's reasons (JSON text or a list)."""
    if len(reasons) != len(actions):
        raise ValueError(f"{len(actions)} planned actions but {len(reasons)} reason payloads")
    ids = actions["action_id"].astype(str).to_numpy()
    known = {a: (catalogue[a].label, frozenset(catalogue[a].addresses)) for a in dict.fromkeys(ids)}
    before = 100 * actions["p_churn"].to_numpy(np.float64)
    after = np.maximum(before + 100 * actions["uplift"].to_numpy(np.float64), 0.0)
    money = {}  # costs repeat (one per action): worded once each
    out = []
    low = (actions["expected_value_low"].tolist() if "expected_value_low" in actions
           else [None] * len(actions))
    for action_id, b, a, value, cost, payload, floor in zip(
        ids, before.tolist(), after.tolist(), actions["expected_value"].tolist(), actions["cost"].tolist(),
        reasons, low, strict=True,
    ):
        label, concepts = known[action_id]
        if cost not in money:
            money[cost] = fmt_money(cost)
        head = (f"{label}: expected to cut the 90-day churn risk from {fmt_percent(b)} % "
                f"to {fmt_percent(a)} %, worth {fmt_money(value)} after its cost of {money[cost]}"
                + (f" (at least {fmt_money(floor)} at the plan's confidence level)." if floor is not None
                   and floor == floor else "."))
        tail = _addressed(_reasons(payload), concepts)
        out.append(f"{head} {tail}".strip())
    return out
