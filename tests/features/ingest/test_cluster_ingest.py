"""The ingest per partition on two Dask worker processes writes the in-process files, byte
for byte: clean tables, quarantine (rows and reasons) and the report; identity resolution
stays exact when an identifier's owners, or a key's rows, sit in different partitions."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs.settings import IngestParams
from features import bucketed
from features.ingest import run_ingest
from features.ingest.cluster import ingest_on
from features.ingest.cluster.driver import ingest_on_cluster
from features.ingest.cluster.parts import PARTS
from features.transforms.buckets import bucket_of
from tests.conftest import make_world

ROOT = Path(__file__).resolve().parents[3]
BUCKETS = 3
SHARED_SMS, UNKNOWN_MAIL, DUPLICATE = "RSPX-SHARED", "RSPX-UNKNOWN", "RSPX-DUP"


def _append(path: Path, rows: pd.DataFrame) -> None:
    """Rows added at the end of a raw Parquet table, in its own column types."""
    table = pq.read_table(path)
    extra = pa.Table.from_pandas(rows[table.column_names], preserve_index=False)
    pq.write_table(pa.concat_tables([table, extra.cast(table.schema)]), path)


def _two_buckets(ids: pd.Series) -> tuple[int, int]:
    """Rows of two customers in different customer buckets (and CRM partitions)."""
    buckets = bucket_of(pa.array(ids.to_numpy(dtype=object)), BUCKETS)
    first = 0
    other = next(i for i in range(1, len(ids)) if buckets[i] != buckets[first])
    return first, other


def inject(raw: Path) -> dict[str, str]:
    """Rows a per-customer-bucket resolution would get wrong, and others every path must
    quarantine alike; returns the shared phone."""
    crm = pq.read_table(raw / "crm_customers.parquet").to_pandas()
    a, b = _two_buckets(crm["customer_id"])
    shared = crm.loc[a, "phone"]
    digits = re.sub(r"\D", "", shared)[-10:]
    crm.loc[b, "phone"] = f"+1 {digits[:3]}.{digits[3:6]}.{digits[6:]}"     # the same number
    again = crm.loc[[a]].assign(email="again@example.com")          # a repeated customer id
    pq.write_table(pa.Table.from_pandas(pd.concat([crm, again], ignore_index=True),
                                        preserve_index=False)
                   .cast(pq.read_schema(raw / "crm_customers.parquet")),
                   raw / "crm_customers.parquet")
    responses = pq.read_table(raw / "survey_responses.parquet").to_pandas()
    first = responses.iloc[0]
    added = pd.DataFrame([
        {**first, "response_id": SHARED_SMS, "channel": "sms", "respondent": shared},
        {**first, "response_id": UNKNOWN_MAIL, "channel": "email",
         "respondent": "nobody@example.invalid"},
        {**first, "response_id": DUPLICATE, "responded_at": first["responded_at"]
         + pd.Timedelta(hours=1)},
        {**first, "response_id": "RSPX-BAD", "nps": 11},
    ])
    _append(raw / "survey_responses.parquet", added)
    complaints = pq.read_table(raw / "complaints.parquet").to_pandas()
    _append(raw / "complaints.parquet", complaints.iloc[[0]].assign(
        complaint_id="CMPX-SHARED", contact_type="phone", contact=shared))
    invoices = pq.read_table(raw / "billing_invoices.parquet").to_pandas()
    owner = invoices["customer_id"].iloc[0]
    stranger = crm.loc[b if crm.loc[a, "customer_id"] == owner else a, "customer_id"]
    _append(raw / "billing_invoices.parquet",            # an invoice id claimed twice
            invoices.iloc[[0]].assign(customer_id=stranger))
    return {"phone": shared}


def add_side_rows(staged: Path) -> None:
    """An event table with customers in different partitions and rows every path must
    quarantine alike, and an attribute row repeating a customer."""
    ids = pd.read_csv(staged / "crm_customers.csv", dtype=str)["customer_id"]
    a, b = _two_buckets(ids)
    (staged / "events").mkdir()
    (staged / "events" / "schema.json").write_text(json.dumps({"events": {"app_sessions": {
        "label": "App sessions", "measures": {"minutes": {"label": "Minutes in the app"}}}}}))
    pd.DataFrame({
        "customer_id": [ids[a], ids[b], ids[a], "NOBODY", ids[b], None, ids[b]],
        "occurred_at": ["2024-02-05T10:30:00", "2024-02-06T11:00:00", "2024-02-07T09:15:00",
                        "2024-02-07T09:15:00", "not a time", "2024-02-08T10:00:00",
                        "2024-02-09T10:00:00"],
        "minutes": ["12.5", "3", "4", "4", "5", "6", "abc"],
        "device": ["ios"] * 7,
    }).to_csv(staged / "events" / "app_sessions.csv", index=False)
    attributes = pd.read_csv(staged / "customer_attributes.csv", dtype=str, keep_default_na=False)
    pd.concat([attributes, attributes.iloc[[1]]], ignore_index=True).to_csv(
        staged / "customer_attributes.csv", index=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """1,500 customers over 12 months with the injected rows, ingested in-process."""
    root = make_world(tmp_path_factory.mktemp("cluster_ingest"), customers=1500, months=12,
                      seed=11)
    inject(root / "raw")
    report = run_ingest(root / "raw", root / "clean", root / "quarantine", IngestParams())
    return root, report


def assert_same_outputs(expected: Path, got: Path) -> None:
    """Every clean and quarantine file byte for byte; the report and manifest as JSON (the
    manifest's ``until`` is the time of ingest when the CRM has no ``observed_until``)."""
    for folder in ("clean", "quarantine"):
        names = sorted(p.relative_to(expected / folder) for p in (expected / folder).rglob("*")
                       if p.is_file())
        assert names == sorted(p.relative_to(got / folder) for p in (got / folder).rglob("*")
                               if p.is_file()), folder
        for name in names:
            if name.suffix == ".parquet":
                assert (got / folder / name).read_bytes() == (expected / folder / name
                                                              ).read_bytes(), name
    assert (json.loads((got / "clean/ingest_report.json").read_text())
            == json.loads((expected / "clean/ingest_report.json").read_text()))
    manifests = [json.loads((root / "clean/ingest_manifest.json").read_text())
                 for root in (expected, got)]
    for m in manifests:
        m.pop("until")
    assert manifests[0] == manifests[1]
    assert not (got / "clean" / PARTS).exists()


@pytest.mark.parametrize("piece_rows", [None, 500])
def test_world_on_the_cluster_equals_in_process(world, two_worker_client, tmp_path,
                                                monkeypatch, piece_rows):
    """``piece_rows``: each source split in pieces of a few monthly row groups, so a
    partition reads its rows from several pieces (the default: one piece per table)."""
    if piece_rows:
        monkeypatch.setattr(bucketed, "PIECE_ROWS", piece_rows)
    root, expected = world
    report = ingest_on_cluster(two_worker_client, root / "raw", tmp_path / "clean",
                               tmp_path / "quarantine", IngestParams(), buckets=BUCKETS)
    assert report.to_dict() == expected.to_dict()
    assert_same_outputs(root, tmp_path)


def test_cross_partition_rows_are_judged_as_in_process(world):
    """The injected rows' reasons (the same files on the cluster: the test above)."""
    root, report = world
    reasons = pd.read_parquet(root / "quarantine/survey_responses.parquet").set_index(
        "response_id")["_reason"]
    assert reasons[SHARED_SMS] == "respondent: ambiguous phone (shared by 2 customers)"
    assert reasons[UNKNOWN_MAIL] == "respondent: unknown email"
    assert reasons[DUPLICATE].startswith("response_id: duplicate response (kept response_id ")
    assert reasons["RSPX-BAD"].startswith("nps: ")
    complaints = pd.read_parquet(root / "quarantine/complaints.parquet")
    assert (complaints.set_index("complaint_id").loc["CMPX-SHARED", "_reason"]
            == "contact: ambiguous phone (shared by 2 customers)")
    for table in ("billing_invoices", "crm_customers"):
        assert report.tables[table].reasons == {
            next(iter(report.tables[table].reasons)): 1}, table
        assert "duplicate key" in next(iter(report.tables[table].reasons))


def test_cem_ingest_scope_sends_a_full_ingest_to_the_cluster(world, two_worker_client,
                                                             tmp_path, caplog):
    root, _ = world
    with (caplog.at_level(logging.INFO, logger="features.ingest.cluster.driver"),
          ingest_on(two_worker_client.scheduler.address)):
        run_ingest(root / "raw", tmp_path / "clean", tmp_path / "quarantine", IngestParams())
    assert "ingest on the cluster: 2 partitions" in caplog.text   # one per worker
    assert_same_outputs(root, tmp_path)


def test_mapped_real_sample_on_the_cluster_equals_in_process(two_worker_client, tmp_path):
    """The IBM telco sample as contract CSV tables (with its attribute table)."""
    from features.sources.mapping import stage_mapping

    staged = tmp_path / "staged"
    stage_mapping(ROOT / "configs/sources/ibm_telco.yaml", ROOT / "tests/fixtures/ibm_telco_sample",
                  staged)
    add_side_rows(staged)
    params = IngestParams(source_format="csv")
    expected = run_ingest(staged, tmp_path / "a/clean", tmp_path / "a/quarantine", params)
    got = ingest_on_cluster(two_worker_client, staged, tmp_path / "b/clean",
                            tmp_path / "b/quarantine", params, buckets=BUCKETS)
    assert got.to_dict() == expected.to_dict()
    assert "customer_attributes" in got.tables
    sessions = got.tables["events/app_sessions"]
    assert (sessions.rows_in, sessions.rows_kept) == (7, 3)
    assert "customer_id: appears more than once" in got.tables["customer_attributes"].reasons
    assert_same_outputs(tmp_path / "a", tmp_path / "b")


def test_text_stored_as_floats_is_ingested_in_process(two_worker_client, tmp_path, caplog):
    """``to_str`` of a float column depends on the whole column: no partitions then."""
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame({"customer_id": [1.0, 2.0, None, 2.5], "status": ["active"] * 4}).to_parquet(
        raw / "crm_customers.parquet", index=False)
    expected = run_ingest(raw, tmp_path / "a/clean", tmp_path / "a/quarantine", IngestParams())
    with caplog.at_level(logging.INFO, logger="features.ingest.cluster.driver"):
        got = ingest_on_cluster(two_worker_client, raw, tmp_path / "b/clean",
                                tmp_path / "b/quarantine", IngestParams())
    assert "in-process, not on the cluster (text stored as floats: crm_customers.customer_id)" \
        in caplog.text
    assert got.to_dict() == expected.to_dict()


def test_an_attribute_stored_as_floats_is_validated_whole(two_worker_client, tmp_path):
    """A categorical attribute in floats (``to_str`` then depends on the whole column) goes
    whole to one worker; the files are still the in-process files. (The partition of C2-C4
    and C6 holds only whole numbers: alone it would write "3", not "3.0".)"""
    raw = tmp_path / "raw"
    raw.mkdir()
    ids = [f"C{i}" for i in range(8)]
    pd.DataFrame({"customer_id": ids, "status": ["active"] * 8}).to_parquet(
        raw / "crm_customers.parquet", index=False)
    pd.DataFrame({"customer_id": ids + ["C1", "C99"],
                  "region": [1.0, 2.5, None, 3.0, 1.0, 2.0, 2.0, 4.0, 1.0, 2.0]}).to_parquet(
        raw / "customer_attributes.parquet", index=False)
    (raw / "customer_attributes.schema.json").write_text(json.dumps(
        {"attributes": {"region": {"kind": "categorical", "label": "Region code"}}}))
    expected = run_ingest(raw, tmp_path / "a/clean", tmp_path / "a/quarantine", IngestParams())
    got = ingest_on_cluster(two_worker_client, raw, tmp_path / "b/clean", tmp_path / "b/quarantine",
                            IngestParams(), buckets=BUCKETS)
    assert got.to_dict() == expected.to_dict()
    assert got.tables["customer_attributes"].rows_quarantined == 3    # C1 twice, C99 unknown
    assert_same_outputs(tmp_path / "a", tmp_path / "b")
    assert pd.read_parquet(tmp_path / "b/clean/customer_attributes.parquet")["region"].tolist() \
        == ["1.0", None, "3.0", "1.0", "2.0", "2.0", "4.0"]   # C1 (2.5) is quarantined
