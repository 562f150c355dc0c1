"""The company's own customer columns (a mapping's ``attributes:``) in reasons and drivers.

They are not in ``FEATURE_SCHEMA``: each export names its own, with a label in plain words
("Contract type"). All of them belong to one concept, "Customer attributes"; a reason names
each by its label and says its value ("Contract type: Month-to-Month", "Dependents: no",
"Monthly charge: 89.8"). The labels travel with the model (``FrameSpec.attributes``); a
column without one is named from its feature name (``attr_contract_type`` -> "Contract type").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from features.transforms.schema import ATTRIBUTE_PREFIX

from .wording import fmt_duration, fmt_number, is_missing

ATTRIBUTES = "attributes"


def attribute_base(name: str) -> str:
    """The attribute feature behind a model column (``attr_offer=Offer A`` -> ``attr_offer``)."""
    return name.split("=", 1)[0]


def attribute_label(name: str, meta: Mapping | None = None) -> str:
    """The mapping's label of an attribute feature, else words made from its name."""
    label = (meta or {}).get(attribute_base(name), {}).get("label")
    if label:
        return str(label)
    words = attribute_base(name).removeprefix(ATTRIBUTE_PREFIX).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _value_text(v, kind: str | None) -> str:
    if is_missing(v):
        return "unknown"
    if kind == "boolean":
        return "yes" if float(v) > 0 else "no"
    if kind == "date":
        return f"{fmt_duration(v)} ago"
    if isinstance(v, str):
        return v
    return fmt_number(v, 2)


def attribute_clause(name: str, meta: Mapping | None = None) -> Callable[[object], str]:
    """The clause of one attribute: ``"<label>: <value>"``."""
    label = attribute_label(name, meta)
    kind = (meta or {}).get(attribute_base(name), {}).get("kind")

    def fn(v) -> str:
        return f"{label}: {_value_text(v, kind)}"
    return fn
