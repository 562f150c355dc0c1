"""Advance a chunk of the world by one month and collect that month's records.

Returns plain column dicts per table, with customers as local indices (``cust``)
and times as float days since the start of the history; ``export`` turns them
into the source-table schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics as dyn
from . import mechanisms as mech
from . import surveys as sv
from .campaigns import run_campaign
from .population import CONTRACT_MONTHS, Population


@dataclass(frozen=True)
class MonthContext:
    t: int
    day0: int              # first day of the month, in days since the history start
    days: int              # days in the month
    calendar_month: int    # 0 = January
    relationship_wave: bool
    outages: np.ndarray    # (regions, 2) severity, share
    campaign_rate: float
    holdout_share: float
    notice_days: int       # days between giving notice (the decision) and the churn date


def programme(rng, pop: Population, st: dyn.WorldState, idx, ctx: MonthContext) -> dict:
    """The company's own retention programme (``campaigns``): the default assignment."""
    return run_campaign(rng, pop, st, idx, ctx.t, ctx.day0, ctx.campaign_rate, ctx.holdout_share)


def step_month(rng, pop: Population, st: dyn.WorldState, ctx: MonthContext,
               assign=programme) -> dict:
    """Simulate month ``ctx.t`` for every customer with an account in it.

    ``assign(rng, pop, st, idx, ctx)`` delivers the month's actions on its first day and
    returns their log rows: the programme by default, a product's plan when the world steps.
    """
    idx = np.flatnonzero(dyn.active_mask(pop, st, ctx.t, ctx.day0))
    n = len(idx)
    out: dict = {"interventions": assign(rng, pop, st, idx, ctx)}
    tenure = ctx.t - pop.signup_month[idx]
    rise, renew = dyn.price_changes(rng, st, idx, ctx.t, ctx.calendar_month)
    st.list_price[idx] = np.round(st.list_price[idx] * (1 + rise), 2)
    sev, share = ctx.outages[pop.region[idx], 0], ctx.outages[pop.region[idx], 1]
    outage = np.where(rng.random(n) < share, sev, 0.0)
    tickets, per = dyn.draw_tickets(rng, pop, idx, outage, ctx.day0, ctx.days)
    orders, n_failed = dyn.draw_orders(rng, pop, idx, ctx.day0, ctx.days)
    shocks = mech.satisfaction_shocks(per["n_tickets"], per["slow_days"], per["n_unresolved"],
                                      outage, rise, pop.price_sens[idx], n_failed)
    st.sat[idx] = mech.next_satisfaction(st.sat[idx], pop.base_sat[idx], shocks,
                                         rng.standard_normal(n))
    _remember(st, idx, shocks, rise, per["n_unresolved"], outage, n_failed)
    sat = st.sat[idx]
    late_p = mech.sigmoid(-3.6 + 2.0 * pop.price_sens[idx] + 0.25 * (6 - sat) + 0.8 * st.late_prev[idx])
    late = rng.random(n) < late_p
    base_logit = mech.churn_logit(sat, st.contract[idx], renew, pop.price_sens[idx],
                                  st.recent_rise[idx], tenure, late, pop.segment[idx] == 2)
    st.last_logit[idx] = base_logit
    logit = base_logit + np.where(st.action_until[idx] >= ctx.t, st.action_shift[idx], 0.0)
    _decide(rng, st, idx, logit, tenure, ctx)
    usage = _usage(rng, pop, st, idx, outage, ctx)
    out["usage"] = usage
    out["billing"] = _invoice(rng, pop, st, idx, rise, late, ctx)
    out["tickets"], out["orders"] = tickets, orders
    _contract_rollover(st, idx, renew)
    out.update(_surveys(rng, pop, st, idx, tickets, orders, per, ctx))
    out["complaints"] = sv.complaints(rng, pop, idx, sat, per["n_unresolved"], n_failed, outage,
                                      st.drivers[idx], ctx.day0, ctx.days)
    st.usage_drop[idx] = 1 - usage["usage_units"] / np.maximum(st.usage_prev[idx], 1e-6)
    st.usage_prev[idx] = usage["usage_units"]
    out["truth_month"] = {"cust": idx, "sat": sat, "hazard": mech.sigmoid(logit),
                          "driver": np.where(st.drivers[idx].max(axis=1) > 0.3,
                                             st.drivers[idx].argmax(axis=1), -1)}
    return out


def _remember(st, idx, shocks, rise, n_unresolved, outage, n_failed) -> None:
    st.drivers[idx] = dyn.DECAY * st.drivers[idx] - shocks
    st.recent_rise[idx] = dyn.DECAY * st.recent_rise[idx] + rise
    st.unresolved_recent[idx] = dyn.DECAY * st.unresolved_recent[idx] + n_unresolved
    st.reliability_recent[idx] = dyn.DECAY * st.reliability_recent[idx] + outage
    st.delivery_recent[idx] = dyn.DECAY * st.delivery_recent[idx] + n_failed


def _decide(rng, st, idx, logit, tenure, ctx: MonthContext) -> None:
    """Customers who decide to leave this month give notice that day; they go after the notice period."""
    can = (st.decided_month[idx] < 0) & (tenure >= 1)
    decide = can & (rng.random(len(idx)) < mech.sigmoid(logit))
    who = idx[decide]
    st.decided_month[who] = ctx.t
    st.notice_day[who] = ctx.day0 + rng.integers(0, ctx.days, len(who))
    st.churn_day[who] = st.notice_day[who] + ctx.notice_days


def _usage(rng, pop, st, idx, outage, ctx: MonthContext) -> dict:
    """Monthly usage: plan and engagement level, seasonality, outages, decline before churn."""
    n = len(idx)
    season = 1.0 + 0.08 * np.sin(2 * np.pi * (ctx.calendar_month - 3) / 12)
    dip = np.where(rng.random(n) < 0.03, rng.uniform(0.4, 0.8, n), 1.0)  # holidays etc.
    mood = 1.0 + 0.03 * (st.sat[idx] - 7.0)
    level = (pop.base_usage[idx] * dyn.PLAN_UPLIFT[st.plan[idx] - pop.plan[idx]] * season * dip
             * mood * (1 - 0.5 * outage) * dyn.usage_factor_before_churn(st, idx, ctx.t))
    start = np.clip(pop.signup_day[idx] * (pop.signup_month[idx] == ctx.t), 0, ctx.days)
    end = np.where((st.churn_day[idx] >= 0) & (st.churn_day[idx] < ctx.day0 + ctx.days),
                   st.churn_day[idx] - ctx.day0, ctx.days)
    share = np.clip((end - start) / ctx.days, 0.0, 1.0)
    units = np.round(level * share * rng.lognormal(0, 0.12, n), 1)
    active_days = np.minimum(rng.binomial(ctx.days, np.clip(0.25 + 0.6 * level / (level + 60), 0, 1))
                             * share, ctx.days).astype(np.int16)
    return {"cust": idx, "usage_units": units, "active_days": active_days,
            "sessions": rng.poisson(units / 4.0)}


def _invoice(rng, pop, st, idx, rise, late, ctx: MonthContext) -> dict:
    """One invoice per customer whose billing day falls while the account is open."""
    day = ctx.day0 + np.minimum(pop.signup_day[idx], ctx.days - 1)
    open_then = ((pop.signup_month[idx] < ctx.t) | (pop.signup_day[idx] <= day - ctx.day0)) & (
        (st.churn_day[idx] < 0) | (st.churn_day[idx] > day))
    rows = np.flatnonzero(open_then)
    c = idx[rows]
    price = st.list_price[c]
    discount = np.where(st.discount_left[c] > 0, np.round(0.2 * price, 2), 0.0) + st.credit_due[c]
    st.discount_left[c] = np.maximum(st.discount_left[c] - 1, 0)
    st.credit_due[c] = 0.0
    st.late_prev[idx] = late
    days_late = np.where(late[rows], rng.geometric(0.12, len(rows)), 0)
    term = CONTRACT_MONTHS[st.contract[c]]
    return {"cust": c, "day": day[rows], "plan": st.plan[c], "contract": st.contract[c],
            "contract_end": np.where(term > 0, st.contract_end[c], -1), "list_price": price,
            "price_change_pct": np.round(100 * rise[rows], 2),
            "discount": np.round(np.minimum(discount, price), 2),
            "amount": np.round(np.maximum(price - discount, 0), 2), "days_late": days_late}


def _contract_rollover(st, idx, renew) -> None:
    """Term contracts that come up for renewal roll over for another term."""
    who = idx[renew]
    st.contract_end[who] += CONTRACT_MONTHS[st.contract[who]]


def _surveys(rng, pop, st, idx, tickets, orders, per, ctx: MonthContext) -> dict:
    """Relationship wave (everyone active), post-ticket and post-purchase surveys."""
    parts = []
    if ctx.relationship_wave:
        here = idx[(st.churn_day[idx] < 0) | (st.churn_day[idx] > ctx.day0 + 4)]
        here = here[(pop.signup_month[here] < ctx.t)]
        parts.append(sv.invitations(rng, pop, here, 0, np.full(len(here), ctx.day0 + 4.4),
                                    np.full(len(here), -1), st.sat[here], np.zeros(len(here))))
    closed = ~tickets["unresolved"] | (rng.random(len(tickets["cust"])) < 0.5)
    pick = np.flatnonzero(closed & (rng.random(len(closed)) < 0.5))
    c = tickets["cust"][pick]
    penalty = 1.0 * tickets["unresolved"][pick] + 0.05 * np.minimum(tickets["res_days"][pick], 20)
    sent = tickets["opened_day"][pick] + tickets["res_days"][pick] + 1
    parts.append(sv.invitations(rng, pop, c, 1, sent, pick, st.sat[c], penalty))
    pick_o = np.flatnonzero((orders["status"] < 2) & (rng.random(len(orders["cust"])) < 0.3))
    c = orders["cust"][pick_o]
    parts.append(sv.invitations(rng, pop, c, 2, orders["ordered_day"][pick_o] + 3, pick_o,
                                st.sat[c], 2.0 * (orders["status"][pick_o] == 1)))
    inv = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    slow = np.zeros(len(inv["cust"]))
    unres = np.zeros(len(inv["cust"]))
    support = inv["touchpoint"] == 1
    slow[support] = np.maximum(tickets["res_days"][inv["trigger"][support]] - 3, 0)
    unres[support] = tickets["unresolved"][inv["trigger"][support]]
    resp = sv.responses(rng, inv, st.drivers[inv["cust"]], slow, unres)
    resp = sv.duplicate_across_channels(rng, pop, inv["cust"], resp)
    return {"invitations": inv, "responses": resp}
