"""One-window exports (customers as of a date, a status, no events): one snapshot at the
end of the export day, every signed-up customer labelled by status, and scoring only the
customers still active."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from configs.settings import FeaturesParams, IngestParams
from features.ingest import run_ingest
from features.transforms import build_feature_tables
from features.transforms.window import NO_EXPORT_DATE
from serving.batch_inputs import active_customers

CRM = pd.DataFrame({
    "customer_id": ["A", "B", "C", "D", "E"],
    "signup_date": ["2022-01-10", "2021-05-01", "", "2022-09-30", "2020-02-01"],
    "status": ["active", "churned", "churned", "active", "active"],
    "observed_until": ["2022-09-30"] * 5,
})


def _ingest(tmp_path, crm: pd.DataFrame):
    raw = tmp_path / "raw"
    raw.mkdir()
    crm.to_csv(raw / "crm_customers.csv", index=False)
    run_ingest(raw, tmp_path / "clean", tmp_path / "quarantine", IngestParams())
    return tmp_path / "clean"


def _tables(out):
    return {n: pd.read_parquet(out / f"{n}.parquet") for n in ("customer_o", "churn_labels")}


def test_one_snapshot_at_the_end_of_the_export_day_labelled_by_status(tmp_path):
    clean = _ingest(tmp_path, CRM)
    build_feature_tables(clean, tmp_path / "features", FeaturesParams())
    t = _tables(tmp_path / "features")
    end = pd.Timestamp("2022-10-01", tz="UTC")
    assert set(t["customer_o"]["event_timestamp"]) == {end}
    labels = t["churn_labels"].set_index("customer_id")["churned_within_horizon"]
    # every customer signed up by the export date is a row, churners included, even the
    # one who joined on the export day and the one without a signup date
    assert labels.to_dict() == {"A": 0, "B": 1, "C": 1, "D": 0, "E": 0}
    tenure = t["customer_o"].set_index("customer_id")["tenure_days"]
    assert tenure["A"] == (end - pd.Timestamp("2022-01-10", tz="UTC")).days
    assert tenure["D"] == 1 and np.isnan(tenure["C"])


def test_scoring_the_export_date_leaves_out_the_churners(tmp_path):
    clean = _ingest(tmp_path, CRM)
    active = active_customers(clean, date(2022, 10, 1))
    assert sorted(active["customer_id"]) == ["A", "D", "E"]
    assert set(active["rep_id"]) == {"unassigned"}      # no rep in the export: one shared list


def test_an_unknown_export_date_is_asked_for(tmp_path):
    clean = _ingest(tmp_path, CRM.drop(columns="observed_until"))
    with pytest.raises(ValueError, match="observed_until.*--as-of"):
        build_feature_tables(clean, tmp_path / "f1", FeaturesParams())
    assert "--as-of" in NO_EXPORT_DATE
    build_feature_tables(clean, tmp_path / "f2", FeaturesParams(), as_of=date(2022, 9, 30))
    assert len(pd.read_parquet(tmp_path / "f2" / "churn_labels.parquet")) == 5
