"""Predicted NPS: the invitation frame, the models, the company NPS and its evaluation."""

from __future__ import annotations

from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd
import pytest

from models.nps.data import (
    invitation_frame,
    known_at,
    load_invitation_frame,
    relationship_waves,
    with_features,
)
from models.nps.evaluate import evaluate_wave, load_survey_truth, nonresponder_metrics, overall, true_nps
from models.nps.model import (
    PRED_COLUMNS,
    SCORES,
    NpsModel,
    anchor_pairs,
    class_probabilities,
    company_nps,
    fit_nps_model,
    gamma_for_shift,
    ipw_weights,
    nps_class,
    nps_of_scores,
    selection_gap,
    tilt,
    wave_nps,
)

T0 = pd.Timestamp("2024-05-03 10:00", tz="UTC")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def nps_frame(model_world) -> pd.DataFrame:
    """Every invitation of the model world with its nps_v1 features as of sent_at."""
    return with_features(model_world.store, load_invitation_frame(model_world.settings.clean_dir))


@pytest.fixture(scope="module")
def fitted(model_world, nps_frame) -> SimpleNamespace:
    """Corrected and plain models trained before each of the two latest relationship waves
    (out of time); the attributes without a wave index are those of the latest wave."""
    params = model_world.settings.train.model_copy(update={"bootstrap_samples": 200})
    runs = []
    for wave_id in relationship_waves(nps_frame)[-2:]:
        wave = nps_frame[nps_frame["survey_id"] == wave_id]
        train = known_at(nps_frame, wave["event_timestamp"].min())
        runs.append(SimpleNamespace(wave=wave, train=train,
                                    corrected=fit_nps_model(train, params, corrected=True),
                                    plain=fit_nps_model(train, params, corrected=False)))
    return SimpleNamespace(runs=runs, **runs[-1].__dict__, params=params,
                           truth=load_survey_truth(model_world.settings.truth_dir))


# ---------------------------------------------------------------- the invitation frame

def _toy_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    inv = pd.DataFrame({
        "invitation_id": ["I1", "I2", "I3", "I4"],
        "customer_id": ["C1", "C1", "C2", "C3"],
        "survey_id": ["relationship-2024-05", "support-2024-05", "relationship-2024-05",
                      "relationship-2024-05"],
        "touchpoint": ["relationship", "support", "relationship", "relationship"],
        "sent_at": [T0, T0 + 2 * DAY, T0, T0],
    })
    resp = pd.DataFrame({
        "invitation_id": ["I1", "I3", "I4"],
        "nps": [9, 3, 7],
        "responded_at": [T0 + DAY, T0 + 3 * DAY, T0 + 10 * DAY],
    })
    return inv, resp


def test_invitation_frame_on_a_toy():
    inv, resp = _toy_tables()
    f = invitation_frame(inv, resp).set_index("invitation_id")
    assert len(f) == 4
    assert f["responded"].to_dict() == {"I1": 1, "I2": 0, "I3": 1, "I4": 1}
    assert f.loc["I1", "nps"] == 9 and f.loc["I3", "nps"] == 3 and np.isnan(f.loc["I2", "nps"])
    sent = inv.set_index("invitation_id")["sent_at"].loc[f.index]
    assert (f["event_timestamp"].to_numpy() == sent.to_numpy()).all()
    assert f.index.tolist() == ["I1", "I3", "I4", "I2"]           # by sent_at, then id
    assert str(f["event_timestamp"].dt.tz) == "UTC"
    # As of a cut-off: later invitations are unknown, later answers not yet received.
    g = invitation_frame(inv, resp, as_of=T0 + 5 * DAY).set_index("invitation_id")
    assert g["responded"].to_dict() == {"I1": 1, "I2": 0, "I3": 1, "I4": 0}
    assert np.isnan(g.loc["I4", "nps"])
    h = known_at(invitation_frame(inv, resp), T0 + 5 * DAY).set_index("invitation_id")
    pd.testing.assert_frame_equal(h[["responded", "nps"]], g[["responded", "nps"]])
    assert known_at(invitation_frame(inv, resp), T0 + DAY)["invitation_id"].tolist() == ["I1", "I3", "I4"]


def test_invitation_frame_matches_the_clean_tables(model_world, nps_frame):
    clean = model_world.settings.clean_dir
    inv = pd.read_parquet(clean / "survey_invitations.parquet")
    resp = pd.read_parquet(clean / "survey_responses.parquet")
    assert len(nps_frame) == len(inv) and nps_frame["invitation_id"].is_unique
    kept = resp[resp["invitation_id"].isin(inv["invitation_id"])]
    assert nps_frame["responded"].sum() == kept["invitation_id"].nunique() > 0
    answered = nps_frame[nps_frame["responded"] == 1].set_index("invitation_id")["nps"]
    expected = kept.set_index("invitation_id")["nps"].astype(float)
    pd.testing.assert_series_equal(answered.sort_index(), expected.loc[answered.index].sort_index(),
                                   check_names=False)
    assert nps_frame.loc[nps_frame["responded"] == 0, "nps"].isna().all()
    # Every relationship wave reaches many customers; about one in ten answers.
    waves = relationship_waves(nps_frame)
    assert len(waves) == 4
    rate = nps_frame[nps_frame["survey_id"].isin(waves)]["responded"].mean()
    assert 0.03 < rate < 0.2


def test_an_answer_is_never_a_feature_of_its_own_invitation(nps_frame):
    """A customer's first answer is scored with features from before it: no answer yet."""
    answered = nps_frame[nps_frame["responded"] == 1].sort_values("responded_at")
    first = answered.drop_duplicates("customer_id")
    first = first[first["tenure_days"].notna()]           # rows that have a feature snapshot
    assert len(first) > 100
    assert (first["ever_responded"] == 0).all()
    assert first["last_nps"].isna().all()


# ---------------------------------------------------------------- pure building blocks

def test_nps_arithmetic():
    assert nps_class([0, 6, 7, 8, 9, 10, np.nan]).tolist() == [0, 0, 1, 1, 2, 2, -1]
    assert nps_of_scores([10, 9, 8, 3]) == pytest.approx(25.0)
    dist = np.full((2, 11), 1 / 11)
    np.testing.assert_allclose(class_probabilities(dist), [[7 / 11, 2 / 11, 2 / 11]] * 2)


def test_tilt_moves_mass_down_and_composes():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(11), size=50)
    np.testing.assert_allclose(tilt(p, 0.0), p)
    np.testing.assert_allclose(tilt(tilt(p, 0.2), 0.3), tilt(p, 0.5))
    np.testing.assert_allclose(tilt(p, 0.4).sum(1), 1.0)
    assert ((tilt(p, 0.4) @ SCORES) < p @ SCORES).all()
    g = gamma_for_shift(p, 0.35)
    assert g > 0
    assert (p @ SCORES).mean() - (tilt(p, g) @ SCORES).mean() == pytest.approx(0.35, abs=1e-4)


def test_ipw_weights_are_stabilised_and_clipped():
    pi = np.array([0.5, 0.2, 0.1, 0.01, 0.001])
    w = ipw_weights(pi, base_rate=0.1, max_weight=20.0)
    assert w.mean() == pytest.approx(1.0)
    assert (np.diff(w) >= 0).all()                  # rarer respondents stand for more invitees
    assert w.max() / w.min() <= 20.0 / 0.2 + 1e-9   # clipped at 20 x the base rate


def test_anchor_pairs_are_answers_outside_the_invitations_features():
    t = pd.Timestamp("2024-05-03", tz="UTC")
    frame = pd.DataFrame({
        "customer_id": ["A", "A", "A", "A", "B", "B", "C"],
        "invitation_id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1"],
        "event_timestamp": [t, t + 5 * DAY, t + 40 * DAY, t + 100 * DAY, t, t + DAY, t],
        "tenure_days": [100, 100, 130, 190, 50, 50, np.nan],
        "touchpoint": ["relationship", "support", "purchase", "support", "relationship", "support",
                       "support"],
        "responded": [0, 1, 1, 1, 1, 0, 1],
        "nps": [np.nan, 6, 8, 2, 9, np.nan, 4],
    })
    pairs = anchor_pairs(frame, max_days=45)
    got = sorted(zip(pairs["invitation_id"], pairs["answer_anchor"], pairs["touchpoint_anchor"], strict=True))
    # a1: a2 (same snapshot) and a3 (next snapshot, 40 days later); a4 is too late.
    # a2: a3 only (a1 unanswered); a3: nothing after it within 45 days, a2 is in its features.
    # b2: b1 (same snapshot, earlier); c1 has no snapshot; nobody is their own anchor.
    assert got == [("a1", 6.0, "support"), ("a1", 8.0, "purchase"), ("a2", 8.0, "purchase"),
                   ("b2", 9.0, "relationship")]
    assert set(pairs.loc[pairs["invitation_id"] == "a1", "row"]) == {0}
    toy = pd.DataFrame({"customer_id": list("abcdef"), "responded": [1, 1, 1, 0, 0, 0],
                        "residual": [1.0, 2.0, 3.0, 0.0, 1.0, -1.0]})
    gap = selection_gap(toy, samples=50, seed=0)
    assert gap.gap == pytest.approx(2.0) and gap.se > 0 and gap.pairs_answered == 3


def test_evaluation_metrics_on_a_toy():
    pred = pd.DataFrame({"nps_pred": [5.0, 8.0, 9.0, 3.0],
                         "p_detractor": [0.6, 0.1, 0.2, 0.9],
                         "p_passive": [0.3, 0.5, 0.3, 0.1],
                         "p_promoter": [0.1, 0.4, 0.5, 0.0]})
    m = nonresponder_metrics(pred, np.array([4.0, 10.0, 6.0, 2.0]))
    assert m["n"] == 4
    assert m["mae"] == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert m["bias"] == pytest.approx((1 - 2 + 3 + 1) / 4)
    # expected detractors = 1.8 -> the 2 highest p_detractor (rows 3, 0) are flagged;
    # true detractors are rows 0, 2, 3 -> recall 2/3, precision 1.
    assert m["detractor_recall"] == pytest.approx(2 / 3)
    assert m["detractor_precision"] == pytest.approx(1.0)
    truth = pd.DataFrame({"invitation_id": ["x", "y", "z", "w"], "true_nps": [10, 9, 2, 7]})
    wave = pd.DataFrame({"invitation_id": ["x", "y", "z", "w"]})
    assert true_nps(wave, truth) == pytest.approx(25.0)
    table = pd.DataFrame({"variant": ["a", "a"], "error": [1.0, -3.0], "respondents_error": [10.0, 20.0],
                          "covered": [True, False], "nonresp_n": [1, 3], "nonresp_mae": [1.0, 2.0],
                          "nonresp_detractor_recall": [0.4, 0.8]})
    agg = overall(table).loc["a"]
    assert agg["mean_abs_error"] == pytest.approx(2.0) and agg["max_abs_error"] == 3.0
    assert agg["nonresp_mae"] == pytest.approx(1.75) and agg["coverage"] == 0.5


# ---------------------------------------------------------------- models on the world

def test_selection_correction_beats_respondents_only_and_the_plain_model(fitted):
    """Out of time, over the two latest waves of the 4,000-customer world.

    With this few customers the anchor gap has a standard error of ~0.2 score points
    (~8 NPS points), so a single wave can go either way; the 20,000-customer figures
    are in the report. The respondents-only NPS is ~25 points too high here.
    """
    errors = {"respondents-only": [], "uncorrected": [], "corrected": []}
    for run in fitted.runs:
        corrected = evaluate_wave(run.corrected, run.wave, fitted.truth, 200, 0)
        plain = evaluate_wave(run.plain, run.wave, fitted.truth, 200, 0)
        print(f"\n{run.wave['survey_id'].iloc[0]}: true NPS {corrected['true_nps']:.1f}, "
              f"respondents-only {corrected['respondents_nps']:.1f}, "
              f"uncorrected {plain['company_nps']:.1f}, corrected {corrected['company_nps']:.1f} "
              f"[{corrected['low']:.1f}, {corrected['high']:.1f}]; anchor gap "
              f"{run.corrected.gap.gap:.2f} +- {run.corrected.gap.se:.2f}; MAE non-respondents "
              f"{corrected['nonresp_mae']:.2f} (uncorrected {plain['nonresp_mae']:.2f})")
        errors["respondents-only"].append(corrected["respondents_error"])
        errors["uncorrected"].append(plain["error"])
        errors["corrected"].append(corrected["error"])
        assert corrected["respondents_error"] > 8                  # the world is biased
        assert run.corrected.gap.gap > 0 and run.corrected.selection_gamma > 0
        assert corrected["nonresp_mae"] < 1.6
    mean_abs = {k: float(np.mean(np.abs(v))) for k, v in errors.items()}
    print("mean |error|:", {k: round(v, 1) for k, v in mean_abs.items()})
    assert mean_abs["corrected"] < mean_abs["uncorrected"]
    assert mean_abs["corrected"] < mean_abs["respondents-only"]


def test_predictions_are_probabilities_and_sum_to_one(fitted):
    pred = fitted.corrected.predict(fitted.wave)
    assert list(pred.columns) == PRED_COLUMNS and pred.index.equals(fitted.wave.index)
    probs = pred[["p_detractor", "p_passive", "p_promoter"]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    assert pred["nps_pred"].between(0, 10).all()
    # A customer frame without invitations is scored as a relationship survey.
    no_tp = fitted.wave.drop(columns=["touchpoint"])
    pd.testing.assert_frame_equal(fitted.corrected.predict(no_tp), pred)


def test_a_customers_prediction_does_not_depend_on_its_batch(fitted):
    """Buckets, the whole run and one API call must give a customer the same figures, to the
    last bit (the cluster run is checked against the in-process run row for row)."""
    rows = pd.concat([fitted.wave] * 3, ignore_index=True)
    whole = fitted.corrected.predict(rows).to_numpy()
    cuts = [0, 1, 8, 137, *range(1001, len(rows), 997), len(rows)]
    pieces = np.vstack([fitted.corrected.predict(rows.iloc[a:b]).to_numpy()
                        for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    assert (pieces == whole).all()


def test_non_respondent_predictions_vary_with_features(fitted):
    silent = fitted.wave[fitted.wave["responded"] == 0]
    pred = fitted.corrected.predict(silent)
    true_scores = silent["invitation_id"].map(fitted.truth.set_index("invitation_id")["true_nps"])
    assert pred["nps_pred"].std() > 0.2 and pred["nps_pred"].nunique() > 100
    assert np.corrcoef(pred["nps_pred"], true_scores)[0, 1] > 0.1
    # lower than what the respondents like them would say
    answered_like = fitted.corrected.predict(silent, answered=True)
    assert (pred["nps_pred"] < answered_like["nps_pred"]).mean() > 0.99
    assert pred["p_detractor"].mean() > answered_like["p_detractor"].mean()


def test_contributions_add_up_to_the_prediction(fitted):
    rows = fitted.wave.head(200)
    contrib = fitted.corrected.contributions(rows)
    assert contrib.shape == (len(rows), len(fitted.corrected.spec.features) + 1)
    np.testing.assert_allclose(contrib.sum(1), fitted.corrected.predict(rows)["nps_pred"], atol=1e-6)


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_invitees(fitted):
    wave = fitted.wave
    res = company_nps(fitted.corrected, wave, samples=600, seed=1, model_uncertainty=False)
    assert res.low <= res.nps <= res.high and res.low < res.high
    assert res.respondents_low <= res.respondents_nps <= res.respondents_high
    assert res.invitees == len(wave) and res.respondents == int(wave["responded"].sum())
    # The same customers four times over: same estimate, narrower interval.
    bigger = pd.concat([wave.assign(customer_id=wave["customer_id"] + f"-{k}") for k in range(4)],
                       ignore_index=True)
    big = company_nps(fitted.corrected, bigger, samples=600, seed=1, model_uncertainty=False)
    assert big.nps == pytest.approx(res.nps)
    ratio = (big.high - big.low) / (res.high - res.low)
    assert ratio < 0.7, ratio         # 4x the invitees: about half the width (1/sqrt(4))
    # The uncertainty of the selection correction widens the interval.
    full = company_nps(fitted.corrected, wave, samples=600, seed=1, model_uncertainty=True)
    assert full.nps == pytest.approx(res.nps) and (full.high - full.low) > (res.high - res.low)


def test_wave_table_and_a_pickled_model(fitted, nps_frame, tmp_path):
    """The registry stores models with joblib: a round trip predicts the same."""
    waves = relationship_waves(nps_frame)[-2:]
    table = wave_nps(fitted.corrected, nps_frame, waves, samples=50, seed=0)
    assert table["survey_id"].tolist() == waves
    assert (table["low"] <= table["high"]).all() and (table["invitees"] > 0).all()
    assert (table["respondents_nps"] > table["nps"]).all()
    joblib.dump(fitted.corrected, tmp_path / "nps.joblib")
    loaded = joblib.load(tmp_path / "nps.joblib")
    assert isinstance(loaded, NpsModel)
    rows = fitted.wave.head(50)
    pd.testing.assert_frame_equal(loaded.predict(rows), fitted.corrected.predict(rows))


def test_the_world_evaluation_reuses_the_out_of_time_checks_models(model_world, nps_frame, fitted,
                                                                   monkeypatch):
    """Training's out-of-time check and the world evaluation of the latest wave fit the same
    two models on the same rows; fitted once, the evaluation's figures are unchanged."""
    from models.nps import evaluate
    from models.nps.train import out_of_time_check

    settings = model_world.settings.model_copy(update={"train": fitted.params})
    latest = relationship_waves(nps_frame)[-1]
    kept: dict = {}
    out_of_time_check(nps_frame, settings, fitted=kept)
    assert list(kept) == [latest]
    refit = evaluate.evaluate_out_of_time(nps_frame, fitted.truth, fitted.params, [latest])
    fits = []
    monkeypatch.setattr(evaluate, "fit_nps_model", lambda *a, **k: fits.append(1))
    reused = evaluate.evaluate_out_of_time(nps_frame, fitted.truth, fitted.params, [latest], kept)
    assert not fits
    pd.testing.assert_frame_equal(refit, reused)
