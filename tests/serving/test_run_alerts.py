"""A scoring run's survey alerts read each answer on its own scale."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from configs.settings import load_settings
from serving.run_alerts import scoring_alerts

NAN = np.nan


def _features(last_nps, last_csat, days=(1, 1, 1, 1, 30)) -> pd.DataFrame:
    n = len(last_nps)
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "rep_id": "R001",
                         "last_nps": last_nps, "last_csat": last_csat,
                         "days_since_last_survey_answer": list(days)[:n],
                         "usage_vs_usual": np.ones(n)})


def test_csat_answers_alert_when_dissatisfied_and_nps_on_nps(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    features = _features([NAN, NAN, 5.0, 8.0, NAN], [2.0, 3.0, NAN, 1.0, 1.0])
    alerts = scoring_alerts(features, features, settings, date(2025, 1, 1))
    got = dict(zip(alerts["customer_id"], alerts["reason"], strict=True))
    assert got == {"C0": "Dissatisfied: answered the survey with CSAT 2 (1-5)",
                   "C2": "Detractor: answered the survey with NPS 5 (0-10)"}
    assert set(alerts["kind"]) == {"detractor"}      # C4 answered a month ago: not this cycle


def test_an_export_without_nps_still_alerts_on_csat(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    features = _features([NAN], [1.0]).drop(columns="last_nps")
    alerts = scoring_alerts(features, features, settings, date(2025, 1, 1))
    assert alerts["reason"].tolist() == ["Dissatisfied: answered the survey with CSAT 1 (1-5)"]
