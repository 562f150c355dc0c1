"""Feast definitions: entity `customer`, one FeatureView per source group, one versioned
FeatureService per model. Fields are generated from ``features.transforms.schema`` so the
declarations and the Parquet files cannot drift apart.

Builders only (no work at import time); `features/definitions.py` instantiates them for
the `feast` CLI, and `cem features` applies ``build_definitions(settings)`` directly.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from configs.settings import Settings
from features.services import CHURN_SERVICE, NPS_SERVICE
from features.transforms.attributes import attribute_features, read_attribute_schema
from features.transforms.schema import (
    ATTRIBUTE_VIEW,
    CREATED_TIMESTAMP,
    ENTITY,
    EVENT_TIMESTAMP,
    FEATURE_SCHEMA,
)

FEAST_TYPES = {"float": Float64, "int": Int64, "string": String}
VIEWS = ("customer_o", "customer_x", "customer_fused")
# Retention actions target churn risk, not satisfaction: the NPS model leaves them out.
NOT_FOR_NPS = {"actions_90d", "days_since_last_action"}

customer = Entity(name="customer", join_keys=[ENTITY], value_type=ValueType.STRING,
                  description="One customer of the company (CRM customer_id).")


def feature_view(name: str, settings: Settings, schema: list[Field] | None = None) -> FeatureView:
    """One view over ``<feature_dir>/<name>.parquet``; fields from ``FEATURE_SCHEMA`` unless
    given."""
    source = FileSource(
        name=f"{name}_source",
        path=str((settings.feature_dir / f"{name}.parquet").resolve()),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED_TIMESTAMP,
    )
    if schema is None:
        schema = [Field(name=col, dtype=FEAST_TYPES[kind])
                  for col, kind in FEATURE_SCHEMA[name].items()]
    return FeatureView(name=name, entities=[customer], source=source, schema=schema, online=True,
                       ttl=timedelta(days=settings.features.feature_ttl_days),
                       description=f"{name} features as of each monthly snapshot")


def feature_services(views: dict[str, FeatureView]) -> list[FeatureService]:
    """`churn_v1` uses every feature of ``views``; `nps_v1` all but the retention-action
    history (both include the company's attributes when the view exists)."""
    churn = FeatureService(name=CHURN_SERVICE, features=list(views.values()),
                           description="Features of the churn model, version 1")
    nps_views = [v[[f.name for f in v.features if f.name not in NOT_FOR_NPS]]
                 for v in views.values()]
    nps = FeatureService(name=NPS_SERVICE, features=nps_views,
                         description="Features of the predicted-NPS model, version 1")
    return [churn, nps]


def attribute_fields(settings: Settings) -> list[Field]:
    """The fields of the company's own attributes, tagged with their kind and label."""
    features = attribute_features(read_attribute_schema(settings.feature_dir))
    return [Field(name=name, dtype=FEAST_TYPES[meta["kind"]],
                  tags={"label": meta["label"], "attribute_kind": meta["attribute_kind"]})
            for name, meta in features.items()]


def build_definitions(settings: Settings) -> list:
    """Entity, views and services; the attribute view only when its table was built."""
    views = {name: feature_view(name, settings) for name in VIEWS}
    if (settings.feature_dir / f"{ATTRIBUTE_VIEW}.parquet").is_file():
        views[ATTRIBUTE_VIEW] = feature_view(ATTRIBUTE_VIEW, settings, attribute_fields(settings))
    return [customer, *views.values(), *feature_services(views)]

