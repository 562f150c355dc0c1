"""Shadow prices of the scarce resources: how the greedy plan trades value for capacity.

Choosing at most one action per customer under a budget, per-rep minutes and per-action
counts is a multiple-choice knapsack. Ranking by raw expected value wastes a binding
budget (one 45-cost action worth 100 beats three 15-cost actions worth 40 each), and
ranking by EV per cost picks a cheap, weak action for a customer for whom an expensive
one pays far more. The Lagrangian relaxation does both right: with a price per unit of
each binding resource, every customer takes the action with the best *net* value

    net = EV - lambda x cost - mu[rep] x minutes - nu[action]

and the prices are the smallest that make those choices fit. Prices are found by
bisection per resource (reps are separable and bisected all at once; the budget is one
number; action counts interact, hence a second round). A resource that does not bind
has price 0, so with slack constraints net = EV and the plan is each customer's best
action. The prices only order the greedy allocation, which enforces every limit
exactly; they also give an upper bound on the value any feasible plan can reach
(weak duality), reported beside the plan's value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

ITERATIONS = 30     # bisection steps per resource (interval shrinks 1e9-fold)
ROUNDS = 2          # coordinate rounds over budget, reps and action counts


@dataclass(frozen=True)
class Problem:
    """Dense (customers x actions) view of the candidates that may be planned."""

    ev: np.ndarray        # expected value, -inf where not plannable
    cost: np.ndarray
    minutes: np.ndarray
    rep: np.ndarray       # rep group per customer (0..n_reps-1)
    rep_cap: np.ndarray   # minutes per rep group
    act_cap: np.ndarray   # count per action (inf: no cap)
    budget: float         # inf: no budget


@dataclass(frozen=True)
class Prices:
    budget: float
    rep: np.ndarray
    action: np.ndarray

    def net(self, p: Problem) -> np.ndarray:
        """Net value of every candidate at these prices."""
        out = p.ev - self.budget * p.cost - self.rep[p.rep][:, None] * p.minutes - self.action[None, :]
        return out


def choose(p: Problem, prices: Prices) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's best action by net value, and whether it is worth taking (net > 0)."""
    net = prices.net(p)
    best = net.argmax(axis=1) if net.shape[1] else np.zeros(len(net), dtype=np.int64)
    top = net[np.arange(len(net)), best] if net.shape[1] else np.full(len(net), -np.inf)
    return best, top > 0


def usage(p: Problem, prices: Prices) -> tuple[float, np.ndarray, np.ndarray]:
    """Budget, minutes per rep and count per action the priced choices would use."""
    best, take = choose(p, prices)
    rows = np.flatnonzero(take)
    b = best[rows]
    spent = float(p.cost[rows, b].sum())
    minutes = np.bincount(p.rep[rows], weights=p.minutes[rows, b], minlength=len(p.rep_cap))
    counts = np.bincount(b, minlength=len(p.act_cap)).astype(np.float64)
    return spent, minutes, counts


def _ceiling(ev: np.ndarray, weight: np.ndarray) -> float:
    """A price at which no candidate using the resource is worth taking."""
    pos = (weight > 0) & np.isfinite(ev) & (ev > 0)
    return float((ev[pos] / weight[pos]).max()) * 1.01 if pos.any() else 0.0


def _bisect(current: np.ndarray, over_at, hi: float, cap: np.ndarray) -> np.ndarray:
    """Smallest prices (vector) whose usage fits, for groups that bind at zero price.

    ``over_at(prices) -> usage`` evaluates every group at once; groups are bisected
    simultaneously, which is exact for separable groups (reps) and a good start for the
    others (action counts; the next round corrects).
    """
    zero = current.copy()
    binding = np.isfinite(cap)
    zero[binding] = 0.0
    binding &= over_at(zero) > cap + 1e-9
    if not binding.any() or hi <= 0:
        return zero
    lo, up = np.zeros_like(current), np.where(binding, hi, 0.0)
    for _ in range(ITERATIONS):
        mid = np.where(binding, 0.5 * (lo + up), zero)
        over = over_at(mid) > cap + 1e-9
        lo = np.where(binding & over, mid, lo)
        up = np.where(binding & ~over, mid, up)
    return np.where(binding, up, zero)


def _reprice(p: Problem, prices: Prices, family: str, hi: float) -> Prices:
    """Re-price one family of limits (budget, rep or action) with the others held fixed."""
    slot = {"budget": 0, "rep": 1, "action": 2}[family]
    current = np.atleast_1d(np.asarray(getattr(prices, family), dtype=np.float64))
    cap = {"budget": np.array([p.budget]), "rep": p.rep_cap, "action": p.act_cap}[family]

    def used(x: np.ndarray) -> np.ndarray:
        trial = replace(prices, **{family: float(x[0]) if family == "budget" else x})
        return np.atleast_1d(usage(p, trial)[slot])

    new = _bisect(current, used, hi, cap)
    return replace(prices, **{family: float(new[0]) if family == "budget" else new})


def shadow_prices(p: Problem) -> Prices:
    """Prices of budget, rep minutes and action counts (all 0 when nothing binds)."""
    prices = Prices(0.0, np.zeros(len(p.rep_cap)), np.zeros(len(p.act_cap)))
    if p.ev.size == 0:
        return prices
    spent, minutes, counts = usage(p, prices)
    if spent <= p.budget + 1e-9 and (minutes <= p.rep_cap + 1e-9).all() and (counts <= p.act_cap).all():
        return prices
    finite = p.ev[np.isfinite(p.ev)]
    ceilings = {"budget": _ceiling(p.ev, p.cost), "rep": _ceiling(p.ev, p.minutes),
                "action": float(finite.max()) * 1.01 if finite.size and finite.max() > 0 else 0.0}
    for _ in range(ROUNDS):
        for family, hi in ceilings.items():
            prices = _reprice(p, prices, family, hi)
    return prices


def value_bound(p: Problem, prices: Prices) -> float:
    """Lagrangian upper bound on the expected value of any plan that keeps every limit."""
    net = prices.net(p)
    best = np.maximum(net.max(axis=1), 0.0) if net.shape[1] else np.zeros(len(net))
    terms = [prices.budget * p.budget if prices.budget > 0 else 0.0,
             float((prices.rep * np.where(prices.rep > 0, p.rep_cap, 0.0)).sum()),
             float((prices.action * np.where(prices.action > 0, p.act_cap, 0.0)).sum())]
    return float(best.sum() + sum(terms))
