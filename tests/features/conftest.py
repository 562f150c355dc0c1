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
