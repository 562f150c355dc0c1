"""Uplift training run: build the frame from Feast and the clean tables, choose, fit, log, register.

Layout of one run::

    customers:  | training 70 % ..................................... | hold-out 30 % |
                | 3-fold cross-validation (by customer) picks a learner | all learners' |
                | every learner is then fitted on the whole 70 %        | figures here  |
    registered: the chosen learner refitted on 100 % (the hold-out figures are the 70 % fit's)

The split is by customer, not by time: a held-out customer's labels are never seen,
neither by the uplift models nor by the risk prior (its snapshot rows are left out as
well). The programme log is small (about 6,400 actions with a whole 150-day window observed
and 640 churners in the 20k world, most of them no action could keep), so a time split would
leave too few churners on either side.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.services import CHURN_SERVICE
from features.store import feature_store, service_features, training_frame
from models import registry
from models.concepts import concept_of
from models.frame import FrameSpec
from models.prescribe.actions import load_catalogue
from models.split import customer_parts
from models.uplift.data import (
    Outcome,
    arm_rows,
    arm_summary,
    build_uplift_frame,
    intervention_labels,
    matured,
    matured_mask,
    outcome_of,
)
from models.uplift.driver import MODERATORS
from models.uplift.evidence import (
    TARGET_WEIGHT,
    choose_by_evidence,
    confirm,
    confirm_quantile,
    shown_value,
    target_weights,
)
from models.uplift.gate import evidence_table, holdout_evidence, latest_customers, learner_evidence
from models.uplift.metrics import qini_interval, uplift_metrics
from models.uplift.model import (
    FORCED_ONLY,
    LEARNERS,
    UpliftModel,
    UpliftParams,
    fit_risk,
    fit_uplift,
)
from models.uplift.plots import qini_figure
from models.uplift.selection import arm_scores, out_of_fold, select_learner

log = logging.getLogger(__name__)
SERVICE = CHURN_SERVICE
HOLDOUT_SHARE = 0.3
GATE_METRIC = "valid_qini_mean"


def history_end(settings: Settings) -> pd.Timestamp:
    """The ``as_of`` the feature and churn-label tables were built with (their created_timestamp)."""
    path = settings.feature_dir / "customer_o.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `cem features` first")
    return pd.read_parquet(path, columns=["created_timestamp"])["created_timestamp"].max()


def load_uplift_frame(settings: Settings, store, recorded: pd.DataFrame | None = None,
                      follow_up_days: int | None = None) -> tuple[pd.DataFrame, list[str], Outcome]:
    """Interventions + churn labels + churn_v1 features at assigned_at (point in time).

    ``recorded``: actions planned by earlier scoring runs with their recorded outcomes and
    randomized hold-outs (``serving.db.export_outcomes``, interventions format), appended
    to the programme log: the loop closes when the next training learns from them.
    ``follow_up_days``: rows whose window is still open but followed this long are kept,
    marked ``pending`` (early evidence for the gate).
    """
    clean = settings.clean_dir
    for name in ("interventions", "crm_customers"):
        if not (clean / f"{name}.parquet").exists():
            raise FileNotFoundError(f"{clean / name}.parquet is missing: run `cem ingest` first")
    log_rows = pd.read_parquet(clean / "interventions.parquet")
    if recorded is not None and len(recorded):
        new = recorded[~recorded["intervention_id"].astype(str).isin(log_rows["intervention_id"].astype(str))]
        log.info("uplift: %d recorded outcomes and hold-outs appended to the programme log", len(new))
        log_rows = pd.concat([log_rows, new[log_rows.columns.intersection(new.columns)]], ignore_index=True)
    customers = pd.read_parquet(clean / "crm_customers.parquet")
    outcome = outcome_of(customers, settings.train.uplift)
    log.info("uplift: the label is a %s within %d days (%s)", outcome.kind, outcome.horizon_days,
             outcome.reason)
    labels = intervention_labels(log_rows, customers, history_end(settings),
                                 outcome.horizon_days, outcome, follow_up_days)
    features = service_features(store, SERVICE)
    frame = build_uplift_frame(labels, training_frame(store, labels, SERVICE), features)
    if frame.empty:
        raise ValueError("no labelled intervention with features: the programme log is empty or censored")
    return frame, features, outcome


def snapshot_frame(settings: Settings, store) -> pd.DataFrame:
    """The churn_v1 training frame (every open customer at every snapshot): the risk prior's data."""
    labels = pd.read_parquet(settings.feature_dir / "churn_labels.parquet")
    frame = training_frame(store, labels, SERVICE)
    # a fixed row order: bagging draws rows by position, and Feast returns them in any order
    return frame.sort_values(["event_timestamp", "customer_id"], kind="stable", ignore_index=True)


def without(frame: pd.DataFrame, customers: pd.Series) -> pd.DataFrame:
    return frame[~frame["customer_id"].astype(str).isin(set(customers.astype(str)))]


def heldout_figures(model: UpliftModel, test: pd.DataFrame, seed: int,
                    n_boot: int = 200) -> tuple[dict, dict]:
    """Per action: uplift metrics and a customer-bootstrap 90 % interval of the Qini; plot inputs."""
    effects = model.effects(test)
    figures, arms = {}, {}
    for action in model.actions:
        y, t, s = arm_scores(test, effects, action)
        customers = arm_rows(test, action)["customer_id"].to_numpy()   # same rows, same order
        lo, hi = qini_interval(y, t, s, customers, n_boot=n_boot, seed=seed)
        figures[action] = uplift_metrics(y, t, s) | {"qini_lo90": lo, "qini_hi90": hi}
        arms[action] = (y, t, s)
    return figures, arms


def fit_all_learners(train, snapshots, features, params, drivers=None) -> dict[str, UpliftModel]:
    """Every learner on the training customers, sharing one risk prior."""
    spec = FrameSpec.fit(train, features)
    risk = fit_risk(spec, snapshots, train, params)
    return {name: fit_uplift(train, features, name, params, spec=spec, risk=risk, drivers=drivers)
            for name in (*LEARNERS, *FORCED_ONLY)}


def action_drivers(settings: Settings, features: list[str]) -> dict[str, list[str]]:
    """Per action the features of the driver concepts it addresses (configs/actions.yaml),
    after the features of the concepts that moderate any contact (``MODERATORS``)."""
    catalogue = load_catalogue(settings.prescribe.actions_file)
    first = [f for f in features if concept_of(f) in MODERATORS]
    return {a.id: first + [f for f in features if concept_of(f) in a.addresses and f not in first]
            for a in catalogue.actions}


def flat_metrics(figures: dict[str, dict]) -> dict[str, float]:
    """MLflow metric names: valid_<action>_<metric>, plus the mean Qini over actions (the gate)."""
    out = {f"valid_{a}_{k}": v for a, m in figures.items() for k, v in m.items()}
    out[GATE_METRIC] = float(np.mean([m["qini"] for m in figures.values()]))
    out["valid_uplift_at_30_mean"] = float(np.nanmean([m["uplift_at_30"] for m in figures.values()]))
    return out


def confirmed_by_holdout(figures: dict[str, dict]) -> bool:
    """Does the hold-out confirm a learner's ranking: a Qini 90 % interval above 0 for most actions?

    Cross-validated Qini picks among learners, but on a small programme it can prefer
    a learner whose rankings are noise; a heterogeneous learner the held-out customers
    do not confirm gives way to ``shift`` (average effect per action on the risk scale),
    whose errors are smaller when there is nothing to rank.
    """
    above = sum(m["qini_lo90"] > 0 for m in figures.values())
    return 2 * above > len(figures)


def train_uplift(settings: Settings, params: UpliftParams | None = None,
                 recorded: pd.DataFrame | None = None) -> dict:
    """Everything but logging: frames, split, selection, held-out figures, final refit."""
    params = params or settings.train.uplift.model_copy(update={"seed": settings.train.seed})
    store = feature_store(settings)
    gate = params.evidence_quantile
    logged, features, outcome = load_uplift_frame(settings, store, recorded,
                                                  params.evidence_follow_up_days if gate else None)
    snapshots = snapshot_frame(settings, store)
    if gate:
        logged[TARGET_WEIGHT] = target_weights(logged, latest_customers(snapshots), features,
                                               params.seed)
    # logged rows of both parts feed the evidence gate; the learners see only matured ones
    train_all, test_all = (p.reset_index(drop=True) for p in customer_parts(
        logged, (1 - HOLDOUT_SHARE, HOLDOUT_SHARE), params.seed))
    frame, train, test = (matured(f).reset_index(drop=True) for f in (logged, train_all, test_all))
    if train.empty or test.empty:
        raise ValueError("no logged action's outcome window is over yet: nothing to learn from")
    seen = without(snapshots, test_all["customer_id"])
    drivers = action_drivers(settings, features)
    oof = out_of_fold(train_all, features, (*LEARNERS, *FORCED_ONLY), params, params.cv_folds,
                      seen, drivers=drivers, quantile=settings.prescribe.value_quantile)
    ripe = matured_mask(train_all)
    by_qini, cv = select_learner(train, features, params, folds=params.cv_folds,
                                 oof=oof.rows(ripe))
    evidence = learner_evidence(settings, train_all, oof, params)
    chosen = choose_by_evidence(evidence, fallback=by_qini) if params.evidence_quantile else by_qini
    if params.learner is not None:
        if params.learner not in (*LEARNERS, *FORCED_ONLY):
            raise ValueError(f"unknown learner {params.learner!r}")
        log.info("uplift: learner forced to %s (cross-validation chose %s)", params.learner, chosen)
        chosen = params.learner
    models = fit_all_learners(train, seen, features, params, drivers)
    heldout = {name: heldout_figures(m, test, params.seed, params.bootstrap) for name, m in models.items()}
    if (params.learner is None and chosen == by_qini and chosen != "shift"
            and not confirmed_by_holdout(heldout[chosen][0])):
        log.info("uplift: the hold-out does not confirm the %s-learner's ranking; using shift", chosen)
        chosen = "shift"
    final = fit_uplift(frame, features, chosen, params, snapshots=snapshots,
                       actions=models[chosen].actions, drivers=drivers)
    keep_driver_fit(final, frame, features, params, drivers)
    if params.evidence_quantile:
        level = confirm_quantile(evidence[chosen], params.evidence_quantile)
        evidence[chosen] = confirm(evidence[chosen],
                                   holdout_evidence(settings, models[chosen], test_all, params,
                                                    level))
        final.evidence = evidence[chosen].to_dict("index")
        log.info("uplift: actions the log shows to pay: %s", final.shown_actions() or "none")
    return {"frame": frame, "features": features, "outcome": outcome, "train": train, "test": test,
            "pending_rows": int(len(logged) - len(frame)), "chosen": chosen,
            "cv": cv, "heldout": heldout, "train_models": models, "model": final, "params": params,
            "evidence": evidence}


def keep_driver_fit(model: UpliftModel, frame: pd.DataFrame, features: list[str],
                    params: UpliftParams, drivers: dict[str, list[str]]) -> None:
    """Whatever learner plans, each arm also keeps the driver learner's posterior (same encoding
    and risk prior): the plan's experiments sample where the effect is still uncertain
    (models.prescribe.experiments)."""
    if model.learner == "driver":
        return
    fit = fit_uplift(frame, features, "driver", params, actions=model.actions, spec=model.spec,
                     risk=model.risk, drivers=drivers)
    for action in model.actions:
        model.arms[action].driver = fit.arms[action].driver


def heldout_table(heldout: dict) -> pd.DataFrame:
    """Learner x action rows of the held-out figures (for MLflow and the report)."""
    rows = [{"learner": name, "action": a, **m} for name, (figs, _) in heldout.items()
            for a, m in figs.items()]
    return pd.DataFrame(rows)


def train_and_log_uplift(settings: Settings, params: UpliftParams | None = None,
                         recorded: pd.DataFrame | None = None) -> dict:
    """Train the uplift learners, log the chosen one with its held-out figures, register and gate it."""
    run = train_uplift(settings, params, recorded)
    chosen, (figures, curves) = run["chosen"], run["heldout"][run["chosen"]]
    arms = arm_summary(run["frame"], run["model"].actions)
    metrics = flat_metrics(figures) | {f"cv_qini_mean_{n}": float(v)
                                       for n, v in run["cv"]["mean"].items()}
    metrics |= {f"cv_policy_value_{n}": shown_value(t) for n, t in run["evidence"].items()}
    metrics["evidence_pending_rows"] = run["pending_rows"]
    shown = run["model"].shown_actions()
    split = {name: {"rows": len(part), "customers": int(part["customer_id"].nunique())}
             for name, part in (("train", run["train"]), ("test", run["test"]))}
    logged = registry.log_model_run(
        settings, experiment_name="uplift", registered_name="uplift", model=run["model"],
        datasets={"training": run["train"], "validation": run["test"]},
        params={**run["params"].model_dump(), "learner": chosen, "outcome": str(run["outcome"]),
                "holdout_share": HOLDOUT_SHARE,
                "split": split, "actions": run["model"].actions, "shown_actions": shown},
        metrics=metrics,
        tags={"feature_service": SERVICE, "data_version": registry.data_version(settings),
              "model_type": f"uplift_{chosen}_learner_lightgbm"},
        input_example=run["frame"][run["features"]].head(5),
        figures={"qini": qini_figure(curves, f"Qini curves, held-out customers ({chosen}-learner)")},
        tables={"heldout_by_learner": heldout_table(run["heldout"]),
                "cv_qini": run["cv"].reset_index(names="learner"),
                "policy_evidence": evidence_table(run["evidence"]),
                "arms": arms},
        gate_metric=GATE_METRIC,
    )
    summary = {"learner": chosen, "metrics": figures, "qini_mean": metrics[GATE_METRIC],
               "cv_qini": run["cv"]["mean"].to_dict(), "rows": len(run["frame"]),
               "version": logged.version, "gate": logged.gate, "run_id": logged.run_id,
               "arms": arms.to_dict("records"), "shown_actions": shown,
               "evidence": run["evidence"][chosen].reset_index().to_dict("records")}
    registry.write_metrics(settings, "uplift", {"learner": chosen, "qini_mean": summary["qini_mean"],
                                       "heldout": figures, "shown_actions": shown,
                                       "evidence": summary["evidence"]})
    log.info("uplift: %s-learner, held-out mean Qini %.5f, version %s", chosen,
             summary["qini_mean"], logged.version)
    return summary
