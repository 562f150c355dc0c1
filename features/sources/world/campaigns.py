"""Past retention actions: a driver-aware test-and-learn programme with randomized hold-outs.

On the first day of each month the company reviews its open accounts as its systems show
them that morning (everything recorded up to the end of the previous month). Each account
falls in one **stratum**, the first driver the company can see: an unresolved ticket, a
service disruption (a failed order, or usage down by 30 %), a recent price rise, usage a
quarter above the plan's allowance, or none. Each stratum has a known probability of being picked
(driver strata far more often); among those picked, an action that answers the stratum's
driver is chosen most of the time, another allowed one otherwise, and a random share is
held out as the control group. The log records the stratum and the probability of the
row's assignment, as a real test-and-learn design document would.

Customers under notice (they told the company they are leaving) go to the save desk, not
to this programme. Actions respect the CRM's contact preferences: no call to a customer
who opted out of calls or has no phone, no e-mail offer without e-mail consent.

The effect of an action is computed from the state at assignment and lands on the churn
decisions of the month of assignment and the next two. Design: docs/world.md.
"""

from __future__ import annotations

import numpy as np

from . import mechanisms as mech
from .dynamics import PLAN_USAGE_LIMIT, WorldState
from .population import Population

STRATA = np.array(["unresolved_ticket", "service_disruption", "price_rise", "usage_above_plan",
                   "no_driver"])
STRATUM_WEIGHT = np.array([40.0, 6.0, 8.0, 3.0, 0.5])  # relative odds of being picked
# Actions that answer each stratum's driver (columns in mech.ACTIONS order;
# the drivers each action addresses: configs/actions.yaml).
STRATUM_ACTIONS = np.array([
    [1, 0, 0, 0, 0],     # unresolved ticket: service recovery call
    [0, 0, 0, 1, 1],     # failed order / usage drop: apology credit, technical check
    [0, 1, 0, 0, 0],     # price rise: discount
    [0, 0, 1, 0, 0],     # usage above the plan: upgrade
    [1, 1, 1, 1, 1],     # no visible driver: any action
], bool)
MATCH_SHARE = 0.8        # share of a stratum's actions that answer its driver; the rest explores
MAX_PICK = 0.9           # no stratum is picked with certainty: every stratum keeps non-picked


def log_effects_now(pop: Population, st: WorldState, idx: np.ndarray, usage_ratio) -> np.ndarray:
    """Each action's logit effect for customers ``idx`` in their current state."""
    return mech.action_log_effects(
        pop.price_sens[idx], st.recent_rise[idx], st.unresolved_recent[idx],
        st.reliability_recent[idx], st.delivery_recent[idx], usage_ratio,
        st.plan[idx], pop.contact_averse[idx],
    )


def observed_strata(st: WorldState, idx: np.ndarray) -> np.ndarray:
    """Stratum (index into STRATA) of customers ``idx`` from what the company has recorded.

    Memories halve each month, so ``>= 0.5`` means such an event in the last two months.
    """
    usage_ratio = st.usage_prev[idx] / PLAN_USAGE_LIMIT[st.plan[idx]]
    signals = np.stack([
        st.unresolved_recent[idx] >= 0.5,
        (st.delivery_recent[idx] >= 0.5) | (st.usage_drop[idx] >= 0.3),
        st.recent_rise[idx] >= 0.02,
        (usage_ratio >= 1.25) & (st.plan[idx] < 2),
        np.ones(len(idx), bool),
    ], axis=1)
    return signals.argmax(axis=1)


def pick_probabilities(strata: np.ndarray, rate: float) -> np.ndarray:
    """Per-stratum pick probability ``min(c w_s, MAX_PICK)``, c such that the mean is ``rate``."""
    counts = np.bincount(strata, minlength=len(STRATA)).astype(float)
    target = rate * counts.sum()
    capped = np.zeros(len(STRATA), bool)
    for _ in range(len(STRATA)):          # water-filling: cap, then share what is left
        free = (counts * STRATUM_WEIGHT)[~capped].sum()
        c = (target - MAX_PICK * counts[capped].sum()) / max(free, 1e-12)
        newly = ~capped & (c * STRATUM_WEIGHT > MAX_PICK)
        if not newly.any():
            break
        capped |= newly
    return np.where(capped, MAX_PICK, np.clip(c * STRATUM_WEIGHT, 0.0, MAX_PICK))


def allowed_actions(pop: Population, st: WorldState, cust: np.ndarray) -> np.ndarray:
    """Actions the company may use: plan and contact preferences, shape (n, 5)."""
    callable_ = pop.has_phone[cust] & ~pop.phone_opt_out[cust]
    mailable = pop.has_email[cust] & ~pop.email_opt_out[cust]
    allowed = np.ones((len(cust), len(mech.ACTIONS)), bool)
    allowed[:, mech.ACTION_IS_CALL] &= callable_[:, None]
    allowed[:, mech.ACTION_IS_EMAIL] &= mailable[:, None]
    allowed[:, 2] &= st.plan[cust] < 2                      # no upgrade from the top plan
    return allowed


def action_probabilities(strata: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """P(action | picked) per row: MATCH_SHARE on the driver's allowed actions, the rest spread."""
    match = STRATUM_ACTIONS[strata] & allowed
    other = allowed & ~match
    n_match, n_other = match.sum(axis=1, keepdims=True), other.sum(axis=1, keepdims=True)
    share = np.where(n_other == 0, 1.0, np.where(n_match == 0, 0.0, MATCH_SHARE))
    return (match * share / np.maximum(n_match, 1)
            + other * (1 - share) / np.maximum(n_other, 1))


def campaign_eligible(pop: Population, st: WorldState, idx: np.ndarray, t: int) -> np.ndarray:
    """Open accounts the programme may pick this month (positions in ``idx``)."""
    return ((pop.signup_month[idx] < t) & (st.notice_day[idx] < 0)
            & (st.action_until[idx] < t) & ~np.isnan(st.last_logit[idx]))


def run_campaign(rng, pop: Population, st: WorldState, idx, t: int, t_day0: int,
                 rate: float, holdout: float) -> dict:
    """Assign this month's actions on its first day, apply delivered ones, return the log rows."""
    cand = idx[campaign_eligible(pop, st, idx, t)]
    strata = observed_strata(st, cand)
    p_pick = pick_probabilities(strata, rate)
    picked = rng.random(len(cand)) < p_pick[strata]
    cust, stratum = cand[picked], strata[picked]
    n = len(cust)
    q = action_probabilities(stratum, allowed_actions(pop, st, cust))
    action = np.minimum((rng.random((n, 1)) > np.cumsum(q, axis=1)).sum(axis=1),
                        len(mech.ACTIONS) - 1)
    control = rng.random(n) < holdout
    log = assign_actions(rng, pop, st, cust, action, control, t, t_day0)
    log["stratum"] = stratum
    log["probability"] = p_pick[stratum] * q[np.arange(n), action] * np.where(control, holdout,
                                                                            1 - holdout)
    return log


def assign_actions(rng, pop: Population, st: WorldState, cust, action, control, t: int,
                   t_day0: int) -> dict:
    """Deliver ``action`` to ``cust`` on the first day of month ``t`` (nothing for ``control``).

    Draws each delivered action's outcome, applies its effect from the state at assignment
    to the churn logit of this month and the next two, and returns the log rows without
    the design columns (``stratum``, ``probability``), which the caller knows.
    Customers who already decided to leave cannot be kept: their true effect is 0.
    """
    n = len(cust)
    averse = pop.contact_averse[cust]
    outcome = np.where(control, mech.HOLDOUT, mech.draw_outcomes(rng, averse))
    ratio = st.usage_prev[cust] / PLAN_USAGE_LIMIT[st.plan[cust]]
    effects = log_effects_now(pop, st, cust, ratio)       # the state at assignment
    rows = np.arange(n)
    true_effect = mech.expected_effect(st.last_logit[cust], effects, averse)[rows, action]
    true_effect = np.where(st.decided_month[cust] >= 0, 0.0, true_effect)
    shift = np.zeros(n)
    treated = ~control
    shift[treated] = mech.realised_log_effect(effects[treated], averse[treated],
                                              action[treated], outcome[treated])
    st.action_shift[cust] = shift
    st.action_until[cust] = t + mech.EFFECT_MONTHS - 1
    _apply_offers(st, cust, action, outcome)
    return {
        "cust": cust, "action": action, "control": control, "outcome": outcome,
        "assigned_day": t_day0 + rng.uniform(0.35, 0.7, n),   # office hours on the 1st
        "cost": np.where(control, 0.0, mech.ACTION_COST[action]),
        "true_effect": true_effect, "realised_shift": shift,
    }


def _apply_offers(st: WorldState, cust, action, outcome) -> None:
    """Accepted offers change what the customer is billed or which plan they have."""
    accepted = outcome == 0
    st.discount_left[cust[accepted & (action == 1)]] = 3
    st.credit_due[cust[accepted & (action == 3)]] = 15.0
    up = cust[accepted & (action == 2)]
    st.plan[up] = np.minimum(st.plan[up] + 1, 2)
