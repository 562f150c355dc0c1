"""Same seed, same world; another seed, another world."""

from __future__ import annotations

import pandas as pd

from features.sources.world.export import RAW_TABLES, TRUTH_TABLES
from tests.conftest import make_world


def _tables(world):
    out = {t: pd.read_parquet(world / "raw" / f"{t}.parquet") for t in RAW_TABLES}
    out |= {t: pd.read_parquet(world / "truth" / f"{t}.parquet") for t in TRUTH_TABLES}
    return out


def test_same_seed_gives_the_same_world(tmp_path):
    a = _tables(make_world(tmp_path / "a", customers=1500, months=9, seed=3, chunk_customers=1000))
    b = _tables(make_world(tmp_path / "b", customers=1500, months=9, seed=3, chunk_customers=1000))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


def test_another_seed_gives_another_world(tmp_path):
    a = _tables(make_world(tmp_path / "a", customers=1500, months=9, seed=3))
    b = _tables(make_world(tmp_path / "b", customers=1500, months=9, seed=4))
    assert not a["billing_invoices"].equals(b["billing_invoices"])
    assert not a["survey_responses"]["nps"].equals(b["survey_responses"]["nps"])


def test_every_contract_table_is_written(tmp_path):
    world = make_world(tmp_path, customers=300, months=4, seed=1)
    assert {p.stem for p in (world / "raw").glob("*.parquet")} == set(RAW_TABLES)
    assert {p.stem for p in (world / "truth").glob("*.parquet")} == set(TRUTH_TABLES)
