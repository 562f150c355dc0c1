"""Shadow prices of the scarce resources: how the greedy plan trades value for capacity.

Prices of the binding budget, rep minutes and action counts (Lagrangian relaxation, found
by bisection) order the greedy allocation and bound the value of any feasible plan.
Design: docs/prescribe.md#shadow-prices
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

ITERATIONS = 24     # bisection steps per resource (interval shrinks 1.7e7-fold)
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

    def net(self, p: Problem, skip: str | None = None) -> np.ndarray:
        """Net value of every candidate at these prices (``skip``: leave one family out)."""
        out = p.ev.copy()
        for family in FAMILIES:
            if family != skip:
                out -= _charge(p, family, getattr(self, family))
        return out


FAMILIES = ("budget", "rep", "action")


def _charge(p: Problem, family: str, price) -> np.ndarray | float:
    """What a family's price takes off each candidate's value."""
    if family == "budget":
        return float(np.atleast_1d(price)[0]) * p.cost
    if family == "rep":
        return np.asarray(price)[p.rep][:, None] * p.minutes
    return np.asarray(price)[None, :]


def choose(net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's best action by net value (first on ties) and the customers who take it."""
    best = net.argmax(axis=1)
    top = np.take_along_axis(net, best[:, None], axis=1)[:, 0]
    rows = np.flatnonzero(top > 0)
    return best[rows], rows


def usage(p: Problem, family: str, net: np.ndarray) -> np.ndarray:
    """Budget spent, minutes per rep or count per action of the priced choices."""
    best, rows = choose(net)
    if family == "budget":
        return np.array([p.cost[rows, best].sum()])
    if family == "rep":
        return np.bincount(p.rep[rows], weights=p.minutes[rows, best], minlength=len(p.rep_cap))
    return np.bincount(best, minlength=len(p.act_cap)).astype(np.float64)


def _ceiling(ev: np.ndarray, weight: np.ndarray) -> float:
    """A price at which no candidate using the resource is worth taking."""
    pos = (weight > 0) & np.isfinite(ev) & (ev > 0)
    return float((ev[pos] / weight[pos]).max()) * 1.01 if pos.any() else 0.0


def _reprice(p: Problem, prices: Prices, family: str, hi: float) -> Prices:
    """Smallest prices of one family that make its usage fit, the other families held fixed.

    Groups of the family (reps, actions) are bisected simultaneously: exact for reps,
    which share no customers; for action counts, which interact, the next round corrects.
    """
    cap = {"budget": np.array([p.budget]), "rep": p.rep_cap, "action": p.act_cap}[family]
    if not np.isfinite(cap).any():
        return prices
    fixed = prices.net(p, skip=family)          # computed once per family, not per step

    def used(x: np.ndarray) -> np.ndarray:
        return usage(p, family, fixed - _charge(p, family, x))

    price = np.zeros(len(cap))
    binding = np.isfinite(cap) & (used(price) > cap + 1e-9)
    if binding.any() and hi > 0:
        lo, up = np.zeros(len(cap)), np.where(binding, hi, 0.0)
        for _ in range(ITERATIONS):
            mid = 0.5 * (lo + up)
            over = used(mid) > cap + 1e-9
            lo, up = np.where(binding & over, mid, lo), np.where(binding & ~over, mid, up)
        price = up
    return replace(prices, **{family: float(price[0]) if family == "budget" else price})


def shadow_prices(p: Problem) -> Prices:
    """Prices of budget, rep minutes and action counts (all 0 when nothing binds)."""
    prices = Prices(0.0, np.zeros(len(p.rep_cap)), np.zeros(len(p.act_cap)))
    keep = np.isfinite(p.ev).any(axis=1)
    if not keep.any():
        return prices
    p = replace(p, ev=p.ev[keep], cost=p.cost[keep], minutes=p.minutes[keep], rep=p.rep[keep])
    finite = p.ev[np.isfinite(p.ev)]
    ceilings = {"budget": _ceiling(p.ev, p.cost), "rep": _ceiling(p.ev, p.minutes),
                "action": float(finite.max()) * 1.01 if finite.max() > 0 else 0.0}
    for _ in range(ROUNDS):
        for family, hi in ceilings.items():
            prices = _reprice(p, prices, family, hi)
        priced = [f for f in FAMILIES if np.any(np.atleast_1d(getattr(prices, f)) > 0)]
        if len(priced) <= 1:        # one binding family: another round would find the same prices
            break
    return prices


def value_bound(p: Problem, prices: Prices) -> float:
    """Lagrangian upper bound on the expected value of any plan that keeps every limit."""
    net = prices.net(p)
    best = np.maximum(net.max(axis=1), 0.0) if net.shape[1] else np.zeros(len(net))
    terms = [prices.budget * p.budget if prices.budget > 0 else 0.0,
             float((prices.rep * np.where(prices.rep > 0, p.rep_cap, 0.0)).sum()),
             float((prices.action * np.where(prices.action > 0, p.act_cap, 0.0)).sum())]
    return float(best.sum() + sum(terms))
