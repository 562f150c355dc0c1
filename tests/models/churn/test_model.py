"""Out-of-time split, churn model and its figures, on toy frames and the small model world."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from models.churn.model import LABEL, ChurnResult, train_churn
from models.churn.plots import calibration_figure, lift_figure, roc_figure
from models.frame import KEYS, feature_kinds
from models.split import customer_parts, out_of_time_split, snapshot_dates

HORIZON = 90


def monthly_frame(months: int, customers: int = 3) -> pd.DataFrame:
    """``customers`` rows on each of ``months`` monthly snapshots from 2024-01-01."""
    dates = pd.date_range("2024-01-01", periods=months, freq="MS", tz="UTC")
    return pd.DataFrame({"customer_id": np.tile([f"c{i}" for i in range(customers)], months),
                         "event_timestamp": np.repeat(dates, customers),
                         LABEL: 0})


def test_split_purges_every_training_label_window_out_of_validation():
    frame = monthly_frame(20)
    train, valid = out_of_time_split(frame, valid_share=0.25, horizon_days=HORIZON)
    first_valid = valid["event_timestamp"].min()
    assert len(snapshot_dates(valid)) == 5                         # ceil(0.25 * 20)
    assert (train["event_timestamp"] + pd.Timedelta(days=HORIZON) < first_valid).all()
    # 2025-04-01 opens validation: Jan 1 + 90 d = Apr 1 is purged, Dec 1 2024 is kept
    assert train["event_timestamp"].max() == pd.Timestamp("2024-12-01", tz="UTC")
    assert len(snapshot_dates(train)) == 12 and not valid.empty
    assert set(train.index).isdisjoint(valid.index)


def test_split_refuses_when_the_purge_leaves_no_training_snapshot():
    with pytest.raises(ValueError, match="no training snapshot left.*90-day label horizon"):
        out_of_time_split(monthly_frame(3), valid_share=0.25, horizon_days=HORIZON)
    with pytest.raises(ValueError, match="at least 2 snapshot dates"):
        out_of_time_split(monthly_frame(1), valid_share=0.25, horizon_days=HORIZON)


def test_customer_parts_put_each_customer_in_exactly_one_part():
    frame = monthly_frame(6, customers=40)
    parts = customer_parts(frame, (0.7, 0.15, 0.15), seed=3)
    ids = [set(p["customer_id"]) for p in parts]
    assert [len(i) for i in ids] == [28, 6, 6]
    assert set.union(*ids) == set(frame["customer_id"]) and sum(map(len, parts)) == len(frame)
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2])
    assert [set(p["customer_id"]) for p in customer_parts(frame, (0.7, 0.15, 0.15), seed=3)] == ids


def test_identifiers_and_the_label_are_never_features(model_world):
    features = [*churn_features(model_world.churn), "customer_id"]
    with pytest.raises(ValueError, match="customer_id"):
        train_churn(model_world.churn, features, model_world.settings.train, HORIZON)


def churn_features(frame: pd.DataFrame) -> list[str]:
    return [c for c in feature_kinds() if c in frame.columns]


@pytest.fixture(scope="module")
def churn(model_world) -> ChurnResult:
    s = model_world.settings
    return train_churn(model_world.churn, churn_features(model_world.churn), s.train,
                       s.features.churn_horizon_days)


@pytest.fixture(scope="module")
def valid_rows(model_world, churn) -> pd.DataFrame:
    frame = model_world.churn
    return frame[frame["event_timestamp"] >= pd.Timestamp(churn.split["valid"]["first"], tz="UTC")]


def test_the_real_split_is_out_of_time_and_purged(churn):
    first_valid = pd.Timestamp(churn.split["valid"]["first"])
    for part in ("fit", "stop", "calib"):
        last = pd.Timestamp(churn.split[part]["last"])
        assert last + pd.Timedelta(days=HORIZON) < first_valid
    assert churn.metrics["lightgbm"]["n"] == churn.split["valid"]["rows"] > 0


def test_lightgbm_beats_the_logistic_baseline(churn):
    lgbm, base = churn.metrics["lightgbm"], churn.metrics["baseline"]
    print(f"\nvalidation ROC AUC: lightgbm {lgbm['roc_auc']:.4f}, baseline {base['roc_auc']:.4f}; "
          f"PR AUC {lgbm['pr_auc']:.4f} vs {base['pr_auc']:.4f}; best iteration {churn.best_iteration}")
    assert lgbm["roc_auc"] > base["roc_auc"]
    assert set(lgbm) == set(base) >= {"roc_auc", "pr_auc", "brier", "log_loss", "ece",
                                      "lift_top_decile", "capture_top_decile", "base_rate", "n"}


def test_calibrated_probabilities_are_calibrated_out_of_time(churn, model_world):
    print(f"\nvalidation ECE: lightgbm {churn.metrics['lightgbm']['ece']:.4f}, "
          f"baseline {churn.metrics['baseline']['ece']:.4f}")
    assert churn.metrics["lightgbm"]["ece"] <= 0.03
    p = churn.model.predict(model_world.churn)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    base = churn.baseline.predict(model_world.churn)
    assert ((base >= 0) & (base <= 1)).all()


def test_contributions_sum_to_the_raw_log_odds(churn, valid_rows):
    rows = valid_rows.head(500)
    contrib = churn.model.contributions(rows)
    assert contrib.shape == (len(rows), len(churn.model.spec.features) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), churn.model.raw_score(rows), atol=1e-8)


def test_same_seed_gives_the_same_predictions_whatever_the_row_order(churn, model_world, valid_rows):
    s = model_world.settings
    shuffled = model_world.churn.sample(frac=1.0, random_state=5)
    again = train_churn(shuffled, churn_features(shuffled), s.train, s.features.churn_horizon_days)
    assert again.best_iteration == churn.best_iteration
    np.testing.assert_array_equal(again.model.predict(valid_rows), churn.model.predict(valid_rows))
    np.testing.assert_array_equal(again.baseline.predict(valid_rows), churn.baseline.predict(valid_rows))


def test_a_missing_feature_column_is_named(churn, valid_rows):
    with pytest.raises(KeyError, match="tickets_unresolved_90d"):
        churn.model.predict(valid_rows.drop(columns="tickets_unresolved_90d"))
    with pytest.raises(KeyError, match="tickets_unresolved_90d"):
        churn.baseline.predict(valid_rows.drop(columns="tickets_unresolved_90d"))


def test_worse_experience_does_not_lower_churn_risk_on_average(churn, valid_rows):
    before = churn.model.predict(valid_rows).mean()
    unresolved = valid_rows.assign(tickets_unresolved_90d=valid_rows["tickets_unresolved_90d"] + 2)
    dropping = valid_rows.assign(usage_drop_ratio=valid_rows["usage_drop_ratio"] * 0.5)
    after_tickets = churn.model.predict(unresolved).mean()
    after_usage = churn.model.predict(dropping).mean()
    print(f"\nmean P(churn) {before:.4f}; +2 unresolved tickets {after_tickets:.4f}; "
          f"usage halved {after_usage:.4f}")
    assert after_tickets >= before and after_usage > before


def test_no_identifier_reaches_the_models(churn):
    assert not set(churn.model.spec.features) & {*KEYS, LABEL}
    assert churn.model.booster.n_features_in_ == len(churn.model.spec.features)


def test_report_figures_build_without_a_display(churn):
    for build in (roc_figure, calibration_figure, lift_figure):
        fig = build(churn.predictions)
        assert isinstance(fig, Figure)
        assert len(fig.axes[0].lines) == len(churn.predictions) + 1   # models + reference line


def test_models_survive_pickling(churn, valid_rows):
    model, baseline = pickle.loads(pickle.dumps((churn.model, churn.baseline)))
    np.testing.assert_array_equal(model.predict(valid_rows), churn.model.predict(valid_rows))
    np.testing.assert_array_equal(baseline.predict(valid_rows), churn.baseline.predict(valid_rows))
