"""The satisfaction scale: CSAT arithmetic, the choice of scale, and the company mean CSAT
of a simulated population whose every answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from configs.settings import LightGBMParams, TrainParams
from models.nps.data import invitation_frame, known_at
from models.nps.model import company_nps, fit_nps_model, tilt
from models.nps.scale import CSAT, NPS, choose_scale, scale_of

T0 = pd.Timestamp("2024-01-08 09:00", tz="UTC")


def test_csat_classes_and_company_figure():
    assert CSAT.classify([1, 2, 3, 4, 5, np.nan]).tolist() == [0, 0, 1, 2, 2, -1]
    assert CSAT.of_scores([5, 4, 3, np.nan]) == pytest.approx(4.0)
    assert NPS.of_scores([10, 9, 8, 3]) == pytest.approx(25.0)
    dist = np.full((2, 5), 0.2)
    np.testing.assert_allclose(CSAT.class_probabilities(dist), [[0.4, 0.2, 0.4]] * 2)
    np.testing.assert_allclose(CSAT.expected_values(dist), [3.0, 3.0])
    assert scale_of(dist) is CSAT and scale_of(np.full((1, 11), 1 / 11)) is NPS
    # a tilt moves a CSAT distribution down and keeps it a distribution
    down = tilt(dist, 0.5)
    assert (down @ CSAT.scores < 3.0).all() and np.allclose(down.sum(1), 1.0)


def test_the_scale_is_nps_when_answered_else_csat():
    both = pd.DataFrame({"nps": [9, np.nan], "csat": [np.nan, 4]})
    only_csat = pd.DataFrame({"nps": [np.nan, np.nan], "csat": [5, 4]})
    assert choose_scale(both) is NPS and choose_scale(only_csat) is CSAT
    assert choose_scale(both, "csat") is CSAT
    with pytest.raises(ValueError, match="train.satisfaction_scale"):
        choose_scale(both, "ces")


def test_invitation_frame_on_the_csat_scale():
    inv = pd.DataFrame({"invitation_id": ["I1", "I2", "I3"], "customer_id": ["C1", "C2", "C3"],
                        "survey_id": "relationship-1", "touchpoint": "relationship",
                        "sent_at": [T0, T0, T0]})
    resp = pd.DataFrame({"invitation_id": ["I1", "I2"], "nps": [np.nan, 7.0], "csat": [4.0, np.nan],
                         "responded_at": [T0 + pd.Timedelta(days=1)] * 2})
    f = invitation_frame(inv, resp, scale=CSAT).set_index("invitation_id")
    assert "nps" not in f.columns
    assert f["responded"].to_dict() == {"I1": 1, "I2": 0, "I3": 0}   # I2 gave no CSAT
    assert f.loc["I1", "csat"] == 4.0
    late = known_at(f.reset_index(), T0 + pd.Timedelta(hours=1))
    assert late["responded"].sum() == 0 and late["csat"].isna().all()


def _population(seed: int, customers: int = 4000) -> tuple[pd.DataFrame, float]:
    """Two relationship waves; CSAT depends on complaints and tenure, and customers with
    complaints or a short tenure answer less (selection on what the features show, so
    the weighted model can correct it without anchor answers)."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(2):
        complaints = rng.poisson(0.6, customers)
        tenure = rng.uniform(30, 2000, customers) + 180 * w
        latent = 3.6 - 0.7 * complaints + 0.0004 * tenure + rng.normal(0, 0.8, customers)
        csat = np.clip(np.rint(latent), 1, 5)
        p = 1 / (1 + np.exp(-(-1.2 - 0.6 * complaints + 0.0004 * tenure)))
        responded = rng.random(customers) < p
        rows.append(pd.DataFrame({
            "customer_id": [f"C{i}" for i in range(customers)],
            "invitation_id": [f"I{w}-{i}" for i in range(customers)],
            "survey_id": f"relationship-{w}", "touchpoint": "relationship",
            "event_timestamp": T0 + pd.Timedelta(days=180 * w) + pd.to_timedelta(
                rng.uniform(0, 5, customers), unit="D"),
            "responded": responded.astype(np.int64), "csat": np.where(responded, csat, np.nan),
            "true_csat": csat, "complaints_90d": complaints, "tenure_days": tenure}))
    frame = pd.concat(rows, ignore_index=True)
    frame["responded_at"] = frame["event_timestamp"].where(frame["responded"] == 1)
    frame["responded_at"] += pd.Timedelta(days=1)
    last = frame[frame["survey_id"] == "relationship-1"]
    return frame.drop(columns=["true_csat"]), float(last["true_csat"].mean())


def test_company_mean_csat_interval_covers_the_population_mean_in_most_seeds():
    small = LightGBMParams(n_estimators=200, learning_rate=0.1, num_leaves=8, max_depth=3,
                           min_child_samples=10)
    params = TrainParams(nps=small, propensity=small, bootstrap_samples=100)
    hits, closer = 0, 0
    for seed in range(6):
        frame, truth = _population(seed)
        wave = frame[frame["survey_id"] == "relationship-1"]
        model = fit_nps_model(frame, params, corrected=True)
        assert model.scale is CSAT and model.distribution.num_model_per_iteration() == 5
        res = company_nps(model, wave, samples=100, seed=seed)
        assert res.scale == "csat" and 1 < res.low < res.nps < res.high < 5
        hits += res.low <= truth <= res.high
        closer += abs(res.nps - truth) < abs(res.respondents_nps - truth)
    assert hits >= 4 and closer == 6     # measured: 5 of 6 intervals cover, every estimate closer
