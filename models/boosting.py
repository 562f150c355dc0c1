"""The one LightGBM argument builder: churn, NPS and uplift boosters are all configured here.

Every booster is repeatable for a seed and runs on one thread: ``deterministic`` +
``force_row_wise`` give identical trees for the same seed, and one thread makes that hold
on any machine. One thread is also faster here: the frames are small, and OpenMP threads
that share busy cores with other pipeline processes spin (100 trees on the 4k world: 2.7 s
with 1 thread, 11-18 s with 2). ``subsample_freq=1`` is needed for ``subsample`` to act.
"""

from __future__ import annotations

from typing import Any

THREADS = 1


def lgbm_kwargs(params: Any, seed: int, objective: str, *, native: bool = False, **extra) -> dict:
    """Arguments for a booster from a settings section (``LightGBMParams`` or ``UpliftParams``).

    ``native=False``: keyword arguments of ``LGBMClassifier``/``LGBMRegressor``
    (``n_estimators`` included); ``native=True``: the parameter dict of ``lgb.train``, which
    takes the number of rounds separately. ``reg_lambda`` is passed when the section has one.
    ``extra`` overrides or adds arguments (``metric``, ``n_estimators``, ...).
    """
    kw = {"objective": objective, "learning_rate": params.learning_rate,
          "num_leaves": params.num_leaves, "max_depth": params.max_depth,
          "min_child_samples": params.min_child_samples, "subsample": params.subsample,
          "subsample_freq": 1, "colsample_bytree": params.colsample_bytree,
          "deterministic": True, "force_row_wise": True, "verbose": -1}
    if getattr(params, "reg_lambda", None) is not None:
        kw["reg_lambda"] = params.reg_lambda
    if native:
        kw |= {"seed": seed, "num_threads": THREADS}
    else:
        kw |= {"n_estimators": params.n_estimators, "random_state": seed, "n_jobs": THREADS}
    return kw | extra


def dask_kwargs(kw: dict) -> dict:
    """``lgbm_kwargs`` for ``lightgbm.dask``: the same arguments without the thread count.

    The library sets ``num_threads`` to each worker's threads (and warns when it is given),
    picks ``tree_learner="data"`` and finds the workers' ``machines`` and listening ports
    itself; none of them is set here (docs/cluster.md#training-on-the-cluster).
    """
    return {k: v for k, v in kw.items() if k not in ("n_jobs", "num_threads")}
