"""`cem cycle`: the world answers the latest plan, then ingest, features, train, score."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cycle import retrain_due

runner = CliRunner()


def test_retraining_follows_the_schedule():
    assert [s for s in range(1, 7) if retrain_due(s, 3)] == [3, 6]
    assert not any(retrain_due(s, 0) for s in range(1, 7))


@pytest.mark.slow
def test_one_cycle_runs_end_to_end(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for key, value in {"SIMULATE__CUSTOMERS": "1500", "SIMULATE__MONTHS": "12",
                       "TRAIN__SEARCH__TRIALS": "0", "CYCLE__RETRAIN_EVERY_MONTHS": "1"}.items():
        monkeypatch.setenv(f"CEM_{key}", value)
    result = runner.invoke(app, ["demo", "--cycles", "1", "--data-dir", str(data)])   # demo + `cem cycle`
    assert result.exit_code == 0, result.output
    assert "2025-01: planned" in result.output and "retrained" in result.output
    assert "learning curve, cycle 1: exploit" in result.output and "closed loop:" in result.output
    curve = pd.read_csv(data / "reports" / "cycle" / "learning_curve.csv")
    assert list(curve["cycle"]) == [1] and curve["do_nothing"].eq(0).all()
    state = json.loads((data / "truth" / "world_state" / "state.json").read_text())
    assert state["month"] == 13
    usage = pd.read_parquet(data / "raw" / "product_usage.parquet")
    assert pd.to_datetime(usage["month"]).max() == pd.Timestamp("2025-01-01")
    clean = pd.read_parquet(data / "clean" / "product_usage.parquet")
    assert pd.to_datetime(clean["month"]).max() == pd.Timestamp("2025-01-01")   # re-ingested
    delivery = pd.read_parquet(data / "truth" / "plan_delivery.parquet")
    planned = int(result.output.split("2025-01: planned ")[1].split(" ")[0].rstrip(",").replace(",", ""))
    assert len(delivery) == planned
