"""The fast scoring paths give exactly what the pandas paths gave.

Single-customer scoring encodes features into numpy arrays, predicts through the raw
LightGBM boosters, evaluates eligibility on plain arrays and builds tag causes without
pandas string Series. Each of those is checked here against the earlier pandas code
(kept below as references): bit for bit, on a few hundred rows and on single rows,
including missing, unseen and oddly typed values.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from configs.settings import TagParams, load_settings
from features.services import CHURN_SERVICE
from models import frame as frame_module
from models.bundle import load_champions
from models.churn.model import apply_calibrator
from models.explain import reason_codes
from models.frame import FrameSpec, check_encoding
from models.nps.boosters import with_touchpoint
from models.nps.model import PRED_COLUMNS, class_probabilities, tilt
from models.prescribe import value as value_module
from models.prescribe.actions import catalogue_from_entries, eligibility, load_catalogue
from models.prescribe.tags import (
    _AT_RISK,
    _GROWING,
    _LAPSING,
    _LOYAL,
    _ONBOARDING,
    EVENT_COLUMNS,
    NPS_CLASSES,
    RISK_TIERS,
    STAGES,
    TAG_COLUMNS,
    TAGS,
    _codes,
    _column,
    _labels,
    assign_tags,
    banded_level,
    crossed,
    events_frame,
    nps_score,
    stage_level,
)
from models.prescribe.value import candidate_actions, small_eligibility, value_at_risk
from models.scoring import REASONS_SHOWN, SCORE_COLUMNS, best_actions, best_of, model_inputs, score_customers
from serving.batch_inputs import active_customers, feature_rows, latest_snapshot

SETTINGS = load_settings()


# --------------------------------------------------------------------------- references (pandas)

def pandas_matrix(spec: FrameSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """``FrameSpec.matrix`` as it was: pandas conversions column by column."""
    missing = [c for c in spec.features if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks feature columns {missing}")
    out = {}
    for col in spec.features:
        if col in spec.categories:
            out[col] = pd.Categorical(frame[col].astype("object"), categories=spec.categories[col])
        else:
            out[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return pd.DataFrame(out, index=frame.index)


def _fmt(values, spec):
    return pd.Series(values, dtype=np.float64).map(spec.format).astype(object)


def _risk_causes(p, level, prev, prev_p, params):
    edge = crossed(level, prev, [params.risk_medium, params.risk_high], params.risk_band)
    tier = pd.Series(np.asarray(RISK_TIERS, dtype=object)[np.maximum(level, 0)])
    moved = np.where(level > prev, " rose above ", " fell below ")
    text = "churn probability " + _fmt(p, "{:.2f}") + pd.Series(moved) + _fmt(edge, "{:.2f}") + \
        " (" + tier + " tier)"
    was = pd.Series(np.where(np.isnan(prev_p), "", "; was " + _fmt(prev_p, "{:.2f}").to_numpy()))
    first = "first assignment: churn probability " + _fmt(p, "{:.2f}") + " (" + tier + " tier)"
    return pd.Series(np.where(prev < 0, first, text + was))


def _nps_causes(score, source, level, prev, params):
    edge = crossed(level, prev, [params.nps_detractor_below, params.nps_promoter_from], params.nps_band)
    cls = pd.Series(np.asarray(NPS_CLASSES, dtype=object)[np.maximum(level, 0)])
    answered = pd.Series(source).to_numpy() == "answered"
    head = pd.Series(np.where(answered, "NPS answer " + _fmt(score, "{:.0f}"),
                              "predicted NPS " + _fmt(score, "{:.1f}")))
    moved = pd.Series(np.where(level > prev, " rose above ", " fell below "))
    first = "first assignment: " + head + " (" + cls + ")"
    return pd.Series(np.where(prev < 0, first, head + moved + _fmt(edge, "{:.1f}") + " (" + cls + ")"))


def _stage_causes(frame, level, prev, p, params):
    ratio = _column(frame, "usage_drop_ratio", len(frame))
    days = _fmt(_column(frame, "tenure_days", len(frame)), "{:.0f}")
    pct = _fmt(100 * ratio, "{:.0f}")
    limit = np.where(prev < 0, params.lapsing_usage_ratio, params.lapsing_usage_ratio - params.usage_band)
    reasons = {
        _LAPSING: "last month's usage at " + pct + " % of its recent peak (under "
                  + _fmt(100 * limit, "{:.0f}") + " %)",
        _AT_RISK: "churn probability " + _fmt(p, "{:.2f}") + " in the high tier",
        _ONBOARDING: "customer for " + days + f" days (under {params.onboarding_days})",
        _LOYAL: "customer for " + days + f" days (from {params.loyal_days}), no risk signs",
        _GROWING: "customer for " + days + " days, no risk signs",
    }
    text = pd.Series(np.select([level == k for k in reasons], [r.to_numpy() for r in reasons.values()],
                               ""), dtype=object)
    recovered = (prev == _LAPSING) & (level != _LAPSING)
    text = pd.Series(np.where(recovered, "usage recovered to " + pct + " % of its recent peak; " + text,
                              text))
    return pd.Series(np.where(prev < 0, "first assignment: " + text, text))


def _previous_p(previous, ids):
    if previous is None or "p_churn" not in previous.columns:
        return np.full(len(ids), np.nan)
    return pd.to_numeric(previous.set_index("customer_id")["p_churn"].reindex(ids.to_numpy()),
                         errors="coerce").to_numpy(np.float64)


def pandas_assign_tags(current, previous, params, as_of, run_id):
    """``assign_tags`` as it was: causes as pandas string Series, one events frame per tag."""
    ids = current["customer_id"].reset_index(drop=True)
    frame = current.reset_index(drop=True)
    n = len(frame)
    p = _column(frame, "p_churn", n)
    prev_risk = _codes(previous, ids, "churn_risk_tier")
    risk = banded_level(p, [params.risk_medium, params.risk_high], params.risk_band, prev_risk)
    score, source = nps_score(frame, params)
    prev_nps = _codes(previous, ids, "nps_class")
    nps = banded_level(score, [params.nps_detractor_below, params.nps_promoter_from], params.nps_band,
                       prev_nps)
    prev_stage = _codes(previous, ids, "relationship_stage")
    stage = stage_level(frame, risk, prev_stage, params)
    tags = pd.DataFrame({
        "customer_id": ids, "relationship_stage": _labels(stage, STAGES),
        "churn_risk_tier": _labels(risk, RISK_TIERS), "nps_class": _labels(nps, NPS_CLASSES),
        "p_churn": p, "nps_score": score, "nps_source": source,
        "usage_drop_ratio": _column(frame, "usage_drop_ratio", n),
        "tenure_days": _column(frame, "tenure_days", n),
    }, columns=TAG_COLUMNS)
    changes = [
        ("relationship_stage", stage, prev_stage,
         lambda m: _stage_causes(frame[m].reset_index(drop=True), stage[m], prev_stage[m], p[m], params)),
        ("churn_risk_tier", risk, prev_risk,
         lambda m: _risk_causes(p[m], risk[m], prev_risk[m], _previous_p(previous, ids[m]), params)),
        ("nps_class", nps, prev_nps, lambda m: _nps_causes(score[m], source[m], nps[m], prev_nps[m], params)),
    ]
    events = []
    for tag, new, old, cause in changes:
        m = (new != old) & (new >= 0)
        if m.any():
            events.append(events_frame(ids[m].to_numpy(), [tag] * int(m.sum()), _labels(old[m], TAGS[tag]),
                                       _labels(new[m], TAGS[tag]), as_of, run_id,
                                       cause(m).to_numpy(dtype=object)))
    if not events:
        return tags, events_frame([], [], [], [], as_of, run_id, [])
    return tags, pd.concat(events, ignore_index=True)


def pandas_value_at_risk(features, params):
    charge = pd.to_numeric(features["monthly_charge"], errors="coerce").fillna(0.0).clip(lower=0.0)
    return (params.margin_rate * params.value_months * charge).rename("value_at_risk")


def assert_same_frame(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal values, dtypes and index, and the same Python objects in object columns
    (``None`` and ``NaN`` told apart)."""
    pd.testing.assert_frame_equal(left, right, check_exact=True)
    for col in left.columns:
        if left[col].dtype == object:
            assert [repr(v) for v in left[col]] == [repr(v) for v in right[col]], col


# --------------------------------------------------------------------------- encoding (no models needed)

CATS = {"plan": ["basic", "premium", "standard"], "region": ["north", "south"]}
FEATURES = ["tenure_days", "plan", "monthly_charge", "region", "tickets_90d"]


def odd_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Features with the values that trip encoders: NaN, None, unseen and non-string labels,
    numbers stored as objects (with None and unparsable text), ints, an unused column."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(np.array(["basic", "premium", "standard", "gold", None, np.nan], dtype=object), n)
    region = rng.choice(np.array(["north", "south", 3, None], dtype=object), n)
    charge = rng.uniform(-5, 80, n).astype(object)
    charge[rng.random(n) < 0.2] = None
    charge[rng.random(n) < 0.1] = "12.5"
    charge[rng.random(n) < 0.05] = "n/a"
    tenure = rng.integers(0, 3000, n)
    tickets = rng.integers(0, 4, n).astype(np.float64)
    tickets[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "tenure_days": tenure, "plan": plan,
                         "monthly_charge": charge, "region": region, "tickets_90d": tickets,
                         "unused": rng.random(n)}, index=np.arange(n) * 3 + 7)


@pytest.fixture(scope="module")
def tiny_booster():
    """A small LightGBM model trained on the pandas matrix, categoricals included."""
    spec = FrameSpec(FEATURES, CATS)
    frame = odd_frame(600, seed=1)
    x = pandas_matrix(spec, frame)
    y = ((x["tenure_days"] < 800) ^ (x["plan"] == "premium")).to_numpy(float)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, min_child_samples=5, n_jobs=1, verbose=-1,
                               random_state=0, deterministic=True, force_row_wise=True)
    return spec, model.fit(x, y)


@pytest.mark.parametrize("rows", [1, 3, 64, 65, 400])
def test_matrix_and_array_equal_the_pandas_encoding(rows):
    spec = FrameSpec(FEATURES, CATS)
    frame = odd_frame(rows, seed=rows)
    reference = pandas_matrix(spec, frame)
    pd.testing.assert_frame_equal(spec.matrix(frame), reference, check_exact=True)
    x = spec.array(frame)
    for j, col in enumerate(FEATURES):
        if col in CATS:
            codes = reference[col].cat.codes.to_numpy(np.float64)
            expected = np.where(codes < 0, np.nan, codes)
        else:
            expected = reference[col].to_numpy()
        np.testing.assert_array_equal(x[:, j], expected, err_msg=col)


def test_extension_and_categorical_dtypes_encode_like_pandas():
    spec = FrameSpec(FEATURES, CATS)
    frame = odd_frame(5, seed=3).assign(
        tenure_days=pd.array([1, None, 3, 4, 5], dtype="Int64"),
        plan=pd.Series(["basic", None, "gold", "premium", "basic"], dtype="string"),
        region=pd.Categorical(["south", "north", None, "west", "south"]),
        tickets_90d=[True, False, True, True, False],
        monthly_charge=pd.array([1.5, None, 2.0, 3.0, 4.0], dtype="Float64"))
    reference = pandas_matrix(spec, frame)
    for rows in (frame, frame.iloc[[2]], pd.concat([frame] * 20)):
        pd.testing.assert_frame_equal(spec.matrix(rows), pandas_matrix(spec, rows), check_exact=True)
    np.testing.assert_array_equal(spec.array(frame)[:, 0], reference["tenure_days"].to_numpy())


def test_a_missing_column_is_named_unless_filled():
    spec = FrameSpec([*FEATURES, "touchpoint"], {**CATS, "touchpoint": ["email", "relationship"]})
    frame = odd_frame(4)
    with pytest.raises(KeyError, match="touchpoint"):
        spec.array(frame)
    filled = spec.array(frame, fill={"touchpoint": "relationship"})
    reference = pandas_matrix(spec, frame.assign(touchpoint="relationship"))
    assert (filled[:, -1] == 1).all()
    pd.testing.assert_frame_equal(spec.matrix(frame, fill={"touchpoint": "relationship"}), reference)
    big = odd_frame(100)
    pd.testing.assert_frame_equal(spec.matrix(big, fill={"touchpoint": "relationship"}),
                                  pandas_matrix(spec, big.assign(touchpoint="relationship")))


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_booster_predicts_the_same_from_the_array_as_from_the_frame(tiny_booster, rows):
    spec, model = tiny_booster
    frame = odd_frame(rows, seed=10 + rows)
    x = spec.array(frame)
    reference = pandas_matrix(spec, frame)
    np.testing.assert_array_equal(model.booster_.predict(x, raw_score=True, num_threads=1),
                                  model.predict(reference, raw_score=True))
    np.testing.assert_array_equal(model.booster_.predict(x, pred_contrib=True, num_threads=1),
                                  model.predict(reference, pred_contrib=True))


def test_arrays_of_other_categories_are_refused(tiny_booster):
    spec, model = tiny_booster
    check_encoding(spec, model)
    other = FrameSpec(FEATURES, {**CATS, "plan": ["basic", "standard", "premium"]})
    with pytest.raises(ValueError, match="pandas_categorical"):
        check_encoding(other, model)


def test_joint_spec_shares_columns_and_refuses_conflicting_categories():
    a = FrameSpec(["tenure_days", "plan", "region"], CATS)
    b = FrameSpec(["plan", "tickets_90d", "touchpoint"], {"plan": CATS["plan"], "touchpoint": ["x", "y"]})
    c = FrameSpec(["region"], {"region": ["south", "north"]})
    joint = FrameSpec.joint([a, b, c])
    assert joint.features == ["tenure_days", "plan", "region", "tickets_90d", "touchpoint"]
    frame = odd_frame(9).assign(touchpoint="y")
    x = joint.array(frame)
    np.testing.assert_array_equal(joint.take(x, a), a.array(frame))
    np.testing.assert_array_equal(joint.take(x, b), b.array(frame))
    assert joint.take(x, c) is None and joint.positions(FrameSpec(["nope"])) is None


def test_small_frames_use_the_value_by_value_path(monkeypatch):
    spec = FrameSpec(FEATURES, CATS)
    frame = odd_frame(12, seed=4)
    fast = spec.array(frame)
    monkeypatch.setattr(frame_module, "SMALL", 0)
    np.testing.assert_array_equal(fast, spec.array(frame))


# --------------------------------------------------------------------------- eligibility, value, best action

def rule_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tickets = rng.integers(0, 3, n).astype(object)
    tickets[rng.random(n) < 0.2] = None
    tickets[rng.random(n) < 0.1] = "2"
    trend = rng.normal(-0.1, 0.2, n)
    trend[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "tickets_90d": tickets, "complaints_90d": rng.integers(0, 2, n),
        "failed_orders_90d": rng.integers(0, 2, n).astype(float),
        "discount_90d": rng.choice([0.0, 5.0, np.nan], n),
        "plan": rng.choice(np.array(["basic", "premium", None, np.nan, 4], dtype=object), n),
        "technical_tickets_90d": rng.integers(0, 2, n), "outage_tickets_90d": rng.integers(0, 2, n),
        "usage_30d_trend": trend,
        "contract": rng.choice(np.array(["monthly", "annual", None], dtype=object), n),
        "monthly_charge": rng.choice(np.array([25.0, -3.0, None, "40"], dtype=object), n),
    })


def _action(action_id: str, rules: list[str]) -> dict:
    return {"id": action_id, "label": action_id, "channel": "sms", "cost": 1, "handling_minutes": 1,
            "eligible_if": rules, "addresses": ["support"]}


EXTRA = catalogue_from_entries([
    _action("a_in", ["contract in ['monthly', 'annual']", "tickets_90d not in [0]"]),
    _action("b_eq", ["plan == 'basic' or usage_30d_trend < 0", "complaints_90d != 1"]),
    _action("c_open", []),
])


@pytest.mark.parametrize("rows", [1, 5, 64])
@pytest.mark.parametrize("catalogue", [load_catalogue(SETTINGS.prescribe.actions_file), EXTRA],
                         ids=["shipped", "extra"])
def test_small_eligibility_equals_the_pandas_rules(rows, catalogue):
    for seed in range(5):
        frame = rule_frame(rows, seed)
        np.testing.assert_array_equal(small_eligibility(catalogue, frame),
                                      eligibility(catalogue, frame).to_numpy())


def test_small_eligibility_names_a_missing_rule_column():
    catalogue = load_catalogue(SETTINGS.prescribe.actions_file)
    with pytest.raises(ValueError, match="plan"):
        small_eligibility(catalogue, rule_frame(2).drop(columns="plan"))


def test_value_at_risk_equals_the_pandas_arithmetic():
    frame = rule_frame(50, 2)
    pd.testing.assert_series_equal(value_at_risk(frame, SETTINGS.prescribe),
                                   pandas_value_at_risk(frame, SETTINGS.prescribe), check_exact=True)


def test_best_of_equals_best_actions_including_ties_and_missing_values():
    rng = np.random.default_rng(5)
    n, ids = 300, ["a", "b", "c", "d"]
    value = rng.choice([-5.0, 0.0, 3.0, 7.0, np.nan], (n, len(ids)))     # many ties
    eligible = rng.random((n, len(ids))) < 0.7
    candidates = pd.DataFrame({
        "customer_id": np.repeat([f"c{i:03d}" for i in rng.permutation(n)], len(ids)),
        "action_id": pd.Categorical.from_codes(np.tile(np.arange(len(ids)), n), categories=ids),
        "expected_value": value.ravel(), "eligible": eligible.ravel()})
    for min_value in (-1.0, 0.0, 4.0):
        best = best_actions(candidates, min_value)
        action, ev = best_of(value, eligible, ids, min_value)
        customer = pd.Series(candidates["customer_id"].to_numpy()[::len(ids)])
        expected_action = customer.map(best["action_id"]).astype(object)
        assert [repr(v) for v in expected_action] == [repr(v) for v in action]
        np.testing.assert_array_equal(customer.map(best["expected_value"]).to_numpy(), ev)


# --------------------------------------------------------------------------- tags

P = TagParams(risk_medium=0.08, risk_high=0.20, risk_band=0.02, nps_detractor_below=6.5,
              nps_promoter_from=8.5, nps_band=0.3, observed_nps_days=90, onboarding_days=90,
              loyal_days=730, lapsing_usage_ratio=0.5, usage_band=0.05)


def tag_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "p_churn": rng.choice([0.01, 0.07, 0.09, 0.19, 0.21, 0.5, np.nan], n),
        "nps_pred": rng.choice([3.0, 6.4, 6.6, 8.4, 8.6, 9.9, np.nan], n),
        "last_nps": rng.choice([np.nan, 2.0, 7.0, 10.0], n),
        "days_since_last_survey_answer": rng.choice([np.nan, 10.0, 200.0], n),
        "tenure_days": rng.choice([10, 100, 800, np.nan], n),
        "usage_drop_ratio": rng.choice([0.2, 0.47, 0.52, 0.9, np.nan], n),
    }, index=np.arange(n) + 100)


@pytest.mark.parametrize("rows", [1, 4, 300])
def test_tags_and_events_equal_the_pandas_implementation(rows):
    day = pd.Timestamp("2026-02-01", tz="UTC")
    for seed in range(4):
        first = tag_frame(rows, seed)
        for previous in (None, pandas_assign_tags(tag_frame(rows, seed + 50), None, P, day, "r0")[0]):
            new = assign_tags(first, previous, P, day, "r1")
            old = pandas_assign_tags(first, previous, P, day, "r1")
            assert_same_frame(new[0], old[0])
            assert_same_frame(new[1], old[1])
            assert list(new[1].columns) == EVENT_COLUMNS


def test_unchanged_tags_give_the_same_empty_events_frame():
    day = pd.Timestamp("2026-02-01")
    current = tag_frame(3, 1)
    tags, _ = assign_tags(current, None, P, day, "r0")
    new, old = assign_tags(current, tags, P, day, "r1"), pandas_assign_tags(current, tags, P, day, "r1")
    assert new[1].empty
    assert_same_frame(new[1], old[1])


def test_candidates_of_small_and_large_frames_agree(monkeypatch):
    catalogue = load_catalogue(SETTINGS.prescribe.actions_file)
    frame = rule_frame(40, 9).assign(rep_id="R1", p_churn=np.linspace(0, 0.5, 40), value_at_risk=100.0)
    effects = pd.DataFrame(np.linspace(-0.2, 0.1, 40 * len(catalogue)).reshape(40, -1), columns=catalogue.ids)
    small = candidate_actions(frame, effects, catalogue)
    monkeypatch.setattr(value_module, "SMALL", 0)
    assert_same_frame(small, candidate_actions(frame, effects, catalogue))


# --------------------------------------------------------------------------- trained models (slow)

def pandas_raw_score(churn, frame):
    return churn.booster.predict(pandas_matrix(churn.spec, frame), raw_score=True,
                                 num_iteration=churn.best_iteration)


def pandas_contributions(churn, frame):
    return churn.booster.predict(pandas_matrix(churn.spec, frame), pred_contrib=True,
                                 num_iteration=churn.best_iteration)


def pandas_nps_predict(nps, frame):
    x = pandas_matrix(nps.spec, with_touchpoint(frame))
    p1 = nps.distribution.predict(x)
    probs = class_probabilities(tilt(p1, nps.gamma(False)))
    score = nps.score.predict(x) - nps._shift(p1, False)
    return pd.DataFrame(np.column_stack([score, probs]), columns=PRED_COLUMNS, index=frame.index)


def pandas_reasons_json(bundle, features):
    if features.empty:
        return []
    rows = reason_codes(pandas_contributions(bundle.churn, features), list(bundle.churn.spec.features),
                        features, top=REASONS_SHOWN)
    return [json.dumps([{"concept": r.concept, "label": r.label, "sentence": r.sentence,
                         "impact": round(float(r.impact), 4)} for r in reasons]) for reasons in rows]


def pandas_score_customers(features, bundle, settings, as_of, explain=True, previous_tags=None):
    """``score_customers`` as it was: pandas model matrices, pandas eligibility and tags."""
    frame = features.reset_index(drop=True)
    n = len(frame)
    p_churn = apply_calibrator(bundle.churn.calibrator, pandas_raw_score(bundle.churn, frame))
    nps = pandas_nps_predict(bundle.nps, frame).reset_index(drop=True)
    rep = frame["rep_id"] if "rep_id" in frame else pd.Series([None] * n, dtype=object)
    customers = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(), "rep_id": rep.to_numpy(),
        "churn_probability": p_churn,
        "predicted_nps": nps["nps_pred"].to_numpy(), "p_detractor": nps["p_detractor"].to_numpy(),
        "p_passive": nps["p_passive"].to_numpy(), "p_promoter": nps["p_promoter"].to_numpy(),
        "last_nps": pd.to_numeric(frame["last_nps"], errors="coerce").to_numpy(np.float64),
        "value_at_risk": pandas_value_at_risk(frame, settings.prescribe).to_numpy()})
    effects = bundle.uplift.effects(frame)
    basis = frame.assign(rep_id=rep.to_numpy(), p_churn=p_churn,
                         value_at_risk=customers["value_at_risk"].to_numpy())
    candidates = candidate_actions(basis, effects, bundle.catalogue)
    best = best_actions(candidates, settings.prescribe.min_expected_value)
    customers["recommended_action"] = customers["customer_id"].map(best["action_id"]).astype(object)
    customers["expected_value"] = customers["customer_id"].map(best["expected_value"])
    tag_input = pd.DataFrame({
        "customer_id": customers["customer_id"], "p_churn": p_churn, "nps_pred": customers["predicted_nps"],
        "last_nps": customers["last_nps"], "tenure_days": frame["tenure_days"],
        "usage_drop_ratio": frame["usage_drop_ratio"],
        "days_since_last_survey_answer": frame["days_since_last_survey_answer"]})
    tags, events = pandas_assign_tags(tag_input, previous_tags, settings.tags, as_of, "adhoc")
    for col in ("relationship_stage", "churn_risk_tier", "nps_class"):
        customers[col] = tags[col].to_numpy()
    mask = np.full(n, bool(explain)) if np.ndim(explain) == 0 else np.asarray(explain, bool)
    customers["reasons"] = None
    if mask.any():
        customers.loc[mask, "reasons"] = pandas_reasons_json(bundle, frame[mask])
    return customers[SCORE_COLUMNS], candidates, tags, events


@contextmanager
def pandas_paths():
    """Inside: FrameSpec.matrix is the pandas reference and eligibility runs through pandas,
    so the uplift models and the candidates take the earlier paths."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(FrameSpec, "matrix", lambda self, frame, fill=None: pandas_matrix(self, frame))
        m.setattr(value_module, "SMALL", 0)
        yield


@pytest.fixture(scope="module")
def scoring_case(trained_world):
    settings = trained_world.settings
    as_of = latest_snapshot(settings)
    features = feature_rows(settings, active_customers(settings.clean_dir, as_of), as_of, CHURN_SERVICE)
    return settings, load_champions(settings), as_of, features.iloc[:300].reset_index(drop=True)


def feature_sets(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A few hundred rows, single rows, and a service-style row (a dict with nulls, no rep)."""
    row = features.drop(columns="rep_id").iloc[5].to_dict()
    row.update(monthly_charge=None, tickets_90d=None, plan=None, region="nowhere")
    return {"batch": features, **{f"row{i}": features.iloc[[i]] for i in (0, 17, 123, 299)},
            "dict_row": pd.DataFrame([row], columns=list(row))}


@pytest.mark.slow
def test_model_predictions_equal_the_pandas_paths(scoring_case):
    _, bundle, _, features = scoring_case
    for name, frame in feature_sets(features).items():
        with pandas_paths():
            effects = bundle.uplift.effects(frame)
        np.testing.assert_array_equal(bundle.churn.raw_score(frame), pandas_raw_score(bundle.churn, frame),
                                      name)
        np.testing.assert_array_equal(bundle.churn.contributions(frame),
                                      pandas_contributions(bundle.churn, frame), name)
        assert_same_frame(bundle.nps.predict(frame), pandas_nps_predict(bundle.nps, frame))
        assert_same_frame(bundle.uplift.effects(frame), effects)
        x_churn, x_nps = model_inputs(frame.reset_index(drop=True), bundle)
        np.testing.assert_array_equal(x_churn, bundle.churn.encode(frame), name)
        np.testing.assert_array_equal(x_nps, bundle.nps.encode(frame), name)


@pytest.mark.slow
def test_score_customers_equals_the_pandas_paths(scoring_case):
    settings, bundle, as_of, features = scoring_case
    first = score_customers(features, bundle, settings, as_of)
    previous = first.tags.assign(p_churn=first.tags["p_churn"] * 1.5)
    explain = np.arange(len(features)) % 7 == 0
    runs = [(name, frame, {}) for name, frame in feature_sets(features).items()]
    runs += [("masked", features, {"explain": explain, "previous_tags": previous}),
             ("no_reasons", features, {"explain": False}),
             ("row_with_previous", features.iloc[[17]], {"previous_tags": previous})]
    for name, frame, kw in runs:
        with pandas_paths():
            expected = pandas_score_customers(frame, bundle, settings, as_of, **kw)
        got = score_customers(frame, bundle, settings, as_of, **kw)
        for part, left, right in zip(("customers", "candidates", "tags", "events"), expected,
                                     (got.customers, got.candidates, got.tags, got.tag_events), strict=True):
            try:
                assert_same_frame(right, left)
            except AssertionError as err:
                raise AssertionError(f"{name}: {part}: {err}") from err
    assert first.customers["recommended_action"].notna().any() and first.tag_events["cause"].notna().all()
