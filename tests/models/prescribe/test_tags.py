"""Dynamic tags: rules, hysteresis between runs, and one event per change with its cause."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from configs.settings import TagParams, load_settings
from models.nps.scale import CSAT
from models.prescribe.tags import EVENT_COLUMNS, TAG_COLUMNS, assign_tags, banded_level

P = TagParams(risk_medium=0.08, risk_high=0.20, risk_band=0.02, nps_detractor_below=6.5,
              nps_promoter_from=8.5, nps_band=0.3, observed_nps_days=90, onboarding_days=90,
              loyal_days=730, lapsing_usage_ratio=0.5, usage_band=0.05)


def frame(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"customer_id": [f"c{i}" for i in range(n)], "p_churn": [0.05] * n, "tenure_days": [400] * n,
            "usage_drop_ratio": [0.9] * n, "nps_pred": [7.5] * n}
    return pd.DataFrame(base | cols)


def run(current, previous=None, day="2026-01-01", run_id="r"):
    return assign_tags(current, previous, P, pd.Timestamp(day, tz="UTC"), run_id)


def test_shipped_params_load_with_the_tags_section():
    assert load_settings().tags == TagParams()


def test_overlapping_bands_are_refused():
    with pytest.raises(ValidationError, match="risk_medium"):
        TagParams(risk_medium=0.15, risk_high=0.18, risk_band=0.02)


def test_first_run_uses_plain_thresholds_and_records_one_event_per_tag():
    tags, events = run(frame(p_churn=[0.01, 0.08, 0.19, 0.20], nps_pred=[6.4, 6.5, 8.4, 8.5]))
    assert list(tags.columns) == TAG_COLUMNS and list(events.columns) == EVENT_COLUMNS
    assert tags["churn_risk_tier"].tolist() == ["low", "medium", "medium", "high"]
    assert tags["nps_class"].tolist() == ["detractor", "passive", "passive", "promoter"]
    assert len(events) == 3 * 4
    assert events["old_value"].isna().all()
    assert (events["run_id"] == "r").all()
    assert events["cause"].str.startswith("first assignment").all()


def test_relationship_stage_rules_in_order():
    tags, _ = run(frame(
        tenure_days=[30, 30, 30, 400, 1000, 1000],
        p_churn=[0.05, 0.30, 0.30, 0.05, 0.05, 0.05],
        usage_drop_ratio=[0.9, 0.9, 0.3, 0.9, 0.9, np.nan],
    ))
    assert tags["relationship_stage"].tolist() == ["onboarding", "at_risk", "lapsing", "growing", "loyal",
                                                   "loyal"]


def test_a_probability_oscillating_inside_the_band_keeps_its_tier():
    tags, _ = run(frame(p_churn=[0.21]))
    assert tags["churn_risk_tier"].iloc[0] == "high"
    for p in [0.19, 0.215, 0.185, 0.205, 0.181]:          # all within 0.20 +- 0.02
        tags, events = run(frame(p_churn=[p]), tags)
        assert tags["churn_risk_tier"].iloc[0] == "high"
        assert events.empty


def test_a_clear_crossing_changes_the_tier_and_records_one_event_with_its_cause():
    tags, _ = run(frame(p_churn=[0.15]))
    tags, events = run(frame(p_churn=[0.31]), tags, day="2026-02-01", run_id="r2")
    risk = events[events.tag == "churn_risk_tier"]
    assert len(risk) == 1
    e = risk.iloc[0]
    assert (e.old_value, e.new_value, e.run_id) == ("medium", "high", "r2")
    assert e.changed_at == pd.Timestamp("2026-02-01", tz="UTC")
    assert e.cause == "churn probability 0.31 rose above 0.22 (high tier); was 0.15"
    tags, events = run(frame(p_churn=[0.17]), tags)
    assert events[events.tag == "churn_risk_tier"].iloc[0].cause.startswith(
        "churn probability 0.17 fell below 0.18 (medium tier)")


def test_a_jump_over_two_tiers_names_the_boundary_passed():
    tags, _ = run(frame(p_churn=[0.5]))
    tags, events = run(frame(p_churn=[0.01]), tags)
    e = events[events.tag == "churn_risk_tier"].iloc[0]
    assert (e.old_value, e.new_value) == ("high", "low")
    assert "fell below 0.06 (low tier)" in e.cause


def test_same_inputs_give_no_events_and_the_same_tags():
    current = frame(p_churn=[0.01, 0.12, 0.4], nps_pred=[3.0, 7.0, 9.5], tenure_days=[20, 500, 900])
    tags1, _ = run(current)
    tags2, events = run(current, tags1)
    assert events.empty
    pd.testing.assert_frame_equal(tags1, tags2)
    again, events_again = run(current)
    pd.testing.assert_frame_equal(tags1, again)
    pd.testing.assert_frame_equal(run(current)[1], events_again)


def test_a_recent_answer_beats_the_prediction_an_old_one_does_not():
    current = frame(nps_pred=[9.0, 9.0], last_nps=[3.0, 3.0], days_since_last_survey_answer=[20.0, 200.0])
    tags, events = run(current)
    assert tags["nps_class"].tolist() == ["detractor", "promoter"]
    assert tags["nps_source"].tolist() == ["answered", "predicted"]
    assert "NPS answer 3" in events[(events.tag == "nps_class")].iloc[0].cause


def test_nps_class_needs_the_margin_to_change():
    tags, _ = run(frame(nps_pred=[6.0]))
    tags, events = run(frame(nps_pred=[6.7]), tags)              # above 6.5, not above 6.8
    assert tags["nps_class"].iloc[0] == "detractor" and events.empty
    tags, events = run(frame(nps_pred=[6.9]), tags)
    assert tags["nps_class"].iloc[0] == "passive"
    assert events.iloc[0].cause == "predicted NPS 6.9 rose above 6.8 (passive)"


def test_lapsing_needs_the_margin_to_start_and_to_end():
    tags, _ = run(frame(usage_drop_ratio=[0.7]))
    tags, events = run(frame(usage_drop_ratio=[0.47]), tags)     # below 0.5 but not below 0.45
    assert tags["relationship_stage"].iloc[0] == "growing" and events.empty
    tags, events = run(frame(usage_drop_ratio=[0.40]), tags)
    assert tags["relationship_stage"].iloc[0] == "lapsing"
    assert events.iloc[0].cause == "last month's usage at 40 % of its recent peak (under 45 %)"
    tags, events = run(frame(usage_drop_ratio=[0.53]), tags)     # back above 0.5, not above 0.55
    assert tags["relationship_stage"].iloc[0] == "lapsing" and events.empty
    tags, events = run(frame(usage_drop_ratio=[0.60]), tags)
    assert tags["relationship_stage"].iloc[0] == "growing"
    assert events.iloc[0].cause.startswith("usage recovered to 60 % of its recent peak; customer for 400")


def test_missing_scores_keep_the_previous_tags():
    tags, _ = run(frame(p_churn=[0.3], nps_pred=[9.0]))
    tags, events = run(frame(p_churn=[np.nan], nps_pred=[np.nan]), tags)
    assert tags[["churn_risk_tier", "nps_class"]].iloc[0].tolist() == ["high", "promoter"]
    assert events.empty
    fresh, events = run(frame(p_churn=[np.nan], nps_pred=[np.nan]))
    assert fresh["churn_risk_tier"].isna().all() and fresh["nps_class"].isna().all()
    assert set(events.tag) == {"relationship_stage"}


def test_new_customers_get_a_first_event_old_ones_missing_now_get_none():
    tags, _ = run(frame(p_churn=[0.05, 0.05]))
    current = frame(p_churn=[0.05, 0.05]).assign(customer_id=["c1", "new"])
    tags2, events = run(current, tags)
    assert set(events.customer_id) == {"new"} and events.old_value.isna().all()
    assert list(tags2.customer_id) == ["c1", "new"]


def test_an_unknown_previous_value_is_refused():
    tags, _ = run(frame(p_churn=[0.05]))
    with pytest.raises(ValueError, match="churn_risk_tier: unknown value 'severe'"):
        run(frame(p_churn=[0.05]), tags.assign(churn_risk_tier="severe"))


@settings(max_examples=80, deadline=None)
@given(st.floats(0.0, 1.0), st.lists(st.floats(-0.0199, 0.0199), min_size=1, max_size=12))
def test_any_walk_inside_the_band_never_flips_a_tier(start_offset, walk):
    """From any tier at the 0.20 boundary, moves that stay within the band change nothing."""
    level = banded_level(np.array([0.20 + 0.05 * (start_offset - 0.5)]), np.array([0.08, 0.20]), 0.02,
                         np.array([-1]))
    for step in walk:
        new = banded_level(np.array([0.20 + step]), np.array([0.08, 0.20]), 0.02, level)
        if level[0] in (1, 2):
            assert new[0] == level[0]
        level = new


def test_ten_thousand_customers_one_event_per_tier_change():
    rng = np.random.default_rng(0)
    n = 10_000
    current = frame(p_churn=rng.uniform(0, 0.5, n), nps_pred=rng.uniform(0, 10, n),
                    tenure_days=rng.integers(0, 2000, n), usage_drop_ratio=rng.uniform(0.2, 1.2, n))
    tags, events = run(current)
    moved = current.assign(p_churn=np.clip(current.p_churn + rng.normal(0, 0.05, n), 0, 1))
    tags2, events2 = run(moved, tags)
    changed = (tags2.churn_risk_tier != tags.churn_risk_tier).sum()
    assert len(events2[events2.tag == "churn_risk_tier"]) == changed > 0


def test_a_csat_model_tags_by_csat_classes_not_by_nps_thresholds():
    """On a CSAT model nps_pred is an expected 1-5 answer: the NPS thresholds (6.5, 8.5)
    would make every customer a detractor; the CSAT class cuts give all three classes."""
    current = frame(nps_pred=[1.8, 2.9, 3.4, 3.6, 4.7])
    tags, events = assign_tags(current, None, P, pd.Timestamp("2026-01-01", tz="UTC"), "r", scale=CSAT)
    assert tags["nps_class"].tolist() == ["dissatisfied", "neutral", "neutral", "satisfied", "satisfied"]
    cause = events.loc[events["tag"] == "nps_class", "cause"].iloc[0]
    assert cause == "first assignment: predicted CSAT 1.8 (dissatisfied)"


def test_a_recent_csat_answer_beats_the_prediction_and_hysteresis_holds_on_1_to_5():
    day = pd.Timestamp("2026-01-01", tz="UTC")
    first, _ = assign_tags(frame(nps_pred=[3.6, 3.6], last_csat=[np.nan, 2.0], last_nps=[np.nan, 10.0],
                                 days_since_last_survey_answer=[np.nan, 10]), None, P, day, "r1", scale=CSAT)
    assert first["nps_class"].tolist() == ["satisfied", "dissatisfied"]
    assert first["nps_source"].tolist() == ["predicted", "answered"]
    # 3.45 is under the 3.5 cut but within the scaled band (0.3 x 4/10): the class stays
    again, events = assign_tags(frame(nps_pred=[3.45, 3.3]), first, P, day, "r2", scale=CSAT)
    assert again["nps_class"].tolist() == ["satisfied", "neutral"]


def test_a_change_of_scale_reassigns_the_class_from_scratch():
    day = pd.Timestamp("2026-01-01", tz="UTC")
    before, _ = assign_tags(frame(nps_pred=[9.5]), None, P, day, "r1")
    after, events = assign_tags(frame(nps_pred=[4.5]), before, P, day, "r2", scale=CSAT)
    assert after["nps_class"].tolist() == ["satisfied"]
    event = events[events["tag"] == "nps_class"].iloc[0]
    assert event["old_value"] is None and event["cause"].startswith("first assignment")
