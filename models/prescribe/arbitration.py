"""Arbitration: turn every customer's candidate actions into one feasible plan per cycle.

Rules, in the order a customer meets them (the first one that stops a customer is the
reason recorded, so every customer in is either planned or skipped for one reason):

1. ``not_eligible``: no action passes the catalogue's eligibility rules;
2. ``no_positive_value``: no eligible action is worth more than
   ``max(min_expected_value, 0)`` (an action that loses money is never planned);
3. ``contact_policy_recent_action``: the last retention action was less than
   ``min_days_since_contact`` days ago, or every valuable action is still inside its own
   ``limits.min_days_between``;
4. ``contact_policy_recent_survey``: a survey invitation less than ``min_days_since_survey``
   days ago;
5. ``weekly_cap``: this contact would exceed ``max_contacts_per_week`` (actions and survey
   invitations of the last 7 days plus this one);
6. limits met during allocation: ``action_limit`` (``limits.max_per_cycle``),
   ``rep_capacity`` (each rep has ``rep_minutes_per_day x working_days_per_cycle``
   minutes), ``budget`` (total cost, from the argument or ``params.budget``). The reason
   is the limit that stopped the customer's highest-priority action.

Allocation is greedy over (customer, action) pairs in priority order, at most one action
per customer; when a customer's best action hits a limit, their next-best is tried in
its own place in the order. Priority is the expected value net of the shadow prices of
the limits that bind (``models.prescribe.pricing``): plain expected value when nothing
binds, and under a binding budget a trade-off between value and cost that beats both
"highest EV first" and "highest EV per cost". Missing contact history (NaN, or a
customer absent from ``contacts``) means never contacted. A customer without a rep can
only get actions that take no rep time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from configs.settings import PrescribeParams
from models.prescribe.actions import Catalogue
from models.prescribe.pricing import Prices, Problem, shadow_prices, value_bound

log = logging.getLogger(__name__)

SKIP_REASONS = ("not_eligible", "no_positive_value", "contact_policy_recent_action",
                "contact_policy_recent_survey", "weekly_cap", "action_limit", "rep_capacity", "budget")
_ACTION_LIMIT, _REP, _BUDGET = 5, 6, 7
EPS = 1e-9
CHUNK = 65_536          # first chunk of the pair-by-pair pass; doubles each time
REQUIRED = ("customer_id", "rep_id", "action_id", "expected_value", "cost", "handling_minutes", "eligible")
CONTACT_COLUMNS = ("days_since_last_action", "days_since_last_invitation", "contacts_7d")
PLAN_COLUMNS = ["customer_id", "rep_id", "rank_in_rep", "action_id", "action_label", "channel",
                "expected_value", "cost", "handling_minutes", "p_churn", "uplift", "value_at_risk",
                "priority"]
SKIP_COLUMNS = ["customer_id", "rep_id", "reason", "action_id", "expected_value"]


@dataclass
class Plan:
    """Chosen actions (one row per planned customer) and every other customer with a reason."""

    actions: pd.DataFrame
    skipped: pd.DataFrame
    summary: dict = field(default_factory=dict)
    rep_minutes_per_day: float = 240.0


@dataclass(frozen=True)
class Encoded:
    """Candidates as dense customers x actions matrices (row = -1 where a pair is absent)."""

    customers: np.ndarray   # customer ids, one per customer code
    row: np.ndarray         # candidate row per (customer, action)
    rep: np.ndarray         # rep group per customer; the last group is "no rep" (capacity 0)
    reps: np.ndarray        # rep ids per group (without the "no rep" group)


def _action_codes(actions: pd.Series, ids: list[str]) -> np.ndarray:
    """Catalogue position of each row's action (-1: unknown); cheap for a categorical column."""
    if isinstance(actions.dtype, pd.CategoricalDtype):
        lookup = pd.Index(ids).get_indexer(actions.cat.categories.astype(str))
        codes = actions.cat.codes.to_numpy()
        return np.where(codes >= 0, np.append(lookup, -1)[codes], -1)
    return pd.Index(ids).get_indexer(actions.astype(str))


def _encode(candidates: pd.DataFrame, catalogue: Catalogue) -> Encoded:
    """Codes for customers, actions and reps; refuses unknown actions and duplicate pairs."""
    missing = [c for c in REQUIRED if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates: missing column {missing[0]!r}")
    cust, customers = pd.factorize(candidates["customer_id"], sort=False)
    act = _action_codes(candidates["action_id"], catalogue.ids)
    if (act < 0).any():
        bad = candidates["action_id"].to_numpy()[act < 0][0]
        raise ValueError(f"candidates: action {bad!r} is not in the catalogue ({catalogue.source})")
    n, k = len(customers), len(catalogue)
    flat = cust.astype(np.int64) * k + act
    if len(flat) and np.bincount(flat, minlength=n * k).max() > 1:
        raise ValueError("candidates: a (customer_id, action_id) pair appears twice")
    row = np.full(n * k, -1, dtype=np.int64)
    row[flat] = np.arange(len(flat))
    rep_rows, reps = pd.factorize(candidates["rep_id"], sort=True)
    rep_rows = np.where(rep_rows < 0, len(reps), rep_rows)
    rep = np.full(n, len(reps), dtype=np.int64)
    rep[cust] = rep_rows                          # any row of the customer; checked just below
    if (rep[cust] != rep_rows).any():
        raise ValueError("candidates: a customer has more than one rep_id")
    return Encoded(np.asarray(customers, dtype=object), row.reshape(n, k), rep,
                   np.asarray(reps, dtype=object))


def _dense(values: np.ndarray, row: np.ndarray, fill) -> np.ndarray:
    """A per-candidate column laid out as customers x actions."""
    out = np.where(row >= 0, values[np.maximum(row, 0)] if len(values) else fill, fill)
    return out


def _contacts(contacts: pd.DataFrame | None, customers: np.ndarray) -> pd.DataFrame:
    """Each customer's contact history aligned to the customer codes; absent = never."""
    if contacts is None:
        contacts = pd.DataFrame(columns=["customer_id", *CONTACT_COLUMNS])
    missing = [c for c in ("customer_id", *CONTACT_COLUMNS) if c not in contacts.columns]
    if missing:
        raise ValueError(f"contacts: missing column {missing[0]!r}")
    if contacts["customer_id"].duplicated().any():
        raise ValueError("contacts: duplicate customer_id")
    out = contacts.set_index("customer_id")[list(CONTACT_COLUMNS)].reindex(customers)
    out = out.apply(pd.to_numeric, errors="coerce")
    out["contacts_7d"] = out["contacts_7d"].fillna(0.0)
    return out


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
    cost = _dense(candidates["cost"].to_numpy(np.float64), enc.row, np.inf)
    minutes = _dense(candidates["handling_minutes"].to_numpy(np.float64), enc.row, np.inf)
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
              params: PrescribeParams, budget: float | None = None) -> Plan:
    """One plan for the cycle: at most one action per customer within policy and limits.

    ``candidates`` is the long frame of ``candidate_actions``; ``contacts`` has
    customer_id, days_since_last_action, days_since_last_invitation (NaN = never) and
    contacts_7d. ``budget`` overrides ``params.budget`` when given.
    """
    enc = _encode(candidates, catalogue)
    n = len(enc.customers)
    ev = _dense(candidates["expected_value"].to_numpy(np.float64), enc.row, np.nan)
    elig = _dense(candidates["eligible"].to_numpy(bool), enc.row, False)
    threshold = max(params.min_expected_value, 0.0)
    with np.errstate(invalid="ignore"):
        positive = elig & (ev > threshold)
    history = _contacts(contacts, enc.customers)
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
    actions = _plan_frame(candidates, catalogue, enc, chosen_c, chosen_a, net)
    skipped = _skipped_frame(candidates, enc, catalogue.ids, ev, elig, np.flatnonzero(~planned),
                             reason)
    if len(actions) + len(skipped) != n or actions["customer_id"].duplicated().any():
        raise RuntimeError(f"arbitration: {n} customers in, {len(actions)} planned + "
                           f"{len(skipped)} skipped")
    summary = _summary(actions, skipped, problem, prices, n, catalogue.ids)
    log.info("plan: %d of %d customers, expected value %.0f, cost %.0f", len(actions), n,
             summary["expected_value"], summary["cost"])
    return Plan(actions, skipped, summary, params.rep_minutes_per_day)


def _plan_frame(candidates: pd.DataFrame, catalogue: Catalogue, enc: Encoded, chosen_c: np.ndarray,
                chosen_a: np.ndarray, net: np.ndarray) -> pd.DataFrame:
    """Chosen rows with labels and channel, by rep, each rep's list ranked by expected value
    (ties by customer order); numeric keys only, so a million rows sort in a blink."""
    rows = enc.row[chosen_c, chosen_a]
    ev = candidates["expected_value"].to_numpy(np.float64)[rows]
    rep = enc.rep[chosen_c]                       # rep codes follow sorted rep ids; no rep last
    order = np.lexsort((chosen_c, -ev, rep))
    rows, rep, a = rows[order], rep[order], chosen_a[order]
    start = np.r_[True, rep[1:] != rep[:-1]] if len(rep) else np.zeros(0, dtype=bool)
    first = np.maximum.accumulate(np.where(start, np.arange(len(rep)), 0))
    out = pd.DataFrame({"customer_id": candidates["customer_id"].to_numpy()[rows],
                        "rep_id": candidates["rep_id"].to_numpy()[rows],
                        "rank_in_rep": np.arange(len(rep)) - first + 1,
                        "action_id": np.asarray(catalogue.ids, dtype=object)[a],
                        "action_label": np.asarray([x.label for x in catalogue], dtype=object)[a],
                        "channel": np.asarray([x.channel for x in catalogue], dtype=object)[a]})
    for c in ("expected_value", "cost", "handling_minutes", "p_churn", "uplift", "value_at_risk"):
        out[c] = candidates[c].to_numpy(np.float64)[rows] if c in candidates.columns else np.nan
    out["priority"] = net[chosen_c, chosen_a][order]
    return out[PLAN_COLUMNS]


def _skipped_frame(candidates, enc: Encoded, ids: list[str], ev, elig, idx: np.ndarray,
                   reason: np.ndarray) -> pd.DataFrame:
    """Unplanned customers with their reason and their best eligible action (if any)."""
    score = np.where(elig[idx], np.nan_to_num(ev[idx], nan=-np.inf), -np.inf)
    best = score.argmax(axis=1) if len(idx) else np.zeros(0, dtype=np.int64)
    has = elig[idx].any(axis=1)
    any_row = enc.row[idx].max(axis=1)          # some candidate row of the customer, for its rep
    return pd.DataFrame({
        "customer_id": enc.customers[idx],
        "rep_id": candidates["rep_id"].to_numpy()[any_row],
        "reason": pd.Categorical.from_codes(reason[idx], categories=list(SKIP_REASONS)),
        "action_id": np.where(has, np.asarray(ids, dtype=object)[best], None),
        "expected_value": np.where(has, ev[idx, best], np.nan),
    }, columns=SKIP_COLUMNS)


def _summary(actions: pd.DataFrame, skipped: pd.DataFrame, problem: Problem, prices: Prices, n: int,
             ids: list[str]) -> dict:
    """Counts by reason, totals, the binding prices and the value bound."""
    counts = skipped["reason"].value_counts()
    return {
        "customers": n,
        "planned": len(actions),
        "skipped": {r: int(counts.get(r, 0)) for r in SKIP_REASONS},
        "expected_value": float(actions["expected_value"].sum()),
        "cost": float(actions["cost"].sum()),
        "handling_minutes": float(actions["handling_minutes"].sum()),
        "budget": None if not np.isfinite(problem.budget) else problem.budget,
        "budget_price": prices.budget,
        "reps_at_capacity_price": int((prices.rep > 0).sum()),
        "action_prices": {a: float(p) for a, p in zip(ids, prices.action, strict=True) if p > 0},
        "value_bound": value_bound(problem, prices),
    }


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
