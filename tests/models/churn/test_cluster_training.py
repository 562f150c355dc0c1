"""The churn model's final boosters fitted on two Dask worker processes (``lightgbm.dask``)
against the in-process fit, on the small model world.

Tolerance: validation ROC AUC within ``AUC_TOLERANCE`` (0.01) of the in-process model, and
validation scores with Pearson correlation above ``MIN_CORRELATION``. Distributed LightGBM
is not bit-identical to one process: each worker finds the histogram bins of some features
from its own rows, bagging (``subsample``) draws rows per worker, and the split search sums
histograms across workers in another order; and without early stopping on ``lightgbm.dask``
the tree count is chosen by replaying the rule on the stop customers (which is exact: see
``test_replayed_early_stopping_is_lightgbms``). The models differ as two seeds of one recipe
do, well inside 0.01 AUC on the 4,000-customer world (docs/cluster.md#training-on-the-cluster).
"""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from configs.settings import load_settings
from features.services import CHURN_SERVICE
from features.store import apply_definitions, feature_store, service_features
from models.churn.distributed import (
    DaskFit,
    churn_fitter,
    customer_partitions,
    early_stopping_iteration,
    staged_logloss,
)
from models.churn.model import LABEL, LocalFit, fit_booster, train_churn
from models.frame import FrameSpec
from models.split import customer_parts

AUC_TOLERANCE = 0.01
MIN_CORRELATION = 0.95
HORIZON = 90


def _no_search(train):
    """The configured recipe as it is: the search runs in-process on either path."""
    return train.model_copy(update={"search": train.search.model_copy(update={"trials": 0})})


@pytest.fixture(scope="module")
def both(model_world, two_worker_client):
    features = service_features(model_world.store, CHURN_SERVICE)
    params = _no_search(model_world.settings.train)
    horizon = model_world.settings.features.churn_horizon_days
    return {name: train_churn(model_world.churn, features, params, horizon, fitter=fitter)
            for name, fitter in (("local", LocalFit()), ("dask", DaskFit(two_worker_client)))}


@pytest.mark.slow
def test_cluster_fit_matches_the_in_process_model_within_tolerance(both):
    local, dask = both["local"], both["dask"]
    assert local.split["scheme"]["kind"] == "out_of_time"
    auc = {name: r.metrics["lightgbm"]["roc_auc"] for name, r in both.items()}
    assert abs(auc["dask"] - auc["local"]) <= AUC_TOLERANCE, auc
    (y, p_local), (y_dask, p_dask) = local.predictions["lightgbm"], dask.predictions["lightgbm"]
    assert (y == y_dask).all()
    assert np.corrcoef(p_local, p_dask)[0, 1] > MIN_CORRELATION
    # the same recipe and arguments; trees chosen by the same rule
    assert dask.params["cluster_fit"] == "dask" and local.params["cluster_fit"] == "local"
    same = {k: v for k, v in local.params.items() if k != "cluster_fit"}
    assert {k: dask.params[k] for k in same} == same


@pytest.mark.slow
def test_cluster_model_is_a_plain_local_booster_explained_as_before(both, model_world):
    model = both["dask"].model
    assert type(model.booster).__name__ == "LGBMClassifier"       # to_local(): no client inside
    assert model.booster.booster_.num_trees() == model.best_iteration   # the refit's trees
    rows = model_world.churn.tail(200)
    contribs = model.contributions(rows)
    np.testing.assert_allclose(contribs.sum(axis=1), model.raw_score(rows), atol=1e-8)
    p = model.predict(rows)
    assert ((p >= 0) & (p <= 1)).all()


def test_replayed_early_stopping_is_lightgbms(model_world):
    """The tree count the cluster path picks from a full booster is the one
    ``lightgbm.early_stopping`` picks while training, on the same trees."""
    frame = model_world.churn.sort_values(["event_timestamp", "customer_id"], ignore_index=True)
    features = service_features(model_world.store, CHURN_SERVICE)
    fit, stop, _ = customer_parts(frame, (0.7, 0.15, 0.15), 0)
    spec = FrameSpec.fit(frame, features)
    recipe = model_world.settings.train.churn.model_copy(update={"n_estimators": 400,
                                                                 "learning_rate": 0.1})
    stopped = fit_booster(spec, fit, stop, LABEL, recipe, 0)
    assert stopped.best_iteration_ < 400 - recipe.early_stopping_rounds     # it did stop
    full = LocalFit().fixed(spec, fit, LABEL, recipe, 400, 0)
    losses = staged_logloss(full.booster_, spec.array(stop), stop[LABEL].to_numpy())
    assert early_stopping_iteration(losses, recipe.early_stopping_rounds) == stopped.best_iteration_
    assert early_stopping_iteration([3.0, 2.0, 2.5, 2.5, 2.5], 2) == 2
    assert early_stopping_iteration([3.0, 2.0, 1.0], 5) == 3            # never stopped: the best


def test_partitions_keep_each_customer_in_one_partition(model_world, two_worker_client):
    frame = model_world.churn.head(3000)
    features = service_features(model_world.store, CHURN_SERVICE)
    spec = FrameSpec.fit(frame, features)
    x, y = customer_partitions(two_worker_client, spec.matrix(frame), frame[LABEL].to_numpy(),
                               frame["customer_id"])
    assert x.npartitions == 2
    parts = [p.compute() for p in x.to_delayed()]
    owners = [set(frame.loc[p.index, "customer_id"]) for p in parts]
    assert owners[0].isdisjoint(owners[1]) and sum(map(len, parts)) == len(frame)
    both_y = pd.concat([p.compute() for p in y.to_delayed()])
    assert (both_y.sort_index().to_numpy() == frame[LABEL].to_numpy()).all()


def test_fitter_follows_the_setting(model_world, two_worker_client):
    train = model_world.settings.train
    assert churn_fitter(train, None).name == "local"                  # no cluster: in-process
    assert churn_fitter(train, two_worker_client).name == "dask"           # the default on a cluster
    chosen = train.model_copy(update={"cluster_fit": "local"})
    assert churn_fitter(chosen, two_worker_client).name == "local"


@pytest.fixture
def own_tracking_store():
    """MLflow's URIs are process-wide: the session worlds' store is pointed at again after."""
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(uris[0])
    mlflow.set_registry_uri(uris[1])


@pytest.mark.slow
@pytest.mark.usefixtures("own_tracking_store")
def test_the_choice_is_logged_on_the_churn_run(model_world, two_worker_client, tmp_path):
    """A whole churn run on a copy of the world's tables (its own MLflow store and metrics)."""
    from models.churn.train import train_and_log_churn

    for folder in ("clean", "features"):
        shutil.copytree(model_world.settings.data_dir / folder, tmp_path / folder)
    settings = load_settings(data_dir=tmp_path)
    churn = settings.train.churn.model_copy(update={"n_estimators": 300, "learning_rate": 0.05})
    settings = settings.model_copy(update={"train": _no_search(settings.train).model_copy(
        update={"churn": churn})})
    apply_definitions(feature_store(settings), settings)
    summary = train_and_log_churn(settings, client=two_worker_client)
    run = MlflowClient(settings.tracking_uri).get_run(summary["run_id"])
    assert run.data.params["cluster_fit"] == "dask"
    assert 0.5 < run.data.metrics["valid_roc_auc"] <= 1.0
    assert summary["lightgbm"]["roc_auc"] == pytest.approx(run.data.metrics["valid_roc_auc"])
