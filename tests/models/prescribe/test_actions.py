"""Action catalogue (validation, eligibility grammar) and the expected value of actions."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from configs.settings import PROJECT_ROOT, PrescribeParams, load_settings
from features.sources.world.mechanisms import ACTION_COST, ACTIONS
from features.sources.world.population import PLANS
from models.prescribe.actions import (
    CatalogueError,
    catalogue_from_entries,
    eligibility,
    load_catalogue,
    parse_rule,
    split_or,
)
from models.prescribe.value import candidate_actions, churn_reduction, expected_value, value_at_risk

SHIPPED = PROJECT_ROOT / "configs" / "actions.yaml"


def entry(**changes) -> dict:
    base = {"id": "discount_offer", "label": "Discount", "channel": "email", "cost": 45,
            "handling_minutes": 5, "eligible_if": ["discount_90d <= 0"], "addresses": ["price_billing"]}
    return base | changes


def entries_file(tmp_path, entries) -> str:
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump({"actions": entries}))
    return path


# --------------------------------------------------------------------------- the shipped file

def test_shipped_catalogue_matches_the_world_actions_and_costs():
    cat = load_catalogue(load_settings().prescribe.actions_file)
    assert cat.ids == list(ACTIONS)
    np.testing.assert_array_equal(cat.column("cost"), ACTION_COST)
    assert cat.source == "configs/actions.yaml"


def test_plan_upgrade_is_closed_to_the_top_plan_of_the_world_only():
    cat = load_catalogue(SHIPPED)
    frame = pd.DataFrame({f: 0 for a in cat for f in a.features}, index=range(4))
    frame["plan"] = list(PLANS) + [None]
    ok = eligibility(cat, frame)["plan_upgrade"]
    assert PLANS[-1] == "premium"
    assert ok.tolist() == [True, True, False, False]     # unknown plan: not eligible


def test_shipped_rules_read_only_known_columns_and_open_every_action_to_someone():
    cat = load_catalogue(SHIPPED)
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({f: rng.poisson(0.5, n) for a in cat for f in a.features})
    frame["plan"] = rng.choice(PLANS, n)
    frame["discount_90d"] = rng.choice([0.0, 10.0], n)
    frame["usage_30d_trend"] = rng.normal(0, 0.3, n)
    share = eligibility(cat, frame).mean()
    assert (share > 0.2).all(), share


# --------------------------------------------------------------------------- validation errors

@pytest.mark.parametrize("changes, message", [
    ({"cost": -5}, "action 'discount_offer': cost: must be >= 0"),
    ({"handling_minutes": -1}, "action 'discount_offer': handling_minutes: must be >= 0"),
    ({"channel": "pigeon"}, "action 'discount_offer': channel: must be one of"),
    ({"addresses": ["vibes"]}, "action 'discount_offer': addresses: unknown concept 'vibes'"),
    ({"addresses": []}, "action 'discount_offer': addresses:"),
    ({"eligible_if": ["tenure > 30"]}, r"eligible_if\[0\]: unknown feature 'tenure'"),
    ({"eligible_if": ["plan = 'premium'"]}, r"eligible_if\[0\]: cannot read condition"),
    ({"eligible_if": ["plan ~= 'premium'"]}, r"eligible_if\[0\]: cannot read condition"),
    ({"eligible_if": ["plan < 'premium'"]}, "does not apply to the text feature 'plan'"),
    ({"eligible_if": ["plan == 3"]}, "'plan' compares with a quoted string"),
    ({"eligible_if": ["tickets_90d >= 'many'"]}, "'tickets_90d' compares with a number"),
    ({"eligible_if": ["plan in 'basic'"]}, "'in' needs a non-empty list"),
    ({"eligible_if": ["tickets_90d >= __import__('os')"]}, "cannot read the value"),
    ({"limits": {"max_per_cycle": -1}}, r"limits\.max_per_cycle: must be >= 0"),
    ({"colour": "red"}, "action 'discount_offer': colour: unknown field"),
    ({"id": "Discount Offer"}, "id: must be lowercase"),
])
def test_a_bad_entry_names_the_file_the_action_and_the_field(changes, message):
    with pytest.raises(CatalogueError, match=message) as err:
        catalogue_from_entries([entry(**changes)], "configs/actions.yaml")
    assert str(err.value).startswith("configs/actions.yaml: action ")


def test_the_exact_message_of_a_negative_cost():
    with pytest.raises(CatalogueError) as err:
        catalogue_from_entries([entry(cost=-1)], "configs/actions.yaml")
    assert str(err.value) == "configs/actions.yaml: action 'discount_offer': cost: must be >= 0"


def test_duplicate_ids_and_every_problem_are_reported(tmp_path):
    path = entries_file(tmp_path, [entry(), entry(), entry(id="plan_upgrade", cost=-2, channel="fax")])
    with pytest.raises(CatalogueError) as err:
        load_catalogue(path)
    text = str(err.value)
    assert f"{path}: action 'discount_offer': id: duplicate id" in text
    assert "action 'plan_upgrade': cost: must be >= 0" in text
    assert "action 'plan_upgrade': channel: must be one of" in text


def test_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_catalogue(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(CatalogueError, match="bad.yaml: expected a mapping with an 'actions' list"):
        load_catalogue(bad)
    bad.write_text("actions: []\n")
    with pytest.raises(CatalogueError, match="bad.yaml: expected a non-empty list"):
        load_catalogue(bad)


def test_the_shipped_file_with_one_field_broken_fails_at_load(tmp_path):
    data = yaml.safe_load(SHIPPED.read_text())
    broken = copy.deepcopy(data)
    broken["actions"][3]["eligible_if"] = ["outage_tickets >= 1"]
    path = tmp_path / "actions.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(CatalogueError, match=r"action 'apology_credit': eligible_if\[0\]: unknown feature"):
        load_catalogue(path)


# --------------------------------------------------------------------------- eligibility grammar

def test_or_is_split_outside_quotes_only():
    assert split_or("a >= 1 or b >= 2") == ["a >= 1", "b >= 2"]
    assert split_or("region == 'north or south'") == ["region == 'north or south'"]
    assert [c.feature for c in parse_rule("tickets_90d>=1 or complaints_90d >= 1").any_of] == [
        "tickets_90d", "complaints_90d"]


def test_eligibility_is_all_rules_any_alternative_and_false_on_missing_values():
    cat = catalogue_from_entries([
        entry(id="a", eligible_if=["tickets_90d >= 1 or complaints_90d >= 1", "plan not in ['premium']"]),
        entry(id="b", eligible_if=["usage_30d_trend <= -0.2"]),
        entry(id="c", eligible_if=["plan in ('basic', 'standard')", "segment != 'enterprise'"]),
        entry(id="d", eligible_if=[]),
    ])
    frame = pd.DataFrame({
        "tickets_90d": [0, 2, 0, 0],
        "complaints_90d": [0, 0, 1, 0],
        "plan": ["basic", "standard", "premium", None],
        "usage_30d_trend": [-0.5, np.nan, -0.2, 0.1],
        "segment": ["consumer", None, "enterprise", "consumer"],
    }, index=[10, 11, 12, 13])
    got = eligibility(cat, frame)
    assert list(got.index) == [10, 11, 12, 13]
    assert got["a"].tolist() == [False, True, False, False]   # premium excluded; unknown plan excluded
    assert got["b"].tolist() == [True, False, True, False]    # NaN trend: not eligible
    assert got["c"].tolist() == [True, False, False, False]   # unknown segment fails "!="
    assert got["d"].all()


def test_eligibility_names_a_column_the_frame_lacks():
    cat = catalogue_from_entries([entry(id="a", eligible_if=["tickets_90d >= 1"])], "configs/actions.yaml")
    with pytest.raises(ValueError, match="action 'a': eligible_if reads 'tickets_90d'"):
        eligibility(cat, pd.DataFrame({"plan": ["basic"]}))


# --------------------------------------------------------------------------- expected value

def test_value_at_risk_is_margin_times_charge_times_months():
    params = PrescribeParams(margin_rate=0.5, value_months=12)
    v = value_at_risk(pd.DataFrame({"monthly_charge": [60.0, np.nan, -3.0]}), params)
    assert v.tolist() == [360.0, 0.0, 0.0]


def test_expected_value_is_prevented_churn_times_value_minus_cost():
    # p = 0.3, the action halves the risk (uplift -0.15): 0.15 x 1000 - 25
    assert expected_value(0.3, -0.15, 1000.0, 25.0) == pytest.approx(125.0)
    # a reduction larger than the risk itself is bounded by the risk
    assert expected_value(0.1, -0.4, 1000.0, 25.0) == pytest.approx(75.0)


def test_a_harmful_action_keeps_its_negative_effect():
    ev = expected_value(0.2, 0.05, 1000.0, 25.0)
    assert ev == pytest.approx(-75.0)          # 50 of value destroyed on top of the cost
    assert ev < -25.0
    assert churn_reduction(0.95, 0.5) == pytest.approx(-0.05)   # cannot add more than 1 - p
    assert np.isnan(expected_value(0.2, np.nan, 1000.0, 25.0))


def test_candidates_align_effects_by_customer_id_and_mark_eligibility():
    cat = load_catalogue(SHIPPED)
    customers = pd.DataFrame({
        "customer_id": ["c1", "c2"], "rep_id": ["r1", "r2"], "p_churn": [0.2, 0.4],
        "value_at_risk": [1000.0, 500.0], "plan": ["premium", "basic"], "tickets_90d": [0, 3],
        "complaints_90d": [0, 0], "discount_90d": [0.0, 0.0], "failed_orders_90d": [0, 0],
        "usage_30d_trend": [0.0, 0.0], "technical_tickets_90d": [0, 0], "outage_tickets_90d": [0, 0],
    })
    effects = pd.DataFrame({a: [-0.01 * (i + 1), -0.1] for i, a in enumerate(cat.ids)},
                           index=pd.Index(["c2", "c1"], name="customer_id"))
    cand = candidate_actions(customers, effects, cat)
    assert len(cand) == 2 * len(cat)
    row = cand[(cand.customer_id == "c1") & (cand.action_id == "discount_offer")].iloc[0]
    assert row.uplift == pytest.approx(-0.1)
    assert row.expected_value == pytest.approx(0.1 * 1000 - 45)
    c2 = cand[cand.customer_id == "c2"].set_index("action_id")
    assert c2.loc["service_recovery_call", "uplift"] == pytest.approx(-0.01)
    assert c2["eligible"].to_dict() == {"service_recovery_call": True, "discount_offer": True,
                                        "plan_upgrade": True, "apology_credit": True,
                                        "proactive_tech_check": False}
    assert not cand[(cand.customer_id == "c1") & (cand.action_id == "plan_upgrade")].eligible.any()


def test_candidates_refuse_effects_without_an_action():
    cat = load_catalogue(SHIPPED)
    customers = pd.DataFrame({"customer_id": ["c1"], "rep_id": ["r1"], "p_churn": [0.2],
                              "value_at_risk": [1.0]})
    with pytest.raises(ValueError, match="no column for action 'service_recovery_call'"):
        candidate_actions(customers, pd.DataFrame({"x": [0.0]}), cat)
