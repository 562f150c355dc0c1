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
from features.transforms.event_tables import read_event_features
from features.transforms.present import present_schema, read_absent
from features.transforms.schema import (
    ATTRIBUTE_VIEW,
    CREATED_TIMESTAMP,
    ENTITY,
    EVENT_TIMESTAMP,
    EVENT_VIEW,
)

FEAST_TYPES = {"float": Float64, "int": Int64, "string": String}
VIEWS = ("customer_o", "customer_x", "customer_fused")
# Retention actions target churn risk, not satisfaction: the NPS model leaves them out.
NOT_FOR_NPS = {"actions_90d", "days_since_last_action"}
#: Tag of a FeatureService listing (comma-separated) the features of tables the export lacks.
ABSENT_TAG = "absent_features"

customer = Entity(name="customer", join_keys=[ENTITY], value_type=ValueType.STRING,
                  description="One customer of the company (CRM customer_id).")


def feature_view(name: str, settings: Settings, schema: list[Field]) -> FeatureView:
    """One view over ``<feature_dir>/<name>.parquet`` with the given fields."""
    source = FileSource(
        name=f"{name}_source",
        path=str((settings.feature_dir / f"{name}.parquet").resolve()),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED_TIMESTAMP,
    )
    return FeatureView(name=name, entities=[customer], source=source, schema=schema, online=True,
                       ttl=timedelta(days=settings.features.feature_ttl_days),
                       description=f"{name} features as of each monthly snapshot")


def feature_services(views: dict[str, FeatureView],
                     absent: list[str] = ()) -> list[FeatureService]:
    """`churn_v1` uses every feature of ``views``; `nps_v1` all but the retention-action
    history (both include the company's attributes and event aggregates when their views
    exist). ``absent``: features of tables the export lacks, named in a tag of each service."""
    tags = {ABSENT_TAG: ",".join(absent)} if absent else {}
    churn = FeatureService(name=CHURN_SERVICE, features=list(views.values()), tags=tags,
                           description="Features of the churn model, version 1")
    nps_views = [v[names] for v in views.values()
                 if (names := [f.name for f in v.features if f.name not in NOT_FOR_NPS])]
    nps = FeatureService(name=NPS_SERVICE, features=nps_views, tags=tags,
                         description="Features of the predicted-NPS model, version 1")
    return [churn, nps]


def schema_fields(kinds: dict[str, str]) -> list[Field]:
    """Fields of one of the built-in views."""
    return [Field(name=col, dtype=FEAST_TYPES[kind]) for col, kind in kinds.items()]


def attribute_fields(settings: Settings) -> list[Field]:
    """The fields of the company's own attributes, tagged with their kind and label."""
    features = attribute_features(read_attribute_schema(settings.feature_dir))
    return [Field(name=name, dtype=FEAST_TYPES[meta["kind"]],
                  tags={"label": meta["label"], "attribute_kind": meta["attribute_kind"]})
            for name, meta in features.items()]


def event_fields(settings: Settings) -> list[Field]:
    """The fields of the event aggregates, tagged with their label (all numeric)."""
    return [Field(name=name, dtype=Float64, tags={"label": label, "attribute_kind": "numeric"})
            for name, label in read_event_features(settings.feature_dir).items()]


def build_definitions(settings: Settings) -> list:
    """Entity, views and services: the built-in views with the features the export supports
    (``features.transforms.present``); the attribute and event views only when built."""
    absent = read_absent(settings.feature_dir)
    views = {name: feature_view(name, settings, schema_fields(kinds))
             for name, kinds in present_schema(absent).items()}
    if (settings.feature_dir / f"{ATTRIBUTE_VIEW}.parquet").is_file():
        views[ATTRIBUTE_VIEW] = feature_view(ATTRIBUTE_VIEW, settings, attribute_fields(settings))
    if (settings.feature_dir / f"{EVENT_VIEW}.parquet").is_file():
        views[EVENT_VIEW] = feature_view(EVENT_VIEW, settings, event_fields(settings))
    return [customer, *views.values(), *feature_services(views, absent)]

