"""What the cluster ingest's tasks read instead of whole tables: the splits of the clean
CRM's identifiers and of the clean invitations give each bucket what streaming the whole
table gave it (across pieces of a few row groups, with identifiers shared or missing)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import bucketed
from features.ingest.cluster.resolve import (
    bucket_index,
    bucket_invitations,
    split_identifiers,
    split_invitations,
)
from tests.conftest import make_world

COUNT = 4


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean CRM in row groups of 70 rows, some identifiers shared or missing, and clean
    invitations in row groups of 50: what the ingest's merge writes, cut small."""
    root = make_world(tmp_path_factory.mktemp("splits"), customers=400, months=4, seed=3)
    crm = pq.read_table(root / "raw/crm_customers.parquet").to_pandas()
    crm.loc[5, "phone"] = crm.loc[300, "phone"]                      # shared by two customers
    crm.loc[7, "email"] = crm.loc[9, "email"].upper()                # the same once normalised
    crm.loc[11, ["email", "phone", "app_id"]] = None                 # no identifier at all
    out = tmp_path_factory.mktemp("clean")
    pq.write_table(pa.Table.from_pandas(crm, preserve_index=False), out / "crm_customers.parquet",
                   row_group_size=70)
    invitations = pq.read_table(root / "raw/survey_invitations.parquet")
    pq.write_table(invitations, out / "survey_invitations.parquet", row_group_size=50)
    return out


def test_each_identifier_bucket_gets_the_streamed_index(clean, tmp_path, monkeypatch):
    spans = bucketed.pieces(clean / "crm_customers.parquet", piece_rows=100)
    assert len(spans) > 2
    for i, span in enumerate(spans):
        split_identifiers(clean, COUNT, 10, tmp_path, i, span)
    shared = 0
    for j in range(COUNT):
        streamed = bucket_index(clean, j, COUNT, 10)
        got = bucket_index(clean, j, COUNT, 10, (tmp_path, len(spans)))
        assert streamed.keys() == got.keys()
        for kind in streamed:
            pd.testing.assert_frame_equal(got[kind], streamed[kind], check_dtype=False, obj=kind)
            shared += int((streamed[kind]["n_customers"] > 1).sum())
    assert shared >= 2                                            # the phone and the e-mail


def test_each_customer_bucket_gets_its_invitations(clean, tmp_path, monkeypatch):
    monkeypatch.setattr(bucketed, "PIECE_ROWS", 100)
    pieces = split_invitations(clean, COUNT, tmp_path)
    assert pieces > 1
    seen = 0
    for c in range(COUNT):
        streamed = bucket_invitations(clean, c, COUNT)
        got = bucket_invitations(clean, c, COUNT, (tmp_path, pieces))
        pd.testing.assert_frame_equal(got, streamed)
        seen += len(got)
    assert seen == pq.ParquetFile(clean / "survey_invitations.parquet").metadata.num_rows
