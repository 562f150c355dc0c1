"""One month of operations for a chunk of customers: prices, outages, tickets, orders,
satisfaction, late payments, churn decisions, usage and invoices.

``WorldState`` holds everything that carries over between months; ``step_operations``
advances it by one month and returns the month's O-data events (local customer
indices in column ``cust``), which the simulator turns into source tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .population import CONTRACT_MONTHS, PLAN_USAGE, Population

DECAY = 0.5            # monthly decay of the "recent" experience memories
PRICE_REVIEW_MONTH = 2  # month of the year (0 = January) when month-to-month prices move
TICKET_CATEGORIES = np.array(["billing", "technical", "outage", "account", "delivery"])
TICKET_CHANNELS = np.array(["phone", "email", "chat"])
PLAN_USAGE_LIMIT = PLAN_USAGE           # usage a plan is sized for; above it an upgrade helps
PLAN_UPLIFT = np.array([1.0, 1.15, 1.3])  # usage gain per tier upgraded since signup


@dataclass
class WorldState:
    """Per-customer state carried from one month to the next."""

    sat: np.ndarray
    plan: np.ndarray
    contract: np.ndarray
    contract_end: np.ndarray      # month index the current term ends (-1: month-to-month)
    list_price: np.ndarray
    recent_rise: np.ndarray       # decayed sum of recent price rises (fraction)
    drivers: np.ndarray           # (n, 4) decayed magnitude of each driver's shocks
    unresolved_recent: np.ndarray
    reliability_recent: np.ndarray
    delivery_recent: np.ndarray
    usage_prev: np.ndarray
    usage_drop: np.ndarray        # last month's fall in usage against the month before (fraction)
    late_prev: np.ndarray
    decided_month: np.ndarray     # month of the decision to leave (-1: none)
    notice_day: np.ndarray        # day the customer gave notice: the decision day (-1: none)
    churn_day: np.ndarray         # days since history start of the churn date (-1: none)
    action_shift: np.ndarray      # logit shift of a delivered action, active until action_until
    action_until: np.ndarray
    discount_left: np.ndarray     # invoices still discounted by an accepted offer
    credit_due: np.ndarray        # one-off credit on the next invoice
    last_logit: np.ndarray        # churn logit of the last simulated month (truth)


def initial_state(pop: Population, rng: np.random.Generator) -> WorldState:
    """State at the start of the history (existing customers mid-term)."""
    n = len(pop.number)
    term = CONTRACT_MONTHS[pop.contract]
    since = np.maximum(-pop.signup_month, 0)
    end = np.where(term > 0, pop.signup_month + term * (since // np.maximum(term, 1) + 1), -1)
    return WorldState(
        sat=np.clip(pop.base_sat + rng.normal(0, 0.6, n), 0, 10),
        plan=pop.plan.copy(), contract=pop.contract.copy(), contract_end=end.astype(np.int32),
        list_price=pop.list_price.copy(), recent_rise=np.zeros(n), drivers=np.zeros((n, 4)),
        unresolved_recent=np.zeros(n), reliability_recent=np.zeros(n),
        delivery_recent=np.zeros(n), usage_prev=pop.base_usage.copy(), usage_drop=np.zeros(n),
        late_prev=np.zeros(n, bool), decided_month=np.full(n, -1, np.int32),
        notice_day=np.full(n, -1, np.int32),
        churn_day=np.full(n, -1, np.int32), action_shift=np.zeros(n),
        action_until=np.full(n, -1, np.int32), discount_left=np.zeros(n, np.int8),
        credit_due=np.zeros(n), last_logit=np.full(n, np.nan),
    )


def draw_outages(rng: np.random.Generator, months: int, n_regions: int) -> np.ndarray:
    """Regional outages: (months, regions, 2) of [severity 0-1, share of customers hit]."""
    happens = rng.random((months, n_regions)) < 0.12
    severity = np.where(happens, rng.uniform(0.3, 1.0, (months, n_regions)), 0.0)
    share = rng.uniform(0.3, 0.9, (months, n_regions))
    return np.stack([severity, share], axis=2)


def active_mask(pop: Population, st: WorldState, t: int, day0: int) -> np.ndarray:
    """Customers with an account at some point of month t."""
    gone = (st.churn_day >= 0) & (st.churn_day < day0)
    return (pop.signup_month <= t) & ~gone


def price_changes(rng, st: WorldState, idx: np.ndarray, t: int, calendar_month: int):
    """List-price rises this month: yearly review for month-to-month, at renewal for terms."""
    rise = np.zeros(len(idx))
    m2m = st.contract[idx] == 0
    if calendar_month == PRICE_REVIEW_MONTH:
        hit = m2m & (rng.random(len(idx)) < 0.35)
        rise[hit] = rng.uniform(0.04, 0.15, hit.sum())
    renew = ~m2m & (st.contract_end[idx] == t)
    hit = renew & (rng.random(len(idx)) < 0.5)
    rise[hit] = rng.uniform(0.03, 0.10, hit.sum())
    return rise, renew


def draw_tickets(rng, pop: Population, idx, outage_sev, t_day0: int, month_days: int):
    """Support tickets opened this month; returns per-ticket columns and per-customer sums."""
    lam = 0.12 * pop.ticket_prone[idx] * np.where(pop.plan[idx] == 0, 1.4, 1.0) + 1.2 * outage_sev
    k = rng.poisson(lam)
    owner = np.repeat(np.arange(len(idx)), k)
    m = len(owner)
    cat_p = np.array([0.25, 0.4, 0.05, 0.2, 0.1])
    cat = rng.choice(5, m, p=cat_p)
    cat = np.where((outage_sev[owner] > 0) & (rng.random(m) < 0.7), 2, cat)
    median = np.array([1.5, 3.0, 1.0, 1.5, 2.5])[cat]
    res_days = rng.lognormal(np.log(median), 1.0)
    opened = t_day0 + rng.uniform(0, month_days, m)
    unresolved = rng.random(m) < (0.05 + 0.12 * (res_days > 10))
    n_cust = len(idx)
    per = {
        "n_tickets": np.bincount(owner, minlength=n_cust).astype(float),
        "slow_days": np.bincount(owner, np.minimum(np.maximum(res_days - 3, 0), 30), n_cust),
        "n_unresolved": np.bincount(owner, unresolved, n_cust),
    }
    tickets = {"cust": idx[owner], "opened_day": opened, "res_days": res_days,
               "category": cat, "unresolved": unresolved,
               "channel": rng.choice(3, m, p=[0.45, 0.3, 0.25])}
    return tickets, per


def draw_orders(rng, pop: Population, idx, t_day0: int, month_days: int):
    """Orders placed this month (more for businesses); a few fail in delivery."""
    lam = np.array([0.15, 0.5, 1.2])[pop.segment[idx]]
    k = rng.poisson(lam)
    owner = np.repeat(np.arange(len(idx)), k)
    m = len(owner)
    status = rng.choice(3, m, p=[0.91, 0.06, 0.03])  # delivered, failed, cancelled
    amount = np.round(rng.lognormal(3.5, 0.8, m) * np.array([1, 2, 4])[pop.segment[idx][owner]], 2)
    orders = {"cust": idx[owner], "ordered_day": t_day0 + rng.uniform(0, month_days, m),
              "amount": amount, "status": status}
    failed = np.bincount(owner, status == 1, len(idx))
    return orders, failed


def usage_factor_before_churn(st: WorldState, idx, t: int) -> np.ndarray:
    """Usage falls from the month a customer decides to leave until they are gone."""
    since = t - st.decided_month[idx]
    factor = np.array([0.8, 0.55, 0.4, 0.35])[np.clip(since, 0, 3)]
    return np.where(st.decided_month[idx] >= 0, factor, 1.0)
