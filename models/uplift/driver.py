"""Driver-based uplift with uncertainty: per action, a logistic model over the churn-risk
offset in which the treatment interacts only with the features of the driver concepts the
action addresses (``addresses`` in configs/actions.yaml), shrunk toward the action's
average effect by a Gaussian prior whose scale is chosen by empirical Bayes (Laplace
evidence), with a Laplace posterior: each customer's effect has a mean and an interval,
so a plan can ask for its lower bound. Design: docs/models.md#driver-based-uplift
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from scipy.stats import norm

from models.concepts import concept_of

PRIOR_SCALES = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)   # sd of the effect's driver slopes (logit per sd)
WIDE = 3.0        # sd of the intercept and of the average effect (logit): weakly informative
MAIN = 1.0        # sd of the drivers' own slopes on churn (nuisance, beside the risk offset)
MAX_DRIVERS = 8
#: Concepts whose features moderate every action's effect, whatever it addresses.
MODERATORS = ("contact_preferences",)
NEWTON_STEPS = 50


@dataclass
class DriverArm:
    """One action's fitted model: z = r + b0 + D.g + t (tau0 + D.b), D standardized drivers."""

    drivers: list[str]
    index: np.ndarray          # columns of the drivers in the model's feature array
    center: np.ndarray
    scale: np.ndarray
    mean: np.ndarray           # posterior mean [b0, g (d), tau0, b (d)]
    cov: np.ndarray            # posterior covariance (inverse Hessian at the mode)
    prior_sd: float
    rows: int
    treated: int

    def standardized(self, x: np.ndarray) -> np.ndarray:
        d = (x[:, self.index].astype(np.float64) - self.center) / self.scale
        return np.nan_to_num(d, nan=0.0)   # a missing driver counts as the average customer

    def effect(self, x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean change in P(churn) if treated, and its posterior sd (delta method)."""
        d = self.standardized(x)
        ones = np.ones((len(d), 1))
        x0 = np.hstack([ones, d, 0 * ones, 0 * d])
        x1 = np.hstack([ones, d, ones, d])
        p0, p1 = expit(r + x0 @ self.mean), expit(r + x1 @ self.mean)
        grad = (p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0
        var = np.einsum("ij,jk,ik->i", grad, self.cov, grad)
        return p1 - p0, np.sqrt(np.maximum(var, 0.0))


def design(d: np.ndarray, t: np.ndarray) -> np.ndarray:
    ones = np.ones((len(d), 1))
    return np.hstack([ones, d, t[:, None], t[:, None] * d])


def prior_variance(n_drivers: int, scale: float) -> np.ndarray:
    return np.array([WIDE**2, *[MAIN**2] * n_drivers, WIDE**2, *[scale**2] * n_drivers])


def fit_map(x: np.ndarray, y: np.ndarray, offset: np.ndarray,
            var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode and Hessian of the penalized logistic log-likelihood (Newton)."""
    theta = np.zeros(x.shape[1])
    for _ in range(NEWTON_STEPS):
        p = expit(offset + x @ theta)
        grad = x.T @ (y - p) - theta / var
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(1 / var)
        step = np.linalg.solve(hess, grad)
        theta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    p = expit(offset + x @ theta)
    return theta, (x * (p * (1 - p))[:, None]).T @ x + np.diag(1 / var)


def log_evidence(x, y, offset, theta, hess, var) -> float:
    """Laplace approximation of log p(y | prior scale)."""
    z = offset + x @ theta
    loglik = float(np.sum(y * z - np.logaddexp(0, z)))
    logprior = float(-0.5 * np.sum(theta**2 / var) - 0.5 * np.sum(np.log(2 * np.pi * var)))
    _, logdet = np.linalg.slogdet(hess)
    return loglik + logprior + 0.5 * len(theta) * np.log(2 * np.pi) - 0.5 * logdet


def pick_drivers(x: np.ndarray, names: list[str], candidates: list[str]) -> list[int]:
    """Columns of the candidate driver features that vary in the arm, at most MAX_DRIVERS:
    the moderators of any contact first (channel consent: customers who opt out of one
    channel are the ones a contact on another annoys), then the most variable."""
    idx = [names.index(c) for c in candidates if c in names]
    varying = [i for i in idx if np.nanstd(x[:, i]) > 0]
    first = [i for i in varying if concept_of(names[i]) in MODERATORS]
    rest = sorted(((np.nanstd(x[:, i]), i) for i in varying if i not in first), reverse=True)
    return (first + [i for _, i in rest])[:MAX_DRIVERS]


def fit_driver_arm(x: np.ndarray, names: list[str], candidates: list[str], treated: np.ndarray,
                   y: np.ndarray, offset: np.ndarray) -> DriverArm:
    """One action on its arm rows (its treated rows and eligible controls)."""
    index = np.asarray(pick_drivers(x, names, candidates), dtype=int)
    raw = x[:, index].astype(np.float64)
    center = np.nanmean(raw, axis=0) if len(index) else np.zeros(0)
    scale = np.nanstd(raw, axis=0) if len(index) else np.zeros(0)
    arm = DriverArm([names[i] for i in index], index, center, np.where(scale > 0, scale, 1.0),
                    np.zeros(0), np.zeros((0, 0)), 0.0, len(y), int(treated.sum()))
    xd = design(arm.standardized(x), treated.astype(np.float64))
    best = None
    for s in PRIOR_SCALES:
        var = prior_variance(len(index), s)
        theta, hess = fit_map(xd, y, offset, var)
        evidence = log_evidence(xd, y, offset, theta, hess, var)
        if best is None or evidence > best[0]:
            best = (evidence, s, theta, hess)
    _, arm.prior_sd, arm.mean, hess = best
    arm.cov = np.linalg.inv(hess)
    return arm


def bounds(mean: np.ndarray, sd: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of a normal posterior."""
    z = norm.ppf(0.5 + level / 2)
    return mean - z * sd, mean + z * sd


def upper(mean: np.ndarray, sd: np.ndarray, quantile: float) -> np.ndarray:
    """The ``quantile`` of a normal posterior (0.9: exceeded with 10 % probability)."""
    return mean + norm.ppf(quantile) * sd
