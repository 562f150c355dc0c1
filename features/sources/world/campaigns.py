"""Past retention actions: a test-and-learn programme with a randomized hold-out.

Each month the company picks some customers (more often those with visible trouble:
unresolved tickets, price rises, falling usage), holds a random share out as a
control group, and gives the others one action chosen at random among those they
are eligible for. The effect lands on the churn logit of the next three months.

The company cannot see who has already decided to leave, so those customers are
picked like anyone else (falling usage even makes them likelier); nothing changes
their mind, so their effect is 0. The log therefore shows what a real programme
shows: the customers who look the most at risk are not always the ones an action keeps.
"""

from __future__ import annotations

import numpy as np

from . import mechanisms as mech
from .dynamics import WorldState
from .population import Population


def log_effects_now(pop: Population, st: WorldState, idx: np.ndarray, usage_ratio) -> np.ndarray:
    """Each action's logit effect for customers ``idx`` in their current state."""
    return mech.action_log_effects(
        pop.price_sens[idx], st.recent_rise[idx], st.unresolved_recent[idx],
        st.reliability_recent[idx], st.delivery_recent[idx], usage_ratio,
        st.plan[idx], pop.contact_averse[idx],
    )


def pick_targets(rng, st: WorldState, idx, usage_drop, rate: float) -> np.ndarray:
    """Customers (positions in idx) picked this month; trouble raises the odds."""
    w = np.exp(0.6 * np.minimum(st.unresolved_recent[idx], 2) + 4.0 * st.recent_rise[idx]
               + 1.0 * np.clip(usage_drop, 0, 1))
    p = np.minimum(rate * w / max(w.mean(), 1e-9), 0.9)
    return np.flatnonzero(rng.random(len(idx)) < p)


def run_campaign(rng, pop: Population, st: WorldState, idx, usage_ratio, usage_drop,
                 base_logit, t: int, t_day0: int, rate: float, holdout: float) -> dict:
    """Assign this month's actions, apply delivered ones to the state, return the log rows."""
    eligible = st.action_until[idx] < t                    # no action already running
    pos = pick_targets(rng, st, idx[eligible], usage_drop[eligible], rate)
    pos = np.flatnonzero(eligible)[pos]
    cust = idx[pos]
    n = len(cust)
    effects = log_effects_now(pop, st, cust, usage_ratio[pos])
    allowed = np.ones((n, len(mech.ACTIONS)), bool)
    allowed[:, 2] = st.plan[cust] < 2                     # no upgrade from the top plan
    action = _random_allowed(rng, allowed)
    control = rng.random(n) < holdout
    outcome = np.where(control, 3, rng.choice(3, n, p=mech.OUTCOME_P))
    shift = np.zeros(n)
    treated = ~control
    shift[treated] = mech.realised_log_effect(effects[treated], pop.contact_averse[cust][treated],
                                              action[treated], outcome[treated])
    decided = st.decided_month[cust] >= 0                 # already leaving: nothing lands
    shift[decided] = 0.0
    st.action_shift[cust] = shift
    st.action_until[cust] = t + mech.EFFECT_MONTHS
    _apply_offers(st, cust, action, outcome)
    true_effect = mech.expected_effect(base_logit[pos], effects, pop.contact_averse[cust])
    true_effect[decided] = 0.0
    return {
        "cust": cust, "action": action, "control": control, "outcome": outcome,
        "assigned_day": t_day0 + rng.uniform(0, 27, n),
        "cost": np.where(control, 0.0, mech.ACTION_COST[action]),
        "true_effect": true_effect[np.arange(n), action], "realised_shift": shift,
    }


def _random_allowed(rng, allowed: np.ndarray) -> np.ndarray:
    """Uniform choice among the allowed actions of each row."""
    scores = rng.random(allowed.shape) * allowed
    return scores.argmax(axis=1)


def _apply_offers(st: WorldState, cust, action, outcome) -> None:
    """Accepted offers change what the customer is billed or which plan they have."""
    accepted = outcome == 0
    st.discount_left[cust[accepted & (action == 1)]] = 3
    st.credit_due[cust[accepted & (action == 3)]] = 15.0
    up = cust[accepted & (action == 2)]
    st.plan[up] = np.minimum(st.plan[up] + 1, 2)
