"""Shape, schema and coverage of the tables built from a small simulated world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.transforms import FEATURE_COLUMNS, FEATURE_SCHEMA, build_feature_tables

KIND = {"float": "double", "int": "int64", "string": "string"}


def test_at_least_forty_features_declared_and_written(feature_world):
    assert sum(len(c) for c in FEATURE_COLUMNS.values()) >= 40
    for table, kinds in FEATURE_SCHEMA.items():
        schema = pq.read_schema(feature_world.out / f"{table}.parquet")
        assert schema.names == ["customer_id", "event_timestamp", "created_timestamp",
                                *FEATURE_COLUMNS[table]]
        for col, kind in kinds.items():
            assert str(schema.field(col).type) == KIND[kind], col
        assert str(schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"  # Feast-safe


def test_no_feature_is_constant_or_all_missing(feature_world):
    for table, cols in FEATURE_COLUMNS.items():
        df = feature_world.tables[table]
        for col in cols:
            assert df[col].notna().any(), f"{table}.{col} is all NaN"
            assert df[col].nunique(dropna=True) > 1, f"{table}.{col} is constant"


def test_rows_are_the_open_accounts_at_each_snapshot(feature_world):
    crm = pd.read_parquet(feature_world.clean / "crm_customers.parquet")
    signup = pd.to_datetime(crm["signup_date"]).dt.tz_localize("UTC")
    churn = pd.to_datetime(crm["churn_date"]).dt.tz_localize("UTC")
    o = feature_world.tables["customer_o"]
    assert not o.duplicated(["customer_id", "event_timestamp"]).any()
    for snap, rows in o.groupby("event_timestamp"):
        open_ = (signup < snap) & (churn.isna() | (churn >= snap))
        assert set(rows["customer_id"]) == set(crm.loc[open_, "customer_id"])
    keys = [feature_world.tables[t][["customer_id", "event_timestamp"]]
            for t in ("customer_x", "customer_fused")]
    for k in keys:
        pd.testing.assert_frame_equal(k, o[["customer_id", "event_timestamp"]])


def test_labels_look_sane(feature_world):
    churn = feature_world.tables["churn_labels"]
    assert 0.01 < churn["churned_within_horizon"].mean() < 0.3
    nps = feature_world.tables["nps_labels"]
    assert len(nps) == len(pd.read_parquet(feature_world.clean / "survey_responses.parquet"))
    assert nps["nps"].between(0, 10).all() and nps["touchpoint"].notna().all()
    assert feature_world.rows["nps_labels"] == len(nps)
    assert feature_world.rows["customer_o"] == len(feature_world.tables["customer_o"])


def test_naive_timestamps_and_date_strings_give_the_same_tables(feature_world, tmp_path):
    """Inputs may carry naive (UTC) timestamps or ISO dates: the result does not change."""
    src, dst = feature_world.clean, tmp_path / "clean"
    dst.mkdir()
    for path in src.glob("*.parquet"):
        df = pd.read_parquet(path)
        for col in df.columns:
            if isinstance(df[col].dtype, pd.DatetimeTZDtype):
                df[col] = df[col].dt.tz_localize(None)
            elif col in ("signup_date", "churn_date", "month", "invoice_date"):
                df[col] = pd.to_datetime(df[col]).dt.strftime("%Y-%m-%d")
        df.to_parquet(dst / path.name)
    build_feature_tables(dst, tmp_path / "out", feature_world.params)
    for table in FEATURE_COLUMNS:
        a = pq.read_table(feature_world.out / f"{table}.parquet")
        b = pq.read_table(tmp_path / "out" / f"{table}.parquet")
        assert a.equals(b), table


def test_signals_point_the_right_way(feature_world):
    """Coarse sanity on the simulated world: churners' features look worse."""
    keys = ["customer_id", "event_timestamp"]
    df = feature_world.tables["churn_labels"].merge(feature_world.tables["customer_o"], on=keys)
    df = df.merge(feature_world.tables["customer_x"], on=keys)
    by = df.groupby("churned_within_horizon")
    assert by["usage_drop_ratio"].mean()[1] < by["usage_drop_ratio"].mean()[0]
    assert by["last_nps"].mean()[1] < by["last_nps"].mean()[0]
    assert np.isfinite(df["usage_90d_trend"]).mean() > 0.5
