"""Fixtures: a small simulated world turned into clean-like tables and feature tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from configs.settings import FeaturesParams
from features.transforms import build_feature_tables
from tests.conftest import make_world

from .clean_shim import clean_from_raw

TABLES = ("customer_o", "customer_x", "customer_fused", "churn_labels", "nps_labels")


def read_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES}


@pytest.fixture(scope="session")
def feature_world(tmp_path_factory) -> SimpleNamespace:
    """1,500 customers over 12 months: clean tables and the feature tables built from them."""
    root = make_world(tmp_path_factory.mktemp("fworld"), customers=1500, months=12, seed=11)
    clean = clean_from_raw(root / "raw", root / "clean")
    out = root / "features"
    params = FeaturesParams()
    rows = build_feature_tables(clean, out, params)
    return SimpleNamespace(root=root, clean=clean, out=out, rows=rows, params=params,
                           tables=read_tables(out))


def online_contents(store, customers: list[str]) -> dict[str, pd.DataFrame]:
    """Every view's online rows of ``customers`` as Feast reads them (``online_read``): the
    event time and each feature's serialized value, found customers only, by customer. What a
    store holds is compared through this, whatever its table layout."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    provider = store._get_provider()
    keys = [EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=c)])
            for c in customers]
    out = {}
    for fv in store.list_feature_views():
        read = provider.online_read(store.config, fv, keys, [f.name for f in fv.features])
        rows = [{"customer_id": c, "event_ts": ts,
                 **{n: v.SerializeToString() for n, v in values.items()}}
                for c, (ts, values) in zip(customers, read, strict=True) if values is not None]
        out[fv.name] = pd.DataFrame(rows, columns=None if rows else ["customer_id", "event_ts"]
                                    ).sort_values("customer_id", ignore_index=True)
    return out


def world_customers(feature_world) -> list[str]:
    """Every customer of the feature world, and one it does not have."""
    return sorted(feature_world.tables["customer_o"]["customer_id"].unique()) + ["NOBODY"]
