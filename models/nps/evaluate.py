"""Evaluation of the predicted-NPS model against the simulated world's hidden truth.

The only model code allowed to read ``settings.truth_dir`` (``survey_truth.parquet``): per
wave, out of time, the company NPS is compared with the true NPS of all invitees, and the
predictions with the non-respondents' would-be answers.
Metrics: docs/models.md#evaluating-predicted-nps
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore

from configs.settings import Settings, TrainParams
from models.nps.data import known_at, load_invitation_frame, relationship_waves, with_features
from models.nps.model import NpsModel, company_nps, fit_nps_model, nps_class, nps_of_scores

TRUTH_FILE = "survey_truth.parquet"
VARIANTS = ("corrected", "corrected_no_recalibration", "ipw_only", "uncorrected")


def load_survey_truth(truth_dir: Path) -> pd.DataFrame:
    """invitation_id, customer_id, survey_id, touchpoint, sent_at, true_nps, responded."""
    cols = ["invitation_id", "customer_id", "survey_id", "touchpoint", "sent_at", "true_nps",
            "responded"]
    return pd.read_parquet(Path(truth_dir) / TRUTH_FILE, columns=cols)


def _true_scores(rows: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    scores = rows["invitation_id"].map(truth.set_index("invitation_id")["true_nps"])
    if scores.isna().any():
        raise KeyError(f"{int(scores.isna().sum())} invitations are missing from the truth")
    return scores.to_numpy(np.float64)


def true_nps(wave: pd.DataFrame, truth: pd.DataFrame) -> float:
    """NPS every invitee of ``wave`` would have given."""
    return nps_of_scores(_true_scores(wave, truth))


def nonresponder_metrics(pred: pd.DataFrame, true_scores: np.ndarray) -> dict:
    """MAE / bias of ``nps_pred`` and detractor recall / precision of the top-k list.

    ``pred`` holds ``predict`` output for the non-respondents, ``true_scores`` their
    would-be answers in the same order.
    """
    y = np.asarray(true_scores, dtype=np.float64)
    n = len(y)
    if n == 0:
        return {"n": 0, "mae": np.nan, "bias": np.nan, "detractor_recall": np.nan,
                "detractor_precision": np.nan, "true_detractor_share": np.nan,
                "predicted_detractor_share": np.nan}
    err = pred["nps_pred"].to_numpy(np.float64) - y
    p_det = pred["p_detractor"].to_numpy(np.float64)
    is_det = nps_class(y) == 0
    k = int(np.clip(round(p_det.sum()), 1, n))
    flagged = np.zeros(n, bool)
    flagged[np.argsort(-p_det, kind="stable")[:k]] = True
    hits = (flagged & is_det).sum()
    return {"n": n, "mae": float(np.abs(err).mean()), "bias": float(err.mean()),
            "detractor_recall": float(hits / is_det.sum()) if is_det.any() else np.nan,
            "detractor_precision": float(hits / k),
            "true_detractor_share": float(is_det.mean()),
            "predicted_detractor_share": float(p_det.mean())}


def evaluate_wave(model: NpsModel, wave: pd.DataFrame, truth: pd.DataFrame, samples: int = 300,
                  seed: int = 0, recalibrate: bool = True) -> dict:
    """Company NPS, respondents-only NPS and non-respondent metrics of one wave."""
    res = company_nps(model, wave, samples, seed, recalibrate=recalibrate)
    used = model.recalibrated(wave) if (recalibrate and model.corrected) else model
    silent = wave[wave["responded"] == 0]
    metrics = nonresponder_metrics(used.predict(silent), _true_scores(silent, truth))
    truth_nps = true_nps(wave, truth)
    return {"true_nps": truth_nps, "company_nps": res.nps, "low": res.low, "high": res.high,
            "respondents_nps": res.respondents_nps, "error": res.nps - truth_nps,
            "respondents_error": res.respondents_nps - truth_nps,
            "covered": bool(res.low <= truth_nps <= res.high),
            "invitees": res.invitees, "respondents": res.respondents,
            **{f"nonresp_{k}": v for k, v in metrics.items()}}


def evaluate_out_of_time(frame: pd.DataFrame, truth: pd.DataFrame, params: TrainParams,
                         survey_ids: list[str], fitted: dict | None = None) -> pd.DataFrame:
    """One row per (wave, variant): models trained on what was known before the wave.

    ``frame`` is the invitation frame with features of the whole history; variants:
    ``corrected`` (IPW + selection tilt + wave recalibration), ``corrected_no_recalibration``
    and ``uncorrected`` (a plain model on the respondents). ``fitted``: survey id ->
    (corrected, plain) models already fitted on what was known before that wave (training's
    out-of-time check fits the latest wave's: the same models, not fitted twice).
    """
    rows = []
    for sid in survey_ids:
        wave = frame[frame["survey_id"] == sid]
        cutoff = wave["event_timestamp"].min()
        train = known_at(frame, cutoff)
        if fitted and sid in fitted:
            corrected, plain = fitted[sid]
        else:
            corrected = fit_nps_model(train, params, corrected=True)
            plain = fit_nps_model(train, params, corrected=False)
        runs = {"corrected": (corrected, True), "corrected_no_recalibration": (corrected, False),
                "ipw_only": (corrected.without_selection(), False), "uncorrected": (plain, False)}
        for variant, (model, recal) in runs.items():
            out = evaluate_wave(model, wave, truth, params.bootstrap_samples, params.seed, recal)
            rows.append({"survey_id": sid, "variant": variant, "cutoff": cutoff,
                         "train_rows": len(train), "train_answered": int(train["responded"].sum()),
                         **out, **{f"model_{k}": v for k, v in model.summary().items()
                                   if k in ("selection_gamma", "selection_gamma_se", "selection_gap",
                                            "selection_gap_se", "anchor_pairs_answered")}})
    return pd.DataFrame(rows)


def overall(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant over the evaluated waves: mean |error|, max |error|, and non-respondent
    metrics weighted by the number of non-respondents."""
    def agg(g: pd.DataFrame) -> pd.Series:
        w = g["nonresp_n"].to_numpy(np.float64)
        return pd.Series({
            "waves": len(g), "mean_abs_error": g["error"].abs().mean(),
            "max_abs_error": g["error"].abs().max(),
            "mean_abs_respondents_error": g["respondents_error"].abs().mean(),
            "coverage": g["covered"].mean(),
            "nonresp_mae": np.average(g["nonresp_mae"], weights=w),
            "nonresp_detractor_recall": np.average(g["nonresp_detractor_recall"], weights=w),
        })
    return table.groupby("variant", sort=False)[list(table.columns)].apply(agg)


def evaluate_nps(settings: Settings, store: FeatureStore, survey_ids: list[str] | None = None,
                 last: int = 2, params: TrainParams | None = None,
                 frame: pd.DataFrame | None = None, fitted: dict | None = None) -> pd.DataFrame:
    """Out-of-time evaluation of the latest ``last`` relationship waves (or ``survey_ids``).

    ``frame``: the invitation frame with features when the caller already built it;
    ``fitted``: models already fitted for some of the waves (``evaluate_out_of_time``).
    """
    if frame is None:
        frame = with_features(store, load_invitation_frame(settings.clean_dir))
    truth = load_survey_truth(settings.truth_dir)
    waves = survey_ids if survey_ids is not None else relationship_waves(frame)[-last:]
    return evaluate_out_of_time(frame, truth, params or settings.train, waves, fitted)


def world_answers_available(settings: Settings) -> bool:
    """True for the built-in simulated world, whose would-be answers are on disk."""
    return (Path(settings.truth_dir) / TRUTH_FILE).exists()


def predicted_vs_actual(settings: Settings, model: NpsModel, wave: pd.DataFrame) -> pd.DataFrame:
    """Non-respondents of ``wave``: ``nps_pred`` and the answer they would have given
    (``actual``), for the predicted-vs-true plot."""
    truth = load_survey_truth(settings.truth_dir)
    silent = wave[wave["responded"] == 0]
    pred = model.predict(silent)
    return pd.DataFrame({"nps_pred": pred["nps_pred"].to_numpy(),
                         "actual": _true_scores(silent, truth)}, index=silent.index)
