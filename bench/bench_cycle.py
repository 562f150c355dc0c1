"""Benchmark: the closed loop (`cem cycle`) on a large world, month by month, over seeds.

For each seed a world of ``--customers`` customers is simulated and carried through ingest,
features and training (search off, as the other benchmarks), and scored at the cycle's
budget (``--budget``: a share of the active customers times the catalogue's mean action cost;
"2 %" as in bench_policy). Then ``--cycles`` cycles of the product's own cycle flow
(``pipelines.cycle_flow.cycle_flow``: advance, ingest, features, retrain every
``cycle.retrain_every_months``, score) run, and each prints its wall seconds by stage, the
process's peak RSS so far and the learning curve's point (true values from the hidden truth):
the exploit plan (the policy's delivered rows), oracle, feature ceiling, the learner without
its evidence gate (what the gate withholds: is the learner improving?), risk-ranked, random,
the experiments' value (their cost), the cumulative value and exploit / ceiling.

The feature ceiling (a cross-fitted refit on the truth) is evaluation, not the product's
work, and costs about 100 s per plan at 100k, so by default it is refit for every 3rd
cycle's plan (cycles 3, 6, 9, 12: the goals' checkpoints); the other cycles show n/a.

Goals (issue "The closed loop"): exploit >= 0 every cycle on every seed; exploit >= 70 % of
the ceiling by cycle 6 and 85 % by cycle 12; cumulative value > 0 by cycle 6; one cycle of a
100k world in at most 120 s. Rows are written to ``--out`` as each cycle ends; with
``--keep`` a seed already built there is carried on (its earlier rows read back from ``--out``);
``--cycles 0`` with ``--keep`` builds the worlds only, for a later run to carry on. A long run
is best started with ``MALLOC_ARENA_MAX=2`` (BENCHMARKS.md, "Memory across cycles").

    .venv/bin/python bench/bench_cycle.py [--customers 100000] [--cycles 12] [--seeds 1 2 3]
        [--budget 0.02] [--ceiling-every 3] [--out bench_cycle.json] [--skip-nps] [--keep DIR]
        [--experiment-spend thompson|whole]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

STAGES = ("advance", "ingest", "features", "train", "score", "evaluation")
CURVE = ("exploit", "oracle", "feature_ceiling", "ungated", "risk_ranked", "random", "experiments",
         "cumulative", "exploit_share_of_ceiling")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # kB on Linux


def configure(args, seed: int) -> None:
    """Settings every step reads (the flows load them from the data folder and CEM_ variables)."""
    os.environ.update({"CEM_CYCLE__BUDGET_SHARE": str(args.budget),
                       "CEM_CYCLE__CEILING_EVERY_MONTHS": str(args.ceiling_every),
                       "CEM_TRAIN__SEARCH__TRIALS": "0", "CEM_TRAIN__SEED": str(seed),
                       "CEM_SIMULATE__CUSTOMERS": str(args.customers),
                       "CEM_SIMULATE__SEED": str(seed),
                       "CEM_PRESCRIBE__EXPERIMENT_SPEND": args.experiment_spend})
    for key, value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "ERROR",
                       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")                 # library chatter, as `cem` hides it
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def build(root: Path, nps: bool = True) -> dict:
    """The world before the loop: simulated, ingested, features, trained, scored at the budget
    (``nps`` off: the NPS model is left out of the first training, to save its minutes)."""
    from configs.settings import load_settings
    from features.ingest import run_ingest
    from features.sources.world import simulate_world
    from features.store import apply_definitions, feature_store
    from features.transforms import build_feature_tables
    from pipelines.cycle import plain_stages, score_cycle

    settings = load_settings(data_dir=root)
    seconds = {}
    started = time.perf_counter()
    simulate_world(settings.simulate, settings.raw_dir, settings.truth_dir)
    seconds["simulate"] = time.perf_counter() - started
    run_ingest(settings.raw_dir, settings.clean_dir, settings.quarantine_dir, settings.ingest)
    build_feature_tables(settings.clean_dir, settings.feature_dir, settings.features)
    apply_definitions(feature_store(settings), settings)
    seconds["ingest_features"] = time.perf_counter() - started - seconds["simulate"]
    if nps:
        plain_stages(settings).train()
    else:
        from models.churn.train import train_and_log_churn
        from models.uplift.train import train_and_log_uplift

        train_and_log_churn(settings)
        train_and_log_uplift(settings)
    seconds["train"] = time.perf_counter() - started - sum(seconds.values())
    score_cycle(settings)
    seconds["score"] = time.perf_counter() - started - sum(seconds.values())
    return {k: round(v, 1) for k, v in seconds.items()}


def built_before(root: Path) -> bool:
    """A kept world that was built and scored by an earlier run (its first plan is recorded)."""
    return any((root / "reports" / "cycle" / "plans").glob("*.json"))


def cycle_row(seed: int, line: dict, wall: float) -> dict:
    point = line["curve"]
    return {"seed": seed, "cycle": point["cycle"], "month": point["month"], "wall_s": round(wall, 1),
            "experiment_spend": os.environ.get("CEM_PRESCRIBE__EXPERIMENT_SPEND", "thompson"),
            "carried_on": bool(line.get("carried_on")),
            **{f"{k}_s": round(line["seconds"].get(k, 0.0), 1) for k in STAGES},
            "peak_rss_gb": round(peak_rss_gb(), 2), "planned": line["planned"],
            "delivered": line["delivered"], "retrained": line["retrained"],
            **{k: point.get(k) for k in (*CURVE, "budget", "do_nothing", "delivered_policy",
                                         "delivered_experiment")}}


def show(row: dict) -> str:
    def m(name):
        v = row[name]
        return "n/a" if v is None or pd.isna(v) else f"{v:,.0f}"
    share = row["exploit_share_of_ceiling"]
    stages = " ".join(f"{k} {row[f'{k}_s']:.0f}" for k in STAGES)
    return (f"seed {row['seed']} cycle {row['cycle']:>2} ({row['month']}): {row['wall_s']:.0f} s "
            f"[{stages}] peak {row['peak_rss_gb']:.2f} GB | exploit {m('exploit')} oracle "
            f"{m('oracle')} ceiling {m('feature_ceiling')} ungated {m('ungated')} "
            f"risk {m('risk_ranked')} random "
            f"{m('random')} experiments {m('experiments')} cumulative {m('cumulative')} "
            f"exploit/ceiling {'n/a' if pd.isna(share) else f'{share:.0%}'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--cycles", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--budget", type=float, default=0.02, help="share of active customers")
    ap.add_argument("--ceiling-every", type=int, default=3,
                    help="refit the feature ceiling for every N-th cycle's plan (0: never)")
    ap.add_argument("--out", type=Path, default=Path("bench_cycle.json"))
    ap.add_argument("--experiment-spend", choices=["thompson", "whole"], default="thompson",
                    help="prescribe.experiment_spend: the Thompson shares' part of the experiment "
                         "budget, or all of it plus what the model's plan leaves")
    ap.add_argument("--skip-nps", action="store_true",
                    help="no NPS model in the first training (retraining in the loop trains it)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep each seed's data under DIR; a seed already built there is "
                         "carried on from its last cycle instead of rebuilt")
    args = ap.parse_args()
    rows: list[dict] = (json.loads(args.out.read_text()) if args.keep and args.out.exists()
                        else [])             # carrying kept worlds on: their earlier cycles too
    for seed in args.seeds:
        configure(args, seed)
        root = (args.keep / f"seed{seed}" if args.keep
                else Path(tempfile.mkdtemp(prefix=f"cem-cycle-{seed}-")))
        try:
            if built_before(root):
                print(f"seed {seed}: carrying on the world kept in {root}", flush=True)
            else:
                built = build(root, nps=not args.skip_nps)
                print(f"seed {seed}: world of {args.customers:,} built in "
                      f"{sum(built.values()):.0f} s {built}, peak {peak_rss_gb():.2f} GB", flush=True)
            from pipelines.cycle_flow import cycle_flow

            for _ in range(args.cycles):
                started = time.perf_counter()
                line = cycle_flow(root)
                rows.append(cycle_row(seed, line, time.perf_counter() - started))
                print(show(rows[-1]), flush=True)
                args.out.write_text(json.dumps(rows, indent=1, default=str))
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
    if not rows:                          # --cycles 0: worlds built (and kept) only
        return
    table = pd.DataFrame(rows)
    print("\nexploit / feature ceiling by cycle and seed")
    print(table.pivot_table(index="cycle", columns="seed", values="exploit_share_of_ceiling").round(2)
          .to_string())
    print("\ncumulative value by cycle and seed")
    print(table.pivot_table(index="cycle", columns="seed", values="cumulative").round(0).to_string())
    print(f"\nexploit >= 0 every cycle and seed: {bool((table['exploit'] >= 0).all())}; "
          f"slowest cycle {table['wall_s'].max():.0f} s; peak RSS {table['peak_rss_gb'].max():.2f} GB")


if __name__ == "__main__":
    main()
