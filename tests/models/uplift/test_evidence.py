"""The evidence gate: an action is shown to pay only when the randomized hold-outs among the
rows the rule would act on show it; strata keep a targeted programme from faking an effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.uplift.data import ACTION, LABEL, STRATUM, TREATED
from models.uplift.evidence import choose_by_evidence, policy_evidence, rule_selects

COSTS = {"good": 10.0, "bad": 10.0}


def _log(n: int, seed: int, effect: dict[str, float], base: float = 0.3,
         targeted: bool = False) -> pd.DataFrame:
    """A programme log: one row per customer, 20 % held out at random within each stratum."""
    rng = np.random.default_rng(seed)
    action = rng.choice(list(effect), n)
    trouble = rng.random(n) < 0.5
    treated = (rng.random(n) >= 0.2).astype(int)
    if targeted:   # customers in trouble are treated far more often, and churn more
        treated = (rng.random(n) < np.where(trouble, 0.95, 0.2)).astype(int)
    p = base + 0.3 * trouble - treated * np.vectorize(effect.get)(action)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], ACTION: action,
                         TREATED: treated, LABEL: (rng.random(n) < p).astype(int),
                         STRATUM: np.where(trouble, "trouble", "none")})


def _evidence(frame, estimate: dict[str, float], seed=0):
    effects = pd.DataFrame({a: np.full(len(frame), -e) for a, e in estimate.items()})
    return policy_evidence(frame, effects, None, np.full(len(frame), 0.5),
                           np.full(len(frame), 200.0), COSTS, seed=seed)


def test_an_action_that_pays_is_shown_and_one_that_harms_is_not():
    frame = _log(6000, 1, {"good": 0.15, "bad": -0.05})
    table = _evidence(frame, {"good": 0.2, "bad": 0.2})     # the model believes both pay
    assert table.loc["good", "shown"] and not table.loc["bad", "shown"]
    # true value per action: 0.15 x 200 - 10 = 20; the harmful one -0.05 x 200 - 10 = -20
    assert 10 < table.loc["good", "value_per_action"] < 30
    assert table.loc["bad", "value_hi"] < 0
    assert choose_by_evidence({"a": table}, fallback="shift") == "a"


def test_no_action_is_shown_on_a_log_without_effects_in_most_seeds():
    shown = [_evidence(_log(3000, s, {"good": 0.0, "bad": 0.0}), {"good": 0.2, "bad": 0.2},
                       seed=s)["shown"].sum() for s in range(10)]
    assert sum(shown) <= 3                                  # 20 gates at a 10 % quantile: ~2 by chance


def test_strata_keep_targeting_from_faking_an_effect():
    # customers in trouble churn more and are treated more: pooled, treatment looks harmful;
    # within strata the true effect (0.1 x 200 - 10 = +10 per action) is recovered
    frame = _log(20000, 3, {"good": 0.1, "bad": 0.1}, targeted=True)
    table = _evidence(frame, {"good": 0.2, "bad": 0.2})
    assert (table["value_per_action"].between(0, 20)).all()
    pooled = _evidence(frame.assign(**{STRATUM: "all"}), {"good": 0.2, "bad": 0.2})
    assert (pooled["value_per_action"] < -10).all()         # what ignoring the strata would say


def test_the_rule_acts_only_where_the_value_and_its_bound_pay():
    p, value = np.array([0.5, 0.5, 0.5]), np.array([100.0, 100.0, 100.0])
    effect, low = np.array([-0.3, -0.3, -0.05]), np.array([-0.2, 0.0, -0.01])
    assert rule_selects(p, effect, None, value, 10.0, 0.0).tolist() == [True, True, False]
    assert rule_selects(p, effect, low, value, 10.0, 0.0).tolist() == [True, False, False]


def test_no_learner_is_chosen_on_evidence_when_none_shows_value():
    empty = pd.DataFrame({"selected": [10], "value_per_action": [5.0], "shown": [False]},
                         index=["good"])
    assert choose_by_evidence({"t": empty, "x": empty}, fallback="shift") == "shift"


def test_scoring_gives_an_action_the_log_does_not_show_no_effect():
    from types import SimpleNamespace

    from models.scoring import uplift_effects

    class Gated:
        actions = ["good", "bad"]
        evidence = {"good": {"shown": True}, "bad": {"shown": False}}

        def effects_with_bound(self, frame, quantile):
            both = pd.DataFrame({"good": -0.2, "bad": -0.3}, index=frame.index)
            return both, both + 0.1

        def shown_actions(self):
            return [a for a in self.actions if self.evidence[a]["shown"]]

    frame = pd.DataFrame(index=range(3))
    effects, bound = uplift_effects(frame, SimpleNamespace(uplift=Gated()), 0.9)
    assert effects["good"].eq(-0.2).all() and effects["bad"].eq(0.0).all()
    assert bound["good"].round(6).eq(-0.1).all() and bound["bad"].eq(0.0).all()


def test_an_action_is_shown_only_when_the_held_out_customers_confirm_it():
    from models.uplift.evidence import confirm

    cv = pd.DataFrame({"selected": [100, 100, 100], "value_per_action": [5.0, 5.0, 5.0],
                       "value_lo": [1.0, 1.0, 1.0], "shown": [True, True, True]},
                      index=["good", "bad", "noisy"])
    # "noisy": a positive hold-out value whose own interval still reaches below 0
    held = pd.DataFrame({"selected": [40, 40, 40], "value_per_action": [3.0, -2.0, 3.0],
                         "value_lo": [0.5, -6.0, -4.0]}, index=["good", "bad", "noisy"])
    out = confirm(cv, held)
    assert out["shown"].tolist() == [True, False, False]
    assert out.loc["bad", "holdout_value_per_action"] == -2.0


def test_the_holdout_shares_the_risk_among_the_proposed_actions():
    from models.uplift.evidence import confirm_quantile

    cv = pd.DataFrame({"shown": [True, True, False, True]})
    assert confirm_quantile(cv, 0.1) == pytest.approx(0.1 / 3)
    assert confirm_quantile(cv.assign(shown=False), 0.1) == 0.1


def test_noise_alone_rarely_reaches_the_lists():
    """Five actions worth nothing, learners chosen on the cross-validated look: with the
    hold-out's Bonferroni look, an action reaches the lists in at most about 10 % of logs."""
    from models.uplift.evidence import confirm, confirm_quantile, policy_evidence

    rng = np.random.default_rng(0)
    shown = 0
    actions = [f"a{i}" for i in range(5)]
    for rep in range(40):
        looks = []
        for part in range(2):            # 0: cross-validated rows, 1: held-out customers
            n = 1500
            frame = pd.DataFrame({"customer_id": [f"{part}-{i}" for i in range(n)],
                                  ACTION: rng.choice(actions, n),
                                  TREATED: (rng.random(n) < 0.8).astype(int),
                                  LABEL: (rng.random(n) < 0.2).astype(int)})
            effects = pd.DataFrame({a: np.full(n, -0.05) for a in actions})
            looks.append((frame, effects))
        value, p = np.full(1500, 100.0), np.full(1500, 0.2)
        costs = dict.fromkeys(actions, 0.0)
        cv = policy_evidence(*looks[0], None, p, value, costs, quantile=0.1, n_boot=200, seed=rep)
        held = policy_evidence(*looks[1], None, p, value, costs,
                               quantile=confirm_quantile(cv, 0.1), n_boot=200, seed=rep)
        shown += bool(confirm(cv, held)["shown"].any())
    assert shown <= 6, shown     # 40 logs x at most 10 %, plus a little bootstrap slack


def test_the_log_is_moved_to_the_population_the_plan_acts_on():
    from models.uplift.evidence import TARGET_WEIGHT, target_weights

    # the programme logged mostly fresh outages (where a credit works; the recency feature
    # stands for the days since the outage); today's open
    # customers mostly had their outage long ago (where it does not)
    rng = np.random.default_rng(4)
    n = 8000
    fresh = rng.random(n) < 0.8
    log = _log(n, 5, {"good": 0.0, "bad": 0.0})
    log["days_since_last_action"] = np.where(fresh, rng.integers(0, 30, n), rng.integers(60, 90, n))
    effect = np.where(fresh, 0.2, 0.0)
    churn = rng.random(n) < 0.5 - log[TREATED] * effect
    log[LABEL] = churn.astype(int)
    target = pd.DataFrame({"days_since_last_action": np.where(rng.random(20000) < 0.2,
                                                           rng.integers(0, 30, 20000),
                                                           rng.integers(60, 90, 20000))})
    w = target_weights(log, target, ["days_since_last_action"])
    assert w[~fresh].mean() > 5 * w[fresh].mean()          # the rare stale rows stand for many
    plain = _evidence(log, {"good": 0.2, "bad": 0.2})
    moved = _evidence(log.assign(**{TARGET_WEIGHT: w}), {"good": 0.2, "bad": 0.2})
    # unweighted: 0.8 x 0.2 x 200 - 10 = +22 per action; where the plan acts: 0.2 x 0.2 x 200 - 10 = -2
    assert (plain["value_per_action"] > 12).all() and plain["shown"].all()
    assert (moved["value_per_action"] < 8).all() and not moved["shown"].any()
