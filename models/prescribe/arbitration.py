"""Arbitration: turn every customer's candidate actions into one feasible plan per cycle.

Rules in order (eligibility, positive value, contact policy, weekly cap, then action limits,
rep capacity and budget during a greedy allocation priced by ``models.prescribe.pricing``);
every customer not planned gets one reason. Design: docs/prescribe.md#arbitration
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from configs.settings import PrescribeParams
from models.prescribe.actions import Catalogue
from models.prescribe.encoding import Encoded, contact_history, dense, encode
from models.prescribe.plan_frames import Plan, plan_frame, plan_summary, skipped_frame
from models.prescribe.pricing import Problem, shadow_prices

log = logging.getLogger(__name__)

_ACTION_LIMIT, _REP, _BUDGET = 5, 6, 7   # positions in plan_frames.SKIP_REASONS
EPS = 1e-9
CHUNK = 65_536          # first chunk of the pair-by-pair pass; doubles each time


def _funnel(elig, positive, repeat_ok, history: pd.DataFrame, params: PrescribeParams) -> np.ndarray:
    """Reason code per customer for the checks before allocation; -1 = goes to allocation."""
    last_action = history["days_since_last_action"].to_numpy(np.float64)
    last_invite = history["days_since_last_invitation"].to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        recent_action = (last_action < params.min_days_since_contact) | ~(positive & repeat_ok).any(1)
        recent_survey = last_invite < params.min_days_since_survey
    weekly = history["contacts_7d"].to_numpy(np.float64) + 1 > params.max_contacts_per_week
    return np.select([~elig.any(1), ~positive.any(1), recent_action, recent_survey, weekly],
                     [0, 1, 2, 3, 4], -1)


def _first_violation(head, rep, act, cost, minutes, problem: Problem) -> int:
    """Index of the first pair in priority order at which accepting every customer's first
    pair would break a limit: everything before it is what the greedy loop would do."""
    h = np.flatnonzero(head)
    r, a = rep[h], act[h]
    cum_rep = pd.Series(minutes[h]).groupby(r).cumsum().to_numpy()
    cum_act = pd.Series(np.ones(len(h))).groupby(a).cumsum().to_numpy()
    cum_cost = np.cumsum(cost[h])
    bad = ((cum_rep > problem.rep_cap[r] + EPS) | (cum_act > problem.act_cap[a] + EPS)
           | (cum_cost > problem.budget + EPS))
    hit = np.flatnonzero(bad)
    return int(h[hit[0]]) if len(hit) else len(head)


@dataclass
class _State:
    """What is left of each limit while the greedy pass runs (lists: fast scalar access)."""

    rep_left: list
    act_left: list
    budget_left: float
    done: bytearray          # 1 = customer planned
    reason: bytearray        # blocking reason code per customer; 255 = none yet

    def blocked_reasons(self, rep, act, cost, minutes) -> np.ndarray:
        """Reason code each pair would be refused with now (-1: it would fit)."""
        rep_left, act_left = np.asarray(self.rep_left), np.asarray(self.act_left)
        return np.select([act_left[act] < 1 - EPS, minutes > rep_left[rep] + EPS,
                          cost > self.budget_left + EPS], [_ACTION_LIMIT, _REP, _BUDGET], -1)


def _greedy(st: _State, cust, rep, act, cost, minutes, accepted: np.ndarray, offset: int) -> None:
    """The one sequential step (a limit depends on everything accepted before it)."""
    done, reason, rep_left, act_left = st.done, st.reason, st.rep_left, st.act_left
    budget_left = st.budget_left
    for j, (c, r, a, k, m) in enumerate(zip(cust.tolist(), rep.tolist(), act.tolist(), cost.tolist(),
                                            minutes.tolist(), strict=True)):
        if done[c]:
            continue
        why = (_ACTION_LIMIT if act_left[a] < 1 - EPS else _REP if m > rep_left[r] + EPS
               else _BUDGET if k > budget_left + EPS else -1)
        if why >= 0:
            if reason[c] == 255:
                reason[c] = why
            continue
        done[c] = 1
        act_left[a] -= 1
        rep_left[r] -= m
        budget_left -= k
        accepted[offset + j] = True
    st.budget_left = budget_left


def _finish(st: _State, cust, rep, act, cost, minutes) -> bool:
    """When nothing left in the order can fit any more, record every remaining customer's
    reason at once (the state no longer changes) and say so; otherwise do nothing."""
    live = ~np.frombuffer(st.done, dtype=bool)[cust]
    why = st.blocked_reasons(rep[live], act[live], cost[live], minutes[live])
    if (why < 0).any():
        return False
    c = cust[live]
    first = ~pd.Series(c).duplicated().to_numpy()
    reason = np.frombuffer(st.reason, dtype=np.uint8)
    unset = reason[c[first]] == 255
    reason[c[first][unset]] = why[first][unset]
    return True


def _allocate(order_c, order_a, head, problem: Problem, n_customers: int):
    """Greedy pass over the ordered pairs: accepted mask and the blocking reason per customer.

    The prefix in which no limit binds is accepted at once; the rest runs pair by pair in
    chunks of growing size, and stops early once no remaining pair can fit.
    """
    rep = problem.rep[order_c]
    cost = problem.cost[order_c, order_a]
    minutes = problem.minutes[order_c, order_a]
    start = _first_violation(head, rep, order_a, cost, minutes, problem)
    accepted = np.zeros(len(order_c), dtype=bool)
    accepted[:start] = head[:start]
    pre = np.flatnonzero(accepted)
    done = np.zeros(n_customers, dtype=bool)
    done[order_c[pre]] = True
    st = _State(
        rep_left=(problem.rep_cap - np.bincount(rep[pre], weights=minutes[pre],
                                                minlength=len(problem.rep_cap))).tolist(),
        act_left=(problem.act_cap - np.bincount(order_a[pre], minlength=len(problem.act_cap))).tolist(),
        budget_left=problem.budget - float(cost[pre].sum()),
        done=bytearray(done.tobytes()), reason=bytearray(b"\xff" * n_customers))
    pos, chunk = start, CHUNK
    while pos < len(order_c):
        tail = slice(pos, None)
        if _finish(st, order_c[tail], rep[tail], order_a[tail], cost[tail], minutes[tail]):
            break
        part = slice(pos, pos + chunk)
        _greedy(st, order_c[part], rep[part], order_a[part], cost[part], minutes[part], accepted, pos)
        pos, chunk = pos + chunk, 2 * chunk
    reason = np.frombuffer(st.reason, dtype=np.uint8).astype(np.int64)
    return accepted, np.where(reason == 255, -1, reason)


def _problem(ev, valid, enc: Encoded, candidates, catalogue, params, budget) -> Problem:
    reps = len(enc.reps) + 1
    rep_cap = np.full(reps, params.rep_minutes_per_day * params.working_days_per_cycle)
    rep_cap[-1] = 0.0                   # customers without a rep: only actions with no rep time
    cost = dense(candidates["cost"].to_numpy(np.float64), enc.row, np.inf)
    minutes = dense(candidates["handling_minutes"].to_numpy(np.float64), enc.row, np.inf)
    total = budget if budget is not None else params.budget
    return Problem(np.where(valid, ev, -np.inf), np.where(valid, cost, 0.0), np.where(valid, minutes, 0.0),
                   enc.rep, rep_cap, catalogue.max_per_cycle(), np.inf if total is None else float(total))


def _order(net: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plannable pairs by priority (net value; ties keep customer, then action order), and
    which pair is each customer's first: their best action by net value."""
    c, a = np.nonzero(valid)                      # customer-major, catalogue order
    order = np.argsort(-net[c, a], kind="stable")
    c, a = c[order], a[order]
    best = np.where(valid, net, -np.inf).argmax(axis=1)   # first maximum = first in the order
    return c, a, a == best[c]


def arbitrate(candidates: pd.DataFrame, contacts: pd.DataFrame | None, catalogue: Catalogue,
              params: PrescribeParams, budget: float | None = None,
              rows: np.ndarray | None = None) -> Plan:
    """One plan for the cycle: at most one action per customer within policy and limits.

    ``candidates`` is the long frame of ``candidate_actions``; ``contacts`` has
    customer_id, days_since_last_action, days_since_last_invitation (NaN = never) and
    contacts_7d. ``budget`` overrides ``params.budget`` when given. ``rows``: positions of
    the candidate rows to plan (whole customers; None: all), read in place, not copied.
    """
    enc = encode(candidates, catalogue, rows)
    n = len(enc.customers)
    ev = dense(candidates["expected_value"].to_numpy(np.float64), enc.row, np.nan)
    elig = dense(candidates["eligible"].to_numpy(bool), enc.row, False)
    threshold = max(params.min_expected_value, 0.0)
    with np.errstate(invalid="ignore"):
        positive = elig & (ev > threshold)
        if "expected_value_low" in candidates:   # safe rule: the value's lower bound must pay
            low = dense(candidates["expected_value_low"].to_numpy(np.float64), enc.row, np.nan)
            positive &= low > threshold
    history = contact_history(contacts, enc.customers)
    days = history["days_since_last_action"].to_numpy(np.float64)[:, None]
    with np.errstate(invalid="ignore"):
        repeat_ok = np.isnan(days) | (days >= catalogue.min_days_between()[None, :])
    reason = _funnel(elig, positive, repeat_ok, history, params)
    valid = positive & repeat_ok & (reason < 0)[:, None]
    problem = _problem(ev, valid, enc, candidates, catalogue, params, budget)
    prices = shadow_prices(problem)
    net = prices.net(problem)
    order_c, order_a, head = _order(net, valid)
    accepted, blocked = _allocate(order_c, order_a, head, problem, n)
    chosen_c, chosen_a = order_c[accepted], order_a[accepted]
    pool = reason < 0
    planned = np.zeros(n, dtype=bool)
    planned[chosen_c] = True
    reason = np.where(pool & ~planned, blocked, reason)
    if (reason[~planned] < 0).any() or (pool & ~planned & (blocked < 0)).any():
        raise RuntimeError("arbitration: a customer left the plan without a reason")
    actions = plan_frame(candidates, catalogue, enc, chosen_c, chosen_a, net)
    skipped = skipped_frame(candidates, enc, catalogue.ids, ev, elig, np.flatnonzero(~planned),
                            reason)
    if len(actions) + len(skipped) != n or actions["customer_id"].duplicated().any():
        raise RuntimeError(f"arbitration: {n} customers in, {len(actions)} planned + "
                           f"{len(skipped)} skipped")
    summary = plan_summary(actions, skipped, problem, prices, n, catalogue.ids)
    log.info("plan: %d of %d customers, expected value %.0f, cost %.0f", len(actions), n,
             summary["expected_value"], summary["cost"])
    return Plan(actions, skipped, summary, params.rep_minutes_per_day)


def rep_lists(plan: Plan) -> pd.DataFrame:
    """Each rep's ordered list: rank, customer, action, value, and the working day it starts
    on when the rep works down the list at ``rep_minutes_per_day``."""
    out = plan.actions.sort_values(["rep_id", "rank_in_rep"], kind="mergesort").reset_index(drop=True)
    before = out.groupby("rep_id", dropna=False)["handling_minutes"].cumsum() - out["handling_minutes"]
    out = out.rename(columns={"rank_in_rep": "rank"})
    out["minutes_before"] = before.to_numpy()
    out["day"] = (np.floor(out["minutes_before"] / plan.rep_minutes_per_day + EPS) + 1).astype(int)
    cols = ["rep_id", "rank", "customer_id", "action_id", "action_label", "channel", "expected_value",
            "p_churn", "uplift", "cost", "handling_minutes", "minutes_before", "day"]
    return out[cols]
