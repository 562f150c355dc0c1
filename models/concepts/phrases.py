"""How to say a customer's values in words: one ``Phrase`` per feature, and sentences.

Each feature has a ``Phrase``: the columns it reads (its own value first, sometimes a
companion such as ``tickets_90d``) and a function from those values to a short clause,
or ``None`` when there is nothing worth saying (a fused flag that is off, a value that
is unknown). Phrases describe the value, not the risk, so they read right in both
directions: "no support tickets in the last 90 days" is what a protective support
reason says. ``describe`` words one feature, ``concept_sentence`` a whole concept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from features.transforms.schema import DRIVERS, is_attribute

from .attributes import attribute_clause
from .clauses import (
    _NO_TICKETS,
    _SHORT_HISTORY,
    _actions,
    _ago,
    _complaint_price,
    _complaints,
    _contract,
    _count_phrase,
    _days_late,
    _days_to_renewal,
    _drop_ratio,
    _flagged,
    _last_csat,
    _last_effort,
    _last_nps,
    _negative_unresolved,
    _nps_summary,
    _nps_vs_usage,
    _price_change,
    _price_topic,
    _promoter_drop,
    _resolution,
    _response_rate,
    _segment,
    _sentiment_90d,
    _sentiment_180d,
    _sentiment_vs_usage,
    _silent,
    _tenure,
    _text,
    _topic,
    _topic_times_count,
    _usage_last,
    _vs_usual,
    _with_tickets,
)
from .definitions import CONCEPTS, FEATURE_CONCEPT, OTHER, base_feature
from .wording import _change, _points, fmt_money, is_missing


@dataclass(frozen=True)
class Phrase:
    """How to word one feature: the columns read (the feature first) and the wording."""

    inputs: tuple[str, ...]
    fn: Callable[..., str | None]


def _consent(channel: str) -> Callable[[object], str | None]:
    """``opted out of calls`` / ``accepts calls`` (nothing when the CRM holds no answer)."""
    return lambda v: None if is_missing(v) else (
        f"opted out of {channel}" if float(v) > 0 else f"accepts {channel}")


def _p(fn: Callable[..., str | None], *extra: str) -> Callable[[str], Phrase]:
    return lambda feature: Phrase((feature, *extra), fn)


_L90, _L30 = " in the last 90 days", " in the last 30 days"
_SPEC: dict[str, Callable[[str], Phrase]] = {
    # support friction
    "tickets_30d": _p(_with_tickets(_NO_TICKETS, _count_phrase(
        "ticket", _L30, "no support tickets in the last 30 days")), "tickets_90d"),
    "tickets_90d": _p(_count_phrase("ticket", _L90, _NO_TICKETS)),
    "tickets_unresolved_90d": _p(_with_tickets(_NO_TICKETS, _count_phrase(
        "ticket", " unresolved" + _L90, "no unresolved tickets in the last 90 days")), "tickets_90d"),
    "tickets_open_now": _p(_count_phrase("ticket", " open now", "no ticket open now")),
    "mean_resolution_days_90d": _p(_resolution(False), "max_resolution_days_90d", "tickets_90d"),
    "max_resolution_days_90d": _p(_resolution(True), "mean_resolution_days_90d", "tickets_90d"),
    "detractor_with_open_ticket": _p(_flagged("detractor with a ticket still open")),
    "silent_with_tickets": _p(_silent, "tickets_90d"),
    "negative_comment_with_unresolved": _p(_negative_unresolved, "tickets_unresolved_90d"),
    "support_topic_x_unresolved": _p(_topic_times_count("support", "unresolved ticket"),
                                     "tickets_unresolved_90d"),
    # service reliability
    "outage_tickets_90d": _p(_count_phrase("outage ticket", _L90, "no outage tickets in the last 90 days")),
    "technical_tickets_90d": _p(_count_phrase("technical ticket", _L90,
                                              "no technical tickets in the last 90 days")),
    "reliability_topic_x_outage_tickets": _p(_topic_times_count("reliability", "outage ticket"),
                                             "outage_tickets_90d"),
    # price & billing
    "monthly_charge": _p(lambda v: None if is_missing(v) else f"monthly charge {fmt_money(v)}"),
    "price_change_90d_pct": _p(_price_change),
    "discount_90d": _p(lambda v: None if is_missing(v) else "no discount in the last 90 days"
                       if float(v) <= 0 else f"discounts of {fmt_money(v)} in the last 90 days"),
    "late_payments_90d": _p(_count_phrase("late payment", _L90, "no late payments in the last 90 days")),
    "days_late_max_90d": _p(_days_late),
    "billing_tickets_90d": _p(_count_phrase("billing ticket", _L90,
                                            "no billing tickets in the last 90 days")),
    "complaint_and_price_rise": _p(_complaint_price, "price_change_90d_pct"),
    "price_topic_x_price_change": _p(_price_topic, "price_change_90d_pct"),
    # usage & engagement
    "usage_last_month": _p(_usage_last),
    "usage_30d_trend": _p(lambda v: _change(v, "usage", " on the previous month") or _SHORT_HISTORY),
    "usage_90d_trend": _p(lambda v: _change(v, "usage", " over 90 days") or _SHORT_HISTORY),
    "usage_drop_ratio": _p(_drop_ratio),
    "usage_vs_usual": _p(_vs_usual("last month")),
    "usage_prev_vs_usual": _p(_vs_usual("the month before")),
    "active_days_last_month": _p(_count_phrase("day", " active last month", "not active last month")),
    "sessions_last_month": _p(_count_phrase("session", " last month", "no sessions last month")),
    "promoter_with_usage_drop": _p(_promoter_drop, "usage_drop_ratio"),
    "nps_trend_minus_usage_trend": _p(_nps_vs_usage, "nps_trend", "usage_90d_trend"),
    "sentiment_x_usage_trend": _p(_sentiment_vs_usage, "sentiment_90d", "usage_90d_trend"),
    # tenure, contract, profile
    "tenure_days": _p(_tenure),
    "contract": _p(_contract),
    "days_to_renewal": _p(_days_to_renewal, "contract"),
    "segment": _p(_segment),
    "region": _p(_text("{} region")),
    "plan": _p(_text("{} plan")),
    # contact preferences
    "email_opt_out": _p(_consent("marketing e-mail")),
    "phone_opt_out": _p(_consent("calls")),
    # survey scores
    "last_nps": _p(_last_nps),
    "last_csat": _p(_last_csat, "last_nps"),
    "last_effort": _p(_last_effort, "last_nps"),
    "nps_trend": _p(lambda v: None if is_missing(v) else f"{_points(v)} since the previous answer"),
    "mean_nps_365d": _p(_nps_summary("average NPS answer {} in the last year", 1),
                        "last_nps", "mean_nps_365d", "min_nps_365d"),
    "min_nps_365d": _p(_nps_summary("lowest NPS answer {} in the last year", 0),
                       "last_nps", "mean_nps_365d", "min_nps_365d"),
    # survey participation
    "last_touchpoint": _p(lambda v: "never answered a survey" if is_missing(v)
                          else f"last answered a {v} survey"),
    "days_since_last_survey_answer": _p(_ago("last survey answer", "never answered a survey")),
    "days_since_last_invitation": _p(_ago("last survey invitation", "never invited to a survey")),
    "invitations_365d": _p(_count_phrase("survey invitation", " in the last year",
                                         "no survey invitations in the last year")),
    "responses_365d": _p(_count_phrase("survey answer", " in the last year",
                                       "no survey answers in the last year")),
    "response_rate_365d": _p(_response_rate, "invitations_365d"),
    "ever_responded": _p(lambda v: None if is_missing(v) else "never answered a survey"
                         if float(v) <= 0 else "has answered surveys before"),
    # comments & sentiment
    "comments_180d": _p(_count_phrase("comment", " in the last 180 days",
                                      "no comments in the last 180 days")),
    "sentiment_90d": _p(_sentiment_90d, "sentiment_180d"),
    "sentiment_180d": _p(_sentiment_180d, "sentiment_90d"),
    **{f"topic_{d}_180d": _p(_topic(d), "comments_180d") for d in DRIVERS},
    # complaints
    "complaints_90d": _p(_complaints, "complaint_max_severity_90d"),
    "complaint_max_severity_90d": _p(lambda v, n: _complaints(n, v), "complaints_90d"),
    # orders & delivery
    "orders_90d": _p(_count_phrase("order", _L90, "no orders in the last 90 days")),
    "failed_orders_90d": _p(_count_phrase("failed order", _L90, "no failed orders in the last 90 days")),
    # retention history
    "actions_90d": _p(_actions, "days_since_last_action"),
    "days_since_last_action": _p(_ago("last retention action", "never received a retention action")),
}

PHRASES: dict[str, Phrase] = {f: make(f) for f, make in _SPEC.items()}


def phrase_of(name: str, attributes: Mapping | None = None) -> Phrase | None:
    """The phrase of a model column (one-hot columns use their categorical's phrase); a
    company attribute's names it by its label (``attributes``: the model's attribute kinds
    and labels, ``FrameSpec.attributes``)."""
    phrase = PHRASES.get(base_feature(name))
    if phrase is None and is_attribute(name):
        return Phrase((name,), attribute_clause(name, attributes))
    return phrase


def _value(row: Mapping, col: str):
    try:
        v = row[col]
    except (KeyError, IndexError):
        return None
    return None if is_missing(v) else v


def describe(feature: str, row: Mapping, attributes: Mapping | None = None) -> str | None:
    """The clause for ``feature`` given one customer's values (``row``: dict or Series)."""
    phrase = phrase_of(feature, attributes)
    if phrase is None:
        return None
    return phrase.fn(*(_value(row, c) for c in phrase.inputs))


def join_phrases(phrases: Iterable[str | None], fallback: str, limit: int = 2) -> str:
    """Up to ``limit`` distinct clauses joined into one sentence, capitalised; ``fallback``
    (the concept label) when no clause is available."""
    kept: list[str] = []
    for p in phrases:
        if p and p not in kept:
            kept.append(p)
        if len(kept) == limit:
            break
    text = ", ".join(kept) if kept else fallback
    return text[:1].upper() + text[1:]


def concept_sentence(concept: str, row: Mapping, features: Iterable[str], limit: int = 2) -> str:
    """The sentence of a concept for one customer, from its features in order of strength."""
    return join_phrases((describe(f, row) for f in features),
                        CONCEPTS.get(concept, CONCEPTS[OTHER]).label, limit)


_missing_phrase = [f for f in FEATURE_CONCEPT if f not in PHRASES]
assert not _missing_phrase, f"features without a phrase: {_missing_phrase}"
