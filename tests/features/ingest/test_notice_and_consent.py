"""Optional CRM notice and consent columns and the programme's strata: rules and dtypes."""

from __future__ import annotations

import pandas as pd

NULL = None


def test_notice_date_rules_and_consent_flags(world, ingest):
    crm = world["crm_customers"]
    crm["notice_date"] = [NULL, NULL, "2024-04-19", NULL]
    crm["email_opt_out"] = [False, "yes", NULL, True]
    crm["phone_opt_out"] = [True, False, False, NULL]
    bad = crm.iloc[[0, 0, 0]].copy()
    bad["customer_id"] = ["C90", "C91", "C92"]
    bad["status"] = "churned"
    bad["churn_date"] = ["2024-05-31", "2024-05-31", "2024-05-31"]
    bad["notice_date"] = ["2024-06-01", "2022-12-31", "2024-04-19"]   # after churn, before signup, ok
    world["crm_customers"] = pd.concat([crm, bad], ignore_index=True)
    report, clean, quarantine = ingest(world)
    t = report.tables["crm_customers"]
    assert t.rows_in == t.rows_kept + t.rows_quarantined == 7
    assert t.reasons == {"churn_date: before notice_date": 1, "notice_date: before signup_date": 1}
    kept = clean["crm_customers"].set_index("customer_id")
    assert kept.loc["C3", "notice_date"].isoformat().startswith("2024-04-19")
    email = kept.loc[["C1", "C2", "C3", "C4"], "email_opt_out"]
    assert email.dtype == "boolean" and email.isna().tolist() == [False, False, True, False]
    assert email.dropna().tolist() == [False, True, True]


def test_intervention_strata_are_optional_and_probabilities_checked(world, ingest):
    report, clean, _ = ingest(world)            # without the columns: read as empty
    assert clean["interventions"]["stratum"].isna().all()
    iv = world["interventions"]
    iv["stratum"] = "no_driver"
    iv["assignment_probability"] = 0.01
    iv.loc[iv.index[0], "assignment_probability"] = 1.5
    report, clean, quarantine = ingest(world)
    t = report.tables["interventions"]
    assert t.rows_quarantined == 1 and t.rows_in == t.rows_kept + t.rows_quarantined
    assert t.reasons == {"assignment_probability: must be in (0, 1]": 1}
    assert (clean["interventions"]["assignment_probability"] == 0.01).all()
