"""Choosing an uplift learner: cross-validated Qini by customer folds, with a guard against noise.

With a few dozen churners per action (the built-in world's programme), the Qini of any
ranking, the true effects' included, is often indistinguishable from chance; so a
heterogeneous learner is chosen only when its cross-validated Qini clearly beats
chance, and the per-action average effect (``shift``) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.frame import FrameSpec
from models.uplift.data import ACTION, LABEL, TREATED, arm_rows, matured_mask
from models.uplift.metrics import qini_area
from models.uplift.model import (
    LEARNERS,
    UpliftParams,
    customer_folds,
    fit_risk,
    fit_uplift,
    sigmoid,
)


def arm_scores(frame: pd.DataFrame, effects: pd.DataFrame, action: str,
               prevent: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, treatment, score) of one action's rows for the uplift metrics.

    ``prevent``: the label is an outcome to avoid (churn), so the metrics count
    retained customers (``1 - label``) and rank by the estimated reduction.
    """
    arm = arm_rows(frame, action)
    y = arm[LABEL].to_numpy(float)
    score = effects.loc[arm.index, action].to_numpy(float)
    return (1 - y, arm[TREATED].to_numpy(), -score) if prevent else (y, arm[TREATED].to_numpy(), score)


def qini_by_action(frame: pd.DataFrame, effects: pd.DataFrame, prevent: bool = True) -> dict[str, float]:
    """Qini area of every action's held-out rows."""
    return {a: qini_area(*arm_scores(frame, effects, a, prevent)) for a in effects.columns}


@dataclass
class OutOfFold:
    """Every row's estimates from models that never saw the row's customer."""

    effects: dict[str, pd.DataFrame]        # per learner: rows x actions
    low: dict[str, pd.DataFrame | None]     # per learner: the effects' bound (posterior learners)
    p: np.ndarray                           # each row's churn probability (the fold's risk prior)
    fold: np.ndarray

    def rows(self, mask: np.ndarray) -> OutOfFold:
        """The estimates of the rows of ``mask`` (renumbered from 0, as the frame they match)."""
        def pick(f: pd.DataFrame | None) -> pd.DataFrame | None:
            return None if f is None else f[mask].reset_index(drop=True)

        return OutOfFold({n: pick(e) for n, e in self.effects.items()},
                         {n: pick(b) for n, b in self.low.items()}, self.p[mask], self.fold[mask])


def out_of_fold(frame: pd.DataFrame, features: list[str], learners, params: UpliftParams,
                folds: int = 3, snapshots: pd.DataFrame | None = None,
                spec: FrameSpec | None = None, drivers: dict[str, list[str]] | None = None,
                quantile: float | None = None) -> OutOfFold:
    """Per learner, every row's effects (and their ``quantile`` bound where the learner has
    a posterior) from a model that never saw the row's customer.

    Folds are by customer; the risk prior of a fold is fitted without the fold's
    customers too (their snapshot labels overlap the rows' own labels).
    """
    frame = frame.reset_index(drop=True)
    ripe = matured_mask(frame)   # pending rows are estimated, never fitted
    actions = sorted(frame.loc[ripe, ACTION].unique().tolist())
    fold = customer_folds(frame["customer_id"].astype(str).to_numpy(), folds, params.seed + 99)
    out = {name: pd.DataFrame(np.nan, index=frame.index, columns=actions) for name in learners}
    low: dict[str, pd.DataFrame | None] = dict.fromkeys(learners)
    p = np.full(len(frame), np.nan)
    for k in range(folds):
        fit, held = frame[(fold != k) & ripe].reset_index(drop=True), frame[fold == k]
        shown = None if snapshots is None else snapshots[
            ~snapshots["customer_id"].astype(str).isin(set(held["customer_id"].astype(str)))]
        base_spec = FrameSpec.fit(fit, features) if spec is None else spec
        risk = fit_risk(base_spec, shown, fit, params)
        p[held.index] = sigmoid(risk.logit(held))
        for name in learners:
            model = fit_uplift(fit, features, name, params, actions=actions, spec=base_spec,
                               risk=risk, drivers=drivers)
            eff, bound = model.effects_with_bound(held, quantile)
            out[name].loc[held.index] = eff.to_numpy()
            if bound is not None:
                if low[name] is None:
                    low[name] = pd.DataFrame(np.nan, index=frame.index, columns=actions)
                low[name].loc[held.index] = bound.to_numpy()
    return OutOfFold(out, low, p, fold)


def out_of_fold_effects(frame: pd.DataFrame, features: list[str], learners, params: UpliftParams,
                        folds: int = 3, snapshots: pd.DataFrame | None = None,
                        spec: FrameSpec | None = None) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Per learner, every row's out-of-fold effects; the folds (see ``out_of_fold``)."""
    oof = out_of_fold(frame, features, learners, params, folds, snapshots, spec)
    return oof.effects, oof.fold


def fold_arms(frame: pd.DataFrame, effects: pd.DataFrame, fold: np.ndarray, prevent: bool = True) -> list:
    """(action, y, t, score, customer code) per fold and action: each Qini is computed within one fold.

    Pooling the folds' scores into one ranking would mix models whose overall effect
    levels differ by chance, and rank whole folds against each other.
    """
    customers = pd.factorize(frame["customer_id"].astype(str))[0]
    arms = []
    for k in np.unique(fold):
        part = frame[fold == k]
        for action in effects.columns:
            y, t, score = arm_scores(part, effects.loc[part.index], action, prevent)
            rows = frame.index.get_indexer(arm_rows(part, action).index)
            arms.append((action, y, t, score, customers[rows]))
    return arms


def cv_qini(arms: list) -> dict[str, float]:
    """Mean over folds of each action's within-fold Qini."""
    table = pd.DataFrame([(a, qini_area(y, t, s)) for a, y, t, s, _ in arms], columns=["action", "q"])
    return table.groupby("action")["q"].mean().to_dict()


def mean_qini_interval(arms: list, n_boot: int = 200, seed: int = 0,
                       level: float = 0.9) -> tuple[float, float]:
    """Customer-bootstrap interval of the mean Qini over folds and actions.

    One Poisson(1) weight per customer and draw, shared by all actions: the actions
    pool the same controls, so their Qinis move together and must be resampled together.
    """
    n = max(int(c.max()) for *_, c in arms) + 1
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        w = rng.poisson(1.0, n)
        draws.append(np.mean([qini_area(y, t, s, w[c]) for _, y, t, s, c in arms]))
    lo, hi = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def select_learner(frame: pd.DataFrame, features: list[str], params: UpliftParams,
                   learners=LEARNERS, folds: int = 3, snapshots: pd.DataFrame | None = None,
                   spec: FrameSpec | None = None, prevent: bool = True,
                   oof: OutOfFold | None = None) -> tuple[str, pd.DataFrame]:
    """The learner to use, and the table behind the choice (learner x action Qini, mean, interval).

    Candidates are scored by their cross-validated Qini (within-fold, averaged over folds
    and actions; cross-validating the training part leaves the hold-out untouched for the
    reported figures). The best heterogeneous learner is trusted only when its ranking is
    distinguishable from chance: the lower end of the 90 % customer-bootstrap interval of
    its mean Qini is above 0. Otherwise the choice falls back to ``shift`` (per-action
    average effects on the risk scale): with a few dozen churners per action, as in the
    built-in world's programme, even the true effects rank held-out customers no better
    than chance, and per-customer estimates are mostly noise. ``oof``: out-of-fold
    estimates already computed for the same rows (``out_of_fold``).
    """
    frame = frame.reset_index(drop=True)
    if oof is None:
        oof = out_of_fold(frame, features, learners, params, folds, snapshots, spec)
    effects, fold = {n: oof.effects[n] for n in learners}, oof.fold
    rows = {}
    for name, eff in effects.items():
        arms = fold_arms(frame, eff, fold, prevent)
        per_action = cv_qini(arms)
        lo, hi = mean_qini_interval(arms, n_boot=params.bootstrap, seed=params.seed)
        rows[name] = {**per_action, "mean": float(np.mean(list(per_action.values()))),
                      "mean_lo90": lo, "mean_hi90": hi}
    table = pd.DataFrame(rows).T
    ranked = table.drop(index=[n for n in table.index if n == "shift"])["mean"]
    best = str(ranked.idxmax()) if len(ranked) else "shift"
    if "shift" in table.index and (best == "shift" or table.loc[best, "mean_lo90"] <= 0):
        return "shift", table
    return best, table
