"""Settings of planning: the next-best-action cycle, `cem cycle`'s world loop and the
dynamic tags (sections of ``configs.settings.Settings``, which re-exports them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from configs.section import PROJECT_ROOT, Section


class PrescribeParams(Section):
    """Next-best-action cycle: value at risk, contact policy, capacity and budget."""

    actions_file: Path = PROJECT_ROOT / "configs" / "actions.yaml"
    cycle_days: int = Field(7, ge=1, le=31)            # one plan per cycle (a working week)
    working_days_per_cycle: int = Field(5, ge=1, le=31)
    value_months: int = Field(12, ge=1)                # value at risk = margin x charge x months
    margin_rate: float = Field(0.6, gt=0, le=1)
    min_days_since_contact: int = Field(14, ge=0)      # no action within N days of the last one
    min_days_since_survey: int = Field(7, ge=0)        # nor of the last survey invitation
    max_contacts_per_week: int = Field(1, ge=1)        # per customer, actions + surveys
    rep_minutes_per_day: float = Field(240.0, gt=0)    # each rep's daily capacity
    budget: float | None = Field(None, ge=0)           # total action cost per cycle (None: no cap)
    min_expected_value: float = 0.0                    # actions below this are never planned
    holdout_share: float = Field(0.1, ge=0, lt=1)      # planned actions randomly held back (control)
    experiment_share: float = Field(0.2, ge=0, lt=1)   # share of the cycle's budget spent on
                                                       # randomized experiments (effect still uncertain)
    experiment_spend: Literal["thompson", "whole"] = "thompson"   # thompson: a cell gets P(best
                                                       # and paying) of the experiment budget, the rest is
                                                       # not spent; whole: P(best), all of it, plus what
                                                       # the model's plan leaves of its own budget
    experiment_controls: float = Field(4.0, ge=0)      # hold-outs drawn per treated customer in an
                                                       # experiment cell (free: they get nothing)
    impact_slice_share: float = Field(0.05, ge=0, le=0.2)  # each of the sticky comparison slices
                                                       # (no action, risk-ranked, random): share of customers
    value_quantile: float = Field(0.9, gt=0.5, lt=1)   # plan only if the net value at this
                                                       # confidence is positive (uncertain learners)
    alert_usage_ratio: float = Field(0.5, gt=0, lt=1)  # scoring alert: usage at or below this x usual
    risk_review_per_rep: int = Field(20, ge=0)         # without an uplift model: customers per rep
                                                       # listed by churn risk x value at risk


class CycleParams(Section):
    """`cem cycle`: the built-in world answers the product's plans, month by month."""

    retrain_every_months: int = Field(3, ge=0)      # retrain when the cycle's month hits it (0: never)
    rep_actions_per_month: int = Field(60, ge=0)    # actions one rep delivers in a month
    programme_runs: bool = False                    # the world's own programme keeps running too
    budget_share: float | None = Field(0.02, ge=0, le=1)  # each plan's budget: this share of the active
                                                    # customers x the catalogue's mean action cost
                                                    # (None: prescribe.budget as set)
    ceiling_every_months: int = Field(1, ge=0)      # learning curve: refit the feature ceiling for
                                                    # the plans delivered in these months (0: never)


class TagParams(Section):
    """Dynamic tags: churn-risk tier, NPS class, relationship stage, and their hysteresis.

    A tag moves to a new value only when its score crosses the threshold by the band
    (enter above threshold + band, leave below threshold - band), so a score wandering
    around a threshold between runs does not flip the tag back and forth.
    """

    risk_medium: float = Field(0.08, gt=0, lt=1)          # 90-day churn probability: medium tier from
    risk_high: float = Field(0.20, gt=0, lt=1)            # high tier (and the at_risk stage) from
    risk_band: float = Field(0.02, ge=0, lt=0.5)          # hysteresis band around each risk threshold
    nps_detractor_below: float = Field(6.5, ge=0, le=10)  # NPS score (0-10) below this: detractor
    nps_promoter_from: float = Field(8.5, ge=0, le=10)    # at or above this: promoter
    nps_band: float = Field(0.3, ge=0, le=2)              # hysteresis band around the NPS thresholds
    observed_nps_days: int = Field(90, ge=0)              # a survey answer this recent beats the prediction
    onboarding_days: int = Field(90, ge=1)                # tenure below this: onboarding
    loyal_days: int = Field(730, ge=1)                    # tenure from this: loyal
    lapsing_usage_ratio: float = Field(0.5, gt=0, lt=1)   # last month's usage / recent peak below: lapsing
    usage_band: float = Field(0.05, ge=0, lt=0.5)         # hysteresis band around the lapsing ratio

    @model_validator(mode="after")
    def _ordered(self) -> TagParams:
        if not self.risk_medium + self.risk_band < self.risk_high - self.risk_band:
            raise ValueError("tags: risk_medium + risk_band must stay below risk_high - risk_band")
        if not self.nps_detractor_below + self.nps_band < self.nps_promoter_from - self.nps_band:
            raise ValueError("tags: nps_detractor_below + nps_band must stay below "
                             "nps_promoter_from - nps_band")
        if not self.onboarding_days < self.loyal_days:
            raise ValueError("tags: onboarding_days must be below loyal_days")
        return self
