"""Uplift metrics on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.uplift.metrics import (
    auuc,
    perfect_score,
    qini_area,
    qini_curve,
    qini_normalized,
    uplift_at_k,
    uplift_metrics,
)

# Four customers, ranked a > b > c > d:
#   a treated responded, b control no response, c treated no response, d control responded.
Y = np.array([1, 0, 0, 1])
T = np.array([1, 0, 1, 0])
S = np.array([4.0, 3.0, 2.0, 1.0])


def test_qini_curve_by_hand():
    # n=1: Y_T=1, no control yet -> Q=1; n=2: 1 - 0*1/1 = 1; n=3: 1 - 0*2/1 = 1;
    # n=4: 1 - 1*2/2 = 0. Divided by N=4.
    curve = qini_curve(Y, T, S)
    np.testing.assert_allclose(curve["share"], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve["qini"], [0, 0.25, 0.25, 0.25, 0.0])
    # uplift curve: n=1,2 undefined/0 until both groups exist: n=2: (1/1 - 0/1)*2 = 2;
    # n=3: (1/2 - 0/1)*3 = 1.5; n=4: (1/2 - 1/2)*4 = 0; divided by 4.
    np.testing.assert_allclose(curve["uplift"], [0, 0, 0.5, 0.375, 0.0])


def test_qini_area_by_hand():
    # trapezoids of [0, .25, .25, .25, 0] on steps of .25: .03125 + .0625 + .0625 + .03125;
    # the random line ends at 0, so nothing is subtracted.
    assert qini_area(Y, T, S) == pytest.approx(0.1875)
    # uplift curve [0, 0, .5, .375, 0]: 0 + .0625 + .109375 + .046875
    assert auuc(Y, T, S) == pytest.approx(0.21875)


def test_reversed_ranking_is_below_random():
    assert qini_area(Y, T, -S) < 0 < qini_area(Y, T, S)


def test_ties_enter_together_so_row_order_does_not_matter():
    score = np.array([1.0, 1.0, 1.0, 1.0])
    curve = qini_curve(Y, T, score)
    assert len(curve) == 2                       # (0, 0) and everyone at once
    assert qini_area(Y, T, score) == pytest.approx(0.0)
    perm = np.array([3, 1, 0, 2])
    s2 = np.array([2.0, 2.0, 1.0, 1.0])
    assert qini_area(Y, T, s2) == pytest.approx(qini_area(Y[perm], T[perm], s2[perm]))


def test_perfect_ranking_scores_one_and_random_ranking_about_zero():
    assert qini_normalized(Y, T, perfect_score(Y, T)) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    y, t = rng.integers(0, 2, 20000), rng.integers(0, 2, 20000)
    assert abs(qini_normalized(y, t, rng.random(20000))) < 0.05


def test_uplift_at_k_by_hand():
    # ten rows, top 30 % = the first three by score: treated (1, 1), control (0) -> 1 - 0
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    t = np.array([1, 1, 0, 1, 0, 0, 1, 0, 1, 0])
    s = np.arange(10, 0, -1).astype(float)
    assert uplift_at_k(y, t, s, 0.3) == pytest.approx(1.0)
    # by group: top 30 % of 5 treated = 1 row (y=1); of 5 controls = 1 row (y=0)
    assert uplift_at_k(y, t, s, 0.3, strategy="by_group") == pytest.approx(1.0)
    # top half: treated rows 0,1,3 -> 2/3; controls 2,4 -> 1/2
    assert uplift_at_k(y, t, s, 0.5) == pytest.approx(2 / 3 - 1 / 2)


def test_uplift_at_k_without_a_control_in_the_top_is_nan():
    assert np.isnan(uplift_at_k(np.array([1, 0, 1]), np.array([1, 1, 0]), np.array([3.0, 2, 1]), 0.5))


def test_weights_count_rows_as_copies():
    w = np.array([2, 1, 1, 1])
    dup = np.array([0, 0, 1, 2, 3])
    assert qini_area(Y, T, S, w) == pytest.approx(qini_area(Y[dup], T[dup], S[dup]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="treatment"):
        qini_area(Y, np.array([0, 1, 2, 1]), S)
    with pytest.raises(ValueError, match="lengths"):
        qini_area(Y, T, S[:3])
    with pytest.raises(ValueError, match="NaN"):
        qini_area(Y, T, np.array([1.0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="k must be"):
        uplift_at_k(Y, T, S, 1.5)


def test_summary_holds_every_figure():
    out = uplift_metrics(Y, T, S, k=0.5)
    assert set(out) == {"qini", "qini_normalized", "auuc", "uplift_at_50", "ate", "rows", "treated"}
    assert out["ate"] == pytest.approx(0.5 - 0.5)
