"""A mapping's ``attributes:``: the errors that name the mapping key and file/column, the
staged and ingested table ``customer_attributes`` (every row accounted for, bad values and
unknown customers quarantined with the column named), and the shipped mappings on their
samples: no outcome column or value reaches the table."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import SourceContractError, run_ingest
from features.sources.mapping import MappingError, load_mapping, stage_mapping
from tests.features.sources.test_mapping_shipped import (
    ECOM,
    ECOM_SAMPLE,
    TELCO,
    TELCO_HIDDEN,
    TELCO_SAMPLE,
    read_csv,
    shuffled,
)

MAPPING = """
observed_until: 2024-06-30
files:
  crm: {path: crm.csv, key: Customer}
  people: {path: people.csv, key: Cust}
never_features: [Left]
tables:
  crm_customers:
    files: [crm]
    columns:
      customer_id: Customer
      status: {column: Left, values: {Yes: churned, No: active}}
attributes:
  contract_type: {column: Contract, kind: categorical, label: Contract type}
  monthly_charge: {column: Charge, kind: numeric, label: Monthly charge}
  paperless: {column: Paperless, kind: boolean, label: Paperless billing,
              values: {Yes: true, No: false}}
  last_order: {column: Last order, kind: date, label: Last order, date_format: "%d/%m/%Y"}
  age: {column: Age, file: people, kind: numeric, label: Age}
"""
CRM = """Customer,Left,Contract,Charge,Paperless,Last order
C1,No,Month-to-Month,70.5,Yes,05/02/2024
C2,Yes,Two Year,,No,
C3,No,One Year,abc,Yes,31/02/2024
"""
PEOPLE = """Cust,Age
C3,41
C1,29
"""


def source(tmp_path: Path, mapping: str = MAPPING, crm: str = CRM) -> tuple[Path, Path]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "crm.csv").write_text(crm)
    (src / "people.csv").write_text(PEOPLE)
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(mapping))
    return path, src


def error(tmp_path: Path, text: str) -> str:
    path, _ = source(tmp_path, text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    assert "\n" not in str(err.value) and str(err.value).startswith(str(path))
    return str(err.value)


@pytest.mark.parametrize(("change", "expected"), [
    (("column: Contract,", "column: Left,"),
     "attributes.contract_type: 'Left' is an outcome column (never_features): it cannot be "
     "an attribute"),
    (("kind: categorical", "kind: text"), "attributes.contract_type.kind: Input should be"),
    (("label: Contract type}", "label: ''}"), "attributes.contract_type.label: String should"),
    (("contract_type:", "Contract Type:"), "attributes.Contract Type: name attributes in snake_case"),
    (("label: Monthly charge}", "label: Monthly charge, date_format: '%Y'}"),
     "attributes.monthly_charge.date_format: only for kind date (this is numeric)"),
    (("Yes: true, No: false", "Yes: true, No: nope"),
     "attributes.paperless.values: 'nope' not a boolean value"),
    (("file: people,", "file: folks,"), "attributes.age.file: 'folks' is not defined under files"),
    (("  people: {path: people.csv, key: Cust}", "  people: {path: people.csv}"),
     "files.people.key: needed to join 'people' into customer_attributes"),
    (("kind: numeric, label: Age", "kind: numeric, label: Age, extra: 1"),
     "attributes.age.extra: unknown key"),
])
def test_each_attribute_error_names_the_mapping_key(tmp_path, change, expected):
    assert change[0] in MAPPING
    assert expected in error(tmp_path, MAPPING.replace(*change))


def test_reading_errors_name_the_key_file_and_column(tmp_path):
    path, src = source(tmp_path, MAPPING.replace("column: Charge,", "column: Charges,"))
    with pytest.raises(MappingError, match=r"attributes.monthly_charge: column 'Charges' not in "
                                           r".*crm.csv"):
        stage_mapping(path, src, tmp_path / "staged")
    path, src = source(tmp_path, crm=CRM.replace("C2,Yes,Two Year,,No,", "C2,Yes,Two Year,,Maybe,"))
    with pytest.raises(MappingError, match=r"attributes.paperless.values: .*crm.csv column "
                                           r"'Paperless' has values .*'Maybe' \(1 rows\)"):
        stage_mapping(path, src, tmp_path / "staged")
    assert not (tmp_path / "staged" / "customer_attributes.csv").exists()   # nothing staged


def test_staged_and_ingested_attributes(tmp_path):
    path, src = source(tmp_path)
    rows = stage_mapping(path, src, tmp_path / "staged")
    assert rows == {"crm_customers": 3, "customer_attributes": 3}
    staged = read_csv(tmp_path / "staged" / "customer_attributes.csv")
    assert list(staged.columns) == ["customer_id", "contract_type", "monthly_charge", "paperless",
                                    "last_order", "age"]
    assert staged["paperless"].tolist() == ["true", "false", "true"]
    assert staged["last_order"].tolist() == ["2024-02-05", "", "31/02/2024"]   # bad: as written
    assert staged["age"].tolist() == ["29", "", "41"]                         # joined on Cust
    schema = json.loads((tmp_path / "staged" / "customer_attributes.schema.json").read_text())
    assert schema["attributes"]["contract_type"] == {"kind": "categorical", "label": "Contract type",
                                                     "column": "Contract"}
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())
    t = report.tables["customer_attributes"]
    assert (t.rows_in, t.rows_kept, t.rows_quarantined) == (3, 2, 1)
    assert t.reasons == {"monthly_charge: not a finite number": 1,
                         "last_order: not a valid date": 1}   # counted without "(YYYY-MM-DD)"
    clean = pd.read_parquet(tmp_path / "clean" / "customer_attributes.parquet")
    assert clean["customer_id"].tolist() == ["C1", "C2"]
    assert clean["monthly_charge"].dtype == "float64" and pd.isna(clean["monthly_charge"][1])
    assert clean["paperless"].tolist() == [True, False]
    assert clean["last_order"].tolist()[0] == pd.Timestamp("2024-02-05")
    assert clean["contract_type"].tolist() == ["Month-to-Month", "Two Year"]
    quarantined = pd.read_parquet(tmp_path / "q" / "customer_attributes.parquet")
    assert quarantined["customer_id"].tolist() == ["C3"]
    assert (tmp_path / "clean" / "customer_attributes.schema.json").is_file()


def test_unknown_customers_are_quarantined_and_stale_tables_removed(tmp_path):
    path, src = source(tmp_path)
    stage_mapping(path, src, tmp_path / "staged")
    text = (tmp_path / "staged" / "customer_attributes.csv").read_text()
    (tmp_path / "staged" / "customer_attributes.csv").write_text(
        text + "C9,One Year,1,true,,\nC1,One Year,2,true,,\n")
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())
    reasons = report.tables["customer_attributes"].reasons
    assert reasons["customer_id: unknown customer"] == 1
    assert reasons["customer_id: appears more than once"] == 2
    no_attributes = MAPPING.split("attributes:")[0]
    path, src = source(tmp_path, no_attributes)
    assert stage_mapping(path, src, tmp_path / "staged") == {"crm_customers": 3}
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())
    assert "customer_attributes" not in report.tables
    assert not list((tmp_path / "clean").glob("customer_attributes*"))
    assert not list((tmp_path / "q").glob("customer_attributes*"))


def test_a_table_without_its_schema_stops_ingest(tmp_path):
    path, src = source(tmp_path)
    stage_mapping(path, src, tmp_path / "staged")
    (tmp_path / "staged" / "customer_attributes.schema.json").unlink()
    with pytest.raises(SourceContractError, match="customer_attributes.csv: its schema file"):
        run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())


# --------------------------------------------------------------------------- shipped mappings

def ingest(mapping: Path, sample: Path, root: Path):
    stage_mapping(mapping, sample, root / "staged")
    report = run_ingest(root / "staged", root / "clean", root / "q", IngestParams())
    return report, pd.read_parquet(root / "clean" / "customer_attributes.parquet")


@pytest.mark.parametrize(("mapping", "sample", "n_attributes"),
                         [(TELCO, TELCO_SAMPLE, 35), (ECOM, ECOM_SAMPLE, 18)])
def test_shipped_mappings_ingest_their_attributes(tmp_path, mapping, sample, n_attributes):
    report, clean = ingest(mapping, sample, tmp_path)
    t = report.tables["customer_attributes"]
    assert (t.rows_in, t.rows_kept, t.rows_quarantined) == (300, 300, 0)
    assert clean.shape == (300, 1 + n_attributes)
    spec = load_mapping(mapping)
    kinds = {a.kind for a in spec.attributes.values()}
    assert kinds >= {"numeric", "categorical", "boolean"}
    assert not {a.column for a in spec.attributes.values()} & set(spec.never_features)
    crm = pd.read_parquet(tmp_path / "clean" / "crm_customers.parquet")
    assert clean["customer_id"].tolist() == crm["customer_id"].tolist()


def test_telco_attributes_hold_no_outcome_and_ignore_its_shuffle(tmp_path):
    _, clean = ingest(TELCO, TELCO_SAMPLE, tmp_path / "a")
    status = read_csv(TELCO_SAMPLE / "Telco_customer_churn_status.csv")
    outcome_text = set()
    for col in ("Churn Label", "Churn Category", "Churn Reason", "Customer Status"):
        outcome_text |= set(status[col]) - {""}
    assert not set(clean.columns) & set(TELCO_HIDDEN)
    categorical = clean.select_dtypes(include="object").drop(columns="customer_id")
    assert not set(categorical.to_numpy().ravel().tolist()) & outcome_text
    assert clean["contract_type"].notna().all() and clean["age"].between(18, 90).all()
    ingest(TELCO, shuffled(tmp_path / "src", TELCO_HIDDEN, seed=3), tmp_path / "b")
    before = (tmp_path / "a" / "clean" / "customer_attributes.parquet").read_bytes()
    after = (tmp_path / "b" / "clean" / "customer_attributes.parquet").read_bytes()
    assert before == after


def test_ecommerce_attributes_keep_empty_cells_unknown(tmp_path):
    _, clean = ingest(ECOM, ECOM_SAMPLE, tmp_path)
    raw = read_csv(ECOM_SAMPLE / "ecommerce_churn.csv")
    assert "Churn" not in clean.columns
    assert clean["tenure_months"].isna().sum() == (raw["Tenure"] == "").sum() == 11
    assert clean["complained_last_month"].sum() == (raw["Complain"] == "1").sum()
    assert set(clean["preferred_login_device"]) == set(raw["PreferredLoginDevice"])
