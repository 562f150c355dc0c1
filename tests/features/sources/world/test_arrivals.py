"""Stepped months bring new customers at the history's own acquisition rate, exported and
kept in the truth exactly as the history's sign-ups are."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.sources.world.evaluate import delivered_value
from features.sources.world.population import rep_count
from features.sources.world.state import load_world
from features.sources.world.step import advance_world
from tests.conftest import make_world

WORLD = {"customers": 6000, "months": 12, "seed": 5, "chunk_customers": 2000}   # three chunks
STEPS = 3


@pytest.fixture(scope="module")
def stepped(tmp_path_factory) -> tuple[Path, Path, list]:
    """A world before stepping, and a copy stepped ``STEPS`` months (with their summaries)."""
    base = make_world(tmp_path_factory.mktemp("arrivals"), **WORLD)
    world = Path(shutil.copytree(base, tmp_path_factory.mktemp("stepped") / "w"))
    return base, world, advance_world(world / "truth", world / "raw", None, months=STEPS)


def _crm(world: Path) -> pd.DataFrame:
    return pd.read_parquet(world / "raw" / "crm_customers.parquet")


def _newcomers(base: Path, world: Path) -> pd.DataFrame:
    crm = _crm(world)
    return crm[~crm["customer_id"].isin(_crm(base)["customer_id"])]


def test_stepped_months_bring_sign_ups_at_the_history_rate(stepped):
    base, world, steps = stepped
    signup = pd.to_datetime(_crm(base)["signup_date"])
    history = signup[signup >= pd.Timestamp("2024-01-01")].dt.to_period("M").value_counts()
    rate = WORLD["customers"] * 0.25 / WORLD["months"]       # share_existing_at_start 0.75
    assert len(history) == WORLD["months"] and abs(history.mean() - rate) < 3 * np.sqrt(rate / 12)
    joined = np.array([s.joined for s in steps])
    assert abs(joined.mean() - rate) < 3 * np.sqrt(rate / STEPS)
    new = _newcomers(base, world)
    months = pd.to_datetime(new["signup_date"]).dt.to_period("M").astype(str).value_counts()
    assert months.to_dict() == {s.month.strftime("%Y-%m"): s.joined for s in steps}


def test_newcomers_get_fresh_ids_and_everything_a_sign_up_gets(stepped):
    base, world, _ = stepped
    crm, new = _crm(world), _newcomers(base, world)
    assert crm["customer_id"].is_unique and len(crm) == WORLD["customers"] + len(new)
    number = new["customer_id"].str[1:].astype(int)
    assert sorted(number) == list(range(WORLD["customers"] + 1, WORLD["customers"] + 1 + len(new)))
    reps = rep_count(WORLD["customers"], 400)
    assert (new["rep_id"] == "R" + (number % reps).astype(str).str.zfill(4)).all()
    has = new["email"].notna()
    assert (new["email"][has] == "customer." + number[has].astype(str) + "@example.com").all()
    assert new["email"].notna().mean() > 0.9 and new["phone"].notna().mean() > 0.8
    assert new["app_id"].notna().any() and new["email_opt_out"].notna().any()
    assert new["status"].eq("active").mean() > 0.95     # a few have left already, as in the history
    notice = new.dropna(subset=["notice_date"])
    assert (pd.to_datetime(notice["notice_date"]) >= pd.to_datetime(notice["signup_date"])).all()
    usage = pd.read_parquet(world / "raw" / "product_usage.parquet")
    invoices = pd.read_parquet(world / "raw" / "billing_invoices.parquet")
    assert set(new["customer_id"]) <= set(usage["customer_id"]) & set(invoices["customer_id"])


def test_newcomers_are_in_the_hidden_truth(stepped):
    base, world, _ = stepped
    ids = set(_newcomers(base, world)["customer_id"])
    for table in ("customer_traits", "churn", "satisfaction_monthly", "action_effects"):
        truth = pd.read_parquet(world / "truth" / f"{table}.parquet")
        assert ids <= set(truth["customer_id"]), table
    traits = pd.read_parquet(world / "truth" / "customer_traits.parquet")
    assert traits["customer_id"].is_unique and len(traits) == len(_crm(world))


def test_the_saved_state_holds_the_newcomers(stepped):
    base, world, _ = stepped
    state = load_world(world / "truth")
    numbers = np.concatenate([cs.pop.number for cs in state.chunks])
    assert len(numbers) == len(_crm(world)) and len(np.unique(numbers)) == len(numbers)
    chunk, local = state.locate(np.array([1, WORLD["customers"] + 1, state.last_number(), 0]))
    assert chunk[0] == 0 and local[0] == 0 and chunk[-1] == -1 and (chunk[1:3] >= 0).all()
    for cs in state.chunks:
        assert len(cs.chunk.ids) == len(cs.pop.number) == len(cs.st.sat) == len(cs.chunk.email)


def test_a_newcomer_can_be_planned_for_from_the_month_after_signing_up(stepped, tmp_path):
    base, world, steps = stepped
    w = Path(shutil.copytree(world, tmp_path / "w"))
    new = _newcomers(base, w)
    plan = pd.DataFrame({"customer_id": new["customer_id"], "action_id": "apology_credit",
                         "rep_id": new["rep_id"], "rank": range(len(new)), "control_group": False})
    [step] = advance_world(w / "truth", w / "raw", plan, capacity=10_000)
    delivery = pd.read_parquet(w / "truth" / "plan_delivery.parquet")
    assert set(delivery["status"]) <= {"delivered", "not_allowed", "not_open"}
    assert step.delivered > 0.8 * len(new) and step.not_open < 0.05 * len(new)   # a few left
    assert delivered_value(w / "truth", step.month)["delivered"] == step.delivered


def test_sign_ups_step_alike_one_month_or_two_at_a_time(stepped, tmp_path):
    base, _, _ = stepped
    once, twice = (Path(shutil.copytree(base, tmp_path / name)) for name in ("once", "twice"))
    steps = advance_world(once / "truth", once / "raw", None, months=2)
    for _ in range(2):
        advance_world(twice / "truth", twice / "raw", None)
    assert all(s.joined > 0 for s in steps)
    files = [{p.relative_to(w).as_posix(): p.read_bytes() for p in sorted(w.rglob("*"))
              if p.is_file() and p.name != "world.json"} for w in (once, twice)]
    assert files[0] == files[1]

