"""Applying a mapping: joins, value maps, dates, derived signup dates, and the errors that name
the mapping key, the file and the column; then the staged tables through ``run_ingest``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from configs.settings import IngestParams
from features.ingest import run_ingest
from features.sources.mapping import MappingError, load_mapping, stage_mapping, stage_tables
from features.sources.mapping.values import months_before

MAPPING = """
observed_until: 2024-06-30
files:
  crm: {path: crm.csv, key: Customer}
  plans: {path: plans.csv, key: Cust}
  orders: {path: orders.csv}
never_features: [Left]
tables:
  crm_customers:
    files: [crm, plans]
    columns:
      customer_id: Customer
      signup_date: {months_before_export: Tenure}
      region: {column: Area, file: plans}
      status: {column: Left, values: {Yes: churned, No: active}}
      segment: {constant: consumer}
  orders:
    files: [orders]
    columns:
      order_id: Order
      customer_id: Customer
      ordered_at: {column: When, date_format: "%d/%m/%Y %H:%M"}
      amount: Amount
      status: {column: State, values: {ok: delivered, ko: failed}, on_unmapped: quarantine}
"""
CRM = """Customer,Tenure,Left,Secret
C1,3,No,s1
C2,,Yes,s2
C3,12,No,s3
"""
PLANS = """Cust,Area,Secret
C3,east,x
C1,north,y
"""
ORDERS = """Order,Customer,When,Amount,State
O1,C1,05/02/2024 14:30,10.5,ok
O2,C3,31/02/2024 10:00,5,ok
O3,C3,01/03/2024 10:00,7,lost
"""


def source(tmp_path: Path, mapping: str = MAPPING, **files: str) -> tuple[Path, Path]:
    """A source folder with the test files (overridable) and the mapping file."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    contents = {"crm.csv": CRM, "plans.csv": PLANS, "orders.csv": ORDERS}
    contents.update({f"{k}.csv": v for k, v in files.items()})
    for name, text in contents.items():
        (src / name).write_text(text)
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(mapping))
    return src, path


def staged(tmp_path: Path, **files: str) -> dict[str, pd.DataFrame]:
    src, mapping = source(tmp_path, **files)
    stage_tables(load_mapping(mapping), src, tmp_path / "staged")
    return {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False)
            for p in (tmp_path / "staged").glob("*.csv")}


def test_join_value_map_constant_and_derived_signup(tmp_path):
    crm = staged(tmp_path)["crm_customers"]
    assert list(crm.columns) == ["customer_id", "signup_date", "segment", "region", "status",
                                 "observed_until"]
    assert crm.to_dict("list") == {
        "customer_id": ["C1", "C2", "C3"],
        "signup_date": ["2024-03-30", "", "2023-06-30"],   # empty tenure: no signup date
        "segment": ["consumer"] * 3,
        "region": ["north", "", "east"],                    # joined on the key, any order
        "status": ["active", "churned", "active"],
        "observed_until": ["2024-06-30"] * 3,              # the export date, for the window
    }


def test_unmapped_columns_are_never_staged(tmp_path):
    for frame in staged(tmp_path).values():
        assert "Secret" not in frame.columns
        assert not {"s1", "s2", "x", "y", "Yes", "No"} & set(frame.to_numpy().ravel())


def test_date_format_and_quarantined_values_reach_ingest(tmp_path):
    src, mapping = source(tmp_path)
    stage_mapping(mapping, src, tmp_path / "staged")
    orders = pd.read_csv(tmp_path / "staged" / "orders.csv", dtype=str)
    assert orders["ordered_at"].tolist() == ["2024-02-05T14:30:00", "31/02/2024 10:00",
                                             "2024-03-01T10:00:00"]
    assert orders["status"].tolist() == ["delivered", "delivered", "lost"]
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())
    t = report.tables["orders"]
    assert (t.rows_in, t.rows_kept, t.rows_quarantined) == (3, 1, 2)
    assert t.reasons == {"ordered_at: not a valid ISO 8601 timestamp": 1,
                         "status: must be one of delivered, failed, cancelled": 1}
    crm = report.tables["crm_customers"]
    assert (crm.rows_in, crm.rows_kept) == (3, 3)        # C2 has no signup date: kept


def test_uncovered_value_is_an_error_naming_key_file_column_and_values(tmp_path):
    src, mapping = source(tmp_path, crm=CRM.replace("C3,12,No", "C3,12,Maybe"))
    with pytest.raises(MappingError) as err:
        stage_mapping(mapping, src, tmp_path / "staged")
    assert str(err.value) == (
        f"{mapping}: tables.crm_customers.columns.status.values: {src / 'crm.csv'} column "
        "'Left' has values the value map does not cover: 'Maybe' (1 rows)")


@pytest.mark.parametrize(("files", "expected"), [
    ({"crm": "Customer,Tenure\nC1,3\n"},
     "tables.crm_customers.columns.status: column 'Left' not in {crm}, {plans}"),
    ({"plans": "Customer,Area\nC1,north\n"}, "files.plans.key: column 'Cust' not in {plans}"),
    ({"plans": "Cust,Area\nC1,north\nC1,south\n"},
     "files.plans.key: 'Cust' is not unique in {plans} (e.g. 'C1'): cannot join"),
    ({"crm": CRM.replace("C3,12", "C3,1.5")},
     "tables.crm_customers.columns.signup_date.months_before_export: {crm} column 'Tenure' "
     "holds values that are not whole months >= 0: '1.5' (1 rows)"),
])
def test_source_errors_name_key_file_and_column(tmp_path, files, expected):
    src, mapping = source(tmp_path, **files)
    with pytest.raises(MappingError) as err:
        stage_mapping(mapping, src, tmp_path / "staged")
    paths = {"crm": src / "crm.csv", "plans": src / "plans.csv"}
    assert str(err.value) == f"{mapping}: " + expected.format(**paths)


def test_missing_source_file_names_the_file_key(tmp_path):
    src, mapping = source(tmp_path)
    (src / "plans.csv").unlink()
    with pytest.raises(MappingError, match=f"files.plans: {src / 'plans.csv'} not found"):
        stage_mapping(mapping, src, tmp_path / "staged")
    assert not (tmp_path / "staged").exists()            # nothing staged on an error


def test_months_before_clips_to_the_month_end():
    export = pd.Series(pd.to_datetime(["2024-03-31", "2024-03-31", "2024-01-15"]))
    got = months_before(export, pd.Series([1, 13, 0]).to_numpy())
    assert got.dt.strftime("%Y-%m-%d").tolist() == ["2024-02-29", "2023-02-28", "2024-01-15"]


def test_export_date_from_a_column_and_bool_value_maps(tmp_path):
    mapping = """
    observed_until: {column: Exported, date_format: "%Y%m%d"}
    files:
      crm: {path: crm.csv}
    tables:
      crm_customers:
        files: [crm]
        columns:
          customer_id: Customer
          signup_date: {months_before_export: Tenure}
          churn_date: {column: Gone, date_format: "%Y%m%d"}
      interventions:
        files: [crm]
        columns:
          intervention_id: Customer
          customer_id: Customer
          action: {constant: discount_offer}
          assigned_at: {export_date: true}
          rep_id: {constant: R1}
          cost: {constant: 0}
          control_group: {column: Held, values: {Y: true, N: false}}
          outcome: {constant: holdout}
    """
    src = tmp_path / "src"
    src.mkdir()
    (src / "crm.csv").write_text("Customer,Tenure,Exported,Gone,Held\nC1,2,20240630,,Y\n"
                                 "C2,1,20240531,20240520,N\n")
    (tmp_path / "m.yaml").write_text(textwrap.dedent(mapping))
    stage_mapping(tmp_path / "m.yaml", src, tmp_path / "staged")
    crm = pd.read_csv(tmp_path / "staged" / "crm_customers.csv", dtype=str, keep_default_na=False)
    assert crm["signup_date"].tolist() == ["2024-04-30", "2024-04-30"]
    assert crm["churn_date"].tolist() == ["", "2024-05-20"]
    report = run_ingest(tmp_path / "staged", tmp_path / "clean", tmp_path / "q", IngestParams())
    clean = pd.read_parquet(tmp_path / "clean" / "crm_customers.parquet")
    assert clean["status"].tolist() == ["active", "churned"]      # derived from churn dates
    actions = pd.read_parquet(tmp_path / "clean" / "interventions.parquet")
    assert actions["control_group"].tolist() == [True, False]
    assert report.tables["interventions"].rows_kept == 2
