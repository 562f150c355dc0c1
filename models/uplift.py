"""Per-action uplift models on LightGBM: T-, X- and DR-learners over pooled randomized controls.

The effect of action *a* for a customer is ``P(churn in 90 days | a delivered) -
P(churn | nothing)``; negative keeps the customer. Each action is learnt from its
treated rows and every eligible control (``models.uplift_data.arm_rows``).

Churn within 90 days is rare (about 2 % of programme customers), so an action has
a few dozen churners to learn from. Two choices make that workable:

* **Risk offset.** A churn-risk booster trained on the ``churn_v1`` snapshot frame
  (every open customer every month: hundreds of thousands of rows, none of the
  held-out customers) gives each row a prior log-odds; every outcome model starts
  from it (LightGBM ``init_score``) and learns only the deviation. A T-learner then
  gets ``effect = sigma(r + f_a) - sigma(r + f_0)``: an action's log-odds shift
  acts through the customer's baseline risk, as it does in the world. The X- and
  DR-learners' effect regressions get the prior log-odds as a feature too.
* **Small, slow trees** (``UpliftParams``): few leaves, many rows per leaf.

Learners (Kuenzel et al. 2019; Kennedy 2023), each per action:

* ``t``:  mu_a(x) - mu_0(x), outcome models on treated-a rows and on all controls.
* ``x``:  impute effects (treated: y - mu_0; controls: mu_a - y), regress each on x,
  blend with the propensity: ``g * tau_0 + (1 - g) * tau_1``.
* ``dr``: regress the doubly robust pseudo-outcome
  ``mu_a - mu_0 + t (y - mu_a) / e - (1 - t) (y - mu_0) / (1 - e)`` on x, with
  cross-fitted (out-of-fold) outcome models.

Propensities are known by design up to the eligibility set (the action is drawn
among 4 or 5 eligible actions), so ``e`` is the treated share of the arm's rows
within each eligibility stratum, not a fitted model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.frame import FrameSpec
from models.uplift_data import ACTION, LABEL, TREATED, arm_rows, eligibility
from models.uplift_metrics import qini_area

LEARNERS = ("shift", "t", "x", "dr")
RISK = "risk_logit"


@dataclass(frozen=True)
class UpliftParams:
    """LightGBM sizes for the outcome, effect and risk models (kept small: few events)."""

    n_estimators: int = 150
    learning_rate: float = 0.03
    num_leaves: int = 6
    max_depth: int = 3
    min_child_samples: int = 60
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    risk_n_estimators: int = 200
    risk_num_leaves: int = 24
    folds: int = 2                  # cross-fitting folds of the DR-learner
    cv_folds: int = 3               # folds of the cross-validation that picks the learner
    learner: str | None = None      # force a learner (the cross-validation table is still made)
    bootstrap: int = 200            # customer-bootstrap draws behind every Qini interval
    seed: int = 0


def lgbm_kwargs(p: UpliftParams, objective: str, seed_offset: int = 0, **over) -> dict:
    """One-thread, deterministic LightGBM arguments for the given objective."""
    kw = {"objective": objective, "n_estimators": p.n_estimators, "learning_rate": p.learning_rate,
          "num_leaves": p.num_leaves, "max_depth": p.max_depth,
          "min_child_samples": p.min_child_samples, "subsample": p.subsample, "subsample_freq": 1,
          "colsample_bytree": p.colsample_bytree, "reg_lambda": p.reg_lambda,
          "random_state": p.seed + seed_offset, "deterministic": True, "force_row_wise": True,
          "n_jobs": 1, "verbose": -1}
    return kw | over


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def as_array(x: pd.DataFrame) -> np.ndarray:
    """The model matrix as float64 in LightGBM's own encoding (category codes, missing = NaN).

    Converting once and predicting with the raw boosters avoids a pandas conversion per
    booster (a T-learner holds seven): 1M rows score in a fraction of the time.
    """
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
    booster = lgb.LGBMClassifier(**lgbm_kwargs(p, "binary", seed_offset))
    model.booster = booster.fit(x, y, init_score=offset + model.intercept)
    return model


def fit_regressor(x: pd.DataFrame, target: np.ndarray, p: UpliftParams,
                  seed_offset: int) -> lgb.LGBMRegressor:
    return lgb.LGBMRegressor(**lgbm_kwargs(p, "regression", seed_offset)).fit(x, target)


@dataclass
class RiskPrior:
    """Prior churn log-odds: a booster on the snapshot frame, recentred on the programme rows."""

    spec: FrameSpec
    booster: lgb.LGBMClassifier | None = None
    intercept: float = 0.0

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        return self.logit_x(as_array(self.spec.matrix(frame)))

    def logit_x(self, x: np.ndarray) -> np.ndarray:
        """Prior log-odds from the encoded model matrix."""
        if self.booster is None:
            return np.full(len(x), self.intercept)
        return raw(self.booster, x) + self.intercept


def fit_risk(spec: FrameSpec, snapshots: pd.DataFrame | None, programme: pd.DataFrame,
             p: UpliftParams) -> RiskPrior:
    """Risk booster on ``snapshots`` (churn_v1 frame), shifted to the programme's churn rate.

    Programme customers have not decided to leave yet (the world only picks those), so
    their churn rate is below the snapshot population's; one intercept absorbs that.
    Without snapshots the prior is the programme's overall log-odds.
    """
    booster = None
    if snapshots is not None and len(snapshots):
        kw = lgbm_kwargs(p, "binary", 7, n_estimators=p.risk_n_estimators,
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


@dataclass
class UpliftModel:
    """Estimated effect of every action on each customer's 90-day churn probability."""

    learner: str
    spec: FrameSpec
    actions: list[str]
    risk: RiskPrior
    control: OutcomeModel | None
    arms: dict[str, ArmModel]

    @property
    def features(self) -> list[str]:
        return self.spec.features

    def eligible(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Whether each action may be offered to each row (same rule as the programme's)."""
        return eligibility(frame, self.actions)

    def effects(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One column per action: change in P(churn within 90 days) if delivered (NaN: not eligible)."""
        x = as_array(self.spec.matrix(frame))
        r = self.risk.logit_x(x)
        z = np.column_stack([x, r])
        elig = self.eligible(frame)
        strata = elig.sum(axis=1).to_numpy()
        p0 = sigmoid(logit_of(self.control, x, r))
        out = {}
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
            else:
                eff = raw(arm.tau, z)
            out[action] = np.where(elig[action].to_numpy(), eff, np.nan)
        return pd.DataFrame(out, index=frame.index, columns=self.actions)

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
               spec: FrameSpec | None = None, risk: RiskPrior | None = None) -> UpliftModel:
    """Fit one learner for every action on the uplift frame (``models.uplift_data``).

    ``snapshots`` (the churn_v1 snapshot frame) trains the risk prior; without it the
    prior is flat; a fitted ``risk`` prior is used as it is. ``spec`` encodes features
    that are not in the feature store's schema (e.g. a benchmark data set); by default
    it is fitted on ``frame``.
    """
    if learner not in LEARNERS:
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
    if learner == "shift":
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
    fold = _customer_folds(customers, p.folds, p.seed + i)
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


def _customer_folds(customers: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold number per row, every row of a customer in the same fold."""
    unique = np.unique(customers)
    perm = np.random.default_rng(seed).permutation(len(unique))
    of = pd.Series(perm % folds, index=unique)
    return of.loc[customers].to_numpy()


def arm_scores(frame: pd.DataFrame, effects: pd.DataFrame, action: str,
               prevent: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, treatment, score) of one action's rows for the uplift metrics.

    ``prevent``: the label is an outcome to avoid (churn), so the metrics count
    retained customers (``1 - label``) and rank by the estimated reduction.
    """
    arm = arm_rows(frame, action)
    y = arm[LABEL].to_numpy(float)
    score = effects.loc[arm.index, action].to_numpy(float)
    return (1 - y, arm[TREATED].to_numpy(), -score) if prevent else (y, arm[TREATED].to_numpy(), score)


def qini_by_action(frame: pd.DataFrame, effects: pd.DataFrame, prevent: bool = True) -> dict[str, float]:
    """Qini area of every action's held-out rows."""
    return {a: qini_area(*arm_scores(frame, effects, a, prevent)) for a in effects.columns}


def out_of_fold_effects(frame: pd.DataFrame, features: list[str], learners, params: UpliftParams,
                        folds: int = 3, snapshots: pd.DataFrame | None = None,
                        spec: FrameSpec | None = None) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Per learner, every row's effects from a model that never saw the row's customer; the folds.

    Folds are by customer; the risk prior of a fold is fitted without the fold's
    customers too (their snapshot labels overlap the rows' own labels).
    """
    frame = frame.reset_index(drop=True)
    actions = sorted(frame[ACTION].unique().tolist())
    fold = _customer_folds(frame["customer_id"].astype(str).to_numpy(), folds, params.seed + 99)
    out = {name: pd.DataFrame(np.nan, index=frame.index, columns=actions) for name in learners}
    for k in range(folds):
        fit, held = frame[fold != k].reset_index(drop=True), frame[fold == k]
        shown = None if snapshots is None else snapshots[
            ~snapshots["customer_id"].astype(str).isin(set(held["customer_id"].astype(str)))]
        base_spec = FrameSpec.fit(fit, features) if spec is None else spec
        risk = fit_risk(base_spec, shown, fit, params)
        for name in learners:
            model = fit_uplift(fit, features, name, params, actions=actions, spec=base_spec, risk=risk)
            out[name].loc[held.index] = model.effects(held).to_numpy()
    return out, fold


def fold_arms(frame: pd.DataFrame, effects: pd.DataFrame, fold: np.ndarray, prevent: bool = True) -> list:
    """(action, y, t, score, customer code) per fold and action: each Qini is computed within one fold.

    Pooling the folds' scores into one ranking would mix models whose overall effect
    levels differ by chance, and rank whole folds against each other.
    """
    customers = pd.factorize(frame["customer_id"].astype(str))[0]
    arms = []
    for k in np.unique(fold):
        part = frame[fold == k]
        for action in effects.columns:
            y, t, score = arm_scores(part, effects.loc[part.index], action, prevent)
            rows = frame.index.get_indexer(arm_rows(part, action).index)
            arms.append((action, y, t, score, customers[rows]))
    return arms


def cv_qini(arms: list) -> dict[str, float]:
    """Mean over folds of each action's within-fold Qini."""
    table = pd.DataFrame([(a, qini_area(y, t, s)) for a, y, t, s, _ in arms], columns=["action", "q"])
    return table.groupby("action")["q"].mean().to_dict()


def mean_qini_interval(arms: list, n_boot: int = 200, seed: int = 0,
                       level: float = 0.9) -> tuple[float, float]:
    """Customer-bootstrap interval of the mean Qini over folds and actions.

    One Poisson(1) weight per customer and draw, shared by all actions: the actions
    pool the same controls, so their Qinis move together and must be resampled together.
    """
    n = max(int(c.max()) for *_, c in arms) + 1
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        w = rng.poisson(1.0, n)
        draws.append(np.mean([qini_area(y, t, s, w[c]) for _, y, t, s, c in arms]))
    lo, hi = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def select_learner(frame: pd.DataFrame, features: list[str], params: UpliftParams,
                   learners=LEARNERS, folds: int = 3, snapshots: pd.DataFrame | None = None,
                   spec: FrameSpec | None = None, prevent: bool = True) -> tuple[str, pd.DataFrame]:
    """The learner to use, and the table behind the choice (learner x action Qini, mean, interval).

    Candidates are scored by their cross-validated Qini (within-fold, averaged over folds
    and actions; cross-validating the training part leaves the hold-out untouched for the
    reported figures). The best heterogeneous learner is trusted only when its ranking is
    distinguishable from chance: the lower end of the 90 % customer-bootstrap interval of
    its mean Qini is above 0. Otherwise the choice falls back to ``shift`` (per-action
    average effects on the risk scale): with a few dozen churners per action, as in the
    built-in world's programme, even the true effects rank held-out customers no better
    than chance, and per-customer estimates are mostly noise.
    """
    frame = frame.reset_index(drop=True)
    effects, fold = out_of_fold_effects(frame, features, learners, params, folds, snapshots, spec)
    rows = {}
    for name, eff in effects.items():
        arms = fold_arms(frame, eff, fold, prevent)
        per_action = cv_qini(arms)
        lo, hi = mean_qini_interval(arms, n_boot=params.bootstrap, seed=params.seed)
        rows[name] = {**per_action, "mean": float(np.mean(list(per_action.values()))),
                      "mean_lo90": lo, "mean_hi90": hi}
    table = pd.DataFrame(rows).T
    ranked = table.drop(index=[n for n in table.index if n == "shift"])["mean"]
    best = str(ranked.idxmax()) if len(ranked) else "shift"
    if "shift" in table.index and (best == "shift" or table.loc[best, "mean_lo90"] <= 0):
        return "shift", table
    return best, table
