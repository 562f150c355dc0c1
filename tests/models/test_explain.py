"""Reason codes, business concepts and key drivers on a quick LightGBM of the model world."""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import asdict

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.concepts import (
    CONCEPTS,
    FEATURE_CONCEPT,
    OTHER,
    PHRASES,
    concept_features,
    concept_of,
    concept_sentence,
    describe,
    fmt_duration,
    fmt_number,
    missing_concepts,
    schema_features,
)
from models.drivers import driver_figure, feature_importance, key_drivers
from models.explain import Reason, concept_contributions, reason_codes, reasons_frame
from models.frame import FrameSpec

FEATURES = schema_features()
NAN = float("nan")


def _fit(matrix: pd.DataFrame, y: np.ndarray, **params) -> lgb.Booster:
    # one thread: with other processes on the two cores, OpenMP threads spin (30x slower)
    args = dict(n_estimators=100, max_depth=5, num_leaves=24, learning_rate=0.1,
                min_child_samples=40, n_jobs=1, verbose=-1, random_state=0) | params
    return lgb.LGBMClassifier(**args).fit(matrix, y).booster_


@pytest.fixture(scope="module")
def quick(model_world):
    """A 100-tree churn model on 15k training rows, and TreeSHAP for 2,000 other rows."""
    frame = model_world.churn.reset_index(drop=True)
    spec = FrameSpec.fit(frame, FEATURES)
    train = frame.sample(n=min(15_000, len(frame) // 2), random_state=0)
    booster = _fit(spec.matrix(train), train["churned_within_horizon"].to_numpy())
    rows = frame.drop(train.index).sample(n=2_000, random_state=1)
    contrib = booster.predict(spec.matrix(rows), pred_contrib=True)
    return frame, spec, booster, rows, contrib


# --------------------------------------------------------------------------- concepts

def test_every_feature_has_a_concept_and_a_phrase():
    assert missing_concepts() == []
    assert set(FEATURES) == set(FEATURE_CONCEPT), "a concept lists a feature the schema lacks"
    assert set(FEATURES) <= set(PHRASES)
    for key in CONCEPTS:   # the company's attributes come from its export, not the schema
        assert key in (OTHER, "attributes") or concept_features(key), f"concept {key} has no feature"
    assert missing_concepts(["tickets_90d", "not_a_feature"]) == ["not_a_feature"]
    # one-hot columns belong to their categorical's concept; unknown columns to "other"
    assert concept_of("plan_premium") == concept_of("plan=basic") == concept_of("plan") == "profile"
    assert concept_of("contract_two_year") == "contract"
    assert concept_of("mystery_column") == OTHER


def test_phrases_never_fail_nor_say_nan(quick):
    frame, *_ = quick
    rows = [frame.iloc[i] for i in range(0, len(frame), max(1, len(frame) // 300))]
    rows.append({})                                      # everything unknown
    rows.append({f: NAN for f in FEATURES})
    for row in rows:
        for f in FEATURES:
            text = describe(f, row)
            assert text is None or (text and not re.search(r"\bnan\b|None|\d\.\d{3,}", text)), (f, text)


@pytest.mark.parametrize("feature, row, expected", [
    ("tickets_unresolved_90d", {"tickets_unresolved_90d": 3}, "3 tickets unresolved in the last 90 days"),
    ("tickets_unresolved_90d", {"tickets_unresolved_90d": 1}, "1 ticket unresolved in the last 90 days"),
    ("tickets_unresolved_90d", {"tickets_unresolved_90d": 0, "tickets_90d": 2},
     "no unresolved tickets in the last 90 days"),
    ("tickets_unresolved_90d", {"tickets_unresolved_90d": 0, "tickets_90d": 0},
     "no support tickets in the last 90 days"),
    ("tickets_90d", {"tickets_90d": 0}, "no support tickets in the last 90 days"),
    ("tickets_open_now", {"tickets_open_now": 1}, "1 ticket open now"),
    ("mean_resolution_days_90d", {"mean_resolution_days_90d": 4.4444},
     "tickets took 4.4 days on average to close"),
    ("mean_resolution_days_90d", {"mean_resolution_days_90d": NAN, "tickets_90d": 1},
     "no ticket closed in the last 90 days"),
    ("usage_90d_trend", {"usage_90d_trend": -0.45}, "usage down 45 % over 90 days"),
    ("usage_90d_trend", {"usage_90d_trend": 0.1}, "usage up 10 % over 90 days"),
    ("usage_90d_trend", {"usage_90d_trend": 0.0004}, "usage flat over 90 days"),
    ("usage_90d_trend", {"usage_90d_trend": NAN}, "usage history too short for a trend"),
    ("usage_drop_ratio", {"usage_drop_ratio": 0.55}, "usage at 55 % of its 6-month high"),
    ("price_change_90d_pct", {"price_change_90d_pct": 12.0}, "price up 12 % in the last 90 days"),
    ("price_change_90d_pct", {"price_change_90d_pct": 5.2400001}, "price up 5.2 % in the last 90 days"),
    ("price_change_90d_pct", {"price_change_90d_pct": 0.0}, "no price change in the last 90 days"),
    ("monthly_charge", {"monthly_charge": 61.5}, "monthly charge 61.50"),
    ("monthly_charge", {"monthly_charge": 35.0000001}, "monthly charge 35"),
    ("late_payments_90d", {"late_payments_90d": 1}, "1 late payment in the last 90 days"),
    ("last_nps", {"last_nps": 3.0}, "last NPS answer 3 (detractor)"),
    ("last_nps", {"last_nps": 7.0}, "last NPS answer 7 (passive)"),
    ("last_nps", {"last_nps": 10.0}, "last NPS answer 10 (promoter)"),
    ("last_nps", {"last_nps": NAN}, "no NPS answer yet"),
    ("nps_trend", {"nps_trend": -3.0}, "NPS down 3 points since the previous answer"),
    ("nps_trend", {"nps_trend": 1.0}, "NPS up 1 point since the previous answer"),
    ("complaints_90d", {"complaints_90d": 2}, "2 complaints in the last 90 days"),
    ("complaints_90d", {"complaints_90d": 1}, "1 complaint in the last 90 days"),
    ("complaint_max_severity_90d", {"complaints_90d": 2, "complaint_max_severity_90d": 3},
     "2 complaints in the last 90 days (high severity)"),
    ("mean_resolution_days_90d", {"mean_resolution_days_90d": 2.01, "max_resolution_days_90d": 2.04},
     "tickets took 2 days to close"),
    ("sentiment_180d", {"sentiment_180d": 0.5, "sentiment_90d": 0.4},
     "positive comments in the last 90 days"),
    ("last_csat", {"last_csat": NAN, "last_nps": NAN}, "no NPS answer yet"),
    ("last_csat", {"last_csat": 4.0, "last_nps": 8.0}, "last CSAT 4 of 5"),
    ("usage_30d_trend", {"usage_30d_trend": NAN}, "usage history too short for a trend"),
    ("actions_90d", {"actions_90d": 0, "days_since_last_action": NAN}, "never received a retention action"),
    ("days_to_renewal", {"days_to_renewal": 20.0, "contract": "one_year"}, "contract renews in 20 days"),
    ("days_to_renewal", {"days_to_renewal": 200.0}, "contract renews in 7 months"),
    ("days_to_renewal", {"days_to_renewal": -12.0}, "contract term ended 12 days ago"),
    ("days_to_renewal", {"days_to_renewal": NAN, "contract": "month_to_month"}, "month-to-month contract"),
    ("contract", {"contract": "two_year"}, "two-year contract"),
    ("tenure_days", {"tenure_days": 61}, "customer for 2 months"),
    ("tenure_days", {"tenure_days": 3.0000001}, "customer for 3 days"),
    ("tenure_days", {"tenure_days": 1100}, "customer for 3 years"),
    ("response_rate_365d", {"response_rate_365d": 0.25, "invitations_365d": 4},
     "answered 1 of 4 survey invitations in the last year"),
    ("response_rate_365d", {"response_rate_365d": NAN}, "no survey invitations in the last year"),
    ("topic_price_180d", {"topic_price_180d": 0.5, "comments_180d": 2}, "1 of 2 comments mention price"),
    ("topic_price_180d", {"topic_price_180d": NAN}, "no comments in the last 180 days"),
    ("sentiment_90d", {"sentiment_90d": -0.6}, "negative comments in the last 90 days"),
    ("failed_orders_90d", {"failed_orders_90d": 1}, "1 failed order in the last 90 days"),
    ("days_since_last_action", {"days_since_last_action": NAN}, "never received a retention action"),
    ("segment", {"segment": "small_business"}, "small-business customer"),
    ("plan", {"plan": None}, None),
    ("promoter_with_usage_drop", {"promoter_with_usage_drop": 0.0}, None),
])
def test_wording_of_hand_made_rows(feature, row, expected):
    assert describe(feature, row) == expected


def test_concept_sentence_joins_dedupes_and_falls_back_to_the_label():
    row = {"tickets_unresolved_90d": 3, "tickets_open_now": 1, "tickets_90d": 3}
    assert concept_sentence("support", row, ["tickets_unresolved_90d", "tickets_open_now", "tickets_90d"]) \
        == "3 tickets unresolved in the last 90 days, 1 ticket open now"
    none = {"tickets_90d": 0, "tickets_unresolved_90d": 0}
    assert concept_sentence("support", none, ["tickets_90d", "tickets_unresolved_90d"]) \
        == "No support tickets in the last 90 days"                 # one clause, not two
    assert concept_sentence("support", {}, ["detractor_with_open_ticket"]) == "Support friction"
    assert concept_sentence("usage", {"usage_90d_trend": 0.1}, ["usage_90d_trend"]) \
        == "Usage up 10 % over 90 days"
    assert fmt_number(3.0000001) == "3" and fmt_number(-0.01) == "0"
    assert fmt_duration(0.2) == "less than a day"


# --------------------------------------------------------------------------- reason codes

def test_grouping_loses_no_contribution(quick):
    _, spec, booster, rows, contrib = quick
    phi, bias = contrib[:, :-1], contrib[:, -1]
    raw = booster.predict(spec.matrix(rows), raw_score=True)
    np.testing.assert_allclose(phi.sum(axis=1) + bias, raw, atol=1e-6)
    grouped = concept_contributions(contrib, FEATURES)
    np.testing.assert_allclose(grouped.sum(axis=1), phi.sum(axis=1), atol=1e-9)
    for concept in grouped.columns:
        cols = [i for i, f in enumerate(FEATURES) if concept_of(f) == concept]
        np.testing.assert_allclose(grouped[concept], phi[:, cols].sum(axis=1), atol=1e-9)
    # reasons carry the concept sums, strongest first, and only concepts that raise the score
    reasons = reason_codes(contrib, FEATURES, rows, top=len(CONCEPTS))
    for i in range(0, len(rows), 97):
        impacts = [r.impact for r in reasons[i]]
        assert impacts == sorted(impacts, reverse=True) and all(v > 0 for v in impacts)
        for r in reasons[i]:
            assert r.impact == pytest.approx(grouped[r.concept].iloc[i])
            assert r.features and all(concept_of(f) == r.concept for f in r.features)
        positive = grouped.iloc[i]
        assert sum(impacts) == pytest.approx(positive[positive > 1e-9].sum())
    # without the bias column the result is the same; so is a small (online) call
    assert reason_codes(contrib[:50, :-1], FEATURES, rows.iloc[:50]) == reason_codes(
        contrib[:50], FEATURES, rows.iloc[:50])
    assert reason_codes(contrib[:20], FEATURES, rows.iloc[:20], top=len(CONCEPTS)) == reasons[:20]


def test_top_reason_names_the_unresolved_tickets(quick):
    """In the simulated world an unresolved ticket lifts 90-day churn only from about 5 % to
    7 %, too weak for a 100-tree model to be a dependable fixture; so this check trains on a
    label with a known support cause (churned, or had an unresolved ticket) and asks the
    explanation to find it, counted and worded."""
    frame, spec, _, rows, _ = quick
    train = frame.sample(n=8_000, random_state=2)
    y = ((train["churned_within_horizon"] > 0) | (train["tickets_unresolved_90d"] > 0)).to_numpy(int)
    booster = _fit(spec.matrix(train), y, n_estimators=30, max_depth=3, num_leaves=8)
    calm = rows[(rows["tickets_unresolved_90d"] == 0)].head(20).copy()
    for n, words in [(3, "3 tickets unresolved in the last 90 days"),
                     (1, "1 ticket unresolved in the last 90 days")]:
        customers = calm.assign(tickets_unresolved_90d=n)
        contrib = booster.predict(spec.matrix(customers), pred_contrib=True)
        for reasons in reason_codes(contrib, FEATURES, customers):
            top = reasons[0]
            assert top.concept == "support" and top.label == "Support friction"
            assert top.features[0] == "tickets_unresolved_90d"
            assert top.sentence.startswith(words[0]) and words in top.sentence, top.sentence


def test_decrease_gives_protective_reasons(quick):
    _, _, _, rows, contrib = quick
    up = reason_codes(contrib, FEATURES, rows, top=3)
    down = reason_codes(contrib, FEATURES, rows, top=3, direction="decrease")
    grouped = concept_contributions(contrib, FEATURES)
    for i in range(0, len(rows), 50):
        impacts = [r.impact for r in down[i]]
        assert all(v < 0 for v in impacts) and impacts == sorted(impacts)
        assert not {r.concept for r in down[i]} & {r.concept for r in up[i]}
        if down[i]:
            assert down[i][0].impact == pytest.approx(grouped.iloc[i].min())
    # wording follows the value: a customer without tickets is told so when it protects them
    support = [r for rs in down for r in rs if r.concept == "support"]
    assert support and all("nan" not in r.sentence for r in support)
    with pytest.raises(ValueError, match="direction"):
        reason_codes(contrib, FEATURES, rows, direction="up")


def test_single_row_online_is_json_ready(quick):
    _, spec, booster, rows, _ = quick
    one = rows.iloc[[7]]
    contrib = booster.predict(spec.matrix(one), pred_contrib=True)
    assert contrib.shape == (1, len(FEATURES) + 1)
    (reasons,) = reason_codes(contrib, FEATURES, one)
    assert 1 <= len(reasons) <= 3 and all(isinstance(r, Reason) for r in reasons)
    payload = json.loads(json.dumps([asdict(r) for r in reasons]))
    assert set(payload[0]) == {"concept", "label", "impact", "sentence", "features"}
    assert all(isinstance(p["impact"], float) and p["sentence"] for p in payload)
    # the model matrix words the same as the raw frame; a 1-d row works too
    assert reason_codes(contrib[0], FEATURES, spec.matrix(one))[0] == reasons
    with pytest.raises(ValueError):
        reason_codes(contrib[:, :10], FEATURES, one)


def test_reasons_frame_for_batch_writing(quick):
    _, _, _, rows, contrib = quick
    out = reasons_frame(contrib, FEATURES, rows, top=2)
    assert list(out.columns) == ["reason_1", "reason_1_concept", "reason_1_impact",
                                 "reason_2", "reason_2_concept", "reason_2_impact"]
    assert out.index.equals(rows.index)
    codes = reason_codes(contrib, FEATURES, rows, top=2)
    for i in range(0, len(rows), 111):
        for j, r in enumerate(codes[i], start=1):
            assert out[f"reason_{j}"].iloc[i] == r.sentence
            assert out[f"reason_{j}_concept"].iloc[i] == r.concept
        for j in range(len(codes[i]) + 1, 3):
            assert out[f"reason_{j}"].iloc[i] is None and math.isnan(out[f"reason_{j}_impact"].iloc[i])


def test_batch_of_10k_rows_within_seconds(quick):
    frame, *_ = quick
    rows = frame.sample(n=10_000, random_state=3)
    rng = np.random.default_rng(0)
    contrib = rng.normal(0, 0.2, size=(len(rows), len(FEATURES) + 1))
    reason_codes(contrib[:10], FEATURES, rows.iloc[:10])          # warm caches
    start = time.perf_counter()
    reasons = reason_codes(contrib, FEATURES, rows)
    elapsed = time.perf_counter() - start
    assert len(reasons) == 10_000 and all(len(r) <= 3 for r in reasons)
    assert sum(map(len, reasons)) > 0.95 * 30_000
    assert elapsed < 3.0, f"10k rows took {elapsed:.2f} s"
    start = time.perf_counter()
    table = reasons_frame(contrib, FEATURES, rows)
    assert time.perf_counter() - start < 3.0
    texts = pd.concat([table[f"reason_{j}"] for j in (1, 2, 3)])
    assert not texts.str.contains(r"\bnan\b|None|\d\.\d{3,}", regex=True).any()


# --------------------------------------------------------------------------- key drivers

def test_key_drivers_and_figure(quick):
    _, _, _, rows, contrib = quick
    drivers = key_drivers(contrib, FEATURES)
    assert list(drivers.columns) == ["concept", "label", "mean_abs_shap", "share", "direction", "n_features"]
    assert drivers["share"].sum() == pytest.approx(1.0)
    assert drivers["concept"].is_unique
    assert set(drivers["concept"]) == set(CONCEPTS) - {OTHER, "attributes"}   # none in this world
    assert drivers["mean_abs_shap"].is_monotonic_decreasing
    grouped = concept_contributions(contrib, FEATURES)
    top = drivers.iloc[0]
    assert top["mean_abs_shap"] == pytest.approx(grouped[top["concept"]].abs().mean())
    assert top["direction"] == pytest.approx(grouped[top["concept"]].mean())
    assert drivers["n_features"].sum() == len(FEATURES)

    per_feature = feature_importance(contrib, FEATURES)
    assert len(per_feature) == len(FEATURES) and per_feature["share"].sum() == pytest.approx(1.0)
    assert per_feature["mean_abs_shap"].is_monotonic_decreasing
    assert (per_feature["concept"] == per_feature["feature"].map(concept_of)).all()

    fig = driver_figure(drivers, "Churn: key drivers")
    ax = fig.axes[0]
    assert len(ax.patches) == len(drivers)
    assert ax.get_title() == "Churn: key drivers"
    assert [t.get_text() for t in ax.get_yticklabels()] == drivers["label"].tolist()   # top first
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    assert len(driver_figure(drivers, "top 5", top=5).axes[0].patches) == 5


def test_unknown_and_one_hot_columns_group_sensibly():
    names = ["plan_premium", "plan_basic", "tickets_90d", "score_from_elsewhere"]
    frame = pd.DataFrame({"plan": ["premium"], "tickets_90d": [2], "score_from_elsewhere": [1.0]})
    contrib = np.array([[0.3, 0.2, 0.1, 0.4, -1.0]])
    (reasons,) = reason_codes(contrib, names, frame, top=5)
    assert [(r.concept, round(r.impact, 6)) for r in reasons] == [
        ("profile", 0.5), ("other", 0.4), ("support", 0.1)]
    assert [r.sentence for r in reasons] == [
        "Premium plan", "Other factors", "2 tickets in the last 90 days"]
    assert reasons[0].features == ("plan_premium", "plan_basic")
    assert reason_codes(contrib, names, frame, direction="decrease") == [[]]
