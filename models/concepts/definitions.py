"""Business concepts behind the 64 features: which concept each model column belongs to.

Staff trust a score when its reasons are theirs: "3 tickets unresolved in the last 90
days", not "tickets_unresolved_90d = 3". Every feature of ``FEATURE_SCHEMA`` belongs to
exactly one ``Concept`` (support friction, price & billing, ...); related features, the
one-hot columns of a categorical and the fused X+O signals group with the concept a
member of staff would name. This module holds the concepts and that mapping only; how a
value is put into words lives in ``phrases`` (and its helpers ``clauses``, ``wording``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from features.transforms.schema import DRIVERS, FEATURE_SCHEMA, is_attribute

from .attributes import ATTRIBUTES

OTHER = "other"


@dataclass(frozen=True)
class Concept:
    """A business concept: its key, the label staff read, and a one-line description."""

    key: str
    label: str
    description: str


CONCEPTS: dict[str, Concept] = {c.key: c for c in [
    Concept("support", "Support friction",
            "tickets raised, unresolved or still open, and how long they took"),
    Concept("reliability", "Service reliability", "outage and technical tickets"),
    Concept("price_billing", "Price & billing",
            "monthly charge, price rises, discounts, late payments, billing tickets"),
    Concept("usage", "Usage & engagement",
            "product usage, its trend against earlier months, active days and sessions"),
    Concept("tenure", "Onboarding / tenure", "how long the customer has been with us"),
    Concept("contract", "Contract & renewal", "contract type and the time to renewal"),
    Concept("survey_scores", "Survey scores", "NPS, CSAT and effort answers and their trend"),
    Concept("survey_participation", "Survey participation",
            "invitations, answers and response rate: who talks to us at all"),
    Concept("comments", "Comments & sentiment", "tone of survey comments and the topics they name"),
    Concept("complaints", "Complaints", "complaints received and their severity"),
    Concept("orders", "Orders & delivery", "orders placed and orders that failed"),
    Concept("retention", "Retention history", "retention actions delivered to the customer"),
    Concept("profile", "Customer profile", "segment, region and plan"),
    Concept("contact_preferences", "Contact preferences",
            "channel consent the CRM records: opted out of e-mail or of calls"),
    Concept(ATTRIBUTES, "Customer attributes",
            "the company's own customer columns, as of the export (contract type, age, ...)"),
    Concept(OTHER, "Other factors", "features without a business concept"),
]}

_MEMBERS: dict[str, list[str]] = {
    "support": ["tickets_30d", "tickets_90d", "tickets_unresolved_90d", "tickets_open_now",
                "mean_resolution_days_90d", "max_resolution_days_90d",
                "detractor_with_open_ticket", "silent_with_tickets",
                "negative_comment_with_unresolved", "support_topic_x_unresolved"],
    "reliability": ["outage_tickets_90d", "technical_tickets_90d",
                    "reliability_topic_x_outage_tickets"],
    "price_billing": ["monthly_charge", "price_change_90d_pct", "discount_90d", "late_payments_90d",
                      "days_late_max_90d", "billing_tickets_90d", "complaint_and_price_rise",
                      "price_topic_x_price_change"],
    "usage": ["usage_last_month", "usage_30d_trend", "usage_90d_trend", "usage_drop_ratio",
              "usage_vs_usual", "usage_prev_vs_usual",
              "active_days_last_month", "sessions_last_month", "promoter_with_usage_drop",
              "nps_trend_minus_usage_trend", "sentiment_x_usage_trend"],
    "tenure": ["tenure_days"],
    "contract": ["contract", "days_to_renewal"],
    "survey_scores": ["last_nps", "last_csat", "last_effort", "nps_trend", "mean_nps_365d",
                      "min_nps_365d"],
    "survey_participation": ["last_touchpoint", "days_since_last_survey_answer",
                             "days_since_last_invitation", "invitations_365d", "responses_365d",
                             "response_rate_365d", "ever_responded"],
    "comments": ["comments_180d", "sentiment_90d", "sentiment_180d",
                 *[f"topic_{d}_180d" for d in DRIVERS]],
    "complaints": ["complaints_90d", "complaint_max_severity_90d"],
    "orders": ["orders_90d", "failed_orders_90d"],
    "retention": ["actions_90d", "days_since_last_action"],
    "profile": ["segment", "region", "plan"],
    "contact_preferences": ["email_opt_out", "phone_opt_out"],
}

FEATURE_CONCEPT: dict[str, str] = {f: c for c, feats in _MEMBERS.items() for f in feats}

_KINDS = {c: k for table in FEATURE_SCHEMA.values() for c, k in table.items()}
_CATEGORICAL = sorted((c for c, k in _KINDS.items() if k == "string"), key=len, reverse=True)


def schema_features() -> list[str]:
    """Every feature declared in ``FEATURE_SCHEMA``, in table order."""
    return [c for table in FEATURE_SCHEMA.values() for c in table]


def missing_concepts(features: Iterable[str] | None = None) -> list[str]:
    """Features (default: the whole schema) that have no business concept."""
    feats = schema_features() if features is None else list(features)
    return [f for f in feats if base_feature(f) not in FEATURE_CONCEPT]


def base_feature(name: str) -> str:
    """The schema feature behind a model column: itself, or the categorical of a one-hot
    column such as ``plan_premium`` / ``plan=premium``."""
    if name in FEATURE_CONCEPT or name in _KINDS:
        return name
    for cat in _CATEGORICAL:
        if name.startswith(cat) and name[len(cat):len(cat) + 1] in ("_", "="):
            return cat
    return name


def concept_of(name: str) -> str:
    """The concept key of a model column (``"other"`` for a column nobody declared); the
    company's own attributes (``attr_*``) are "Customer attributes"."""
    concept = FEATURE_CONCEPT.get(base_feature(name))
    if concept is None:
        return ATTRIBUTES if is_attribute(name) else OTHER
    return concept


def concept_features(concept: str) -> list[str]:
    """The schema features of a concept."""
    return list(_MEMBERS.get(concept, []))
