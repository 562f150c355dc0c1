"""Per-action uplift models on LightGBM: shift, T-, X- and DR-learners over pooled randomized controls.

Each action's effect on churn within ``train.uplift.horizon_days`` (150), learnt over a churn-risk
prior with small trees because churners are few; ``models.uplift.selection`` picks the learner.
Design: docs/models.md#uplift
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from configs.settings import UpliftParams
from models.boosting import lgbm_kwargs
from models.frame import FrameSpec
from models.uplift.data import ACTION, LABEL, TREATED, arm_rows, eligibility
from models.uplift.driver import DriverArm, fit_driver_arm, upper

LEARNERS = ("shift", "t", "x", "dr")          # chosen among by cross-validated Qini
FORCED_ONLY = ("driver",)                     # driver-based with uncertainty: when forced
RISK = "risk_logit"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def as_array(x: pd.DataFrame) -> np.ndarray:
    """The model matrix as float64 in LightGBM's own encoding (category codes, missing = NaN):
    converted once, not once per booster (a T-learner holds seven)."""
    cols = []
    for name in x.columns:
        col = x[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy(np.float64)
            cols.append(np.where(codes < 0, np.nan, codes))
        else:
            cols.append(col.to_numpy(np.float64, na_value=np.nan))
    return np.column_stack(cols) if cols else np.empty((len(x), 0))


def raw(model, x: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Raw score of a fitted LightGBM estimator (log-odds or value) on a frame or an encoded array."""
    arr = as_array(x) if isinstance(x, pd.DataFrame) else x
    return model.booster_.predict(arr, raw_score=True, num_threads=1) if len(arr) else np.zeros(0)


@dataclass
class OutcomeModel:
    """P(churn) = sigmoid(offset + intercept + trees(x)): the trees learn only what the prior misses."""

    intercept: float
    booster: lgb.LGBMClassifier | None = None

    def logit(self, x: pd.DataFrame, offset: np.ndarray) -> np.ndarray:
        z = offset + self.intercept
        return z if self.booster is None else z + raw(self.booster, x)


def logit_of(model: OutcomeModel | None, x: pd.DataFrame, offset: np.ndarray) -> np.ndarray:
    return offset if model is None else model.logit(x, offset)


def fit_classifier(x: pd.DataFrame, y: np.ndarray, offset: np.ndarray, p: UpliftParams,
                   seed_offset: int) -> OutcomeModel:
    """Intercept over the offset first (these rows' own rate), then trees; no trees for one class.

    Setting the intercept exactly leaves the trees nothing but heterogeneity to learn,
    so the shrinkage of few, slow trees pulls towards "a constant log-odds shift over
    the prior" rather than towards the prior itself.
    """
    y = np.asarray(y, dtype=np.float64)
    model = OutcomeModel(intercept=_intercept_shift(offset, y) if len(y) else 0.0)
    if len(np.unique(y)) < 2 or p.n_estimators == 0:
        return model
    booster = lgb.LGBMClassifier(**lgbm_kwargs(p, p.seed + seed_offset, "binary"))
    model.booster = booster.fit(x, y, init_score=offset + model.intercept)
    return model


def fit_regressor(x: pd.DataFrame, target: np.ndarray, p: UpliftParams,
                  seed_offset: int) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(**lgbm_kwargs(p, p.seed + seed_offset, "regression")).fit(x, target)


@dataclass
class RiskPrior:
    """Prior churn log-odds: a booster on the snapshot frame, recentred on the programme rows."""

    spec: FrameSpec
    booster: lgb.LGBMClassifier | None = None
    intercept: float = 0.0

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        return self.logit_x(self.spec.array(frame))

    def logit_x(self, x: np.ndarray) -> np.ndarray:
        """Prior log-odds from the encoded model matrix."""
        if self.booster is None:
            return np.full(len(x), self.intercept)
        return raw(self.booster, x) + self.intercept


def fit_risk(spec: FrameSpec, snapshots: pd.DataFrame | None, programme: pd.DataFrame,
             p: UpliftParams) -> RiskPrior:
    """Risk booster on ``snapshots`` (churn_v1 frame), shifted to the programme's churn rate.

    The programme's outcome window and selection differ from the snapshots' (a longer
    horizon, customers picked for visible trouble); one intercept absorbs the difference.
    Without snapshots the prior is the programme's overall log-odds.
    """
    booster = None
    if snapshots is not None and len(snapshots):
        kw = lgbm_kwargs(p, p.seed + 7, "binary", n_estimators=p.risk_n_estimators,
                         num_leaves=p.risk_num_leaves, max_depth=6, learning_rate=0.05,
                         min_child_samples=100)
        booster = lgb.LGBMClassifier(**kw).fit(spec.matrix(snapshots), snapshots[LABEL].to_numpy())
    prior = RiskPrior(spec=spec, booster=booster)
    y = programme[LABEL].to_numpy(float)
    base = prior.logit(programme)
    prior.intercept = _intercept_shift(base, y)
    return prior


def _intercept_shift(base: np.ndarray, y: np.ndarray, steps: int = 50) -> float:
    """The c for which mean(sigmoid(base + c)) equals mean(y) (Newton; bounded rate); 0 if no row."""
    if len(y) == 0:
        return 0.0
    rate = np.clip(y.mean(), 0.5 / len(y), 1 - 0.5 / len(y))
    c = 0.0
    for _ in range(steps):
        p = sigmoid(base + c)
        grad = p.mean() - rate
        c -= grad / max((p * (1 - p)).mean(), 1e-9)
        if abs(grad) < 1e-10:
            break
    return float(c)


def propensity(arm: pd.DataFrame, strata: pd.Series) -> dict[int, float]:
    """Treated share of the arm's rows per eligibility stratum (number of eligible actions)."""
    share = arm[TREATED].groupby(strata.loc[arm.index]).mean()
    return {int(k): float(np.clip(v, 0.05, 0.95)) for k, v in share.items()}


@dataclass
class ArmModel:
    """What one action's learner keeps: outcome models and/or effect regressions."""

    treated: OutcomeModel | None = None
    shift: float = 0.0              # ``shift`` learner: log-odds of the treated over the prior
    control_shift: float = 0.0      # ... and of the arm's (eligible) controls
    tau_treated: lgb.LGBMRegressor | None = None
    tau_control: lgb.LGBMRegressor | None = None
    tau: lgb.LGBMRegressor | None = None
    propensity: dict[int, float] = field(default_factory=dict)
    driver: DriverArm | None = None  # ``driver`` learner: effect with its posterior sd


@dataclass
class UpliftModel:
    """Estimated effect of every action on each customer's churn probability within the horizon."""

    learner: str
    spec: FrameSpec
    actions: list[str]
    risk: RiskPrior
    control: OutcomeModel | None
    arms: dict[str, ArmModel]
    # per action the log's evidence that planning it pays (models.uplift.evidence), set by
    # training; None (models trained before the gate): every action may be planned
    evidence: dict[str, dict] | None = None

    def shown_actions(self) -> list[str]:
        """The actions the log shows to pay (all of them when the model carries no evidence)."""
        evidence = getattr(self, "evidence", None)
        if evidence is None:
            return list(self.actions)
        return [a for a in self.actions if evidence.get(a, {}).get("shown", False)]

    @property
    def features(self) -> list[str]:
        return self.spec.features

    def eligible(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Whether each action may be offered to each row (same rule as the programme's)."""
        return eligibility(frame, self.actions)

    def effects(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One column per action: change in P(churn within the horizon) if delivered (NaN: not eligible)."""
        return self.effects_with_bound(frame, None)[0]

    def effects_with_bound(self, frame: pd.DataFrame,
                           quantile: float | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """``effects``, and for a learner with a posterior the effects at its ``quantile`` (a high
        quantile: the least churn reduction believable; None otherwise), from one encoding."""
        x = self.spec.array(frame)
        r = self.risk.logit_x(x)
        z = np.column_stack([x, r])
        elig = self.eligible(frame)
        strata = elig.sum(axis=1).to_numpy()
        p0 = sigmoid(logit_of(self.control, x, r)) if self.learner == "t" else None
        out, worst = {}, {}
        for action in self.actions:
            arm = self.arms[action]
            if self.learner == "shift":
                eff = sigmoid(r + arm.shift) - sigmoid(r + arm.control_shift)
            elif self.learner == "t":
                eff = sigmoid(logit_of(arm.treated, x, r)) - p0
            elif self.learner == "x":
                lookup = np.array([arm.propensity.get(k, 0.5) for k in range(len(self.actions) + 1)])
                g = lookup[strata]
                eff = g * raw(arm.tau_control, z) + (1 - g) * raw(arm.tau_treated, z)
            elif self.learner == "driver":
                eff, sd = arm.driver.effect(x, r)
                if quantile is not None:
                    worst[action] = np.where(elig[action].to_numpy(), upper(eff, sd, quantile), np.nan)
            else:
                eff = raw(arm.tau, z)
            out[action] = np.where(elig[action].to_numpy(), eff, np.nan)
        bound = pd.DataFrame(worst, index=frame.index, columns=self.actions) if worst else None
        return pd.DataFrame(out, index=frame.index, columns=self.actions), bound

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Effects as an array (rows x actions): what the MLflow pyfunc wrapper calls."""
        return self.effects(frame).to_numpy()


def _outcome_models(frame, x, r, controls, arms, p, seed):
    """Control model on all controls, one treated model per action."""
    control = fit_classifier(x[controls], frame.loc[controls, LABEL].to_numpy(), r[controls], p, seed)
    treated = {a: fit_classifier(x[m], frame.loc[m, LABEL].to_numpy(), r[m], p, seed + 1 + i)
               for i, (a, m) in enumerate(arms.items())}
    return control, treated


def fit_uplift(frame: pd.DataFrame, features: list[str], learner: str, params: UpliftParams,
               snapshots: pd.DataFrame | None = None, actions: list[str] | None = None,
               spec: FrameSpec | None = None, risk: RiskPrior | None = None,
               drivers: dict[str, list[str]] | None = None) -> UpliftModel:
    """Fit one learner for every action on the uplift frame (``models.uplift.data``).

    ``snapshots`` (the churn_v1 snapshot frame) trains the risk prior; without it the
    prior is flat; a fitted ``risk`` prior is used as it is. ``spec`` encodes features
    that are not in the feature store's schema (e.g. a benchmark data set); by default
    it is fitted on ``frame``. ``drivers``: per action its driver features (``driver`` learner).
    """
    if learner not in (*LEARNERS, *FORCED_ONLY):
        raise ValueError(f"unknown learner {learner!r} ({' | '.join(LEARNERS)})")
    frame = frame.reset_index(drop=True)
    actions = sorted(frame[ACTION].unique().tolist()) if actions is None else list(actions)
    spec = FrameSpec.fit(frame, features) if spec is None else spec
    risk = fit_risk(spec, snapshots, frame, params) if risk is None else risk
    x, r = spec.matrix(frame), risk.logit(frame)
    z = x.assign(**{RISK: r})
    elig = eligibility(frame, actions)
    strata = elig.sum(axis=1)
    is_t = frame[TREATED].to_numpy() == 1
    controls = ~is_t
    in_arm = {a: frame.index.isin(arm_rows(frame, a, elig).index) for a in actions}
    treated_of = {a: in_arm[a] & is_t for a in actions}
    y = frame[LABEL].to_numpy(float)
    if learner in ("shift", "driver"):
        control, treated = None, dict.fromkeys(actions)
    else:
        control, treated = _outcome_models(frame, x, r, controls, treated_of, params, params.seed)
    arms = {}
    for i, a in enumerate(actions):
        e = propensity(frame[in_arm[a]], strata)
        own_controls = in_arm[a] & controls
        arm = ArmModel(treated=treated[a], propensity=e,
                       shift=_intercept_shift(r[treated_of[a]], y[treated_of[a]]),
                       control_shift=_intercept_shift(r[own_controls], y[own_controls]))
        if learner == "x":
            arm.tau_treated, arm.tau_control = _x_regressions(
                frame, x, z, r, control, treated[a], treated_of[a], in_arm[a] & controls, params, i)
        elif learner == "dr":
            arm.tau = _dr_regression(frame, x, z, r, in_arm[a], treated_of[a], strata, e, params, i)
        elif learner == "driver":
            numeric = [f for f in (drivers or {}).get(a, []) if f not in spec.categories]
            rows = in_arm[a]
            arm.driver = fit_driver_arm(spec.array(frame[rows]), spec.features, numeric,
                                        is_t[rows], y[rows], r[rows])
        arms[a] = arm
    return UpliftModel(learner=learner, spec=spec, actions=actions, risk=risk, control=control,
                       arms=arms)


def _x_regressions(frame, x, z, r, control, treated, t_rows, c_rows, p, i):
    """X-learner second stage: imputed effects of treated and of control rows, regressed on z."""
    y = frame[LABEL].to_numpy(float)
    d1 = y[t_rows] - sigmoid(logit_of(control, x[t_rows], r[t_rows]))
    d0 = sigmoid(logit_of(treated, x[c_rows], r[c_rows])) - y[c_rows]
    return (fit_regressor(z[t_rows], d1, p, 100 + i), fit_regressor(z[c_rows], d0, p, 200 + i))


def _dr_regression(frame, x, z, r, rows, t_rows, strata, e, p, i):
    """DR-learner: cross-fitted outcome models, pseudo-outcomes, one regression on z."""
    idx = np.flatnonzero(rows)
    y = frame[LABEL].to_numpy(float)
    t = t_rows.astype(float)
    customers = frame["customer_id"].astype(str).to_numpy()[idx]
    fold = customer_folds(customers, p.folds, p.seed + i)
    mu0, mu1 = np.empty(len(idx)), np.empty(len(idx))
    for k in range(p.folds):
        fit_rows, out_rows = idx[fold != k], idx[fold == k]
        c_fit = fit_rows[t[fit_rows] == 0]
        t_fit = fit_rows[t[fit_rows] == 1]
        m0 = fit_classifier(x.iloc[c_fit], y[c_fit], r[c_fit], p, 300 + i * 10 + k)
        m1 = fit_classifier(x.iloc[t_fit], y[t_fit], r[t_fit], p, 400 + i * 10 + k)
        mu0[fold == k] = sigmoid(logit_of(m0, x.iloc[out_rows], r[out_rows]))
        mu1[fold == k] = sigmoid(logit_of(m1, x.iloc[out_rows], r[out_rows]))
    ps = strata.iloc[idx].map(e).fillna(0.5).to_numpy()
    ti, yi = t[idx], y[idx]
    phi = mu1 - mu0 + ti * (yi - mu1) / ps - (1 - ti) * (yi - mu0) / (1 - ps)
    return fit_regressor(z.iloc[idx], phi, p, 500 + i)


def customer_folds(customers: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number per row, every row of a customer in the same fold."""
    unique = np.unique(customers)
    perm = np.random.default_rng(seed).permutation(len(unique))
    of = pd.Series(perm % folds, index=unique)
    return of.loc[customers].to_numpy()
