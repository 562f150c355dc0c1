"""From database rows (or a fresh scoring frame) to the API's response bodies. Pure functions.

The customer view is served as bytes built once (``StoredView`` per customer of the
latest run, ``FreshScore`` per fresh result): ``fresh_body`` joins a cached fresh score
with the stored view's alerts and outcome without building a model per request, and a
test checks its bytes equal the ``CustomerView`` model's own JSON.
"""

from __future__ import annotations

import json
import math
from datetime import date
from functools import lru_cache
from typing import NamedTuple

from pydantic_core import to_json

from models.nps.scale import NPS
from serving.db.action_pages import ActionPage
from serving.db.runs import RunInfo
from serving.schemas import (
    ActionItem,
    ActionPageOut,
    AlertOut,
    CustomerScore,
    CustomerView,
    Lineage,
    NpsClassProbabilities,
    OutcomeOut,
    Reason,
    RecommendedAction,
    Tags,
)

TOP_REASONS = 3


def _num(value) -> float | None:
    """None for missing numbers (NaN included), a float otherwise."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def reasons_of(value) -> list[Reason]:
    """Reasons from JSON text, a list of dicts or a list of Reason-like objects."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        value = json.loads(value) if value else []
    out = []
    for r in value:
        get = r.get if isinstance(r, dict) else (lambda k, r=r: getattr(r, k, None))
        out.append(
            Reason(
                concept=get("concept"),
                label=get("label"),
                sentence=get("sentence"),
                impact=_num(get("impact")),
            )
        )
    return out


def action_of(row: dict, plan: dict | None) -> RecommendedAction | None:
    """The recommended action: the plan's row when planned, else the score row's recommendation."""
    if plan:
        return RecommendedAction(
            action_id=plan["action_id"],
            label=plan.get("action_label"),
            channel=plan.get("channel"),
            expected_value=_num(plan.get("expected_value")),
            cost=_num(plan.get("cost")),
            why=_text(plan.get("why")),
        )
    action = _text(row.get("recommended_action"))
    if not action:
        return None
    return RecommendedAction(action_id=action, expected_value=_num(row.get("expected_value")))


def customer_score(row: dict, plan: dict | None = None, scale: str = NPS.code) -> CustomerScore:
    """A ``customer_scores``-shaped row as the API's score body; ``scale``: the code of the
    satisfaction scale its predicted_nps and class probabilities are on (``Scale.code``)."""
    return CustomerScore(
        customer_id=str(row["customer_id"]),
        rep_id=_text(row.get("rep_id")),
        churn_probability=float(row["churn_probability"]),
        satisfaction_scale=scale,
        predicted_nps=_num(row.get("predicted_nps")),
        nps_class_probabilities=NpsClassProbabilities(
            detractor=_num(row.get("p_detractor")),
            passive=_num(row.get("p_passive")),
            promoter=_num(row.get("p_promoter")),
        ),
        last_nps=_num(row.get("last_nps")),
        value_at_risk=_num(row.get("value_at_risk")),
        tags=Tags(
            relationship_stage=_text(row.get("relationship_stage")),
            churn_risk_tier=_text(row.get("churn_risk_tier")),
            nps_class=_text(row.get("nps_class")),
        ),
        reasons=reasons_of(row.get("reasons")),
        recommended_action=action_of(row, plan),
        alert=_text(row.get("alert")),
    )


def lineage_of(run: RunInfo) -> Lineage:
    return Lineage(
        run_id=run.run_id,
        as_of=run.as_of,
        model_versions=run.model_versions,
        feature_service=run.feature_service,
        data_version=run.data_version,
    )


def stored_view(view: dict, show_plan: bool) -> CustomerView:
    """The precomputed view; a held-out action (and anything pointing at it) is hidden unless allowed."""
    plan = view["plan"]
    held_out = bool(plan and plan.get("control_group"))
    row = dict(view)
    if held_out and not show_plan:
        plan, row["recommended_action"], row["expected_value"] = None, None, None
    score = customer_score(row, plan, view["run"].satisfaction_scale)
    return CustomerView(
        **score.model_dump(),
        fresh=False,
        latest_comment=_text(view.get("latest_comment")),
        open_alerts=[AlertOut(**a) for a in view["open_alerts"]],
        last_outcome=OutcomeOut(**view["last_outcome"]) if view["last_outcome"] else None,
        lineage=lineage_of(view["run"]),
    )


CONTEXT = {"latest_comment", "open_alerts", "last_outcome"}  # what a fresh view takes from the stored one


class StoredView(NamedTuple):
    """A customer's view of the latest run, serialized: who owns it and the bodies to send."""

    rep_id: str | None
    body: bytes  # as a manager sees it
    rep_body: bytes  # as the owning rep sees it: a held-out action hidden (else the same bytes)
    context: bytes  # the JSON members latest_comment, open_alerts, last_outcome (for fresh views)

    def body_for(self, is_manager: bool) -> bytes:
        return self.body if is_manager else self.rep_body


class FreshScore(NamedTuple):
    """A fresh score's ``CustomerScore`` JSON; ``owned`` is False when the scorer knew no rep
    (the stored view's rep is then filled in)."""

    body: bytes
    owned: bool


def _dump(model) -> bytes:
    return model.model_dump_json().encode()


EMPTY_CONTEXT = (
    CustomerView.model_construct(latest_comment=None, open_alerts=[], last_outcome=None)
    .model_dump_json(include=CONTEXT)
    .encode()[1:-1]
)


def stored_entry(view: dict) -> StoredView:
    """The bytes of a ``db_read.customer_view`` row, for a manager and for the owning rep."""
    manager = stored_view(view, show_plan=True)
    held_out = bool(view["plan"] and view["plan"].get("control_group"))
    body = _dump(manager)
    rep_body = _dump(stored_view(view, show_plan=False)) if held_out else body
    context = manager.model_dump_json(include=CONTEXT).encode()[1:-1]
    return StoredView(view.get("rep_id"), body, rep_body, context)


def fresh_score(record: dict, scale: str = NPS.code) -> FreshScore:
    """A row of the scoring function's ``customers`` frame as a fresh score's bytes
    (``scale``: the champion satisfaction model's, ``models.nps.scale.bundle_scale``)."""
    return FreshScore(_dump(customer_score(record, scale=scale)), bool(_text(record.get("rep_id"))))


@lru_cache(maxsize=64)
def lineage_json(versions: tuple[tuple[str, object], ...], feature_service: str, as_of: date) -> bytes:
    """A fresh score's lineage: the champions' versions and the scoring date (no run)."""
    return _dump(
        Lineage(as_of=as_of, model_versions={k: str(v) for k, v in versions}, feature_service=feature_service)
    )


def fresh_body(score: FreshScore, stored: StoredView | None, lineage: bytes) -> bytes:
    """The fresh ``CustomerView`` JSON: the fresh score, the stored view's owner (when the
    scorer knew none), alerts, last outcome and latest comment, and the fresh lineage.

    ``,"rep_id":`` can only be the field itself: inside a JSON string every quote is escaped.
    """
    body = score.body
    if stored is not None and not score.owned:  # the scorer's rep is null or ""
        start = body.index(b',"rep_id":') + len(b',"rep_id":')
        end = start + (2 if body.startswith(b'""', start) else 4)
        body = body[:start] + to_json(stored.rep_id) + body[end:]
    context = stored.context if stored is not None else EMPTY_CONTEXT
    return body[:-1] + b',"fresh":true,' + context + b',"lineage":' + lineage + b"}"


def action_item(item: dict) -> ActionItem:
    score = item.get("score") or {}
    has_action = "action_id" in item
    return ActionItem(
        position=item["position"],
        customer_id=item["customer_id"],
        rank=item.get("rank"),
        alert=AlertOut(**item["alert"]) if item.get("alert") else None,
        action=action_of({}, item) if has_action else None,
        churn_probability=_num(score.get("churn_probability")),
        churn_risk_tier=_text(score.get("churn_risk_tier")),
        predicted_nps=_num(score.get("predicted_nps")),
        nps_class=_text(score.get("nps_class")),
        relationship_stage=_text(score.get("relationship_stage")),
        value_at_risk=_num(score.get("value_at_risk")),
        top_reasons=reasons_of(item.get("reasons"))[:TOP_REASONS],
        latest_comment=_text(score.get("latest_comment")),
        last_outcome=OutcomeOut(**item["last_outcome"]) if item.get("last_outcome") else None,
    )


def action_page(rep_id: str, page: ActionPage, number: int, size: int) -> ActionPageOut:
    return ActionPageOut(
        rep_id=rep_id,
        run_id=page.run.run_id if page.run else None,
        as_of=page.run.as_of if page.run else None,
        satisfaction_scale=page.run.satisfaction_scale if page.run else NPS.code,
        page=number,
        size=size,
        total=page.total,
        pages=max(1, math.ceil(page.total / size)),
        items=[action_item(i) for i in page.items],
    )
