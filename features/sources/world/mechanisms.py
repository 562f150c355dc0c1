"""The equations of the built-in world (see docs/world.md for the prose version).

Each function is one mechanism, vectorised over customers. Coefficients live in
``COEF`` so that docs, tests and the simulator agree on one set of numbers.
"""

from __future__ import annotations

import numpy as np

ACTIONS = np.array(
    ["service_recovery_call", "discount_offer", "plan_upgrade", "apology_credit",
     "proactive_tech_check"]
)
ACTION_COST = np.array([25.0, 45.0, 30.0, 15.0, 35.0])
ACTION_IS_CALL = np.array([True, False, False, False, True])
ACTION_IS_EMAIL = np.array([False, True, False, False, False])  # channels: configs/actions.yaml
DRIVERS = np.array(["support", "reliability", "price", "delivery"])

COEF = {
    # satisfaction (0-10): s_t = base + rho * (s_{t-1} - base) + shock_t
    "rho": 0.75,
    "per_ticket": -0.3,
    "per_slow_day": -0.06,          # per day of resolution beyond 3 days (capped at 30)
    "per_unresolved": -0.9,
    "outage": -1.3,                 # times outage severity (0-1)
    "price_rise": -16.0,            # times price sensitivity times the rise (fraction)
    "per_failed_order": -0.8,
    "sat_noise": 0.35,
    # monthly churn-decision hazard, logit scale
    "h0": -4.45,
    "h_sat": 0.45,                  # per point of satisfaction below 7
    "h_contract": np.array([0.55, -0.7, -1.2]),
    "h_renewal": 1.4,               # month a term contract comes up for renewal
    "h_price": 9.0,                 # times price sensitivity times recent price rises
    "h_tenure": 0.9,                # times exp(-tenure_months / 6): early-life churn
    "h_late": 0.5,
    "h_enterprise": -0.4,
    # survey response, logit scale
    "r0": np.array([-2.7, -1.55, -1.9]),   # relationship, support, purchase
    "r_engagement": 0.7,
    "r_sat": 0.3,                   # per point of satisfaction above 7
}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def satisfaction_shocks(
    n_tickets: np.ndarray,
    slow_days: np.ndarray,
    n_unresolved: np.ndarray,
    outage: np.ndarray,
    price_rise: np.ndarray,
    price_sens: np.ndarray,
    n_failed: np.ndarray,
) -> np.ndarray:
    """Per-driver satisfaction shocks this month, shape (n, 4) in DRIVERS order (<= 0)."""
    support = (COEF["per_ticket"] * n_tickets + COEF["per_slow_day"] * slow_days
               + COEF["per_unresolved"] * n_unresolved)
    reliability = COEF["outage"] * outage
    price = COEF["price_rise"] * price_sens * price_rise
    delivery = COEF["per_failed_order"] * n_failed
    return np.stack([support, reliability, price, delivery], axis=1)


def next_satisfaction(
    s_prev: np.ndarray, base: np.ndarray, shocks: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Mean-reverting latent satisfaction moved by this month's experiences."""
    s = base + COEF["rho"] * (s_prev - base) + shocks.sum(axis=1) + COEF["sat_noise"] * noise
    return np.clip(s, 0.0, 10.0)


def churn_logit(
    sat: np.ndarray,
    contract: np.ndarray,
    renewal_now: np.ndarray,
    price_sens: np.ndarray,
    recent_rise: np.ndarray,
    tenure_months: np.ndarray,
    late_now: np.ndarray,
    enterprise: np.ndarray,
) -> np.ndarray:
    """Logit of the monthly probability that a customer decides to leave (no action)."""
    return (
        COEF["h0"]
        + COEF["h_sat"] * (7.0 - sat)
        + COEF["h_contract"][contract]
        + COEF["h_renewal"] * renewal_now
        + COEF["h_price"] * price_sens * recent_rise
        + COEF["h_tenure"] * np.exp(-np.maximum(tenure_months, 0) / 6.0)
        + COEF["h_late"] * late_now
        + COEF["h_enterprise"] * enterprise
    )


def action_log_effects(
    price_sens: np.ndarray,
    recent_rise: np.ndarray,
    unresolved_recent: np.ndarray,
    reliability_recent: np.ndarray,
    delivery_recent: np.ndarray,
    usage_ratio: np.ndarray,
    plan: np.ndarray,
    contact_averse: np.ndarray,
) -> np.ndarray:
    """Change of the churn logit caused by each action when delivered, shape (n, 5).

    Negative keeps the customer. Effects are heterogeneous by design: a discount helps
    the price-sensitive, a recovery call those with unresolved tickets, an apology
    credit those hit by outages or failed orders, an upgrade heavy users of a small
    plan, a technical check those with outages; contact-averse customers dislike any
    outreach, calls most of all.
    """
    unresolved = np.minimum(unresolved_recent, 2.0)
    hurt = np.minimum(reliability_recent + delivery_recent, 2.0)
    eff = np.empty((len(price_sens), len(ACTIONS)))
    eff[:, 0] = -0.05 - 1.4 * unresolved
    eff[:, 1] = 0.15 - 2.8 * price_sens - 8.0 * price_sens * np.minimum(recent_rise, 0.2)
    eff[:, 2] = np.where(plan < 2, 0.15 - 1.3 * np.clip(usage_ratio - 1.0, 0, 1.5), 0.0)
    eff[:, 2] += np.where(plan < 2, 0.4 * price_sens, 0.0)
    eff[:, 3] = -0.05 - 0.9 * hurt
    eff[:, 4] = -0.05 - 1.0 * np.minimum(reliability_recent, 2.0) - 0.3 * unresolved
    aversion = np.where(ACTION_IS_CALL, 0.9, 0.5)
    eff += contact_averse[:, None] * aversion[None, :]
    return eff


OUTCOMES = np.array(["accepted", "declined", "no_answer", "complaint_after_contact", "holdout"])
HOLDOUT = 4                                    # index of "holdout" in OUTCOMES
# Outcome of a delivered action (accepted, declined, no answer, complaint after contact), one
# row per contact aversion (no, yes): averse customers decline, ignore and complain more.
# Weighted by the 12 % averse share the mix stays about 60 / 25 / 14 / 1.4 %.
OUTCOME_P = np.array([[0.63, 0.24, 0.125, 0.005],
                      [0.40, 0.30, 0.22, 0.08]])
OUTCOME_SCALE = np.array([1.0, 0.35, 0.0, 0.0])  # share of the benefit that lands per outcome
OUTCOME_REACHED = np.array([1, 1, 0, 1])         # the customer was reached: aversion lands
EFFECT_MONTHS = 3


def churn_prob_over(logit: np.ndarray, months: int = EFFECT_MONTHS) -> np.ndarray:
    """Probability of deciding to leave within ``months`` at a constant monthly hazard."""
    return 1.0 - (1.0 - sigmoid(logit)) ** months


def outcome_probs(contact_averse: np.ndarray) -> np.ndarray:
    """Probabilities of each delivered outcome per customer, shape (n, 4)."""
    return OUTCOME_P[np.asarray(contact_averse, int)]


def draw_outcomes(rng, contact_averse: np.ndarray) -> np.ndarray:
    """One delivered outcome (index 0-3) per customer, drawn from their outcome mix."""
    cum = np.cumsum(outcome_probs(contact_averse), axis=1)
    return np.minimum((rng.random((len(cum), 1)) > cum).sum(axis=1), len(OUTCOME_SCALE) - 1)


def expected_effect(base_logit: np.ndarray, log_effects: np.ndarray,
                    contact_averse: np.ndarray) -> np.ndarray:
    """True effect of assigning each action on the 90-day churn probability (n, 5).

    Averaged over the customer's outcome mix (accepted / declined / no answer / complaint);
    the aversion penalty lands whenever the customer is reached. Negative = fewer churners.
    """
    p0 = churn_prob_over(base_logit)[:, None]
    averse_part = contact_averse[:, None] * np.where(ACTION_IS_CALL, 0.9, 0.5)[None, :]
    benefit = log_effects - averse_part
    probs = outcome_probs(contact_averse)
    total = np.zeros_like(log_effects)
    for k, (scale, reached) in enumerate(zip(OUTCOME_SCALE, OUTCOME_REACHED, strict=True)):
        logit = base_logit[:, None] + scale * benefit + reached * averse_part
        total += probs[:, k:k + 1] * churn_prob_over(logit)
    return total - p0


def realised_log_effect(log_effects: np.ndarray, contact_averse: np.ndarray,
                        action: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Logit shift a delivered action actually causes, given its outcome index (0-3)."""
    rows = np.arange(len(action))
    averse_part = contact_averse * np.where(ACTION_IS_CALL[action], 0.9, 0.5)
    benefit = log_effects[rows, action] - averse_part
    return OUTCOME_SCALE[outcome] * benefit + OUTCOME_REACHED[outcome] * averse_part


def response_logit(touchpoint: np.ndarray, engagement: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """Who answers a survey: the engaged and the satisfied answer more (selection bias)."""
    return COEF["r0"][touchpoint] + COEF["r_engagement"] * engagement + COEF["r_sat"] * (sat - 7.0)


def would_be_nps(sat: np.ndarray, noise: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """The 0-10 answer a customer would give, responder or not."""
    return np.clip(np.rint(sat + 0.8 + 1.1 * noise - penalty), 0, 10).astype(np.int8)
