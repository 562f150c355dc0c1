"""Churn model: LightGBM on the fused X+O features, calibrated, against a logistic baseline.

Validation is the latest snapshots (purged by the label horizon); the training period's
customers are split at random into fit / stop / calib parts, so each covers the whole
seasonal cycle. Design and measured figures: docs/models.md#churn
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from configs.settings import LightGBMParams, TrainParams
from models.boosting import lgbm_kwargs
from models.churn.metrics import classification_metrics
from models.churn.search import search_churn_params
from models.churn.validation import CUSTOMER_CV, OUT_OF_TIME, choose_validation, customer_folds
from models.frame import KEYS, FrameSpec, check_encoding
from models.split import customer_parts, snapshot_dates

LABEL = "churned_within_horizon"
CUSTOMER_SHARES = (0.70, 0.15, 0.15)   # fit / stop / calib customers of the training period


def churn_kwargs(params: LightGBMParams, seed: int) -> dict:
    """The churn booster's LGBMClassifier arguments (binary, early stopping on log loss)."""
    return lgbm_kwargs(params, seed, "binary", metric="binary_logloss")


@dataclass
class CenteredIsotonic:
    """Isotonic calibration drawn through its block centres (centred isotonic regression).

    Plain isotonic regression is a staircase: every customer on one step gets the same
    probability, which throws away the booster's ranking inside the step (AUC fell
    0.004-0.007 on the 4k-customer world). Joining the centre (mean score, churn rate)
    of each step by straight lines keeps the probabilities monotone and calibrated
    step by step while ordering customers as the booster does. Flat beyond the ends.
    """

    x: np.ndarray
    y: np.ndarray

    @classmethod
    def fit(cls, score: np.ndarray, y: np.ndarray, floor: float) -> CenteredIsotonic:
        steps = IsotonicRegression(y_min=floor, y_max=1 - floor).fit_transform(score, y)
        table = pd.DataFrame({"score": score, "step": steps}).groupby("step")["score"].mean()
        return cls(x=table.to_numpy(), y=table.index.to_numpy(dtype=np.float64))

    def predict(self, score: np.ndarray) -> np.ndarray:
        return np.interp(score, self.x, self.y)


def fit_calibrator(score: np.ndarray, y: np.ndarray, method: str):
    """Map raw log-odds to probabilities: centred isotonic (``isotonic``) or Platt (``sigmoid``).

    Isotonic steps are bounded to [1/(2n), 1 - 1/(2n)] for n calibration rows: a step
    of low scores with no churner in it is evidence of a small rate, not of a zero
    one, and a zero probability makes log loss infinite for the next churner there.
    """
    if len(np.unique(y)) < 2:
        raise ValueError("the calibration rows hold a single class; use more customers or snapshots")
    if method == "isotonic":
        return CenteredIsotonic.fit(score, y, floor=0.5 / len(y))
    if method == "sigmoid":
        return LogisticRegression(C=np.inf).fit(score.reshape(-1, 1), y)
    raise ValueError(f"unknown calibration method {method!r} (isotonic | sigmoid)")


def apply_calibrator(calibrator, score: np.ndarray) -> np.ndarray:
    """Calibrated probabilities in [0, 1] from raw scores."""
    if isinstance(calibrator, LogisticRegression):
        p = calibrator.predict_proba(score.reshape(-1, 1))[:, 1]
    else:
        p = calibrator.predict(score)
    return np.clip(p, 0.0, 1.0)


@dataclass
class ChurnModel:
    """A LightGBM booster, its calibrator and the frame spec that feeds both."""

    spec: FrameSpec
    booster: lgb.LGBMClassifier
    calibrator: object
    best_iteration: int | None = None

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's input as one float64 array (``FrameSpec.array``)."""
        return self.spec.array(frame)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of churn (the scale of ``contributions``)."""
        return self.raw_score_x(self.encode(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn within the horizon), one per row."""
        return self.predict_x(self.encode(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """TreeSHAP contributions, shape (n, n_features + 1), last column the bias.

        Rows sum to ``raw_score`` (log-odds); column order is ``spec.features``.
        """
        return self.contributions_x(self.encode(frame))

    def raw_score_x(self, x: np.ndarray) -> np.ndarray:
        """``raw_score`` from the encoded array (``encode``): the raw booster, one thread.

        One thread matters beyond repeatability: LightGBM's default OpenMP team spins on
        a busy machine and turns a 0.1 ms single-row predict into tens of milliseconds.
        """
        if not len(x):
            return np.zeros(0)
        return self._booster().predict(x, raw_score=True, num_iteration=self.best_iteration, num_threads=1)

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        """``predict`` from the encoded array."""
        return apply_calibrator(self.calibrator, self.raw_score_x(x))

    def contributions_x(self, x: np.ndarray) -> np.ndarray:
        """``contributions`` from the encoded array (exact TreeSHAP, one thread)."""
        if not len(x):
            return np.zeros((0, len(self.spec.features) + 1))
        return self._booster().predict(x, pred_contrib=True, num_iteration=self.best_iteration,
                                       num_threads=1)

    def _booster(self) -> lgb.Booster:
        """The raw booster (of the scikit-learn wrapper, or as it is), checked against the spec."""
        check_encoding(self.spec, self.booster)
        return getattr(self.booster, "booster_", self.booster)


def baseline_pipeline(spec: FrameSpec, seed: int) -> Pipeline:
    """Median imputation + missing flags + scaling for numbers, one-hot for categories."""
    numeric = [c for c in spec.features if c not in spec.categories]
    categorical = list(spec.categories)
    columns = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True),
                              StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="__missing__"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    return make_pipeline(columns, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


@dataclass
class BaselineModel:
    """Logistic regression on the same features: what LightGBM has to beat."""

    spec: FrameSpec
    pipeline: Pipeline

    def design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix with categories as plain objects (NaN = missing) for scikit-learn."""
        x = self.spec.matrix(frame)
        for col in self.spec.categories:
            x[col] = x[col].astype(object).where(x[col].notna(), np.nan)
        return x

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(self.design(frame))[:, 1]


@dataclass
class ChurnResult:
    """Everything a training run produces, for the registry and the report."""

    model: ChurnModel
    baseline: BaselineModel
    metrics: dict[str, dict[str, float]]                          # "lightgbm" / "baseline"
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]         # name -> (y, p) on validation
    best_iteration: int
    params: dict
    split: dict = field(default_factory=dict)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)   # the recipe search, if any


def check_features(features: list[str], label: str) -> None:
    """Refuse identifiers, timestamps and the label as features: they leak or mean nothing."""
    banned = sorted(set(features) & {*KEYS, label, "created_timestamp"})
    if banned:
        raise ValueError(f"not allowed as features: {banned}")


def fit_booster(spec: FrameSpec, fit: pd.DataFrame, stop: pd.DataFrame, label: str,
                params: LightGBMParams, seed: int) -> lgb.LGBMClassifier:
    """LightGBM with early stopping on the log loss of the ``stop`` customers.

    They share the fit rows' months, so log loss and AUC pick the same tree count;
    the out-of-time optimum is a little lower, which cost < 0.001 AUC on the 20k world.
    """
    booster = lgb.LGBMClassifier(**churn_kwargs(params, seed))
    with warnings.catch_warnings():  # eval_set: deprecated in 4.7 but the only spelling in 4.5-4.6
        warnings.filterwarnings("ignore", message=".*eval_set.*deprecated")
        booster.fit(spec.matrix(fit), fit[label].to_numpy(),
                    eval_set=[(spec.matrix(stop), stop[label].to_numpy())],
                    callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])
    return booster


def _span(frame: pd.DataFrame, label: str) -> dict:
    """Rows, snapshots, first/last snapshot date and churn rate of one part of the split."""
    dates = snapshot_dates(frame)
    return {"rows": len(frame), "snapshots": len(dates), "first": str(dates[0].date()),
            "last": str(dates[-1].date()), "churn_rate": float(frame[label].mean())}


@dataclass
class Fitted:
    """One training of both models: the models, the customer parts, the booster's recipe
    (searched or configured) and the search's trials."""

    model: ChurnModel
    baseline: BaselineModel
    parts: dict[str, pd.DataFrame]
    recipe: LightGBMParams
    trials: pd.DataFrame


class LocalFit:
    """The final boosters fitted in this process (the default). ``DaskFit``
    (``models.churn.distributed``) fits them on a Dask cluster with the same arguments."""

    name = "local"

    def stopped(self, spec: FrameSpec, fit: pd.DataFrame, stop: pd.DataFrame, label: str,
                recipe: LightGBMParams, seed: int) -> tuple[lgb.LGBMClassifier, int]:
        """The early-stopped booster (``fit_booster``) and its best tree count."""
        booster = fit_booster(spec, fit, stop, label, recipe, seed)
        return booster, int(booster.best_iteration_ or recipe.n_estimators)

    def fixed(self, spec: FrameSpec, train: pd.DataFrame, label: str, recipe: LightGBMParams,
              trees: int, seed: int) -> lgb.LGBMClassifier:
        """A booster of exactly ``trees`` trees on ``train``."""
        booster = lgb.LGBMClassifier(**churn_kwargs(recipe, seed) | {"n_estimators": trees})
        booster.fit(spec.matrix(train), train[label].to_numpy())
        return booster


def refit_on_all(spec: FrameSpec, train: pd.DataFrame, label: str, recipe: LightGBMParams,
                 best: int, seed: int, fitter=None) -> tuple[lgb.LGBMClassifier, int]:
    """The booster again on every training customer (fit, stop and calib), with the trees
    early stopping chose scaled to the larger set; the calibrator learnt on the held-out
    calib customers is kept. On small exports the 30 % of customers that only chose the tree
    count and the calibration otherwise never teach the trees (docs/models.md#churn)."""
    trees = max(1, round(best / CUSTOMER_SHARES[0]))
    return (fitter or LocalFit()).fixed(spec, train, label, recipe, trees, seed), trees


def fit_models(train: pd.DataFrame, features: list[str], params: TrainParams, label: str,
               fitter=None) -> Fitted:
    """The calibrated booster (fit / stop / calib customers, recipe searched on them) and the
    baseline on ``train``. ``fitter`` fits the final boosters (``LocalFit`` by default); the
    recipe search always runs here."""
    fitter = fitter or LocalFit()
    fit, stop, calib = customer_parts(train, CUSTOMER_SHARES, params.seed)
    parts = {"fit": fit, "stop": stop, "calib": calib}
    spec = FrameSpec.fit(train, features)
    recipe, trials = search_churn_params(parts, fit_booster, spec, params, label)
    booster, best = fitter.stopped(spec, fit, stop, label, recipe, params.seed)
    model = ChurnModel(spec=spec, booster=booster, calibrator=None, best_iteration=best)
    model.calibrator = fit_calibrator(model.raw_score(calib), calib[label].to_numpy(),
                                      params.calibration)
    if params.refit_all:
        model.booster, model.best_iteration = refit_on_all(spec, train, label, recipe, best,
                                                           params.seed, fitter)
    baseline = BaselineModel(spec=spec, pipeline=baseline_pipeline(spec, params.seed))
    baseline.pipeline.fit(baseline.design(train), train[label].to_numpy())
    return Fitted(model, baseline, parts, recipe, trials)


def cross_validated(frame: pd.DataFrame, features: list[str], params: TrainParams,
                    label: str, fitter=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Out-of-fold predictions of both models over customer-grouped folds."""
    y = frame[label].to_numpy()
    out = {"lightgbm": np.zeros(len(frame)), "baseline": np.zeros(len(frame))}
    share = params.cv_folds + 1     # each fold searches its own recipe: a share of the budget
    budget = params.search
    search = budget.model_copy(update={"trials": -(-budget.trials // share),
                                       "timeout_seconds": budget.timeout_seconds / share})
    inner = params.model_copy(update={"search": search})
    for held in customer_folds(frame, params.cv_folds, params.seed):
        fitted = fit_models(frame[~held], features, inner, label, fitter)
        out["lightgbm"][held] = fitted.model.predict(frame[held])
        out["baseline"][held] = fitted.baseline.predict(frame[held])
    return {name: (y, p) for name, p in out.items()}


def train_churn(frame: pd.DataFrame, features: list[str], params: TrainParams, horizon_days: int,
                label: str = LABEL, fitter=None) -> ChurnResult:
    """Train and calibrate the churn model and its baseline, validated out of time when the
    history allows it, else by customer-grouped cross-validation (``models.churn.validation``).
    ``fitter``: where the final boosters are fitted (``LocalFit``, or ``DaskFit`` on a cluster)."""
    fitter = fitter or LocalFit()
    check_features(features, label)
    # a fixed row order: bagging draws rows by position, and Feast returns them in any order
    frame = frame.sort_values(["event_timestamp", "customer_id"], kind="stable", ignore_index=True)
    choice = choose_validation(frame, label, params.valid_share, horizon_days)
    if choice.kind == OUT_OF_TIME:
        fitted = fit_models(choice.train, features, params, label, fitter)
        y = choice.valid[label].to_numpy()
        predictions = {"lightgbm": (y, fitted.model.predict(choice.valid)),
                       "baseline": (y, fitted.baseline.predict(choice.valid))}
        valid, scheme = choice.valid, {"kind": OUT_OF_TIME}
    else:
        predictions = cross_validated(frame, features, params, label, fitter)
        fitted = fit_models(frame, features, params, label, fitter)
        valid = frame
        scheme = {"kind": CUSTOMER_CV, "folds": params.cv_folds, "reason": choice.reason}
    metrics = {name: classification_metrics(*yp) for name, yp in predictions.items()}
    used = {**churn_kwargs(fitted.recipe, params.seed), "early_stopping_rounds":
            fitted.recipe.early_stopping_rounds, "calibration": params.calibration,
            "valid_share": params.valid_share, "horizon_days": horizon_days,
            "search_trials": len(fitted.trials), "cluster_fit": fitter.name}
    split = ({name: _span(part, label) for name, part in {**fitted.parts, "valid": valid}.items()}
             | {"scheme": scheme})
    return ChurnResult(model=fitted.model, baseline=fitted.baseline, metrics=metrics,
                       predictions=predictions, best_iteration=fitted.model.best_iteration,
                       params=used, split=split, trials=fitted.trials)
