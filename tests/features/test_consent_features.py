"""Channel consent as features: the CRM's opt-outs reach the feature rows and the uplift drivers."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.transforms.present import absent_features, missing_tables
from models.concepts import concept_of
from models.concepts.phrases import describe
from models.uplift.driver import MAX_DRIVERS, pick_drivers

CONSENT = ["email_opt_out", "phone_opt_out"]


def test_feature_rows_carry_the_exported_consent(feature_world):
    crm = pd.read_parquet(feature_world.clean / "crm_customers.parquet").set_index("customer_id")
    rows = feature_world.tables["customer_o"]
    assert rows[CONSENT].notna().any().all()
    for col in CONSENT:
        expected = crm[col].astype("boolean").astype("Float64").reindex(rows["customer_id"])
        got = rows[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(got), expected.isna().to_numpy(), err_msg=col)
        known = ~np.isnan(got)
        np.testing.assert_array_equal(got[known], expected.to_numpy(np.float64, na_value=np.nan)[known])
        assert set(np.unique(got[known])) == {0.0, 1.0}


def test_an_export_without_consent_has_no_consent_features(feature_world, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(feature_world.clean, clean)
    crm = pq.read_table(clean / "crm_customers.parquet")
    pq.write_table(crm.drop_columns(["phone_opt_out"]), clean / "crm_customers.parquet")
    assert missing_tables(clean) == ["crm_customers.phone_opt_out"]
    assert absent_features(missing_tables(clean)) == ["phone_opt_out"]

    empty = crm.set_column(crm.schema.get_field_index("email_opt_out"), "email_opt_out",
                           pa.nulls(crm.num_rows, pa.bool_()))
    pq.write_table(empty, clean / "crm_customers.parquet")
    assert absent_features(missing_tables(clean)) == ["email_opt_out"]


def test_the_world_export_misses_nothing(feature_world):
    assert missing_tables(feature_world.clean) == []


def test_consent_is_a_moderator_kept_before_more_variable_drivers():
    rng = np.random.default_rng(0)
    names = [f"tickets_{i}" for i in range(MAX_DRIVERS + 2)] + CONSENT
    x = np.column_stack([rng.normal(0, 100, (500, MAX_DRIVERS + 2)),
                         rng.random((500, 2)) < 0.1]).astype(float)
    picked = [names[i] for i in pick_drivers(x, names, names)]
    assert picked[:2] == CONSENT and len(picked) == MAX_DRIVERS
    assert all(concept_of(c) == "contact_preferences" for c in CONSENT)


def test_consent_reads_as_words():
    assert describe("phone_opt_out", {"phone_opt_out": 1.0}) == "opted out of calls"
    assert describe("email_opt_out", {"email_opt_out": 0.0}) == "accepts marketing e-mail"
