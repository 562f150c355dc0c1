"""Benchmark: training every model on ~1,000,000 churn snapshots, against a bare LightGBM
fit on the same prepared matrix (the baseline), in one run.

Builds a world big enough for ``--rows`` labelled customer-snapshots, ingests it,
builds and registers the features, then times:

* the baseline: ``lightgbm.train`` on the churn model's own prepared fit matrix with the
  same parameters and as many trees as the pipeline grew (no early stopping, no
  calibration, no validation, no logging);
* ``train_churn`` (LightGBM with early stopping + isotonic calibration + the logistic
  baseline + out-of-time metrics) on the same training frame;
* each training run as `cem train` does it (Feast retrieval, training, SHAP key
  drivers, plots, MLflow logging and registry): churn, predicted NPS, uplift.

    .venv/bin/python bench/bench_train.py [--customers 72000]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from bench_features_pit import prepare as prepare_world  # same folder: run as a script

from features.services import CHURN_SERVICE
from features.store import apply_definitions, feature_store, service_features, training_frame
from models.churn.model import CUSTOMER_SHARES, LABEL, churn_kwargs, train_churn
from models.churn.train import train_and_log_churn
from models.frame import FrameSpec
from models.nps.train import train_and_log_nps
from models.split import customer_parts, out_of_time_split
from models.uplift.train import train_and_log_uplift


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def prepare(root: Path, customers: int):
    """The PIT benchmark's world (simulate, ingest, feature tables), registered in Feast."""
    settings = prepare_world(root, customers)
    apply_definitions(feature_store(settings), settings)
    return settings


def bare_fit(frame: pd.DataFrame, features: list[str], settings, trees: int) -> tuple[float, int]:
    """Seconds for lightgbm.train on the pipeline's own fit matrix, same params and trees."""
    params = settings.train
    ordered = frame.sort_values(["event_timestamp", "customer_id"], kind="stable", ignore_index=True)
    train, _ = out_of_time_split(ordered, params.valid_share, settings.features.churn_horizon_days)
    fit, _, _ = customer_parts(train, CUSTOMER_SHARES, params.seed)
    spec = FrameSpec.fit(train, features)
    X, y = spec.matrix(fit), fit[LABEL].to_numpy()
    kw = churn_kwargs(params.churn, params.seed)
    native = {"objective": "binary", "learning_rate": kw["learning_rate"], "num_leaves": kw["num_leaves"],
              "max_depth": kw["max_depth"], "min_child_samples": kw["min_child_samples"],
              "subsample": kw["subsample"], "subsample_freq": kw.get("subsample_freq", 1),
              "colsample_bytree": kw["colsample_bytree"], "num_threads": 1, "verbose": -1,
              "seed": params.seed}
    started = time.perf_counter()
    lgb.train(native, lgb.Dataset(X, y), num_boost_round=trees)
    return time.perf_counter() - started, len(X)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=72000)
    ap.add_argument("--keep", action="store_true", help="keep the scratch data folder")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cem-bench-train-"))
    try:
        t_prep, settings = timed(prepare, root, args.customers)
        store = feature_store(settings)
        labels = pd.read_parquet(settings.feature_dir / "churn_labels.parquet")
        t_frame, frame = timed(training_frame, store, labels, CHURN_SERVICE)
        features = service_features(store, CHURN_SERVICE)
        print(f"world: {args.customers:,} customers, {len(frame):,} labelled snapshots x "
              f"{len(features)} features (prepared in {t_prep:.0f} s; Feast training set {t_frame:.1f} s)")
        t_core, result = timed(train_churn, frame, features, settings.train,
                               settings.features.churn_horizon_days)
        trees = result.model.booster.booster_.current_iteration()
        t_bare, fit_rows = bare_fit(frame, features, settings, trees)
        print(f"baseline  lightgbm.train, {fit_rows:,} fit rows, {trees} trees: {t_bare:8.1f} s")
        print(f"train_churn (early stopping, calibration, logistic baseline, metrics): {t_core:8.1f} s "
              f"= {t_core / t_bare:.2f}x baseline")
        runs = {}
        for name, fn in (("churn", train_and_log_churn), ("nps", train_and_log_nps),
                         ("uplift", train_and_log_uplift)):
            runs[name], _ = timed(fn, settings)
            print(f"cem train / {name:<6} (Feast, training, SHAP, plots, MLflow): {runs[name]:8.1f} s")
        total = sum(runs.values())
        print(f"every model, as `cem train` runs them: {total:8.1f} s = {total / t_bare:.2f}x baseline; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GB")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
