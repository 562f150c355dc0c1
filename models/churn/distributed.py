"""The churn model's final boosters fitted on a Dask cluster (``lightgbm.dask``).

With ``cluster.address`` set and ``train.cluster_fit: dask``, the early-stopped booster and
the refit on every training customer are fitted by ``DaskLGBMClassifier`` on the cluster's
workers, from a Dask DataFrame partitioned by customer (a customer's rows in one partition),
with the arguments of ``models.boosting.lgbm_kwargs``. Each is converted to a plain
``LGBMClassifier`` (``to_local``), so registration, SHAP and scoring are unchanged. The
recipe search stays in this process. Design and measured times:
docs/cluster.md#training-on-the-cluster
"""

from __future__ import annotations

import logging
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa

from configs.settings import LightGBMParams, TrainParams
from features.transforms.buckets import bucket_of
from models.boosting import dask_kwargs
from models.churn.model import LocalFit, churn_kwargs
from models.frame import FrameSpec

log = logging.getLogger(__name__)


def customer_partitions(client, x: pd.DataFrame, y: np.ndarray, customers: pd.Series):
    """``x`` and ``y`` as a Dask DataFrame and Series of one partition per worker, each
    customer's rows in one partition (the feature build's hash bucket of ``customer_id``).

    The partitions are scattered from this process to the workers: the client holds the
    whole training frame, as Feast returns it.
    """
    workers = max(1, len(client.scheduler_info()["workers"]))
    bucket = bucket_of(pa.array(customers.astype(str).to_numpy()), workers)
    data = x.assign(__label__=np.asarray(y))
    pieces = [data[bucket == b] for b in range(workers) if (bucket == b).any()]
    import dask.dataframe as dd

    futures = client.scatter(pieces)
    frame = dd.from_delayed(futures, meta=data.iloc[:0], verify_meta=False)
    return frame[list(x.columns)], frame["__label__"]


def staged_logloss(booster: lgb.Booster, x: np.ndarray, y: np.ndarray):
    """The log loss on ``(x, y)`` after each tree, one tree at a time (a generator)."""
    raw = np.zeros(len(x))
    for tree in range(booster.num_trees()):
        raw += booster.predict(x, raw_score=True, start_iteration=tree, num_iteration=1,
                               num_threads=1)
        yield float(np.mean(np.logaddexp(0.0, raw) - y * raw))


def early_stopping_iteration(losses, rounds: int) -> int:
    """``lightgbm.early_stopping``'s choice replayed on a sequence of log losses: the best
    tree count, looking no further than ``rounds`` trees without improvement."""
    best, best_loss = 0, np.inf
    for i, loss in enumerate(losses):
        if loss < best_loss:
            best, best_loss = i, loss
        elif i - best >= rounds:
            break
    return best + 1


class DaskFit(LocalFit):
    """``LocalFit`` on the cluster of ``client``: the boosters are ``DaskLGBMClassifier``.

    Early stopping does not run on ``lightgbm.dask`` (each worker would judge its own share
    of the stop customers, and a worker that stops first leaves the others waiting): the
    recipe's ``n_estimators`` trees are fitted, and ``lightgbm.early_stopping``'s rule is
    replayed here on the stop customers, one tree at a time.
    """

    name = "dask"

    def __init__(self, client) -> None:
        self.client = client

    def stopped(self, spec: FrameSpec, fit: pd.DataFrame, stop: pd.DataFrame, label: str,
                recipe: LightGBMParams, seed: int) -> tuple[lgb.LGBMClassifier, int]:
        booster = self.fixed(spec, fit, label, recipe, recipe.n_estimators, seed)
        losses = staged_logloss(booster.booster_, spec.array(stop), stop[label].to_numpy())
        return booster, early_stopping_iteration(losses, recipe.early_stopping_rounds)

    def fixed(self, spec: FrameSpec, train: pd.DataFrame, label: str, recipe: LightGBMParams,
              trees: int, seed: int) -> lgb.LGBMClassifier:
        from lightgbm.dask import DaskLGBMClassifier

        x, y = customer_partitions(self.client, spec.matrix(train), train[label].to_numpy(),
                                   train["customer_id"])
        kwargs = dask_kwargs(churn_kwargs(recipe, seed) | {"n_estimators": trees})
        with warnings.catch_warnings():   # the library drops its own default n_jobs, and says so
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            model = DaskLGBMClassifier(client=self.client, **kwargs).fit(x, y)
        log.info("churn booster: %d trees on %d rows in %d partitions on the cluster",
                 trees, len(train), x.npartitions)
        return model.to_local()


def churn_fitter(params: TrainParams, client) -> LocalFit:
    """Where the final boosters are fitted: on the cluster when there is one and
    ``train.cluster_fit`` is ``dask``, else in this process."""
    if client is None or params.cluster_fit == "local":
        return LocalFit()
    return DaskFit(client)
