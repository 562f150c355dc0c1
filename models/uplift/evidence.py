"""Evidence that acting pays: the cross-validated policy value of each action on the log.

A plan acts where an estimate says an action pays. Whether that rule makes money can be
measured on the programme log before any rep acts on it: in each customer fold, the rule
picks the logged rows where it would have acted, with effects from a model fitted
without the fold; among those rows the programme's randomized hold-out compares the
churn of the treated with the churn of the held-out, stratum by stratum (the hold-out
is random within a targeting stratum and a drawn action, nowhere else), and value at
risk and cost turn the difference into money per action delivered. A customer bootstrap
gives its interval. Each logged row is weighted by how often customers like it occur among
the open customers a plan acts on (``target_weights``), so the value is the one the plan
would have there, not among the programme's own picks.

Two decisions use it (docs/prescribe.md#evidence-gate): the learner is the one whose
rule the log shows to be worth most, and an action whose value the log does not show
to be positive is not planned at all: on a log with few churners per action this plans
less, and loses nothing. "Shown" takes two looks. The cross-validated value picks the
learner and the candidate actions (its interval's lower end at ``evidence_quantile``
above 0); picking the best of several learners and actions on the same noise flatters
the winner, so that look only proposes. The held-out customers, which no fit or choice
has seen, then confirm: their own interval's lower end must be above 0 too, at
``evidence_quantile`` divided by the number of actions proposed (Bonferroni), so the chance
that any action reaches the lists on noise alone stays at most ``evidence_quantile``.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.frame import FrameSpec
from models.uplift.data import ACTION, LABEL, STRATUM, TREATED, UNRECORDED

TARGET_WEIGHT = "target_weight"   # uplift-frame column: how much a logged row stands for the
                                  # customers a plan would act on (1: no correction)
MAX_WEIGHT = 10.0                 # clip: a few rows must not carry the whole estimate


def target_weights(log: pd.DataFrame, target: pd.DataFrame, features: list[str],
                   seed: int = 0, folds: int = 2) -> np.ndarray:
    """Per logged row, the density ratio target / log of its features (mean 1, clipped).

    The programme logged its actions where it saw a driver that month; a plan acts on the
    open customers of today, most of whom look different (an outage three months ago, not
    this month). The effect shown on the logged rows is moved to the plan's population by
    weighting each row by how much more often customers like it occur there: a classifier
    tells target rows from logged rows, cross-fitted so no row weighs itself.
    """
    both = pd.concat([log[features], target[features]], ignore_index=True)
    spec = FrameSpec.fit(both, features)
    x = spec.array(both)
    y = np.r_[np.zeros(len(log)), np.ones(len(target))]
    part = np.random.default_rng(seed).integers(0, folds, len(y))
    p = np.full(len(log), np.nan)
    for k in range(folds):
        model = lgb.LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=15,
                                   min_child_samples=50, subsample=0.8, subsample_freq=1,
                                   random_state=seed + k, n_jobs=1, verbose=-1)
        model.fit(x[part != k], y[part != k])
        rows = np.flatnonzero(part[: len(log)] == k)
        p[rows] = model.predict_proba(x[rows])[:, 1]
    odds = np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1)
    w = np.minimum(odds * len(log) / max(len(target), 1), MAX_WEIGHT)
    return w / w.mean() if w.mean() > 0 else np.ones(len(log))


def rule_selects(p: np.ndarray, effect: np.ndarray, low: np.ndarray | None, value: np.ndarray,
                 cost: float, min_value: float) -> np.ndarray:
    """Where the product's decision rule would act: the expected net value above
    ``min_value`` and, for a learner with a posterior, its lower bound above 0 (the rule of
    ``models.prescribe.value.candidate_actions`` and the arbitration)."""
    from models.prescribe.value import expected_value

    ev = expected_value(p, effect, value, cost)
    ok = np.isfinite(ev) & (ev > min_value)
    if low is not None:
        ok &= expected_value(p, low, value, cost) > 0
    return ok


def _stratified_value(y, t, value, stratum, weights, cost: float) -> np.ndarray:
    """Net value per action delivered, per bootstrap draw (rows of ``weights``): churn of the
    held-out minus churn of the treated within each stratum, times the stratum's mean value
    at risk, less the cost; strata averaged by their weighted number of rows."""
    total, rows = np.zeros(len(weights)), np.zeros(len(weights))
    for s in np.unique(stratum):
        m = stratum == s
        tr, co = m & (t == 1), m & (t == 0)
        if not tr.any() or not co.any():
            continue
        wt, wc = weights[:, tr], weights[:, co]
        nt, nc = wt.sum(axis=1), wc.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            drop = wc @ y[co] / nc - wt @ y[tr] / nt
            mean_value = (wt @ value[tr] + wc @ value[co]) / (nt + nc)
        ok = (nt > 0) & (nc > 0)
        n = np.where(ok, nt + nc, 0.0)
        total += np.where(ok, n * (drop * mean_value - cost), 0.0)
        rows += n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, total / rows, np.nan)


def policy_evidence(frame: pd.DataFrame, effects: pd.DataFrame, low: pd.DataFrame | None,
                    p: np.ndarray, value: np.ndarray, costs: dict[str, float],
                    min_value: float = 0.0, quantile: float = 0.1, n_boot: int = 200,
                    seed: int = 0) -> pd.DataFrame:
    """Per action: the logged rows the rule selects, the held-out effect among them, the net
    value per action delivered with its bootstrap quantiles, and whether it is shown positive.

    ``frame``: the uplift frame (customer_id, action, treated, label, stratum and, when the
    log is moved to the plan's population, ``target_weight``); ``effects``
    and ``low``: out-of-fold effects (and lower-bound effects) per row and action; ``p``:
    each row's churn probability; ``value``: each row's value at risk.
    """
    frame = frame.reset_index(drop=True)
    customers, _ = pd.factorize(frame["customer_id"].astype(str))
    rng = np.random.default_rng(seed)
    draws = rng.poisson(1.0, (n_boot, customers.max() + 1 if len(customers) else 0)).astype(float)
    stratum = (frame[STRATUM].astype(object).fillna(UNRECORDED).to_numpy() if STRATUM in frame
               else np.full(len(frame), UNRECORDED, dtype=object))
    y, t = frame[LABEL].to_numpy(float), frame[TREATED].to_numpy(int)
    weight = (frame[TARGET_WEIGHT].to_numpy(float) if TARGET_WEIGHT in frame
              else np.ones(len(frame)))
    rows = []
    for action in effects.columns:
        own = frame[ACTION].astype(str).to_numpy() == action
        chosen = own & rule_selects(p, effects[action].to_numpy(float),
                                    None if low is None else low[action].to_numpy(float),
                                    value, costs[action], min_value)
        idx = np.flatnonzero(chosen)
        args = (y[idx], t[idx], value[idx], stratum[idx])
        point = _stratified_value(*args, weight[idx][None, :], costs[action])[0]
        boot = _stratified_value(*args, draws[:, customers[idx]] * weight[idx], costs[action])
        lo, hi = (np.nanquantile(boot, [quantile, 1 - quantile]) if np.isfinite(boot).any()
                  else (np.nan, np.nan))
        rows.append({"action": action, "selected": len(idx), "treated": int(t[idx].sum()),
                     "held_out": int((t[idx] == 0).sum()), "value_per_action": float(point),
                     "value_lo": float(lo), "value_hi": float(hi),
                     "shown": bool(np.isfinite(lo) and lo > 0)})
    return pd.DataFrame(rows).set_index("action")


def confirm_quantile(cv: pd.DataFrame, quantile: float) -> float:
    """The hold-out's quantile: ``quantile`` shared among the actions the cross-validation
    proposes (Bonferroni), so that all of them together risk at most ``quantile``."""
    return quantile / max(int(cv["shown"].sum()), 1)


def confirm(cv: pd.DataFrame, holdout: pd.DataFrame) -> pd.DataFrame:
    """The cross-validated evidence, with an action shown only if the hold-out customers (a
    model fitted without them, the rule applied to their logged rows) show its value above 0
    too, with their own interval (``holdout`` computed at ``confirm_quantile``)."""
    held = holdout[["selected", "value_per_action", "value_lo"]].add_prefix("holdout_")
    out = cv.join(held)
    out["shown"] = out["shown"] & (out["holdout_value_lo"] > 0)
    return out


def shown_value(table: pd.DataFrame) -> float:
    """What a learner's rule is shown to be worth on the log: its shown actions' value per
    action delivered times the rows selected (0 when no action is shown)."""
    shown = table[table["shown"]]
    return float((shown["value_per_action"] * shown["selected"]).sum())


def choose_by_evidence(tables: dict[str, pd.DataFrame], fallback: str) -> str:
    """The learner whose rule the log shows to be worth most; ``fallback`` when none shows
    any action to pay (then no action is planned whichever learner is kept)."""
    worth = {name: shown_value(t) for name, t in tables.items()}
    best = max(worth, key=worth.get) if worth else fallback
    return best if worth.get(best, 0.0) > 0 else fallback
