"""Policy value: what a plan of actions is truly worth, measured with the world's hidden
effects (evaluation code only: ``action_effects.parquet`` in the truth folder).

The model's plan beside oracle, feature-ceiling, risk-ranked and random plans, all under the
same rules and budget. Design: docs/prescribe.md#policy-value
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from configs.settings import Settings
from features.services import CHURN_SERVICE
from features.store import feature_store, service_features, training_frame
from models.frame import FrameSpec
from models.prescribe import arbitrate, expected_value
from models.prescribe.actions import Catalogue
from models.prescribe.baselines import random_candidates, risk_ranked_candidates
from models.prescribe.keyed import Keys, effects_matrix, long_matrix, long_wide, with_columns
from models.scoring import uplift_effects

TRUTH_FILE = "action_effects.parquet"
EVAL_BLOCK = 50_000           # customers whose features the evaluation fetches at once (the
#                               store's point-in-time join of 100,000 held 0.3 GB more)
CEILING_FIT_ROWS = 200_000    # customers per half the feature ceiling's regressions fit on
Fetch = Callable[[np.ndarray], pd.DataFrame]      # customer ids -> their features, in order


def read_true_effects(settings: Settings, as_of: date) -> pd.DataFrame | None:
    """customer_id x action true 90-day churn effects at ``as_of`` (None if not on disk)."""
    path = Path(settings.truth_dir) / TRUTH_FILE
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=["customer_id", "as_of", "action", "true_effect_90d"],
                            filters=[("as_of", "==", as_of)],     # the date's rows only are read
                            read_dictionary=["customer_id", "action"])   # codes, not a string a row
    return None if truth.empty else truth.drop(columns="as_of")


def true_values(candidates: pd.DataFrame, truth: pd.DataFrame, keys: Keys | None = None) -> np.ndarray:
    """True EV of each candidate row: true reduction x value at risk - cost (NaN: unknown).
    ``keys``: the candidates' ``Keys`` when the caller has them already."""
    keys = keys or Keys.of(candidates)
    effect = long_matrix(truth, keys, "true_effect_90d")[keys.row, keys.col]
    return expected_value(candidates["p_churn"], effect, candidates["value_at_risk"], candidates["cost"])


def plan_value(actions: pd.DataFrame, candidates: pd.DataFrame, true_ev: np.ndarray,
               keys: Keys | None = None) -> dict:
    """Total true value and customers of a plan (rows: customer_id, action_id); a pair that
    is not a candidate row counts 0."""
    keys = keys or Keys.of(candidates)
    values = np.nan_to_num(keys.take(keys.wide(true_ev), actions["customer_id"], actions["action_id"]),
                           nan=0.0)
    return {"value": float(values.sum()), "customers": int(len(actions)),
            "cost": float(actions["cost"].sum()) if len(actions) else 0.0}


def features_as_of(settings: Settings, customers: np.ndarray, as_of: date,
                   service: str = CHURN_SERVICE) -> tuple[pd.DataFrame, list[str]]:
    """The service's point-in-time features of ``customers`` at the start of ``as_of``."""
    fetch, names = fetch_as_of(settings, as_of, service)
    return fetch(customers), names


def fetcher(features: pd.DataFrame | Fetch) -> Fetch:
    """``features`` as a function of customer ids (a frame: its rows, in the order asked)."""
    if callable(features):
        return features
    by_id = features.set_index("customer_id")
    return lambda ids: by_id.loc[ids].reset_index()


def fetch_as_of(settings: Settings, as_of: date,
                service: str = CHURN_SERVICE) -> tuple[Fetch, list[str]]:
    """The point-in-time features at ``as_of`` of any block of customers, and the service's
    feature names, from one store (the evaluation asks EVAL_BLOCK customers at a time, so
    every customer's features are never held at once)."""
    store = feature_store(settings)
    stamp = pd.Timestamp(as_of, tz="UTC")

    def fetch(ids: np.ndarray) -> pd.DataFrame:
        frame = training_frame(store, pd.DataFrame({"customer_id": ids, "event_timestamp": stamp}),
                               service)
        return frame.set_index("customer_id").loc[ids].reset_index()

    return fetch, service_features(store, service)


def _blocks(ids: np.ndarray) -> Iterator[np.ndarray]:
    """EVAL_BLOCK customers at a time (one empty block when there are none)."""
    for start in range(0, max(len(ids), 1), EVAL_BLOCK):
        yield ids[start:start + EVAL_BLOCK]


def spec_in_blocks(fetch: Fetch, ids: np.ndarray, names: list[str]) -> FrameSpec:
    """``FrameSpec.fit`` over the features of ``ids``, fetched a block at a time: the
    categories are the union of the blocks' (sorted, as one fit on every row sorts them)."""
    spec = None
    for block in _blocks(ids):
        part = FrameSpec.fit(fetch(block), names)
        if spec is None:
            spec = part
        else:
            spec.categories = {c: sorted(set(v) | set(part.categories[c]))
                               for c, v in spec.categories.items()}
    return spec


def array_in_blocks(fetch: Fetch, ids: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """``spec.array`` of the features of ``ids``, fetched a block at a time."""
    x = np.empty((len(ids), len(spec.features)))
    start = 0
    for block in _blocks(ids):
        x[start:start + len(block)] = spec.array(fetch(block))
        start += len(block)
    return x


def ceiling_effects(features: pd.DataFrame | Fetch, names: list[str], truth: pd.DataFrame,
                    seed: int = 0, customers: np.ndarray | None = None) -> pd.DataFrame:
    """customer_id x action: the true effects as predicted from the features, cross-fitted.

    Each half of the customers gets the predictions of a regression fitted on the other
    half, so no customer's own true effect is used for their prediction. ``features``: a
    frame, or a function fetching the features of ``customers`` (default: the frame's, in
    its order); the regressions are fitted on at most CEILING_FIT_ROWS customers of each
    half, drawn at random (all of them below that), and predict EVAL_BLOCK customers at a time.
    """
    wide = long_wide(truth, "true_effect_90d")
    if customers is None:
        customers = features["customer_id"].to_numpy()
    fetch = fetcher(features)
    ids = customers[pd.Index(customers).isin(wide.index)]
    rng = np.random.default_rng(seed)
    half = rng.integers(0, 2, len(ids))
    sample = np.zeros(len(ids), dtype=bool)
    for k in (0, 1):
        mine = np.flatnonzero(half == k)
        sample[mine if len(mine) <= CEILING_FIT_ROWS
               else rng.choice(mine, CEILING_FIT_ROWS, replace=False)] = True
    spec = spec_in_blocks(fetch, ids[sample], names)
    x = array_in_blocks(fetch, ids[sample], spec)
    y_all = wide.reindex(ids)
    known = {a: y_all[a].notna().to_numpy() for a in wide.columns}
    models = {}
    for action in wide.columns:
        y = y_all[action].to_numpy(np.float64)
        for k in (0, 1):
            fit = (known[action] & (half != k))[sample]
            if fit.sum() < 50 or not (known[action] & (half == k)).any():
                continue
            model = lgb.LGBMRegressor(n_estimators=400, learning_rate=0.03, num_leaves=31,
                                      min_child_samples=20, subsample=0.8, subsample_freq=1,
                                      random_state=seed, n_jobs=1, verbose=-1)
            models[action, k] = model.fit(x[fit], y[sample][fit])
    whole = bool(sample.all())               # every customer's matrix is at hand: no refetch
    values = np.full((len(ids), len(wide.columns)), np.nan)
    start = 0
    for block in _blocks(ids):               # predicted a block of customers at a time
        rows = slice(start, start + len(block))
        xb = x[rows] if whole else spec.array(fetch(block))
        start += len(block)
        for (action, k), model in models.items():
            pred = known[action][rows] & (half[rows] == k)
            if pred.any():
                values[rows.start + np.flatnonzero(pred), wide.columns.get_loc(action)] = \
                    model.predict(xb[pred])
    return pd.DataFrame(values, index=pd.Index(ids, name="customer_id"), columns=wide.columns)


def row_effects(candidates: pd.DataFrame, effects: pd.DataFrame, keys: Keys | None = None) -> np.ndarray:
    """Each candidate row's effect from ``effects`` (customer_id index x action columns)."""
    keys = keys or Keys.of(candidates)
    return effects_matrix(effects, keys)[keys.row, keys.col]


def oracle_candidates(candidates: pd.DataFrame, true_ev: np.ndarray) -> pd.DataFrame:
    """Candidates valued with their true values (unknown: not eligible)."""
    return with_columns(candidates, expected_value=true_ev,
                        eligible=candidates["eligible"].to_numpy() & np.isfinite(true_ev))


def ceiling_candidates(candidates: pd.DataFrame, effects: pd.DataFrame,
                       keys: Keys | None = None) -> pd.DataFrame:
    """Candidates valued with the feature-predicted true effects (unknown: not eligible)."""
    uplift = row_effects(candidates, effects, keys)
    ev = expected_value(candidates["p_churn"], uplift, candidates["value_at_risk"], candidates["cost"])
    return with_columns(candidates, uplift=uplift, expected_value=ev,
                        eligible=candidates["eligible"].to_numpy() & np.isfinite(ev))


def policy_value(settings: Settings, candidates: pd.DataFrame, contacts: pd.DataFrame,
                 catalogue: Catalogue, model_actions: pd.DataFrame, as_of: date,
                 seed: int = 0) -> dict | None:
    """Model, oracle, risk-ranked, random and feature-ceiling plans valued with the true effects.

    Every plan gets the same budget: what the model's plan costs. When the model plans
    nothing (no action it trusts to pay), comparing at a budget of 0 would hide what it
    misses, so the budget is then what the oracle spends without a cap.
    """
    truth = read_true_effects(settings, as_of)
    if truth is None:
        return None
    keys = Keys.of(candidates)
    true_ev = true_values(candidates, truth, keys)
    params = settings.prescribe

    def oracle() -> pd.DataFrame:
        return oracle_candidates(candidates, true_ev)

    budget, basis = float(model_actions["cost"].sum()), "model plan's cost"
    if budget <= 0:
        budget = float(arbitrate(oracle(), contacts, catalogue, params).actions["cost"].sum())
        basis = "oracle's cost without a cap (the model planned nothing)"
    fetch, names = fetch_as_of(settings, as_of)
    sources = {"oracle": oracle,      # built one at a time: each copy of the candidates goes
               "risk_ranked": lambda: risk_ranked_candidates(candidates),      # once valued
               "random": lambda: random_candidates(candidates, seed),
               "feature_ceiling": lambda: ceiling_candidates(candidates, ceiling_effects(
                   fetch, names, truth, seed, keys.customers.to_numpy()), keys)}
    values = {"model": plan_value(model_actions, candidates, true_ev, keys)}
    for name, source in sources.items():
        plan = arbitrate(source(), contacts, catalogue, params, budget=budget)
        values[name] = plan_value(plan.actions, candidates, true_ev, keys)
    best = values["oracle"]["value"]
    for row in values.values():
        row["share_of_oracle"] = row["value"] / best if best > 0 else float("nan")
    risk = values["risk_ranked"]["value"]
    return {"budget": budget, "budget_basis": basis, "plans": values,
            "model_vs_risk_ranked": values["model"]["value"] / risk if risk > 0 else float("inf")}


def ungated_candidates(candidates: pd.DataFrame, features: pd.DataFrame | Fetch, bundle,
                       quantile: float, keys: Keys | None = None) -> pd.DataFrame:
    """The candidates valued by the bundle's uplift model with every action allowed: what the
    evidence gate withholds, valued beside what it lets through (the model's own rows).
    ``features``: a frame, or a function fetching a block of customers' features."""
    ungated = copy.copy(bundle)               # shallow copies: the shipped model keeps its gate
    ungated.uplift = copy.copy(bundle.uplift)
    ungated.uplift.evidence = None
    keys = keys or Keys.of(candidates)
    rows = keys.customers.to_numpy()          # the candidates' customers, in first-seen order
    fetch, parts = fetcher(features), []
    for ids in _blocks(rows):                     # a block of customers at a time
        parts.append([None if e is None else e.set_axis(ids, axis=0)
                      for e in uplift_effects(fetch(ids), ungated, quantile)])
    effects = pd.concat([p[0] for p in parts])
    low = None if parts[0][1] is None else pd.concat([p[1] for p in parts])

    def value(estimates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        up = row_effects(candidates, estimates, keys)
        return up, expected_value(candidates["p_churn"], up, candidates["value_at_risk"],
                                  candidates["cost"])

    up, ev = value(effects)
    out = with_columns(candidates, uplift=up, expected_value=ev)
    if low is not None:
        out["expected_value_low"] = value(low)[1]
    return out


def gated(bundle) -> bool:
    """The bundle's uplift model carries an evidence gate (so an ungated plan differs)."""
    return getattr(getattr(bundle, "uplift", None), "evidence", None) is not None


def _without_low(frame: pd.DataFrame) -> pd.DataFrame:
    """The safe rule's lower bound belongs to the model's estimates, not to other plans."""
    return with_columns(frame, drop=("expected_value_low",))


def comparison_values(settings: Settings, candidates: pd.DataFrame, contacts: pd.DataFrame,
                      catalogue: Catalogue, as_of: date, budget: float | None, seed: int = 0,
                      ceiling: bool = True, bundle=None) -> dict | None:
    """True value of the plans a team could make instead, at ``budget`` and the plan's rules.

    Oracle, feature ceiling (None when ``ceiling`` is off: its refit is the costly part),
    risk-ranked, random, and do-nothing (0), as bench/bench_policy.py values them; with a
    ``bundle`` whose uplift model is gated, ``ungated``: the same learner with every action
    allowed (the safe rule kept), which shows whether the learner itself improves while the
    gate stays shut (None otherwise). None when the truth holds no effects at ``as_of``.
    """
    truth = read_true_effects(settings, as_of)
    if truth is None:
        return None
    keys = Keys.of(candidates)
    true_ev = true_values(candidates, truth, keys)
    sources = {"oracle": lambda: oracle_candidates(candidates, true_ev),   # built one at a time
               "risk_ranked": lambda: risk_ranked_candidates(candidates),
               "random": lambda: random_candidates(candidates, seed)}
    learner = gated(bundle) and len(candidates) > 0
    if ceiling or learner:                   # features fetched a block of customers at a time
        fetch, names = fetch_as_of(settings, as_of)
    if ceiling:
        sources["feature_ceiling"] = lambda: ceiling_candidates(candidates, ceiling_effects(
            fetch, names, truth, seed, keys.customers.to_numpy()), keys)
    values = {"do_nothing": 0.0, "feature_ceiling": None, "ungated": None}
    for name, source in sources.items():
        plan = arbitrate(_without_low(source()), contacts, catalogue, settings.prescribe, budget=budget)
        values[name] = plan_value(plan.actions, candidates, true_ev, keys)["value"]
    if learner:     # the model's own bound kept: the same safe rule as the shipped plan
        source = ungated_candidates(candidates, fetch, bundle, settings.prescribe.value_quantile, keys)
        plan = arbitrate(source, contacts, catalogue, settings.prescribe, budget=budget)
        values["ungated"] = plan_value(plan.actions, candidates, true_ev, keys)["value"]
    return values


def delivered_values(delivery: pd.DataFrame, plan: pd.DataFrame) -> pd.DataFrame:
    """True value of each delivered row of a plan: the true effect x value at risk - cost.

    ``delivery``: the world's answer (customer_id, status, true_effect_90d, optional arm);
    ``plan``: the scored rows (customer_id, p_churn, value_at_risk, cost, optional arm), valued
    as ``true_values`` values candidates. A row without an arm is the policy's.
    """
    rows = delivery[delivery["status"] == "delivered"]
    keep = [c for c in ("customer_id", "p_churn", "value_at_risk", "cost", "arm") if c in plan]
    rows = rows.drop(columns=[c for c in ("cost", "p_churn", "value_at_risk") if c in rows])
    rows = rows.merge(plan[keep], on="customer_id", how="left", suffixes=("", "_plan"))
    if "arm" not in rows:
        rows["arm"] = "policy"
    rows["arm"] = rows["arm"].fillna("policy").astype(str)
    rows["true_value"] = np.nan_to_num(expected_value(
        rows["p_churn"], rows["true_effect_90d"], rows["value_at_risk"], rows["cost"]))
    return rows
