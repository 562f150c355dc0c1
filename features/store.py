"""The Feast feature store of the pipeline: configuration from settings, apply,
materialization, point-in-time training sets and online lookups.

Every caller (training, batch scoring, the service) gets features through these
functions, by FeatureService name, so they all see the same features.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import FeatureStore, RepoConfig

from configs.settings import Settings
from features.feast_defs import ABSENT_TAG, build_definitions
from features.offline_store import STORE_TYPE as ASOF_STORE
from features.online_store import STORE_TYPE as ONLINE_STORE
from features.transforms.schema import ENTITY, EVENT_TIMESTAMP, is_attribute

log = logging.getLogger(__name__)
PROJECT = "cem"
REPO_DIR = __file__.rsplit("/", 1)[0]
ATTRIBUTES = "attributes"   # key of training frames' attrs: the attributes' kinds and labels


# The online store keeps each customer's latest values, so materialization pulls only those
# (not every snapshot's row: 8 times fewer at 12 months), and converts and writes them in
# batches: Feast's default turns a whole view into protobuf at once, which took a 1M-customer,
# 12-month world past 24 GB (BENCHMARKS.md#online-store-memory).
MATERIALIZATION = {"pull_latest_features": True, "online_write_batch_size": 50_000}


def repo_config(settings: Settings) -> RepoConfig:
    """Embedded defaults (DuckDB over Parquet, SQLite) or Redis for teams."""
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.feast_online_store == "redis":
        online = {"type": "redis", "connection_string": settings.feast_redis_url}
    else:
        online = {"type": ONLINE_STORE, "path": str(settings.feast_dir / "online.db")}
    offline = ASOF_STORE if settings.feast_offline_store == "asof" else settings.feast_offline_store
    return RepoConfig(
        project=PROJECT, provider="local", registry=str(settings.feast_dir / "registry.db"),
        offline_store={"type": offline}, online_store=online,
        entity_key_serialization_version=3, repo_path=REPO_DIR, materialization=MATERIALIZATION,
    )


def feature_store(settings: Settings) -> FeatureStore:
    return FeatureStore(config=repo_config(settings))


def apply_definitions(store: FeatureStore, settings: Settings) -> list[str]:
    """Register entity, views and services (what `feast apply` does); returns their names."""
    objects = build_definitions(settings)
    names = {o.name for o in objects}
    stale = [v for v in store.list_feature_views() if v.name not in names]  # e.g. attributes
    store.apply(objects, objects_to_delete=stale, partial=not stale)        # of an earlier export
    return [o.name for o in objects]


def materialize_end(feature_dir: Path, now: datetime | None = None) -> datetime:
    """Where materialization stops: now, or just after the newest snapshot when the data runs
    ahead of the clock (a built-in world stepped past today; a clock set back). Feast refuses
    a window whose start, the first new snapshot, lies after its end."""
    now = now or datetime.now(UTC)
    path = Path(feature_dir) / "customer_o.parquet"
    if not path.is_file():
        return now
    newest = pc.max(pq.read_table(path, columns=[EVENT_TIMESTAMP]).column(0)).as_py()
    if newest is None:
        return now
    newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
    return max(now, newest + timedelta(seconds=1))


def materialize_latest(store: FeatureStore, end: datetime, start: datetime | None = None,
                       client=None) -> dict[str, int]:
    """Load each customer's latest feature values up to ``end`` into the online store
    (rows from ``start`` on: an incremental build's new snapshots; default all), part by part
    (``features.online_fill``; on the workers of the Dask ``client`` when given)."""
    from features.online_fill import fill_online_store

    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return fill_online_store(store, end, start, client)


def training_frame(store: FeatureStore, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time join: each entity row gets the features known at its timestamp.

    ``entity_df`` needs ``customer_id`` and ``event_timestamp`` (UTC); extra columns
    (labels) are carried through. ``frame.attrs["attributes"]``: kind and label of the
    company's own attributes among the features (``service_attributes``), which
    ``models.frame.FrameSpec.fit`` keeps with the model.
    """
    missing = {ENTITY, EVENT_TIMESTAMP} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity rows need columns {sorted(missing)}")
    job = store.get_historical_features(entity_df=entity_df,
                                        features=store.get_feature_service(service))
    frame = with_absent(job.to_df(), absent_features(store, service))
    frame.attrs[ATTRIBUTES] = service_attributes(store, service)
    return frame


def online_features(store: FeatureStore, customer_ids: list[str], service: str) -> pd.DataFrame:
    """Latest materialized features of the given customers, one row each."""
    response = store.get_online_features(
        features=store.get_feature_service(service),
        entity_rows=[{ENTITY: cid} for cid in customer_ids],
    )
    return with_absent(response.to_df(), absent_features(store, service))


def absent_features(store, service: str) -> list[str]:
    """The features a service leaves out because the export lacks their table."""
    tag = store.get_feature_service(service).tags.get(ABSENT_TAG, "")
    return [f for f in tag.split(",") if f]


def with_absent(frame: pd.DataFrame, absent: list[str]) -> pd.DataFrame:
    """``frame`` with every absent feature as an unknown (NaN) column.

    No model sees them (``service_features`` lists only what the service serves); rules that
    name them (the action catalogue's ``eligible_if``, alerts) read "unknown" and do not
    hold, instead of failing on a missing column.
    """
    missing = [f for f in absent if f not in frame.columns]
    if not missing:
        return frame
    return pd.concat([frame, pd.DataFrame(float("nan"), index=frame.index, columns=missing)],
                     axis=1)


def service_features(store, service: str) -> list[str]:
    """The feature names a FeatureService declares, in declaration order."""
    return [f.name for p in store.get_feature_service(service).feature_view_projections
            for f in p.features]


def service_attributes(store, service: str) -> dict[str, dict[str, str]]:
    """Feature -> ``{"kind", "label"}`` of the company's attributes a FeatureService serves
    (from the fields' tags; kind: numeric, categorical, boolean or date)."""
    return {f.name: {"kind": f.tags["attribute_kind"], "label": f.tags["label"]}
            for p in store.get_feature_service(service).feature_view_projections
            for f in p.features if is_attribute(f.name) and "label" in f.tags}
