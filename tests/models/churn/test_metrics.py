"""Churn metrics against values computed by hand on toy arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.churn.metrics import (
    calibration_bins,
    classification_metrics,
    expected_calibration_error,
    lift_table,
)


def test_ece_is_zero_when_each_bin_matches_its_rate():
    # bin [0.2, 0.3): 1 of 4 churn at p = 0.25; bin [0.7, 0.8): 3 of 4 churn at p = 0.75
    y = [1, 0, 0, 0, 1, 1, 1, 0]
    p = [0.25] * 4 + [0.75] * 4
    assert expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_known_miscalibration():
    # 4 rows at 0.2 that all churn: |1 - 0.2| = 0.8, weight 0.4
    # 6 rows at 0.7, half churn:     |0.5 - 0.7| = 0.2, weight 0.6  -> 0.32 + 0.12
    y = [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    p = [0.2] * 4 + [0.7] * 6
    assert expected_calibration_error(y, p) == pytest.approx(0.44)


def test_ece_bins_are_equal_width_and_include_both_ends():
    table = calibration_bins([0, 1, 1], [0.0, 0.95, 1.0], bins=10)
    assert table["bin"].tolist() == [0, 9]          # p = 1 goes to the last bin
    assert table["n"].tolist() == [1, 2]
    # two bins: [0, 0.5) holds 0.0 and 0.45, [0.5, 1] holds 0.55: ECE = (2 * 0.225 + 0.45) / 3
    y, p = [0, 0, 1], [0.0, 0.45, 0.55]
    assert expected_calibration_error(y, p, bins=2) == pytest.approx((2 * 0.225 + 0.45) / 3)


def test_lift_table_on_a_toy_ranking():
    y = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]            # 3 churners, base rate 0.3
    p = np.linspace(0.9, 0.0, 10)                  # already ranked riskiest first
    table = lift_table(y, p, groups=5)
    assert table["n"].tolist() == [2] * 5
    assert table["share_customers"].tolist() == pytest.approx([0.2] * 5)
    assert table["churn_rate"].tolist() == pytest.approx([1.0, 0.5, 0, 0, 0])
    assert table["lift"].tolist() == pytest.approx([1 / 0.3, 0.5 / 0.3, 0, 0, 0])
    assert table["cumulative_capture"].tolist() == pytest.approx([2 / 3, 1, 1, 1, 1])
    assert table["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_lift_table_ranks_by_score_not_by_row_order():
    y = [0, 0, 1, 0]
    p = [0.1, 0.2, 0.9, 0.3]
    table = lift_table(y, p, groups=4)
    assert table["churners"].tolist() == [1, 0, 0, 0]
    assert table["lift"].iloc[0] == pytest.approx(4.0)


def test_classification_metrics_agree_with_scikit_learn_and_the_lift_table():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < p).astype(int)   # calibrated by construction
    m = classification_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert m["ece"] < 0.05
    top = lift_table(y, p).iloc[0]
    assert m["lift_top_decile"] == pytest.approx(top["lift"])
    assert m["capture_top_decile"] == pytest.approx(top["cumulative_capture"])
    assert m["base_rate"] == pytest.approx(y.mean())
    assert m["n"] == 2000


def test_auc_is_nan_with_a_single_class_and_the_rest_still_computes():
    m = classification_metrics([0, 0, 0], [0.1, 0.2, 0.0])
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert m["brier"] == pytest.approx((0.01 + 0.04) / 3)


@pytest.mark.parametrize("y, p, message", [
    ([0, 1], [0.5], "differ in length"),
    ([0, 2], [0.5, 0.5], "0/1"),
    ([0, 1], [0.5, np.nan], "NaN"),
    ([], [], "no rows"),
])
def test_bad_inputs_are_refused(y, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, p)
