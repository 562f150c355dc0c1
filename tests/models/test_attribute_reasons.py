"""The company's own attributes in the models: kinds from the attribute schema (categories,
floats), kept with the model, and named by their mapping label in reasons and key drivers."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.concepts import concept_of, describe
from models.drivers import key_drivers
from models.explain import reason_codes
from models.frame import FrameSpec

META = {"attr_contract_type": {"kind": "categorical", "label": "Contract type"},
        "attr_dependents": {"kind": "boolean", "label": "Has dependents"},
        "attr_monthly_charge": {"kind": "numeric", "label": "Monthly charge"}}
FEATURES = ["tickets_90d", *META]


@pytest.fixture(scope="module")
def fitted():
    """A churn-like model where month-to-month contracts churn; the frame carries the
    attributes' kinds and labels in ``attrs`` as ``features.store.training_frame`` sets them."""
    rng = np.random.default_rng(0)
    n = 3000
    contract = rng.choice(["Month-to-Month", "One Year", "Two Year"], n)
    frame = pd.DataFrame({
        "tickets_90d": rng.poisson(1, n),
        "attr_contract_type": pd.Series(contract, dtype=object),
        "attr_dependents": rng.integers(0, 2, n).astype(float),
        "attr_monthly_charge": rng.normal(60, 15, n),
    })
    frame.attrs["attributes"] = META
    y = ((contract == "Month-to-Month") & (rng.random(n) < 0.8)).astype(int)
    spec = FrameSpec.fit(frame, FEATURES)
    booster = lgb.LGBMClassifier(n_estimators=40, num_leaves=8, n_jobs=1, verbose=-1,
                                 random_state=0).fit(spec.matrix(frame), y).booster_
    return frame, spec, booster


def test_kinds_come_from_the_attribute_schema(fitted):
    frame, spec, _ = fitted
    assert spec.categories == {"attr_contract_type": ["Month-to-Month", "One Year", "Two Year"]}
    assert spec.attributes == META
    matrix = spec.matrix(frame)
    assert isinstance(matrix["attr_contract_type"].dtype, pd.CategoricalDtype)
    assert matrix["attr_monthly_charge"].dtype == np.float64
    assert FrameSpec.from_dict(spec.to_dict()) == spec
    # a column without a schema entry: its kind from its dtype; an unknown feature still fails
    plain = frame.copy()
    plain.attrs = {}
    assert FrameSpec.fit(plain, FEATURES).categories == spec.categories
    with pytest.raises(KeyError):
        FrameSpec.fit(plain.assign(mystery=1.0), [*FEATURES, "mystery"])


def test_specs_pickled_before_attributes_still_load():
    spec = FrameSpec.__new__(FrameSpec)
    spec.__setstate__({"features": ["tickets_90d"], "categories": {}})   # an old pickle's state
    assert spec.attributes == {} and pickle.loads(pickle.dumps(spec)) == spec


def test_a_reason_names_an_attribute_by_its_label(fitted):
    frame, spec, booster = fitted
    rows = frame[frame["attr_contract_type"] == "Month-to-Month"].head(5)
    contrib = booster.predict(spec.matrix(rows), pred_contrib=True)
    reasons = reason_codes(contrib, spec.features, rows, top=2, attributes=spec.attributes)
    top = reasons[0][0]
    assert (top.concept, top.label) == ("attributes", "Customer attributes")
    assert top.sentence.startswith("Contract type: Month-to-Month")
    assert "attr_contract_type" in top.features
    assert concept_of("attr_contract_type") == concept_of("attr_offer=Offer A") == "attributes"
    assert concept_of("tickets_90d") == "support"                        # built-ins unchanged


@pytest.mark.parametrize(("feature", "value", "expected"), [
    ("attr_dependents", 1.0, "Has dependents: yes"),
    ("attr_dependents", 0.0, "Has dependents: no"),
    ("attr_monthly_charge", 89.8, "Monthly charge: 89.8"),
    ("attr_monthly_charge", np.nan, "Monthly charge: unknown"),
    ("attr_first_order", 400.0, "First order: 13 months ago"),
])
def test_attribute_clauses(feature, value, expected):
    meta = META | {"attr_first_order": {"kind": "date", "label": "First order"}}
    assert describe(feature, {feature: value}, meta) == expected
    assert describe("attr_number_of_referrals", {"attr_number_of_referrals": 2}) == \
        "Number of referrals: 2"                                          # no label: from the name


def test_key_drivers_name_each_attribute(fitted):
    frame, spec, booster = fitted
    contrib = booster.predict(spec.matrix(frame.head(500)), pred_contrib=True)
    drivers = key_drivers(contrib, spec.features, spec.attributes)
    assert drivers.iloc[0][["concept", "label"]].tolist() == ["attributes", "Contract type"]
    assert set(drivers["label"]) == {"Support friction", "Contract type", "Has dependents",
                                     "Monthly charge"}
    assert drivers["share"].sum() == pytest.approx(1.0)
