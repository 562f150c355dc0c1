"""Mapping files: every validation error is one line naming the file, the mapping key and,
where a source is read, the file and the column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from features.ingest import SourceContractError
from features.sources.mapping import MappingError, load_mapping

GOOD = """
observed_until: 2024-06-30
files:
  crm: {path: crm.csv, key: id}
  plans: {path: plans.csv, key: id}
never_features: [Left]
tables:
  crm_customers:
    files: [crm, plans]
    columns:
      customer_id: id
      signup_date: {months_before_export: Tenure}
      status: {column: Left, values: {Yes: churned, No: active}}
      segment: {constant: consumer}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(MappingError) as err:
        load_mapping(write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "m.yaml"))
    return message


def test_a_good_mapping_loads_and_yes_no_stay_text(tmp_path):
    spec = load_mapping(write(tmp_path, GOOD))
    status = spec.tables["crm_customers"].columns["status"]
    assert status.values == {"Yes": "churned", "No": "active"}
    assert spec.tables["crm_customers"].columns["customer_id"].column == "id"


def test_mapping_errors_are_source_contract_errors(tmp_path):
    with pytest.raises(SourceContractError):
        load_mapping(write(tmp_path, GOOD.replace("files:", "filez:", 1)))


@pytest.mark.parametrize(("change", "expected"), [
    (("observed_until:", "observd_until:"), "observd_until: unknown key"),
    (("customer_id: id", "customer_id: {colum: id}"),
     "tables.crm_customers.columns.customer_id.colum: unknown key"),
    (("crm_customers:", "crm_customer:"), "tables.crm_customer: unknown contract table"),
    (("segment: {constant: consumer}", "segmnt: {constant: consumer}"),
     "tables.crm_customers.columns.segmnt: not a column of the contract table crm_customers"),
    (("files: [crm, plans]", "files: [crm, plan]"),
     "tables.crm_customers.files: 'plan' is not defined under files"),
    (("No: active", "No: gone"),
     "tables.crm_customers.columns.status.values: 'gone' not accepted by crm_customers.status"),
    (("segment: {constant: consumer}", "segment: {constant: consumer, column: seg}"),
     "tables.crm_customers.columns.segment: give exactly one of"),
    (("customer_id: id", "region: id"),
     "tables.crm_customers.columns: required contract column(s) not mapped: customer_id"),
    (("  plans: {path: plans.csv, key: id}", "  plans: {path: plans.csv}"),
     "files.plans.key: needed to join 'plans' into crm_customers"),
])
def test_each_error_names_the_mapping_key(tmp_path, change, expected):
    assert expected in error(tmp_path, GOOD.replace(*change))


def test_status_or_churn_date_is_required(tmp_path):
    text = GOOD.replace("      status: {column: Left, values: {Yes: churned, No: active}}\n", "")
    assert "tables.crm_customers.columns: map status or churn_date" in error(tmp_path, text)


def test_outcome_column_may_feed_only_status_or_churn_date(tmp_path):
    text = GOOD.replace("segment: {constant: consumer}", "region: Left")
    assert ("tables.crm_customers.columns.region: 'Left' is an outcome column (never_features)"
            in error(tmp_path, text))


def test_derived_date_needs_the_export_date_and_a_date_column(tmp_path):
    text = GOOD.replace("observed_until: 2024-06-30\n", "")
    assert ("tables.crm_customers.columns.signup_date: derived from the export date, but "
            "observed_until is not set") in error(tmp_path, text)
    text = GOOD.replace("segment: {constant: consumer}", "region: {months_before_export: x}")
    assert "tables.crm_customers.columns.region: a date mapping on a str column" in error(
        tmp_path, text)


def test_scale_must_fit_the_contract_column(tmp_path):
    text = GOOD + """
  survey_responses:
    files: [crm]
    columns:
      response_id: id
      survey_id: {constant: s1}
      channel: {constant: email}
      respondent: id
      responded_at: {export_date: true}
      nps: {column: score, scale: csat_1_5}
      csat: {column: score, scale: stars_1_5}
"""
    message = error(tmp_path, text)
    assert "tables.survey_responses.columns.nps.scale: csat_1_5 (1-5) does not fit nps" in message
    assert "csat.scale" not in message           # stars 1-5 are a CSAT answer


def test_missing_mapping_file_and_bad_yaml(tmp_path):
    with pytest.raises(MappingError, match="mapping file .*nope.yaml"):
        load_mapping(tmp_path / "nope.yaml")
    assert "not valid YAML" in error(tmp_path, "files: [a\n")
