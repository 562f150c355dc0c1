"""A world with known effects answering randomized plans, month by month, for the impact report.

Test code: it writes plans straight into a serving database (no models), steps the world with
``advance_world`` and ingests once at the end; the tests score the report against the true
average effect of the delivered actions (``features.sources.world.evaluate.impact_coverage``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert

from configs.settings import load_settings
from features.ingest import run_ingest
from features.sources.world.step import advance_world
from models.prescribe.slices import impact_slices
from serving.db.schema import COMPLETE, action_plan, engine_for, scoring_runs
from tests.conftest import make_world

ACTIONS = ["service_recovery_call", "discount_offer", "plan_upgrade", "apology_credit",
           "proactive_tech_check"]
COSTS = dict(zip(ACTIONS, [25.0, 30.0, 10.0, 15.0, 20.0], strict=True))


def _open_customers(raw: Path) -> pd.DataFrame:
    crm = pd.read_parquet(raw / "crm_customers.parquet",
                          columns=["customer_id", "rep_id", "status", "notice_date"])
    return crm[(crm["status"] == "active") & crm["notice_date"].isna() & crm["rep_id"].notna()]


def write_run(engine, run_id: str, as_of, plan: pd.DataFrame) -> None:
    lineage = {"model_versions": json.dumps({}), "feature_service": "churn_v1", "data_version": "t"}
    with engine.begin() as conn:
        conn.execute(insert(scoring_runs).values(run_id=run_id, as_of=as_of, status=COMPLETE,
                                                 started_at=datetime(2025, 1, 1), **lineage))
        if len(plan):
            conn.execute(insert(action_plan), [{**r, "run_id": run_id, **lineage}
                                               for r in plan.to_dict(orient="records")])


def run_loop(root: Path, customers: int = 6000, months: int = 8, planned: int = 2000,
             holdout: float = 0.5, capacity: int = 40, seed: int = 5):
    """Simulate, then ``months`` monthly plans of ``planned`` fresh customers each (random
    actions, ``holdout`` held out, reps' capacity ``capacity``); ingest. Returns settings."""
    root = make_world(root, customers=customers, months=12, seed=seed)
    settings = load_settings(data_dir=root)
    engine = engine_for(settings)
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    start = pd.Timestamp(settings.simulate.start_date)   # params of the saved world: 2024-01-01
    for m in range(months):
        as_of = (start + pd.DateOffset(months=12 + m)).date()
        pool = _open_customers(settings.raw_dir)
        pool = pool[~pool["customer_id"].isin(seen)]
        # the global control slice is never planned (the other slices are planned at random too)
        share = settings.prescribe.impact_slice_share
        pool = pool[impact_slices(pool["customer_id"].to_numpy(), share) != "no_action"]
        pick = pool.sample(n=min(planned, len(pool)), random_state=int(rng.integers(1 << 30)))
        seen.update(pick["customer_id"])
        plan = pd.DataFrame({
            "customer_id": pick["customer_id"].to_numpy(), "rep_id": pick["rep_id"].to_numpy(),
            "rank": np.arange(1, len(pick) + 1),
            "action_id": rng.choice(ACTIONS, len(pick)),
            "control_group": rng.random(len(pick)) < holdout,
        })
        plan["cost"] = plan["action_id"].map(COSTS)
        write_run(engine, f"run{m + 1:02d}", as_of, plan)
        advance_world(settings.truth_dir, settings.raw_dir, plan, 1, capacity=capacity,
                      holdout_share=holdout)
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    end = (start + pd.DateOffset(months=12 + months)).normalize()
    return settings, engine, end
