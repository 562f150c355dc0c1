"""The "why" a rep reads beside each planned action, in plain words.

It says what the action is expected to do for this customer (churn risk before and
after, the value net of its cost) and which of the customer's own risk reasons it
addresses: the reasons whose business concept is among the action's ``addresses``,
otherwise the customer's top reason, flagged as not addressed by this action.
"""

from __future__ import annotations

import json

import pandas as pd

from models.concepts.wording import fmt_money, fmt_percent
from models.prescribe.actions import Catalogue


def _reasons(payload) -> list[dict]:
    if payload is None or (isinstance(payload, float) and pd.isna(payload)):
        return []
    return json.loads(payload) if isinstance(payload, str) else list(payload)


def _addressed(reasons: list[dict], concepts: set[str]) -> str:
    hits = [r["sentence"] for r in reasons if r.get("concept") in concepts]
    if hits:
        return "Addresses: " + "; ".join(hits[:2]) + "."
    if reasons:
        return f"Main risk, not addressed by this action: {reasons[0]['sentence']}."
    return ""


def action_why(actions: pd.DataFrame, reasons: pd.Series, catalogue: Catalogue) -> list[str]:
    """One sentence pair per planned action (rows of ``actions``: action_id, p_churn, uplift,
    expected_value, cost); ``reasons`` holds each row's reasons (JSON text or a list)."""
    out = []
    for (_, row), payload in zip(actions.iterrows(), reasons, strict=True):
        action = catalogue[str(row["action_id"])]
        before = 100 * float(row["p_churn"])
        after = max(before + 100 * float(row["uplift"]), 0.0)
        head = (f"{action.label}: expected to cut the 90-day churn risk from {fmt_percent(before)} % "
                f"to {fmt_percent(after)} %, worth {fmt_money(row['expected_value'])} after its "
                f"cost of {fmt_money(row['cost'])}.")
        tail = _addressed(_reasons(payload), set(action.addresses))
        out.append(f"{head} {tail}".strip())
    return out
