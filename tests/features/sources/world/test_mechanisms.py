"""The world contains the mechanisms later models must discover (checked on the truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def raw(world, table):
    return pd.read_parquet(world / "raw" / f"{table}.parquet")


def truth(world, table):
    return pd.read_parquet(world / "truth" / f"{table}.parquet")


def nps(scores: pd.Series) -> float:
    return 100 * ((scores >= 9).mean() - (scores <= 6).mean())


def test_respondents_nps_is_biased_against_the_truth(small_world):
    waves = truth(small_world, "survey_truth").query("touchpoint == 'relationship'")
    true_all = nps(waves["true_nps"])
    respondents = nps(waves.loc[waves["responded"], "true_nps"])
    assert respondents - true_all >= 10, (true_all, respondents)


def test_observed_responses_show_the_same_bias(small_world):
    """What a company sees (raw answers) over-states its NPS against everyone's truth."""
    answers = raw(small_world, "survey_responses")
    waves = truth(small_world, "survey_truth").query("touchpoint == 'relationship'")
    observed = answers[answers["survey_id"].str.startswith("relationship")]
    assert nps(observed["nps"]) - nps(waves["true_nps"]) >= 10


def test_rates_resemble_public_figures(small_world):
    crm = raw(small_world, "crm_customers")
    exposure_years = len(truth(small_world, "satisfaction_monthly")) / 12
    annual_churn = (crm["status"] == "churned").sum() / exposure_years
    assert 0.15 <= annual_churn <= 0.30
    response_rate = truth(small_world, "survey_truth")["responded"].mean()
    assert 0.05 <= response_rate <= 0.30


def test_usage_declines_before_churn(small_world):
    crm = raw(small_world, "crm_customers")
    usage = raw(small_world, "product_usage").merge(crm[["customer_id", "churn_date"]])
    churners = usage.dropna(subset=["churn_date"]).copy()
    churn_month = pd.to_datetime(churners["churn_date"]).dt.to_period("M")
    churners["before"] = (churn_month - pd.to_datetime(churners["month"]).dt.to_period("M")
                          ).apply(lambda p: p.n)
    level = churners.groupby("before")["usage_units"].mean()
    assert level.loc[1] < 0.8 * level.loc[6]      # the month before leaving
    assert level.loc[2] < 0.95 * level.loc[6]
    assert abs(level.loc[6] / level.loc[9] - 1) < 0.1  # stable long before


def test_action_effects_are_heterogeneous(small_world):
    effects = truth(small_world, "action_effects").merge(truth(small_world, "customer_traits"))
    open_ = effects[effects["p_churn_90d_no_action"] < 1]
    by = open_.groupby("action")
    discount = by.get_group("discount_offer")
    sensitive = discount.loc[discount["price_sensitivity"] > 0.6, "true_effect_90d"].mean()
    insensitive = discount.loc[discount["price_sensitivity"] < 0.2, "true_effect_90d"].mean()
    assert sensitive < 3 * min(insensitive, -1e-4)   # discounts help the price-sensitive far more
    calls = by.get_group("service_recovery_call")
    averse = calls.loc[calls["contact_averse"], "true_effect_90d"]
    assert (averse > 0).mean() > 0.9                 # some customers react badly to any call


def test_recovery_call_helps_customers_with_unresolved_tickets(small_world):
    logged = truth(small_world, "intervention_effects").merge(raw(small_world, "interventions"))
    logged = logged[logged["action"] == "service_recovery_call"]
    tickets = raw(small_world, "support_tickets")
    unresolved = tickets.loc[tickets["status"] == "unresolved", ["customer_id", "opened_at"]]
    pairs = logged.merge(unresolved, on="customer_id", how="left")
    recent = (pairs["assigned_at"] - pairs["opened_at"]).dt.days.between(0, 45)
    with_open = set(pairs.loc[recent, "intervention_id"])
    has = logged["intervention_id"].isin(with_open)
    assert logged.loc[has, "true_effect_90d"].mean() < logged.loc[~has, "true_effect_90d"].mean() - 0.01


def test_comments_reflect_the_main_driver(small_world):
    crm = raw(small_world, "crm_customers")[["customer_id", "email"]].dropna()
    crm["key"] = crm["email"].str.strip().str.lower()
    answers = raw(small_world, "survey_responses").query("channel == 'email'").dropna(subset=["comment"])
    answers["key"] = answers["respondent"].str.strip().str.lower()
    answers = answers.merge(crm, on="key")
    answers["month"] = answers["responded_at"].dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    monthly = truth(small_world, "satisfaction_monthly")
    monthly["month"] = pd.to_datetime(monthly["month"])
    answers = answers.merge(monthly, on=["customer_id", "month"])
    mentions = answers["comment"].str.contains("price|expensive|bill|charges")
    by_driver = mentions.groupby(answers["main_driver"]).mean()
    assert by_driver["price"] > 0.3 and by_driver.drop("price").max() < 0.1


def test_holdout_is_randomised_and_costs_nothing(small_world):
    log = raw(small_world, "interventions")
    share = log["control_group"].mean()
    assert 0.15 < share < 0.25
    control = log[log["control_group"]]
    assert (control["cost"] == 0).all() and (control["outcome"] == "holdout").all()
    assert not (log.loc[~log["control_group"], "outcome"] == "holdout").any()


@pytest.mark.parametrize("table", ["crm_customers", "survey_responses", "billing_invoices"])
def test_exports_hide_the_truth(small_world, table):
    hidden = {"price_sensitivity", "engagement", "satisfaction", "true_nps", "churn_hazard",
              "contact_averse", "true_effect_90d", "decision_month"}
    assert not hidden & set(raw(small_world, table).columns)


def test_some_customers_answer_one_invitation_twice(small_world):
    answers = raw(small_world, "survey_responses")
    assert np.isclose(answers.duplicated(["survey_id", "responded_at"]).mean(), 0, atol=0.01)
    invites = truth(small_world, "survey_truth")
    answered = invites["responded"].sum()
    assert len(answers) > answered * 1.01   # duplicates across channels exist
