"""Benchmark: the pipeline's churn model on the real IBM Telco data, against default LightGBM
on the raw Telco columns, both by stratified k-fold cross-validation (ROC AUC).

Pipeline side: the mapping ``configs/sources/ibm_telco.yaml`` (``stage_mapping``) ->
``run_ingest`` -> ``build_feature_tables`` (one snapshot at the quarter start, ``as_of`` =
quarter start + 100 days) -> Feast ``churn_v1`` training frame -> the churn training of
``models/churn/model.py``. The mapping maps only what the files hold (no churn dates, no
history), so today the feature build stops with "no events" and the script reports the
pipeline side as skipped and runs the reference side alone. The dataset has
one snapshot, so ``train_churn``'s out-of-time split cannot work as such; instead each
fold calls ``train_churn`` unchanged with the same ``TrainParams`` on a frame whose
``event_timestamp`` (never a feature) is relabelled: the test fold gets the latest date,
a stratified ``valid_share`` of the training folds the middle date (early-stopping /
calibration holdout, split in halves by ``train_churn`` itself) and the rest the first
date, dates ``horizon + 1`` days apart so the purges keep every row. Its validation
metrics are then exactly the test fold's. Without ``models.churn.model`` the script falls back
to LightGBM with the configured parameters on the ``FrameSpec`` matrix (and says so).

Reference side: default ``lightgbm.LGBMClassifier()`` on the five Telco files joined
(``pd.get_dummies`` one-hot), outcome columns, ``Satisfaction Score`` and ``CLTV`` left
out (shared README: about 0.90), on all customers and on the pipeline's customers with
the pipeline's folds (the fair comparison: customers who joined during the quarter are
not in the snapshot). A default ``LGBMClassifier()`` on the pipeline's features with the
same folds separates what the contract mapping loses from what the training recipe does.

    /tmp/probe-venv/bin/python bench/bench_telco.py [--source ../shared/datasets/ibm_telco_extended]
        [--folds 5] [--seed 0] [--include-satisfaction] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from configs.settings import Settings, TrainParams, load_settings
from features.ingest import run_ingest
from features.services import CHURN_SERVICE
from features.sources.mapping import load_mapping, stage_mapping
from features.store import apply_definitions, feature_store, training_frame
from features.transforms import FEATURE_COLUMNS, build_feature_tables
from models.frame import FrameSpec

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "ibm_telco_extended"
MAPPING = ROOT / "configs" / "sources" / "ibm_telco.yaml"
TELCO_FILES = {name: f"Telco_customer_churn_{name}.csv"
               for name in ("status", "services", "demographics", "location", "population")}
OUTCOME_COLUMNS = tuple(load_mapping(MAPPING).never_features)
LABEL = "churned_within_horizon"
KEY = "Customer ID"
HISTORY_MONTHS = 12
AS_OF_DAYS = 100
NOT_RAW_FEATURES = (*OUTCOME_COLUMNS, "Satisfaction Score", "CLTV", KEY, "Count", "Quarter", "ID",
                    "Lat Long")


def pipeline_frame(source: Path, root: Path, quarter: date) -> tuple[Settings, pd.DataFrame]:
    """Mapping -> ingest -> features -> Feast: the churn training frame at the quarter start.

    The mapping maps what the files hold (customers, signup dates, status; no churn dates, no
    history): until the feature build and the labels handle such a one-date export, the
    feature build stops here with a ValueError, which ``main`` reports.
    """
    settings = load_settings(data_dir=root)
    features = settings.features.model_copy(update={"first_snapshot_after_months": HISTORY_MONTHS})
    settings = settings.model_copy(update={"features": features})
    started = time.perf_counter()
    written = stage_mapping(MAPPING, source, settings.staged_dir)
    report = run_ingest(settings.staged_dir, settings.clean_dir, settings.quarantine_dir,
                        settings.ingest.model_copy(update={"source_format": "csv"}))
    build_feature_tables(settings.clean_dir, settings.feature_dir, features,
                         as_of=quarter + timedelta(days=AS_OF_DAYS))
    labels = pd.read_parquet(settings.feature_dir / "churn_labels.parquet")
    labels = labels[labels["event_timestamp"] == pd.Timestamp(quarter, tz="UTC")]
    store = feature_store(settings)
    apply_definitions(store, settings)
    frame = training_frame(store, labels, CHURN_SERVICE)
    frame = frame.sort_values("customer_id", ignore_index=True)
    quarantined = sum(t.rows_quarantined for t in report.tables.values())
    print(f"mapping -> ingest -> features -> Feast: {time.perf_counter() - started:.1f} s; "
          f"rows written {sum(written.values()):,}, quarantined {quarantined}; "
          f"training frame {len(frame):,} customers at {quarter}, churn rate {frame[LABEL].mean():.3f}")
    return settings, frame


def fold_ids(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    out = np.empty(len(y), dtype=int)
    for k, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)):
        out[test] = k
    return out


def holdout_mask(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A stratified random ``share`` of the rows."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        mask[rng.choice(idx, size=round(share * len(idx)), replace=False)] = True
    return mask


def cv_train_churn(frame: pd.DataFrame, features: list[str], folds: np.ndarray, params: TrainParams,
                   horizon_days: int) -> dict[str, list[float]]:
    """Per-fold test AUC of ``models.churn.model.train_churn`` (LightGBM and its baseline)."""
    try:
        from models.churn.model import train_churn
    except ImportError:
        print("models.churn.model not importable: LightGBM with the configured parameters instead")
        return {"lightgbm": cv_lightgbm(frame, features, folds, params)}
    step = pd.Timedelta(days=horizon_days + 1)
    first = pd.Timestamp(frame["event_timestamp"].iloc[0])
    auc: dict[str, list[float]] = {"lightgbm": [], "baseline": []}
    for k in range(folds.max() + 1):
        test = folds == k
        hold = np.zeros(len(frame), dtype=bool)
        hold[~test] = holdout_mask(frame.loc[~test, LABEL].to_numpy(), params.valid_share, params.seed + k)
        stamps = np.where(test, first + 2 * step, np.where(hold, first + step, first))
        result = train_churn(frame.assign(event_timestamp=pd.DatetimeIndex(stamps)), features, params,
                             horizon_days)
        if result.split["valid"]["rows"] != test.sum():
            raise RuntimeError(f"train_churn's split no longer takes the test fold as validation: "
                               f"{result.split}")
        for name in auc:
            auc[name].append(result.metrics[name]["roc_auc"])
    return auc


def cv_lightgbm(frame: pd.DataFrame, features: list[str], folds: np.ndarray,
                params: TrainParams | None) -> list[float]:
    """LightGBM on the FrameSpec matrix: the configured parameters, or defaults when None."""
    y = frame[LABEL].to_numpy()
    aucs = []
    for k in range(folds.max() + 1):
        test = folds == k
        spec = FrameSpec.fit(frame[~test], features)
        if params is None:
            model = lgb.LGBMClassifier(verbose=-1)
        else:
            p = params.churn
            model = lgb.LGBMClassifier(
                n_estimators=p.n_estimators, learning_rate=p.learning_rate, num_leaves=p.num_leaves,
                max_depth=p.max_depth, min_child_samples=p.min_child_samples, subsample=p.subsample,
                subsample_freq=1, colsample_bytree=p.colsample_bytree, random_state=params.seed,
                verbose=-1)
        model.fit(spec.matrix(frame[~test]), y[~test])
        aucs.append(roc_auc_score(y[test], model.predict_proba(spec.matrix(frame[test]))[:, 1]))
    return aucs


def raw_telco(source: Path, satisfaction: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """The five files joined, one-hot; (X indexed by customer id, Churn Value)."""
    read = {name: pd.read_csv(source / TELCO_FILES[name])
            for name in ("status", "services", "demographics", "location")}
    population = pd.read_csv(source / TELCO_FILES["population"], thousands=",")
    df = read["status"]
    for name in ("services", "demographics", "location"):
        df = df.merge(read[name].drop(columns=["Count", "Quarter"], errors="ignore"), on=KEY)
    df = df.merge(population, on="Zip Code", how="left").set_index(KEY)
    left_out = [c for c in NOT_RAW_FEATURES if c in df.columns
                and not (satisfaction and c == "Satisfaction Score")]
    x = pd.get_dummies(df.drop(columns=left_out), dtype=float)
    x.columns = [f"f{i}" for i in range(x.shape[1])]      # LightGBM refuses some characters in names
    return x, df["Churn Value"].astype(int)


def cv_raw(x: pd.DataFrame, y: pd.Series, folds: np.ndarray) -> list[float]:
    aucs = []
    for k in range(folds.max() + 1):
        test = folds == k
        model = lgb.LGBMClassifier(verbose=-1).fit(x[~test], y[~test])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return aucs


def line(name: str, run, rows: int) -> tuple[float, object]:
    """Run ``run()`` (per-fold AUCs, or a dict of them), print mean +- sd and the time."""
    started = time.perf_counter()
    out = run()
    aucs = out["lightgbm"] if isinstance(out, dict) else out
    mean = float(np.mean(aucs))
    print(f"  {name:<70} {mean:.4f} +- {np.std(aucs):.4f}  ({rows:,} customers, "
          f"{time.perf_counter() - started:.0f} s)")
    return mean, out


def compare_pipeline(settings: Settings, frame: pd.DataFrame, x: pd.DataFrame, y: pd.Series,
                     folds: np.ndarray, raw: str) -> None:
    """The pipeline's lines, and the raw columns on the same customers and folds."""
    features = [c for cols in FEATURE_COLUMNS.values() for c in cols]
    order = pd.Index(frame["customer_id"])
    if not y.reindex(order).to_numpy().tolist() == frame[LABEL].tolist():
        raise RuntimeError("pipeline labels differ from Churn Value on the snapshot customers")
    horizon = settings.features.churn_horizon_days
    pipe, churn = line("pipeline: train_churn LightGBM (calibrated), Feast features",
                       lambda: cv_train_churn(frame, features, folds, settings.train, horizon), len(frame))
    if "baseline" in churn:
        line("pipeline: train_churn logistic baseline (same run)", lambda: churn["baseline"], len(frame))
    line("default LGBMClassifier() on the pipeline features",
         lambda: cv_lightgbm(frame, features, folds, None), len(frame))
    raw_same, _ = line(f"default LGBMClassifier() on {raw}, same customers+folds",
                       lambda: cv_raw(x.loc[order], y.loc[order], folds), len(frame))
    print(f"difference pipeline - raw (same customers and folds): {pipe - raw_same:+.4f}")
    print(f"({int(x.index.isin(order).sum()):,} of {len(x):,} customers are in the snapshot)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quarter", type=date.fromisoformat, default=date(2022, 7, 1))
    ap.add_argument("--include-satisfaction", action="store_true",
                    help="add Satisfaction Score to the raw reference columns (near-leaky)")
    ap.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: temp)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")       # all-missing columns in the logistic baseline, Feast notices

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-telco-"))
    try:
        settings, frame = pipeline_frame(args.source.resolve(), root, args.quarter)
    except ValueError as exc:
        settings, frame = None, None
        print(f"pipeline side skipped: {exc}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    x, y = raw_telco(args.source.resolve(), args.include_satisfaction)
    raw = "raw Telco columns" + (" + Satisfaction Score" if args.include_satisfaction else "")
    print(f"\nROC AUC, stratified {args.folds}-fold CV (seed {args.seed}), mean +- sd over folds")
    if frame is not None:
        compare_pipeline(settings, frame, x, y, fold_ids(frame[LABEL].to_numpy(), args.folds,
                                                         args.seed), raw)
    all_folds = fold_ids(y.to_numpy(), args.folds, args.seed)
    line(f"default LGBMClassifier() on {raw}, all customers", lambda: cv_raw(x, y, all_folds), len(x))
    print(f"(raw one-hot columns: {x.shape[1]})")


if __name__ == "__main__":
    main()
