"""The view ``customer_attributes``: the company's own columns at each snapshot, built next to
the other views on the same spine, declared to Feast only when built, and served by churn_v1
and nps_v1 with their kinds and labels."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from configs.settings import load_settings
from features.services import CHURN_SERVICE, NPS_SERVICE
from features.store import apply_definitions, feature_store, service_features, training_frame
from features.transforms import build_feature_tables
from features.transforms.attributes import feature_values
from features.transforms.schema import FEATURE_COLUMNS

SNAP = pd.Timestamp("2024-03-01", tz="UTC")
SCHEMA = {"table": "customer_attributes", "attributes": {
    "contract_type": {"kind": "categorical", "label": "Contract type"},
    "monthly_charge": {"kind": "numeric", "label": "Monthly charge"},
    "paperless": {"kind": "boolean", "label": "Paperless billing"},
    "first_order": {"kind": "date", "label": "First order"},
}}
ATTRIBUTE_FEATURES = ["attr_contract_type", "attr_monthly_charge", "attr_paperless",
                      "attr_first_order"]


def test_values_at_a_snapshot():
    dates = pd.Series(pd.to_datetime(["2024-02-20", None, "2024-03-05"]))
    assert feature_values(dates, "date", SNAP).tolist()[0] == 10.0       # age in days
    assert np.isnan(feature_values(dates, "date", SNAP)[1:]).all()       # unknown; after the snapshot
    flags = pd.Series([True, False, None], dtype="boolean")
    got = feature_values(flags, "boolean", SNAP)
    assert got[:2].tolist() == [1.0, 0.0] and np.isnan(got[2])
    labels = pd.Series(["One Year", None], dtype="string")
    assert feature_values(labels, "categorical", SNAP).tolist() == ["One Year", None]
    numbers = feature_values(pd.Series([70.5, np.nan]), "numeric", SNAP)
    assert numbers[0] == 70.5 and np.isnan(numbers[1])


def attribute_table(customers: pd.Series) -> pd.DataFrame:
    """Attributes of every customer but the last (who then has unknown values)."""
    ids = customers.iloc[:-1].reset_index(drop=True)
    n = len(ids)
    return pd.DataFrame({
        "customer_id": ids,
        "contract_type": np.where(np.arange(n) % 3 == 0, "Month-to-Month", "Two Year"),
        "monthly_charge": np.arange(n, dtype=float),
        "paperless": pd.array(np.arange(n) % 2 == 0, dtype="boolean"),
        "first_order": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(n) % 50, unit="D"),
    })


@pytest.fixture(scope="module")
def attributed(feature_world, tmp_path_factory) -> SimpleNamespace:
    """The feature world's clean tables plus an attribute table, built and applied to Feast."""
    root = tmp_path_factory.mktemp("attributed")
    clean = root / "clean"
    shutil.copytree(feature_world.clean, clean)
    customers = pd.read_parquet(clean / "crm_customers.parquet")["customer_id"]
    table = attribute_table(customers)
    table.to_parquet(clean / "customer_attributes.parquet", index=False)
    (clean / "customer_attributes.schema.json").write_text(json.dumps(SCHEMA))
    rows = build_feature_tables(clean, root / "features", feature_world.params)
    settings = load_settings(data_dir=root)
    store = feature_store(settings)
    apply_definitions(store, settings)
    return SimpleNamespace(root=root, rows=rows, table=table, settings=settings, store=store,
                           view=pd.read_parquet(root / "features" / "customer_attributes.parquet"))


def test_the_view_has_the_spine_of_the_other_views(attributed, feature_world):
    assert attributed.rows["customer_attributes"] == attributed.rows["customer_o"]
    o = feature_world.tables["customer_o"]
    pd.testing.assert_frame_equal(attributed.view[["customer_id", "event_timestamp"]],
                                  o[["customer_id", "event_timestamp"]])
    assert list(attributed.view.columns[3:]) == ATTRIBUTE_FEATURES
    # the other views are the built-in ones, unchanged by the attributes
    again = pd.read_parquet(attributed.root / "features" / "customer_o.parquet")
    pd.testing.assert_frame_equal(again, o)


def test_the_view_holds_the_export_values_at_every_snapshot(attributed):
    view, table = attributed.view, attributed.table.set_index("customer_id")
    row = view.iloc[len(view) // 2]
    want = table.loc[row["customer_id"]]
    assert row["attr_contract_type"] == want["contract_type"]
    assert row["attr_monthly_charge"] == want["monthly_charge"]
    assert row["attr_paperless"] == float(want["paperless"])
    age = (row["event_timestamp"].tz_convert(None) - want["first_order"]).days
    assert row["attr_first_order"] == age
    per_customer = view.groupby("customer_id")["attr_monthly_charge"].nunique(dropna=False)
    assert (per_customer == 1).all()                              # same value at every snapshot
    missing = view[~view["customer_id"].isin(table.index)]        # no attribute row: unknown
    assert len(missing) and missing["attr_contract_type"].isna().all()
    assert missing["attr_monthly_charge"].isna().all()


def test_feast_serves_the_attributes_with_their_labels(attributed, feature_world):
    store = attributed.store
    churn = service_features(store, CHURN_SERVICE)
    assert churn[-4:] == ATTRIBUTE_FEATURES
    assert set(ATTRIBUTE_FEATURES) <= set(service_features(store, NPS_SERVICE))
    every = [c for cols in FEATURE_COLUMNS.values() for c in cols]
    assert churn[:-4] == every
    labels = feature_world.tables["churn_labels"].sample(n=300, random_state=0)
    frame = training_frame(store, labels, CHURN_SERVICE)
    assert set(ATTRIBUTE_FEATURES) <= set(frame.columns)
    assert frame["attr_contract_type"].dropna().isin(["Month-to-Month", "Two Year"]).all()
    assert frame.attrs["attributes"]["attr_contract_type"] == {"kind": "categorical",
                                                                "label": "Contract type"}
    assert frame.attrs["attributes"]["attr_first_order"]["kind"] == "date"


def test_a_build_without_attributes_removes_the_view(attributed, feature_world, tmp_path):
    for folder in ("features", "feast"):
        shutil.copytree(attributed.root / folder, tmp_path / folder)
    build_feature_tables(feature_world.clean, tmp_path / "features", feature_world.params)
    assert not list((tmp_path / "features").glob("customer_attributes*"))
    settings = load_settings(data_dir=tmp_path)
    store = feature_store(settings)
    assert "customer_attributes" in {v.name for v in store.list_feature_views()}
    apply_definitions(store, settings)
    assert "customer_attributes" not in {v.name for v in store.list_feature_views()}
    every = [c for cols in FEATURE_COLUMNS.values() for c in cols]
    assert service_features(store, CHURN_SERVICE) == every
