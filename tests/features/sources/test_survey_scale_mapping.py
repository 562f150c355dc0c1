"""A mapping of a survey tool that asks CSAT only (star ratings): no NPS column is needed,
but a responses table must map at least one score."""

from __future__ import annotations

import textwrap

import yaml

from features.sources.mapping.rules import check_spec
from features.sources.mapping.spec import MappingSpec

BASE = """
observed_until: 2024-06-30
files:
  crm: {path: crm.csv, key: id}
  answers: {path: answers.csv}
tables:
  crm_customers:
    files: [crm]
    columns: {customer_id: id, status: {constant: active}}
  survey_responses:
    files: [answers]
    columns:
      response_id: rid
      survey_id: {constant: post-contact}
      channel: {constant: email}
      respondent: email
      responded_at: {export_date: true}
      comment: text
"""


def problems(extra: str) -> list[str]:
    text = BASE + textwrap.indent(textwrap.dedent(extra), " " * 6)
    return check_spec(MappingSpec.model_validate(yaml.safe_load(text)))


def test_a_csat_only_survey_maps_without_nps():
    assert problems("csat: {column: stars, scale: stars_1_5}\n") == []


def test_a_survey_without_any_score_is_named():
    assert problems("") == ["tables.survey_responses.columns: map nps or csat or effort"]


def test_a_scale_still_has_to_fit_its_column():
    found = problems("csat: {column: score, scale: nps_0_10}\n")
    assert found and found[0].startswith("tables.survey_responses.columns.csat.scale: nps_0_10")
