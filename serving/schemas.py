"""Request and response bodies of the scoring service (they become the OpenAPI schemas)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from models.nps.scale import NPS, SCALE_CODES
from serving.input_rules import contract_bounds, day_not_in_future, not_in_future

NPS_MIN, NPS_MAX = contract_bounds("survey_responses", "nps")
CSAT_MIN, CSAT_MAX = contract_bounds("survey_responses", "csat")
USAGE_MIN, _ = contract_bounds("product_usage", "usage_units")
PastDate = Annotated[date, AfterValidator(day_not_in_future)]
PastTime = Annotated[datetime, AfterValidator(not_in_future)]
SatisfactionScale = Literal[tuple(SCALE_CODES)]
SCALE_DOC = ("Scale of predicted_nps and the class probabilities: nps_0_10 (expected NPS answer; "
             "detractor / passive / promoter) or csat_1_5 (expected CSAT answer; the same three "
             "fields then hold dissatisfied 1-2 / neutral 3 / satisfied 4-5)")


class _In(BaseModel):
    """Posted bodies: unknown fields refused, numbers finite (no NaN or Infinity)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


# ------------------------------------------------------------------ customer view


class Reason(BaseModel):
    concept: str | None = None
    label: str | None = None
    sentence: str | None = None
    impact: float | None = Field(None, description="Contribution to the score (log-odds for churn)")


class Tags(BaseModel):
    relationship_stage: str | None = None
    churn_risk_tier: str | None = None
    nps_class: str | None = None


class NpsClassProbabilities(BaseModel):
    """Low / middle / high satisfaction class; on csat_1_5 dissatisfied / neutral / satisfied."""

    detractor: float | None = None
    passive: float | None = None
    promoter: float | None = None


class RecommendedAction(BaseModel):
    action_id: str
    label: str | None = None
    channel: str | None = None
    expected_value: float | None = Field(None, description="Expected value saved, net of cost")
    cost: float | None = None
    why: str | None = None


class Lineage(BaseModel):
    run_id: str | None = Field(None, description="Scoring run (None for a fresh score)")
    as_of: date | None = None
    model_versions: dict[str, str] = {}
    feature_service: str | None = None
    data_version: str | None = None


class AlertOut(BaseModel):
    alert_id: int | None = None
    kind: str
    reason: str
    comment: str | None = None
    raised_at: datetime
    source: str
    resolved_at: datetime | None = Field(None, description="When an outcome resolved it (None: open)")


class OutcomeOut(BaseModel):
    outcome_id: int
    customer_id: str
    action_id: str
    status: str
    decline_reason: str | None = None
    customer_response: str | None = None
    recorded_at: datetime
    recorded_by: str
    run_id: str | None = None
    alerts_resolved: int = Field(0, description="Open alerts of the customer this outcome resolved")


class CustomerScore(BaseModel):
    """A customer's scores, tags and reasons (batch or fresh)."""

    customer_id: str
    rep_id: str | None = None
    churn_probability: float
    satisfaction_scale: SatisfactionScale = Field(NPS.code, description=SCALE_DOC)
    predicted_nps: float | None = Field(None, description="Expected answer on satisfaction_scale")
    nps_class_probabilities: NpsClassProbabilities
    last_nps: float | None = None
    value_at_risk: float | None = None
    tags: Tags
    reasons: list[Reason] = []
    recommended_action: RecommendedAction | None = None
    alert: str | None = Field(None, description="Why the scoring run flagged this customer, if it did")


class CustomerView(CustomerScore):
    """The customer view: scores from the latest complete run (or fresh), open alerts, last outcome."""

    fresh: bool = False
    latest_comment: str | None = None
    open_alerts: list[AlertOut] = []
    last_outcome: OutcomeOut | None = None
    lineage: Lineage


# ------------------------------------------------------------------ batch scoring


class ScoreRequest(_In):
    as_of: PastDate | None = Field(None, description="Scoring date (default: today); not in the future")
    rows: list[dict[str, Any]] = Field(
        ..., min_length=1, description="Feature rows: customer_id plus the FeatureService's features"
    )


class ScoreResponse(BaseModel):
    as_of: date
    model_versions: dict[str, str]
    feature_service: str
    results: list[CustomerScore]


# ------------------------------------------------------------------ rep's list


class ActionItem(BaseModel):
    position: int = Field(..., description="1-based position in the rep's list")
    customer_id: str
    rank: int | None = Field(None, description="Rank in the scoring run's plan (None: alert only)")
    alert: AlertOut | None = None
    action: RecommendedAction | None = None
    churn_probability: float | None = None
    churn_risk_tier: str | None = None
    predicted_nps: float | None = None
    nps_class: str | None = None
    relationship_stage: str | None = None
    value_at_risk: float | None = None
    top_reasons: list[Reason] = []
    latest_comment: str | None = None
    last_outcome: OutcomeOut | None = None


class ActionPageOut(BaseModel):
    rep_id: str
    run_id: str | None
    as_of: date | None
    satisfaction_scale: SatisfactionScale = Field(NPS.code, description=SCALE_DOC)
    page: int
    size: int
    total: int
    pages: int
    items: list[ActionItem]


# ------------------------------------------------------------------ outcomes and events


class OutcomeIn(_In):
    customer_id: str = Field(..., min_length=1, max_length=64)
    action_id: str = Field(..., min_length=1, max_length=64)
    status: Literal["done", "declined", "no_answer"]
    decline_reason: str | None = Field(None, max_length=500)
    customer_response: str | None = Field(None, max_length=2000, description="What the customer said")

    @model_validator(mode="after")
    def _decline_reason(self) -> OutcomeIn:
        if self.status == "declined" and not self.decline_reason:
            raise ValueError("decline_reason is required when status is 'declined'")
        if self.status != "declined" and self.decline_reason:
            raise ValueError("decline_reason is only for status 'declined'")
        return self


class SurveyEvent(_In):
    """A survey answer on NPS (0-10) or CSAT (1-5), as the company runs its surveys."""

    type: Literal["survey"]
    customer_id: str = Field(..., min_length=1, max_length=64)
    nps: int | None = Field(None, ge=NPS_MIN, le=NPS_MAX)
    csat: int | None = Field(None, ge=CSAT_MIN, le=CSAT_MAX)
    comment: str | None = Field(None, max_length=5000)
    answered_at: PastTime | None = Field(None, description="When answered; not in the future")

    @model_validator(mode="after")
    def _one_score(self) -> SurveyEvent:
        if self.nps is None and self.csat is None:
            raise ValueError("a survey answer needs a score: nps (0-10) or csat (1-5)")
        return self


class UsageEvent(_In):
    type: Literal["usage"]
    customer_id: str = Field(..., min_length=1, max_length=64)
    month: PastDate = Field(..., description="First day of the month the reading covers; not in the future")
    usage_units: float = Field(..., ge=USAGE_MIN, description="Units used that month (finite)")

    @field_validator("month")
    @classmethod
    def _first_of_month(cls, month: date) -> date:
        if month.day != 1:
            raise ValueError("must be the first day of a month")
        return month


Event = Annotated[SurveyEvent | UsageEvent, Field(discriminator="type")]


class EventResult(BaseModel):
    customer_id: str
    alert_raised: bool
    alert_id: int | None = None
    reason: str | None = None


# ------------------------------------------------------------------ operations


class ModelsReady(BaseModel):
    loaded: bool
    versions: dict[str, str]
    registry_reachable: bool
    loaded_at: datetime | None
    last_checked: datetime | None
    error: str | None
    source: Literal["registry", "local_copy"] | None = None   # local_copy: the registry was unavailable


class DatabaseReady(BaseModel):
    reachable: bool
    latest_run: str | None = None
    as_of: date | None = None
    error: str | None = None


class FreshCacheReady(BaseModel):
    """Fresh scores precomputed for the latest run's customers (``?fresh=true`` answers from it)."""

    finished: bool
    versions: dict[str, str]
    as_of: date | None
    customers: int = Field(..., description="Customers scored by the last warm-up")
    seconds: float
    cached: int = Field(..., description="Results held now")
    error: str | None = Field(None, description="Why the last warm-up failed, if it did")


class ViewCacheReady(BaseModel):
    """The latest run's customer views held in memory (filled as customers are asked for)."""

    run_id: str | None = Field(..., description="The run whose views are held")
    warmed_run: str | None = Field(..., description="The run whose customers the warm-up filled")
    cached: int
    size: int = Field(..., description="At most this many (serving.view_cache_size)")
    hits: int
    misses: int


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    database: DatabaseReady
    models: ModelsReady
    fresh_cache: FreshCacheReady
    view_cache: ViewCacheReady


class Health(BaseModel):
    status: Literal["ok"] = "ok"
