"""Benchmark: what the product's plans are truly worth, over seeds and budgets, beside the
plans a retention team would pick instead, all valued with the world's hidden effects.

For each seed a world is simulated and carried through ingest, features, churn and uplift
training (the evidence gate on, as shipped) and the batch scoring of the latest snapshot.
Then, at each budget (a share of the active customers times the catalogue's mean action
cost, so "2 %" means money for about 2 % of customers), every plan is arbitrated under the
same rules (eligibility, contact consent, notices, contact policy, rep capacity) and valued
with the true effects:

* ``model``: the shipped rule (evidence-gated learner, safe decision rule);
* ``model_ungated``: the same learner with every action allowed (what the gate prevents);
* ``risk_ranked``, ``random``: no per-customer effect; ``do_nothing``: 0 by definition;
* ``feature_ceiling``: the true effects as predicted from the features (cross-fitted);
* ``oracle``: the true effects themselves.

``--log-shares 0.25 0.5 1`` also retrains the uplift model on that share of the programme
log's customers (the rest of the pipeline unchanged) and values the model's plans again:
how the learned plans grow with the log's size.

    .venv/bin/python bench/bench_policy.py [--customers 20000] [--seeds 1 2 3]
                                           [--budgets 0.01 0.02 0.05] [--log-shares 0.25 0.5 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

import models.uplift.train as uplift_train
from configs.settings import SimulateParams, load_settings
from features.ingest import run_ingest
from features.sources.world import simulate_world
from features.store import apply_definitions, feature_store
from features.transforms import build_feature_tables
from models.bundle import load_champions
from models.churn.train import train_and_log_churn
from models.prescribe import arbitrate
from models.prescribe.evaluate import (
    ceiling_candidates,
    ceiling_effects,
    features_as_of,
    plan_value,
    random_candidates,
    read_true_effects,
    risk_ranked_candidates,
    true_values,
    ungated_candidates,
)
from models.uplift.train import train_and_log_uplift
from serving.batch import score_as_of
from serving.batch_inputs import active_customers, feature_rows, latest_snapshot

PLANS = ("model", "model_ungated", "risk_ranked", "random", "feature_ceiling", "oracle")


def build(root: Path, customers: int, seed: int):
    """A trained world: settings, champion bundle and the scoring run of its last snapshot."""
    simulate_world(SimulateParams(customers=customers, seed=seed), root / "raw", root / "truth")
    settings = load_settings(data_dir=root)
    settings = settings.model_copy(update={"train": settings.train.model_copy(
        update={"seed": seed, "search": settings.train.search.model_copy(update={"trials": 0})})})
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    apply_definitions(feature_store(settings), settings)
    train_and_log_churn(settings)
    uplift = train_and_log_uplift(settings)
    bundle = load_champions(settings)
    as_of = latest_snapshot(settings)
    features = feature_rows(settings, active_customers(settings.clean_dir, as_of), as_of,
                            bundle.feature_service)
    result = score_as_of(settings, bundle, as_of, None, features=features)
    return settings, bundle, as_of, result, features, uplift


def evaluate(settings, bundle, as_of, result, features, budgets, seed) -> list[dict]:
    truth = read_true_effects(settings, as_of)
    cand, contacts, catalogue = result.candidates, result.contacts, bundle.catalogue
    true_ev = true_values(cand, truth)
    oracle = cand.assign(expected_value=true_ev, eligible=cand["eligible"].to_numpy() & np.isfinite(true_ev))
    oracle = oracle.drop(columns=[c for c in ("expected_value_low",) if c in oracle])
    features, names = features_as_of(settings, cand["customer_id"].unique(), as_of)
    ceiling = ceiling_candidates(cand, ceiling_effects(features, names, truth, seed))
    ceiling = ceiling.drop(columns=[c for c in ("expected_value_low",) if c in ceiling])
    sources = {"model": cand, "model_ungated": ungated_candidates(
                   cand, features, bundle, settings.prescribe.value_quantile),
               "risk_ranked": risk_ranked_candidates(cand), "random": random_candidates(cand, seed),
               "feature_ceiling": ceiling, "oracle": oracle}
    for name in ("risk_ranked", "random"):
        sources[name] = sources[name].drop(columns=[c for c in ("expected_value_low",)
                                                    if c in sources[name]])
    customers = cand["customer_id"].nunique()
    mean_cost = float(np.mean(catalogue.column("cost")))
    rows = []
    for share in budgets:
        budget = share * customers * mean_cost
        for name in PLANS:
            plan = arbitrate(sources[name], contacts, catalogue, settings.prescribe, budget=budget)
            v = plan_value(plan.actions, cand, true_ev)
            rows.append({"seed": seed, "budget_share": share, "budget": budget, "plan": name, **v})
    return rows


def log_share_rows(settings, as_of, features, budgets, seed, share: float) -> list[dict]:
    """The model's plans after retraining the uplift model on ``share`` of the log's customers."""
    full = uplift_train.build_uplift_frame

    def subsample(labels, featured, names):
        frame = full(labels, featured, names)
        ids = frame["customer_id"].drop_duplicates()
        keep = ids.sample(frac=share, random_state=seed)
        return frame[frame["customer_id"].isin(keep)].reset_index(drop=True)

    with mock.patch.object(uplift_train, "build_uplift_frame", subsample):
        uplift = train_and_log_uplift(settings)
    bundle = load_champions(settings)
    result = score_as_of(settings, bundle, as_of, None, features=features)
    rows = evaluate(settings, bundle, as_of, result, features, budgets, seed)
    print(f"seed {seed}, {share:.0%} of the log: learner {uplift['learner']}, shown "
          f"{uplift['shown_actions'] or 'none'}", flush=True)
    return [{**r, "log_share": share} for r in rows if r["plan"] in ("model", "model_ungated",
                                                                     "feature_ceiling")]


def log_curve(rows: list[dict]) -> pd.DataFrame:
    """Per log share and budget: the model's and the ungated learner's value, mean over seeds,
    and as a share of the feature ceiling."""
    t = pd.DataFrame(rows)
    wide = t.pivot_table(index=["log_share", "budget_share", "seed"], columns="plan",
                         values="value").reset_index()
    for plan in ("model", "model_ungated"):
        wide[f"{plan}_of_ceiling"] = wide[plan] / wide["feature_ceiling"]
    return wide.groupby(["log_share", "budget_share"]).mean(numeric_only=True).drop(columns="seed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    ap.add_argument("--log-shares", type=float, nargs="+", default=[1.0],
                    help="also retrain the uplift model on these shares of the log")
    ap.add_argument("--out", type=Path, default=None, help="write every row as JSON here")
    args = ap.parse_args()
    rows, shown, curve = [], {}, []
    for seed in args.seeds:
        root = Path(tempfile.mkdtemp(prefix=f"cem-policy-{seed}-"))
        try:
            t0 = time.perf_counter()
            settings, bundle, as_of, result, features, uplift = build(root, args.customers, seed)
            shown[seed] = (uplift["learner"], uplift["shown_actions"])
            mine = evaluate(settings, bundle, as_of, result, features, args.budgets, seed)
            rows += mine
            curve += [{**r, "log_share": 1.0} for r in mine
                      if r["plan"] in ("model", "model_ungated", "feature_ceiling")]
            if args.out:                     # kept as each seed ends: a long run keeps what it measured
                args.out.write_text(json.dumps(rows, indent=1))
            print(f"seed {seed}: learner {uplift['learner']}, actions shown to pay "
                  f"{uplift['shown_actions'] or 'none'}, {time.perf_counter() - t0:.0f} s", flush=True)
            evidence = pd.DataFrame(uplift["evidence"]).set_index("action")
            print(evidence[["selected", "value_per_action", "value_lo", "holdout_selected",
                            "holdout_value_per_action", "shown"]].round(1).to_string(), flush=True)
            print(pd.DataFrame(mine).pivot_table(index="plan", columns="budget_share", values="value")
                  .round(0).to_string(), flush=True)
            for share in sorted(s for s in args.log_shares if s < 1):
                curve += log_share_rows(settings, as_of, features, args.budgets, seed, share)
                if args.out:
                    args.out.with_suffix(".log_shares.json").write_text(json.dumps(curve, indent=1))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    table = pd.DataFrame(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    wide = table.pivot_table(index=["budget_share", "plan"], columns="seed", values="value")
    wide["min"] = wide.min(axis=1)
    print(f"\nTrue value of each plan ({args.customers:,} customers; budget = share of active "
          "customers x mean action cost)")
    print(wide.round(0).to_string())
    ok = table[table["plan"] == "model"]["value"].min() >= 0
    print(f"\nmodel >= 0 on every seed and budget: {ok}")
    if any(s < 1 for s in args.log_shares):
        print("\nValue by the share of the log the uplift model learns from (mean over seeds)")
        print(log_curve(curve).round(2).to_string())


if __name__ == "__main__":
    main()
