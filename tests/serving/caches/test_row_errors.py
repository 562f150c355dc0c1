"""Posted feature rows are checked against the kinds of the champions' features, the
company's attribute features included (a text attribute is a string, not a number)."""

from __future__ import annotations

from types import SimpleNamespace

from models.frame import FrameSpec
from serving.caches.fresh import FreshScorer, row_errors


def test_attribute_kinds_come_from_the_champion():
    spec = FrameSpec(features=["tenure_days", "attr_contract", "attr_monthly_charge"],
                     categories={"attr_contract": ["One Year", "Two Year"]},
                     attributes={"attr_contract": {"kind": "categorical", "label": "Contract type"},
                                 "attr_monthly_charge": {"kind": "numeric", "label": "Monthly charge"}})
    scorer = FreshScorer.__new__(FreshScorer)
    scorer.bundle = lambda: SimpleNamespace(churn=SimpleNamespace(spec=spec))
    kinds = scorer.feature_kinds()
    assert kinds["attr_contract"] == "string" and kinds["attr_monthly_charge"] == "float"
    features = spec.features
    good = {"customer_id": "C1", "tenure_days": 30, "attr_contract": "One Year", "attr_monthly_charge": 70.5}
    assert row_errors([good], features, kinds) == []
    bad = good | {"attr_contract": 3, "attr_monthly_charge": "high"}
    errors = row_errors([bad], features, kinds)
    assert {tuple(e["loc"]) for e in errors} == {("body", "rows", 0, "attr_contract"),
                                                 ("body", "rows", 0, "attr_monthly_charge")}
    assert any("must be string" in e["msg"] for e in errors)
