"""Benchmark: the pipeline's uplift learners on the real Hillstrom e-mail experiment.

Task (shared datasets README): uplift of the ``Womens E-Mail`` arm against ``No E-Mail``
on ``visit``; a 50/50 random split (``np.random.seed(0)``, a row goes to training when
``np.random.rand() < 0.5``); figure: uplift in the top 30 % ranked on the test half
(treated minus control visit rate among the top 30 % of all test customers,
``models.uplift.metrics.uplift_at_k``). Reference: a two-model LightGBM with 100
default trees each, 0.062 in the README; it is recomputed here, in the same run, on
the same split (the categorical columns as pandas categories).

Pipeline side: ``models.uplift.model.select_learner`` picks a learner (shift / T / X / DR)
by 3-fold cross-validated Qini on the training half only, then that learner is fitted
on the whole training half and scored on the test half. The figures of every learner
are printed too, and the same comparison over four more split seeds shows how much
the figure moves with the split.

    /tmp/probe-venv/bin/python bench/bench_hillstrom.py [--data ../shared/datasets/hillstrom/hillstrom.csv]
        [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.frame import FrameSpec
from models.uplift.data import ACTION, LABEL, TREATED
from models.uplift.metrics import qini_area, uplift_at_k
from models.uplift.model import LEARNERS, UpliftParams, fit_uplift
from models.uplift.selection import select_learner

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "hillstrom" / "hillstrom.csv"
FEATURES = ["recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel"]
CATEGORICAL = ["history_segment", "zip_code", "channel"]
ARM, CONTROL, OUTCOME = "Womens E-Mail", "No E-Mail", "visit"
K = 0.3


def load(path: Path) -> tuple[pd.DataFrame, FrameSpec]:
    """The two arms as an uplift frame (one 'action', treated flag, label = visit)."""
    raw = pd.read_csv(path)
    missing = [c for c in [*FEATURES, "segment", OUTCOME] if c not in raw.columns]
    if missing:
        raise SystemExit(f"{path} lacks columns {missing}")
    raw = raw[raw["segment"].isin([ARM, CONTROL])].reset_index(drop=True)
    frame = raw[FEATURES].copy()
    frame["customer_id"] = np.arange(len(raw)).astype(str)
    frame[ACTION] = "womens_email"
    frame[TREATED] = (raw["segment"] == ARM).astype(np.int64)
    frame[LABEL] = raw[OUTCOME].astype(np.int64)
    spec = FrameSpec(FEATURES, {c: sorted(raw[c].astype(str).unique()) for c in CATEGORICAL})
    return frame, spec


def split(n: int, seed: int) -> np.ndarray:
    """True = training row: ``np.random.seed(seed); np.random.rand(n) < 0.5``."""
    np.random.seed(seed)
    return np.random.rand(n) < 0.5


def two_model_lightgbm(train: pd.DataFrame, test: pd.DataFrame, spec: FrameSpec) -> np.ndarray:
    """The README's reference: default LightGBM (100 trees) per arm, uplift = p_T - p_C."""
    p = {}
    for t in (0, 1):
        rows = train[train[TREATED] == t]
        model = lgb.LGBMClassifier(n_estimators=100, n_jobs=1, verbose=-1)
        p[t] = model.fit(spec.matrix(rows), rows[LABEL]).predict_proba(spec.matrix(test))[:, 1]
    return p[1] - p[0]


def figures(test: pd.DataFrame, score: np.ndarray) -> dict[str, float]:
    y, t = test[LABEL].to_numpy(), test[TREATED].to_numpy()
    return {"uplift_at_30": uplift_at_k(y, t, score, K), "qini": qini_area(y, t, score)}


def run_seed(frame: pd.DataFrame, spec: FrameSpec, seed: int, params: UpliftParams) -> dict:
    """Reference, selected learner and every learner on one split."""
    mask = split(len(frame), seed)
    train, test = frame[mask].reset_index(drop=True), frame[~mask].reset_index(drop=True)
    out = {"reference": figures(test, two_model_lightgbm(train, test, spec))}
    chosen, table = select_learner(train, FEATURES, params, spec=spec, prevent=False)
    for name in LEARNERS:
        model = fit_uplift(train, FEATURES, name, params, spec=spec)
        out[name] = figures(test, model.effects(test)["womens_email"].to_numpy())
    out["selected"] = {**out[chosen], "learner": chosen}
    out["ate"] = float(test.loc[test[TREATED] == 1, LABEL].mean()
                       - test.loc[test[TREATED] == 0, LABEL].mean())
    out["cv_qini"] = table["mean"].round(5).to_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=5, help="split seeds 0..N-1 (seed 0 is the README's)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    frame, spec = load(args.data)
    params = UpliftParams()
    rows = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        res = run_seed(frame, spec, seed, params)
        rows.append({"seed": seed, "ate": res["ate"], "reference": res["reference"]["uplift_at_30"],
                     "selected": res["selected"]["uplift_at_30"], "learner": res["selected"]["learner"],
                     **{f"{n}": res[n]["uplift_at_30"] for n in LEARNERS},
                     "qini_reference": res["reference"]["qini"], "qini_selected": res["selected"]["qini"],
                     "seconds": time.perf_counter() - start})
        print(f"seed {seed}: cross-validated Qini on the training half {res['cv_qini']}", flush=True)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(f"\nHillstrom, {ARM} vs {CONTROL} on {OUTCOME}: uplift in the top 30 % of the test half")
    print(table.round(4).to_string(index=False))
    first = table.iloc[0]
    print(f"\nseed 0 (README split): two-model LightGBM {first['reference']:.4f} (README 0.062), "
          f"pipeline ({first['learner']}-learner, chosen by CV Qini) {first['selected']:.4f}")
    ahead = int((table["selected"] > table["reference"]).sum())
    print(f"mean over {len(table)} seeds: reference {table['reference'].mean():.4f} "
          f"+- {table['reference'].std():.4f}, pipeline {table['selected'].mean():.4f} "
          f"+- {table['selected'].std():.4f}; pipeline ahead on {ahead} of {len(table)} splits")


if __name__ == "__main__":
    main()
