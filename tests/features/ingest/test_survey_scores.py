"""A survey answer carries at least one score (nps, csat or effort): a CSAT-only export
ingests, a response without any score is quarantined with its reason, and a responses
table without any score column breaks the contract."""

from __future__ import annotations

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import SourceContractError, run_ingest
from tests.features.ingest.conftest import write_world

NO_SCORE = "nps, csat, effort: no score (a response needs at least one)"


def run(frames, tmp_path, fmt="csv"):
    src = write_world(frames, tmp_path / "src", fmt)
    return run_ingest(src, tmp_path / "clean", tmp_path / "q", IngestParams())


def test_a_csat_only_export_keeps_every_scored_answer(world, fmt, tmp_path):
    resp = world["survey_responses"].drop(columns=["nps"])
    resp.loc[resp["response_id"] == "S2", "csat"] = 2      # S2 answered NPS only before
    world["survey_responses"] = resp
    report = run(world, tmp_path, fmt)
    t = report.tables["survey_responses"]
    assert (t.rows_kept, t.rows_quarantined) == (4, 0)
    clean = pd.read_parquet(tmp_path / "clean" / "survey_responses.parquet")
    assert clean["nps"].isna().all()
    assert clean.set_index("response_id")["csat"].to_dict() == {"S1": 5, "S2": 2, "S3": 4, "S4": 5}


def test_a_response_without_any_score_is_quarantined_with_its_reason(world, tmp_path):
    resp = world["survey_responses"]
    resp.loc[resp["response_id"] == "S2", ["nps", "csat", "effort"]] = None
    report = run(world, tmp_path)
    assert report.tables["survey_responses"].rows_quarantined == 1
    q = pd.read_parquet(tmp_path / "q" / "survey_responses.parquet")
    assert q["response_id"].tolist() == ["S2"] and q["_reason"].tolist() == [NO_SCORE]


def test_a_responses_table_without_any_score_column_breaks_the_contract(world, tmp_path):
    world["survey_responses"] = world["survey_responses"].drop(columns=["nps", "csat", "effort"])
    with pytest.raises(SourceContractError, match="needs at least one of the columns nps, csat, effort"):
        run(world, tmp_path)
