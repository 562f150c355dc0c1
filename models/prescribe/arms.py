"""The cycle's plan by arm: the model's plan, experiments and the comparison slices.

Each customer's impact slice (``models.prescribe.slices``) decides how they are planned:
``policy`` customers get the model's plan (arbitration) and, among those it leaves alone,
the experiments (``models.prescribe.experiments``); ``risk_ranked`` and ``random`` customers
are planned by those rules (``models.prescribe.baselines``) at the policy slice's spend per
customer; ``no_action`` customers get nothing. Every slice gets the share of each rep's time
that its share of the customers is. Every planned row carries its ``arm``, whether it is held
out (``control_group``) and the design probability of that (``assignment_probability``).
Design: docs/prescribe.md#experiments and #impact-slices
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from configs.settings import PrescribeParams
from models.prescribe.actions import Catalogue
from models.prescribe.arbitration import arbitrate
from models.prescribe.baselines import random_candidates, risk_ranked_candidates
from models.prescribe.experiments import Budget, plan_experiments
from models.prescribe.keyed import with_columns
from models.prescribe.plan_frames import Plan
from models.prescribe.rationale import action_why
from models.prescribe.slices import SLICES, impact_slices

ARMS = ("policy", "experiment", "risk_ranked", "random")
ARM_LABELS = {"experiment": "Experiment: effect not yet known",
              "risk_ranked": "Comparison action (risk-ranked rule)",
              "random": "Comparison action (random rule)"}
_RULE_WHY = {
    "risk_ranked": "planned by the risk-ranked rule (highest churn risk x value at risk first, the "
                   "same action for everyone) on a small random slice of customers, to measure what "
                   "the product's plan adds. No effect estimate is claimed.",
    "random": "planned by the random rule (customers and actions drawn at random) on a small random "
              "slice of customers, the baseline the product's plan is measured against. No effect "
              "estimate is claimed.",
}


@dataclass
class ArmPlan:
    plan: Plan                # the policy slice's arbitration (skip reasons, summary)
    actions: pd.DataFrame     # every planned row of every arm, ranked per rep
    summary: dict


def seed_of(as_of: date, salt: str = "") -> int:
    """A seed fixed by the run date (and a salt per random step)."""
    return int(hashlib.sha256(f"{as_of.isoformat()}{salt}".encode()).hexdigest()[:8], 16)


def held_out(n: int, share: float, seed: int) -> np.ndarray:
    """Each planned row held back with probability ``share`` (independently, reproducibly)."""
    return np.random.default_rng(seed).random(n) < share


def _with_holdout(rows: pd.DataFrame, arm: str, share: float, seed: int) -> pd.DataFrame:
    control = held_out(len(rows), share, seed)
    return rows.rename(columns={"rank_in_rep": "rank"}).assign(
        arm=arm, control_group=control, assignment_probability=np.where(control, share, 1 - share))


def _scaled(params: PrescribeParams, share: float) -> PrescribeParams:
    return params.model_copy(update={"rep_minutes_per_day": params.rep_minutes_per_day * share})


def _experiment_budget(reps: pd.Index, exploit: pd.DataFrame, catalogue: Catalogue,
                       params: PrescribeParams, pol: PrescribeParams, amount: float | None) -> Budget:
    """Money (``amount``) when the cycle has a budget, else the experiment share of each rep's
    time (``reps``: the policy slice's); either way within the time the treated plan rows
    leave each rep."""
    cap = pol.rep_minutes_per_day * pol.working_days_per_cycle
    treated = exploit[~exploit["control_group"]]
    used = treated.groupby(treated["rep_id"].astype(str))["handling_minutes"].sum()
    left = (cap - used.reindex(reps).fillna(0.0)).clip(lower=0.0)
    counts = treated["action_id"].astype(str).value_counts()
    acts_left = catalogue.max_per_cycle() - counts.reindex(catalogue.ids).fillna(0).to_numpy()
    if amount is not None:
        return Budget("cost", amount, left, acts_left)
    share = params.experiment_share
    return Budget("handling_minutes", share * cap * len(reps), left.clip(upper=share * cap), acts_left)


def plan_arms(candidates: pd.DataFrame, contacts: pd.DataFrame | None, catalogue: Catalogue,
              params: PrescribeParams, uplift, features: pd.DataFrame, as_of: date) -> ArmPlan:
    """Every arm's rows for the cycle, reproducible for ``as_of``."""
    customer, ids = pd.factorize(candidates["customer_id"])
    names = impact_slices(np.asarray(ids, dtype=object), params.impact_slice_share)
    slice_rows = pd.Index(SLICES).get_indexer(names)[customer]    # a code per row, not a name
    size = pd.Series(names).value_counts().reindex(list(SLICES)).fillna(0)
    frac = size / max(len(ids), 1)
    pol = _scaled(params, frac["policy"])
    in_policy = slice_rows == SLICES.index("policy")
    s, hs = params.experiment_share, params.holdout_share
    amount = None if params.budget is None else s * params.budget * frac["policy"]
    budget = None if amount is None else params.budget * frac["policy"] - amount
    plan = arbitrate(candidates, contacts, catalogue, pol, budget=budget, rows=np.flatnonzero(in_policy))
    exploit = _with_holdout(plan.actions, "policy", hs, seed_of(as_of))
    if amount is not None and params.experiment_spend == "whole":     # what the plan leaves
        amount += max(budget - float(exploit.loc[~exploit["control_group"], "cost"].sum()), 0.0)
    reps = pd.Index(candidates.loc[in_policy, "rep_id"].dropna().astype(str).unique())
    experiment_budget = _experiment_budget(reps, exploit, catalogue, params, pol, amount)
    rest = in_policy & ~candidates["customer_id"].isin(exploit["customer_id"]).to_numpy()
    exp = plan_experiments(candidates, contacts, catalogue, pol, uplift, features,
                           experiment_budget, seed_of(as_of, "experiments"), rows=rest)
    parts = [exploit, exp.actions]
    spent = sum(float(p.loc[~p["control_group"], "cost"].sum()) for p in parts if len(p))
    per_customer = spent / (1 - hs) / size["policy"] if size["policy"] else 0.0
    for name in ("risk_ranked", "random"):
        mine = with_columns(candidates[slice_rows == SLICES.index(name)], drop=("expected_value_low",))
        if mine.empty or per_customer <= 0:
            continue
        rule = (risk_ranked_candidates(mine) if name == "risk_ranked"
                else random_candidates(mine, seed_of(as_of, "random")))
        rows = arbitrate(rule, contacts, catalogue, _scaled(params, frac[name]),
                         budget=per_customer * size[name]).actions.assign(expected_value=np.nan)
        parts.append(_with_holdout(rows, name, hs, seed_of(as_of, name)))
    actions = _ranked(pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else exploit, seed_of(as_of, "rank"))
    summary = {"slices": {k: int(v) for k, v in size.items()},
               "experiment_budget": {"unit": experiment_budget.unit,
                                     "amount": round(float(experiment_budget.amount), 2)},
               "cells": json.loads(exp.cells.round(4).to_json(orient="records")),
               "arms": {arm: {"planned": int((actions["arm"] == arm).sum()),
                              "held_out": int((actions["arm"].eq(arm) & actions["control_group"]).sum())}
                        for arm in ARMS}}
    return ArmPlan(plan, actions, summary)


def _ranked(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One order per rep: the model's plan first in its own order, then the experiment and
    comparison rows in a random order (so a rep's capacity cuts them alike)."""
    own = rows["rank"].astype(float) if "rank" in rows else pd.Series(np.nan, index=rows.index)
    key = np.where(rows["arm"].eq("policy"), own, np.random.default_rng(seed).random(len(rows)))
    rows = rows.assign(_group=rows["arm"].ne("policy").astype(int), _key=key)
    rows = rows.sort_values(["_group", "_key"], kind="stable")
    rows["rank"] = rows.groupby(rows["rep_id"].astype(object).fillna(""), sort=False).cumcount() + 1
    return rows.drop(columns=["_group", "_key"]).sort_values(["rep_id", "rank"], kind="stable") \
        .reset_index(drop=True)


def plan_why(actions: pd.DataFrame, reasons: pd.Series, catalogue: Catalogue) -> list[str]:
    """Every row's why: the model's own (``action_why``) for its plan, ``arm_why`` otherwise."""
    why = [""] * len(actions)
    policy = np.flatnonzero(actions["arm"].eq("policy").to_numpy()) if "arm" in actions \
        else np.arange(len(actions))
    if len(policy):
        for i, text in zip(policy, action_why(actions.iloc[policy], reasons.iloc[policy], catalogue),
                           strict=True):
            why[i] = text
    return arm_why(actions, why)


def arm_why(actions: pd.DataFrame, why: list[str]) -> list[str]:
    """The plan's why for policy rows; for the other arms an honest one: an experiment says
    the effect is not yet known (the posterior mean with its interval, no value claimed), a
    comparison row says which rule planned it."""
    out = list(why)
    arm = actions["arm"].to_numpy() if "arm" in actions else np.full(len(actions), "policy")
    for i in np.flatnonzero(arm != "policy"):
        row = actions.iloc[i]
        if arm[i] == "experiment":
            out[i] = (f"{ARM_LABELS['experiment']}. {row['action_label']} goes at random to some "
                      f"customers like this one to measure what it does: the estimated change in "
                      f"churn risk is {100 * row['uplift']:+.1f} points (80 % interval "
                      f"{100 * row['effect_low']:+.1f} to {100 * row['effect_high']:+.1f}).")
        else:
            out[i] = f"{ARM_LABELS.get(arm[i], arm[i])}: {_RULE_WHY.get(arm[i], '')}"
    return out
