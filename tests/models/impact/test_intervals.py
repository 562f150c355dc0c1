"""The estimators on synthetic plans with known per-row effects: coverage, IPW, slice value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.impact.intervals import NOT_ENOUGH, OK, difference, slice_value
from models.impact.report import slice_table


def _plan(rng, n: int, holdout):
    """Rows with a base churn risk and a known per-row effect; hold-out drawn with ``holdout``."""
    base = rng.uniform(0.03, 0.25, n)
    effect = rng.uniform(-0.12, 0.04, n)           # heterogeneous, mostly helpful
    control = rng.random(n) < holdout
    p = np.clip(base + np.where(control, 0.0, effect), 0, 1)
    y = (rng.random(n) < p).astype(float)
    return y, control, effect


def test_interval_covers_the_true_mean_effect_of_the_delivered_rows_about_90_percent():
    rng = np.random.default_rng(0)
    covered = []
    for _ in range(600):
        y, control, effect = _plan(rng, int(rng.integers(150, 600)), 0.3)
        est = difference(y[~control], y[control])
        assert est.status == OK
        truth = effect[~control].mean()
        covered.append(est.lo <= truth <= est.hi)
    assert 0.85 <= np.mean(covered) <= 0.95, np.mean(covered)


def test_hajek_ipw_with_known_probabilities_is_unbiased_where_plain_means_are_not():
    """Riskier customers are held out more often: the plain difference is biased, the IPW
    estimate with the design probabilities is not (and its interval covers)."""
    rng = np.random.default_rng(1)
    ipw, plain, covered, truths = [], [], [], []
    for _ in range(400):
        n = 800
        base = rng.uniform(0.02, 0.4, n)
        h = np.where(base > 0.2, 0.6, 0.15)          # hold-out share depends on the risk
        control = rng.random(n) < h
        effect = -0.3 * base                           # the action helps the risky more
        y = (rng.random(n) < base + np.where(control, 0.0, effect)).astype(float)
        prob = np.where(control, h, 1 - h)             # P(the row's observed assignment)
        est = difference(y[~control], y[control], prob[~control], prob[control])
        truth = effect.mean()                          # average effect over the planned rows
        ipw.append(est.estimate - truth)
        plain.append(difference(y[~control], y[control]).estimate - truth)
        covered.append(est.lo <= truth <= est.hi)
        truths.append(truth)
    se_of_mean = np.std(ipw) / np.sqrt(len(ipw))
    assert abs(np.mean(ipw)) < 3 * se_of_mean + 1e-3
    assert abs(np.mean(plain)) > 10 * se_of_mean       # the plain difference is far off
    assert 0.85 <= np.mean(covered) <= 0.96


def test_small_groups_are_not_enough_data():
    est = difference(np.ones(10), np.zeros(10))
    assert est.status == NOT_ENOUGH and np.isnan(est.estimate)
    assert difference(np.zeros(100), np.zeros(100)).status == NOT_ENOUGH   # no churner at all


def _population(rng, n, churn, cost, cycle=1, slice_name="policy"):
    return pd.DataFrame({"run_id": f"r{cycle}", "as_of": pd.Timestamp("2025-01-01"),
                         "cycle": cycle, "customer_id": [f"{slice_name}{i}" for i in range(n)],
                         "slice": slice_name, "churned": (rng.random(n) < churn).astype(float),
                         "matured": True, "applied": True,
                         "value_at_risk": rng.uniform(200, 600, n), "cost": cost})


def test_slice_value_sign_on_synthetic_slices():
    """A slice that prevents churn worth more than it spends is positive, one that spends
    on nothing negative; no-action is the baseline."""
    rng = np.random.default_rng(2)
    pop = pd.concat([
        _population(rng, 4000, 0.10, 0.0, slice_name="no_action"),
        _population(rng, 4000, 0.06, 5.0, slice_name="policy"),       # +0.04 x 400 - 5 = +11
        _population(rng, 4000, 0.10, 8.0, slice_name="random"),       # -8
        _population(rng, 4000, 0.13, 5.0, slice_name="risk_ranked"),  # -0.03 x 400 - 5 = -17
    ], ignore_index=True)
    table = slice_table(pop).set_index(["scope", "slice"])
    cum = table.loc["cumulative"]
    assert cum.loc["policy", "lo90"] > 0
    assert cum.loc["random", "hi90"] < 0 and cum.loc["risk_ranked", "hi90"] < 0
    assert set(table.loc["cycle"].index) == {"policy", "random", "risk_ranked"}


def test_slice_value_interval_covers():
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(300):
        n = 1500
        v1, v0 = rng.uniform(100, 700, n), rng.uniform(100, 700, n)
        c = np.where(rng.random(n) < 0.3, 20.0, 0.0)
        y1 = (rng.random(n) < 0.08).astype(float)
        y0 = (rng.random(n) < 0.10).astype(float)
        truth = 0.02 * 400 - 6.0                      # E[v] = 400, E[c] = 6
        est = slice_value(y1, c, v1, y0, v0)
        covered.append(est.lo <= truth <= est.hi)
    assert 0.85 <= np.mean(covered) <= 0.96, np.mean(covered)


def test_a_customer_in_several_cycles_counts_once_in_the_cumulative_interval():
    """The same customers in four overlapping windows: their churn repeats, so treating the
    rows as independent would understate the variance; clustering by customer does not."""
    rng = np.random.default_rng(4)
    clustered, naive = [], []
    for _ in range(300):
        n = 600
        ids = np.arange(n)
        y1 = np.tile((rng.random(n) < 0.08).astype(float), 4)   # one churn, seen in 4 windows
        y0 = np.tile((rng.random(n) < 0.10).astype(float), 4)
        c = np.tile(ids, 4)
        truth = -0.02
        est = difference(y1, y0, c1=c, c0=c + n)
        plain = difference(y1, y0)
        clustered.append(est.lo <= truth <= est.hi)
        naive.append(plain.lo <= truth <= plain.hi)
    assert 0.85 <= np.mean(clustered) <= 0.96, np.mean(clustered)
    assert np.mean(naive) < 0.75
