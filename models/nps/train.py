"""Training run of the predicted-satisfaction model: Feast features at each invitation, the
selection-corrected model, an out-of-time check, the company figure (NPS, or mean CSAT
when the company asks CSAT only: ``models.nps.scale``), MLflow logging.

Validation needs no hidden answers, so it works on real data: a model fitted on what
was known before the latest relationship wave predicts that wave's respondents
(``valid_respondent_mae``, the registry gate, lower is better). A company with
transactional surveys only is validated on its last months instead, and its company
figure is given per period (``nps_data.validation_split``, ``period_labels``). On the built-in world
the evaluation module also scores the non-respondents against the answers they would
have given; those figures are logged beside, never used to pick a model.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from configs.settings import Settings
from features.services import NPS_SERVICE
from features.store import feature_store
from models import registry
from models.drivers import driver_figure, key_drivers
from models.nps import evaluate
from models.nps.company import period_nps
from models.nps.data import (
    Split,
    known_at,
    load_invitation_frame,
    load_scale,
    period_labels,
    relationship_waves,
    scale_counts,
    validation_split,
    with_features,
)
from models.nps.model import NpsModel, company_nps, fit_nps_model, wave_nps
from models.nps.plots import predicted_vs_actual_figure, wave_nps_figure
from models.nps.scale import NPS, Scale

log = logging.getLogger(__name__)
SHAP_ROWS = 5000


def respondent_metrics(model: NpsModel, wave: pd.DataFrame) -> dict[str, float]:
    """How well the model predicts the answers a wave's respondents actually gave."""
    answered = wave[wave["responded"] == 1]
    pred = model.predict(answered, answered=True)
    y = answered[model.scale.name].to_numpy(np.float64)
    is_det = model.scale.classify(y) == 0     # detractor, or dissatisfied on CSAT
    p_det = pred["p_detractor"].to_numpy()
    brier = float(np.mean((p_det - is_det) ** 2))
    return {"respondent_mae": float(np.abs(pred["nps_pred"].to_numpy() - y).mean()),
            "respondent_bias": float((pred["nps_pred"].to_numpy() - y).mean()),
            "respondent_detractor_brier": brier, "respondents": float(len(answered))}


def out_of_time_check(frame: pd.DataFrame, settings: Settings, split: Split | None = None,
                      fitted: dict | None = None) -> tuple[dict, dict, pd.DataFrame]:
    """Corrected and uncorrected models fitted on what was known before the validation
    rows (the latest relationship wave, or the last months: ``validation_split``), scored
    on their respondents; returns (corrected metrics, uncorrected metrics, validation rows).
    ``fitted`` (a dict) receives the two models under the wave's id, for the world
    evaluation of the same wave (``evaluate.evaluate_out_of_time``)."""
    split = split or validation_split(frame, settings.train.satisfaction_validation_months)
    before = known_at(frame, split.cutoff)
    corrected = fit_nps_model(before, settings.train, corrected=True)
    plain = fit_nps_model(before, settings.train, corrected=False)
    if fitted is not None and split.by_waves:
        fitted[split.label] = (corrected, plain)
    return respondent_metrics(corrected, split.valid), respondent_metrics(plain, split.valid), split.valid


def company_per_period(model: NpsModel, frame: pd.DataFrame, split: Split,
                       settings: Settings) -> pd.DataFrame:
    """The company figure per relationship wave, or, without waves, per period of
    ``satisfaction_validation_months`` months ending with the validation period."""
    samples, seed = settings.train.bootstrap_samples, settings.train.seed
    if split.by_waves:
        return wave_nps(model, frame, relationship_waves(frame), samples, seed)
    periods = period_labels(frame, settings.train.satisfaction_validation_months)
    return period_nps(model, frame, periods, samples, seed)


def customer_drivers(model: NpsModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Key drivers over the customer's features only: the survey's touchpoint is part of
    the model (support surveys score lower) but is not something about the customer."""
    names = model.spec.features
    keep = [i for i, n in enumerate(names) if n != "touchpoint"]
    contrib = model.contributions(frame)
    return key_drivers(contrib[:, [*keep, len(names)]], [names[i] for i in keep], model.spec.attributes)


def _prefixed(metrics: dict, prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, int | float | np.floating) and np.isfinite(v)}


def world_evaluation(settings: Settings, store, frame: pd.DataFrame, fitted: dict | None = None) -> dict:
    """Non-respondent figures against the simulated world's would-be answers, per wave
    (``fitted``: the out-of-time check's models, reused for its wave)."""
    table = evaluate.evaluate_nps(settings, store, last=2, frame=frame, fitted=fitted)
    summary = evaluate.overall(table)
    corrected = table[table["variant"] == "corrected"]
    metrics = {"eval_mean_abs_nps_error": float(summary.loc["corrected", "mean_abs_error"]),
               "eval_max_abs_nps_error": float(summary.loc["corrected", "max_abs_error"]),
               "eval_mean_abs_respondents_error":
                   float(summary.loc["corrected", "mean_abs_respondents_error"]),
               "eval_nonresp_mae": float(summary.loc["corrected", "nonresp_mae"]),
               "eval_nonresp_detractor_recall":
                   float(summary.loc["corrected", "nonresp_detractor_recall"]),
               "eval_uncorrected_mean_abs_nps_error":
                   float(summary.loc["uncorrected", "mean_abs_error"])}
    return {"table": table, "overall": summary.reset_index(), "corrected": corrected,
            "metrics": metrics}


def headline(latest: dict, evaluation: dict | None, scale: Scale = NPS) -> dict:
    """What `cem train` prints: the latest wave's company figure and how far off it was."""
    f = "{:+.1f}" if scale is NPS else "{:.2f}"
    est, lo, hi = (f.format(latest[k]) for k in (scale.name, "low", "high"))
    out = {f"company {scale.label} (everyone)": f"{est} [{lo}, {hi}]",
           "respondents only": f.format(latest[f"respondents_{scale.name}"])}
    if evaluation is not None:
        row = evaluation["corrected"].iloc[-1]
        out["true NPS (simulation)"] = f"{row['true_nps']:+.1f}"
        out["out-of-time error: company / respondents-only"] = (
            f"{row['error']:+.1f} / {row['respondents_error']:+.1f}")
        out["non-respondent MAE"] = f"{row['nonresp_mae']:.2f}"
    return out


def train_and_log_nps(settings: Settings) -> dict:
    """Fit, check, explain, log and register the predicted-satisfaction model."""
    store = feature_store(settings)
    scale = load_scale(settings.clean_dir, settings.train.satisfaction_scale)
    frame = with_features(store, load_invitation_frame(settings.clean_dir, scale=scale))
    split = validation_split(frame, settings.train.satisfaction_validation_months)
    fitted: dict = {}      # the latest wave's out-of-time models, evaluated twice, fitted once
    valid, valid_plain, latest_wave = out_of_time_check(frame, settings, split, fitted)
    model = fit_nps_model(frame, settings.train, corrected=True)
    plain = fit_nps_model(frame, settings.train, corrected=False)
    served = model.recalibrated(latest_wave)   # tuned to the latest wave: what scoring uses
    latest = company_nps(model, latest_wave, settings.train.bootstrap_samples, settings.train.seed)
    per_wave = company_per_period(model, frame, split, settings)
    sample = frame.sample(n=min(SHAP_ROWS, len(frame)), random_state=settings.train.seed)
    drivers = customer_drivers(served, sample)
    evaluation = (world_evaluation(settings, store, frame, fitted) if scale is NPS and split.by_waves
                  and evaluate.world_answers_available(settings) else None)
    figures = {"shap_key_drivers": driver_figure(
        drivers, f"Predicted {scale.label}: key drivers (mean |SHAP|)")}
    per = "wave" if split.by_waves else "period"
    tables = {"key_drivers": drivers, f"company_nps_per_{per}": per_wave}
    metrics = (_prefixed(valid, "valid_") | _prefixed(valid_plain, "uncorrected_valid_")
               | _prefixed(latest.as_dict(), "latest_wave_") | _prefixed(model.summary(), "model_"))
    if evaluation is not None:
        metrics |= evaluation["metrics"]
        tables |= {"evaluation_per_wave": evaluation["table"], "evaluation_overall": evaluation["overall"]}
        figures["company_nps_per_wave"] = wave_nps_figure(evaluation["corrected"])
        pairs = evaluate.predicted_vs_actual(settings, served, latest_wave)
        figures["predicted_vs_true_nps"] = predicted_vs_actual_figure(
            pairs, f"Non-respondents of {split.label}: predicted vs would-be answer")
    else:
        figures[f"company_nps_per_{per}"] = wave_nps_figure(per_wave, scale=scale)
    tags = {"feature_service": NPS_SERVICE, "data_version": registry.data_version(settings)}
    logged = registry.log_model_run(
        settings, experiment_name="nps", registered_name="nps", model=served,
        params={"train": settings.train.model_dump(mode="json"), "latest_wave": split.label,
                "validation": split.description,
                "rows": len(frame), "satisfaction_scale": scale.name,
                "satisfaction_answers": scale_counts(settings.clean_dir)},
        metrics=metrics, tags=tags | {"model_type": "lightgbm_ipw_selection_tilt"},
        input_example=sample[served.spec.features].head(5), figures=figures, tables=tables,
        gate_metric="valid_respondent_mae", higher_is_better=False, datasets={"training": frame})
    plain_latest = company_nps(plain, latest_wave, settings.train.bootstrap_samples, settings.train.seed)
    registry.log_metrics_run(
        settings, experiment_name="nps", run_name="uncorrected",
        metrics=_prefixed(valid_plain, "valid_") | _prefixed(plain_latest.as_dict(), "latest_wave_"),
        tags=tags | {"model_type": "lightgbm_respondents_only"})
    registry.write_metrics(settings, "nps", {"valid": valid, "uncorrected_valid": valid_plain,
                                    "company_nps": latest.as_dict(),
                                    **({"evaluation": evaluation["metrics"]} if evaluation else {})})
    return {"valid": valid, "uncorrected_valid": valid_plain, "latest_wave": split.label,
            "validation": split.description, "company_per_period": per_wave.to_dict("records"),
            "satisfaction_scale": scale.name,
            "company_nps": latest.as_dict(), "headline": headline(latest.as_dict(), evaluation, scale),
            "evaluation": evaluation["metrics"] if evaluation else None,
            "version": logged.version, "gate": logged.gate, "run_id": logged.run_id,
            "key_drivers": drivers.head(5)[["label", "share"]].to_dict("records")}
