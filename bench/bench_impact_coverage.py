"""Benchmark: does the impact report's 90 % interval cover the true effect, on stepped worlds?

The issue "The closed loop" asks that the measured effect per action cover the true average
effect of the delivered actions within its 90 % interval in at least 85 % of (action, cycle)
pairs. This reads worlds stepped by `cem cycle` (e.g. kept by ``bench_cycle.py --keep``),
builds each one's impact report from realized outcomes only (``models.impact.build_report``),
and only then reads the hidden truth to score it (``features.sources.world.evaluate``).

    .venv/bin/python bench/bench_impact_coverage.py DATA_DIR [DATA_DIR ...] [--out coverage.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from configs.settings import load_settings
from features.sources.world.evaluate import impact_coverage
from models.impact.report import build_report

GOAL = 0.85
SHOWN = ["world", "cycle", "action", "n_treated", "n_control", "effect", "lo90", "hi90", "mean",
         "covered"]


def world_pairs(data: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The scored pairs, and how many (action, cycle) pairs the report has by status."""
    settings = load_settings(data_dir=data)
    effects = build_report(settings).effects
    per = effects[(effects["scope"] == "cycle") & (effects["action"] != "all")]
    status = per["status"].value_counts().rename(data.name)
    return impact_coverage(effects, settings.truth_dir).assign(world=data.name), status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+", help="data folders of stepped worlds")
    ap.add_argument("--out", type=Path, default=None, help="write every pair as CSV")
    args = ap.parse_args()
    found = [world_pairs(d) for d in args.data]
    pairs = pd.concat([f[0] for f in found], ignore_index=True)
    print("(action, cycle) pairs of the reports by status (ok: measured; the others are not):\n"
          + pd.concat([f[1] for f in found], axis=1).fillna(0).astype(int).to_string() + "\n")
    if pairs.empty:
        print("no (action, cycle) pair with a matured measurement yet")
        return
    shown = [c for c in SHOWN if c in pairs]
    pairs["cycle"] = pairs["cycle"].astype(int)
    print(pairs[shown].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    by_world = pairs.groupby("world")["covered"].agg(["mean", "size"])
    print("\ncovered share by world:\n" + by_world.to_string(float_format=lambda v: f"{v:.2f}"))
    share = pairs["covered"].mean()
    print(f"\n{int(pairs['covered'].sum())} of {len(pairs)} (action, cycle) pairs covered: "
          f"{share:.0%} (goal >= {GOAL:.0%}: {'met' if share >= GOAL else 'not met'})")
    if args.out:
        pairs.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
