"""Experiments: a share of the cycle's budget on randomized actions where the effect is uncertain.

The evidence gate plans only what the log shows to pay; on a young programme that is nothing,
and a plan that never acts never learns. So a share of the budget (``prescribe.experiment_share``)
goes to randomized actions where the driver learner's posterior says the effect is still
uncertain and could be worth acting on. Cells are action x stratum: ``promising`` customers,
for whom the posterior gives the action's net value at least a PROMISING chance of being
positive, and among the others the stratum of the action's driver features (a driver well
above its average, or not). Averaged over a whole driver stratum the net value of an action
is negative almost surely (the customers it pays for are few), so without the promising
stratum nothing would ever be tried, and the loop would never learn. Each cell's share of the budget is the
posterior probability that it is the best cell with a positive average net value (Thompson
sampling); within a cell, customers are drawn at random (per rep) with a known probability,
and a random hold-out is drawn beside them. Design: docs/prescribe.md#experiments
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from configs.settings import PrescribeParams
from models.prescribe.actions import Catalogue
from models.prescribe.arbitration import _funnel  # the plan's own contact rules, not a copy
from models.prescribe.drivers import DriverInputs, customer_ids, driver_arms, driver_inputs
from models.prescribe.encoding import action_codes, contact_history, dense, encode
from models.prescribe.value import churn_reduction
from models.uplift.driver import DriverArm, bounds

DRAWS = 400          # posterior draws per action (Thompson shares, reproducible for a seed)
MAX_CELL_ROWS = 1000  # customers whose net values the draws average over, per cell (a random sample)
HIGH_SD = 1.0        # a driver this many sd above its mean puts the customer in the "high" stratum
PROMISING = 0.2      # P(net value > 0) under the posterior that makes a customer "promising"
BLOCK = 2_500        # rows per block of the per-customer draws: rows x DRAWS float temporaries
#                      of 8 MB each (20,000 rows held 0.3 GB more at any scale)
EFFECT_BLOCK = 20_000  # rows whose posterior effect (a few rows x parameters matrices) is computed at once
INTERVAL = 0.8       # the effect's interval shown to reps
POOL_COLUMNS = ("customer_id", "rep_id", "action_id", "p_churn", "value_at_risk", "cost",
                "handling_minutes")    # what the drawn rows and the design probabilities read
CELL_COLUMNS = ["action_id", "stratum", "pool", "share", "treated", "held_out", "mean_value",
                "p_positive"]


@dataclass
class Experiments:
    """Planned experiment rows (treated and held out), the cells, and every pooled customer's
    design probabilities (the pool of each cell when its turn came)."""

    actions: pd.DataFrame
    cells: pd.DataFrame
    pool: pd.DataFrame


def empty() -> Experiments:
    return Experiments(pd.DataFrame(), pd.DataFrame(columns=CELL_COLUMNS), pd.DataFrame())


def deliverable(candidates: pd.DataFrame, contacts: pd.DataFrame | None, catalogue: Catalogue,
                params: PrescribeParams, rows: np.ndarray | None = None) -> np.ndarray:
    """Per candidate row: may this action go to this customer now, value aside (eligibility,
    consent as applied to ``eligible``, the contact policy and weekly cap of ``arbitrate``).
    ``rows``: positions of the rows to check (whole customers); the others are False."""
    out = np.zeros(len(candidates), dtype=bool)
    if not len(candidates) or (rows is not None and not len(rows)):
        return out
    enc = encode(candidates, catalogue, rows)
    elig = dense(candidates["eligible"].to_numpy(bool), enc.row, False)
    history = contact_history(contacts, enc.customers)
    days = history["days_since_last_action"].to_numpy(np.float64)[:, None]
    with np.errstate(invalid="ignore"):
        repeat_ok = np.isnan(days) | (days >= catalogue.min_days_between()[None, :])
    ok = elig & repeat_ok & (_funnel(elig, elig, repeat_ok, history, params) < 0)[:, None]
    out[enc.row[ok & (enc.row >= 0)]] = True
    return out


def strata(arm: DriverArm, x: np.ndarray) -> np.ndarray:
    """``high`` where one of the action's drivers is HIGH_SD above its mean, else ``low``
    (``all`` for an action without driver features)."""
    if not len(arm.drivers):
        return np.full(len(x), "all", dtype=object)
    return np.where(arm.standardized(x).max(axis=1) >= HIGH_SD, "high", "low").astype(object)


def row_value_draws(arm: DriverArm, x: np.ndarray, r: np.ndarray, p_churn: np.ndarray,
                    value: np.ndarray, cost: float, thetas: np.ndarray) -> np.ndarray:
    """Net value (reduction x value at risk - cost) per row (rows x posterior draws)."""
    d = arm.standardized(x)
    ones, zeros = np.ones((len(d), 1)), np.zeros((len(d), 1))
    z0 = r[:, None] + np.hstack([ones, d, zeros, 0 * d]) @ thetas.T
    z1 = r[:, None] + np.hstack([ones, d, ones, d]) @ thetas.T
    reduction = churn_reduction(p_churn[:, None], expit(z1) - expit(z0))
    return reduction * value[:, None] - cost


def net_value_draws(arm: DriverArm, x: np.ndarray, r: np.ndarray, p_churn: np.ndarray,
                    value: np.ndarray, cost: float, thetas: np.ndarray) -> np.ndarray:
    """Average net value (reduction x value at risk - cost) over the rows, one per posterior draw."""
    return row_value_draws(arm, x, r, p_churn, value, cost, thetas).mean(axis=0)


def chance_positive(arm: DriverArm, x: np.ndarray, r: np.ndarray, p_churn: np.ndarray,
                    value: np.ndarray, cost: float, thetas: np.ndarray) -> np.ndarray:
    """Per row, the posterior probability that the action's net value is positive (in blocks)."""
    out = np.empty(len(x))
    for start in range(0, len(x), BLOCK):
        rows = slice(start, start + BLOCK)
        out[rows] = (row_value_draws(arm, x[rows], r[rows], p_churn[rows], value[rows], cost,
                                     thetas) > 0).mean(axis=1)
    return out


def thompson_shares(draws: np.ndarray, whole: bool = False) -> np.ndarray:
    """Per cell (rows of ``draws``: cells x posterior draws), the probability that it is the
    best cell and its average net value is positive; what is left is not spent. ``whole``
    (``experiment_spend: whole``): the probability that it is the best cell, paying or not,
    so the shares add up to 1 and the whole budget is spent on learning."""
    if not draws.size:
        return np.zeros(len(draws))
    best = draws.argmax(axis=0)
    if not whole:
        best = best[draws.max(axis=0) > 0]
    return np.bincount(best, minlength=len(draws)) / draws.shape[1]


def spread(k: int, sizes: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """``k`` draws over groups in proportion to ``sizes``, none above its cap (largest
    remainder, deterministic: the design probabilities follow from the pool alone)."""
    caps = np.minimum(caps, sizes).astype(np.int64)
    k = int(min(k, caps.sum()))
    if k <= 0 or sizes.sum() <= 0:
        return np.zeros(len(sizes), dtype=np.int64)
    quota = k * sizes / sizes.sum()
    out = np.minimum(np.floor(quota).astype(np.int64), caps)
    order = np.lexsort((np.arange(len(sizes)), -(quota - np.floor(quota))))
    while out.sum() < k:
        for g in order:
            if out.sum() >= k:
                break
            if out[g] < caps[g]:
                out[g] += 1
    return out


@dataclass
class Budget:
    """What the experiments may spend: ``amount`` of ``unit`` (``cost``: money when the cycle
    has a budget, ``handling_minutes``: rep time otherwise), ``rep_minutes`` per rep id."""

    unit: str
    amount: float
    rep_minutes: pd.Series
    actions_left: np.ndarray      # per catalogue action, count left under limits.max_per_cycle


def _cells(pool: pd.DataFrame, arms: dict[str, DriverArm], x: np.ndarray, r: np.ndarray,
           catalogue: Catalogue, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The pooled pairs (from ``_pool``: by catalogue action, each action's rows one block) with
    stratum and posterior effect (mean, interval) set in place; the cells; and the cells x
    draws average net values."""
    code = action_codes(pool["action_id"], catalogue.ids)
    edges = np.searchsorted(code, np.arange(len(catalogue.ids) + 1))
    n = len(pool)
    stratum = np.empty(n, dtype=object)
    mean_all, low_all, high_all = np.empty(n), np.empty(n), np.empty(n)
    at = pool["_x"].to_numpy()
    p_all = pool["p_churn"].to_numpy(np.float64)
    value_all = pool["value_at_risk"].to_numpy(np.float64)
    cells, draws = [], []
    for i, action in enumerate(catalogue.ids):
        block = slice(edges[i], edges[i + 1])
        if block.start == block.stop:
            continue
        arm = arms[action]
        xi, ri = x[at[block]], r[at[block]]
        for start in range(0, len(xi), EFFECT_BLOCK):   # row by row: blocks change no value
            part = slice(start, start + EFFECT_BLOCK)
            mean, sd = arm.effect(xi[part], ri[part])
            within = slice(block.start + start, block.start + start + len(mean))
            mean_all[within] = mean
            low_all[within], high_all[within] = bounds(mean, sd, INTERVAL)
        thetas = rng.multivariate_normal(arm.mean, arm.cov, size=DRAWS, method="eigh")
        p_churn, value = p_all[block], value_all[block]
        cost = float(catalogue[action].cost)
        chance = chance_positive(arm, xi, ri, p_churn, value, cost, thetas)
        mine = np.where(chance >= PROMISING, "promising", strata(arm, xi)).astype(object)
        stratum[block] = mine
        for name in sorted(set(mine)):
            take = np.flatnonzero(mine == name)
            if len(take) > MAX_CELL_ROWS:
                take = np.sort(rng.choice(take, MAX_CELL_ROWS, replace=False))
            draws.append(net_value_draws(arm, xi[take], ri[take], p_churn[take], value[take], cost,
                                         thetas))
            cells.append({"action_id": action, "stratum": name, "pool": int((mine == name).sum())})
    pool["stratum"], pool["uplift"] = stratum, mean_all
    pool["effect_low"], pool["effect_high"] = low_all, high_all
    return pool, pd.DataFrame(cells), np.vstack(draws)


def _pool(candidates: pd.DataFrame, keep: np.ndarray, arms: dict[str, DriverArm],
          catalogue: Catalogue) -> pd.DataFrame:
    """The ``keep`` rows of actions with an arm, POOL_COLUMNS only, ordered by catalogue
    action (candidate order within one), built in one copy: a pool the size of the book's
    candidates was otherwise held two or three times over while the cells were drawn."""
    code = action_codes(candidates["action_id"], catalogue.ids)
    keep = keep & np.isin(code, [i for i, a in enumerate(catalogue.ids) if a in arms])
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(code[rows], kind="stable")]
    pool = {c: candidates[c].to_numpy()[rows] for c in POOL_COLUMNS if c in candidates}
    pool["action_id"] = np.asarray(catalogue.ids, dtype=object)[code[rows]]
    return pd.DataFrame(pool)


def _draw_cell(cell: pd.DataFrame, n_treat: int, caps: pd.Series, controls: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """``n_treat`` customers of the cell's pool to treat, spread over reps (each within its
    ``caps``), and ``controls`` hold-outs per treated customer drawn beside them from the same
    rep's pool: per rep, a simple random sample of treated + held out, split at random, so each
    pooled row's design probabilities are exact. A rep treats at most 1 / (1 + controls) of its
    pool, so every treated customer has its hold-outs. Controls cost nothing, and with few of
    them the effect's interval is mostly their noise (a treated:control ratio of 9:1 needs about
    8 times the treated customers of a 1:4 ratio for the same interval)."""
    names, code = np.unique(cell["_rep"].to_numpy(), return_inverse=True)
    sizes = np.bincount(code, minlength=len(names))
    room = np.floor(sizes / (1.0 + controls) + 1e-9)
    treat = spread(n_treat, sizes, np.minimum(caps.reindex(names).fillna(0).to_numpy(), room))
    held = np.minimum(np.ceil(controls * treat - 1e-9), sizes - treat).astype(np.int64)
    drawn = np.zeros(len(cell), dtype=bool)
    control = np.zeros(len(cell), dtype=bool)
    for g in np.flatnonzero(treat):
        members = rng.permutation(np.flatnonzero(code == g))[:treat[g] + held[g]]
        drawn[members] = True
        control[members[:held[g]]] = True
    return cell.assign(drawn=drawn, control_group=control,
                       p_treated=treat[code] / sizes[code], p_held_out=held[code] / sizes[code])


def _treated(share: float, budget: Budget, unit: float) -> int:
    """Treated customers a cell's share of the budget buys."""
    return int(np.floor(share * budget.amount / unit + 1e-9)) if unit > 0 else 0


def _controls(params: PrescribeParams) -> float:
    """Hold-outs per treated customer: ``experiment_controls``, and never a smaller hold-out
    share than the plan's own (``holdout_share``)."""
    return max(params.experiment_controls, params.holdout_share / (1.0 - params.holdout_share))


def plan_experiments(candidates: pd.DataFrame, contacts: pd.DataFrame | None, catalogue: Catalogue,
                     params: PrescribeParams, uplift, features: pd.DataFrame | DriverInputs,
                     budget: Budget, seed: int, rows: np.ndarray | None = None) -> Experiments:
    """Randomized actions for the customers of ``candidates`` (the ones the plan left alone),
    or of its ``rows`` (a mask that keeps or drops whole customers: no copy of the book's
    candidates is made for the experiments).

    ``uplift``: the uplift model; its arms' ``driver`` posteriors define the cells (no
    experiment without them). ``features``: customer_id and the model's features, or
    their ``DriverInputs`` (what a cluster's buckets send instead of the features).
    """
    arms = driver_arms(uplift)
    rows = np.ones(len(candidates), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    if not arms or budget.amount <= 0 or not rows.any():
        return empty()
    rng = np.random.default_rng(seed)
    keep = (deliverable(candidates, contacts, catalogue, params, np.flatnonzero(rows))
            & candidates["customer_id"].isin(customer_ids(features)).to_numpy())
    pool = _pool(candidates, keep, arms, catalogue)
    if pool.empty:
        return empty()
    ids = pool["customer_id"].unique()
    x, r, arms = driver_inputs(uplift, features, ids, arms)
    pool["_x"] = pd.Index(ids).get_indexer(pool["customer_id"])
    pool["_rep"] = pool["rep_id"].astype(object).where(pool["rep_id"].notna(), "").astype(str)
    pool, cells, draws = _cells(pool, arms, x, r, catalogue, rng)
    if cells.empty:
        return empty()
    cells["share"] = thompson_shares(draws, whole=params.experiment_spend == "whole")
    cells["mean_value"] = draws.mean(axis=1)
    cells["p_positive"] = (draws > 0).mean(axis=1)
    cells["treated"], cells["held_out"] = 0, 0
    minutes_left = budget.rep_minutes.astype(float).copy()
    actions_left = dict(zip(catalogue.ids, budget.actions_left, strict=True))
    taken: set = set()
    drawn_parts, pooled = [], []
    for i in cells.sort_values("share", ascending=False, kind="stable").index:
        action, share = cells.at[i, "action_id"], float(cells.at[i, "share"])
        unit = float(getattr(catalogue[action], budget.unit))
        n_treat = int(min(_treated(share, budget, unit), actions_left[action]))
        if n_treat <= 0:
            continue
        cell = pool[(pool["action_id"] == action) & (pool["stratum"] == cells.at[i, "stratum"])
                    & ~pool["customer_id"].isin(taken)]
        minutes = float(catalogue[action].handling_minutes)
        caps = (np.floor(minutes_left / minutes + 1e-9) if minutes > 0
                else pd.Series(np.inf, index=minutes_left.index)).clip(lower=0)
        caps = caps.reindex(np.unique(cell["_rep"])).fillna(np.inf if minutes <= 0 else 0)
        out = _draw_cell(cell, n_treat, caps, _controls(params), rng)
        pooled.append(out)
        got = out[out["drawn"]]
        treated = got[~got["control_group"]]
        taken.update(got["customer_id"])
        used = treated.groupby("_rep").size() * minutes
        minutes_left = minutes_left.sub(used.reindex(minutes_left.index).fillna(0.0))
        actions_left[action] -= len(treated)
        cells.at[i, "treated"], cells.at[i, "held_out"] = len(treated), int(got["control_group"].sum())
        drawn_parts.append(got)
    if not drawn_parts:
        return Experiments(pd.DataFrame(), cells[CELL_COLUMNS], pd.DataFrame())
    return Experiments(_rows(pd.concat(drawn_parts, ignore_index=True), catalogue), cells[CELL_COLUMNS],
                       pd.concat(pooled, ignore_index=True).drop(columns=["_x", "_rep"]))


def _rows(got: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """Drawn pairs as plan rows: no expected-value claim (the effect is what is measured)."""
    label = {a.id: a.label for a in catalogue}
    channel = {a.id: a.channel for a in catalogue}
    return pd.DataFrame({
        "customer_id": got["customer_id"].to_numpy(), "rep_id": got["rep_id"].to_numpy(),
        "action_id": got["action_id"].to_numpy(),
        "action_label": got["action_id"].map(label).to_numpy(),
        "channel": got["action_id"].map(channel).to_numpy(),
        "expected_value": np.nan, "cost": got["cost"].to_numpy(np.float64),
        "handling_minutes": got["handling_minutes"].to_numpy(np.float64),
        "p_churn": got["p_churn"].to_numpy(np.float64), "uplift": got["uplift"].to_numpy(np.float64),
        "value_at_risk": got["value_at_risk"].to_numpy(np.float64),
        "effect_low": got["effect_low"].to_numpy(np.float64),
        "effect_high": got["effect_high"].to_numpy(np.float64),
        "stratum": got["stratum"].to_numpy(), "control_group": got["control_group"].to_numpy(bool),
        "arm": "experiment",
        "assignment_probability": np.where(got["control_group"], got["p_held_out"], got["p_treated"]),
    })
