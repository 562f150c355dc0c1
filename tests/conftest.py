"""Shared fixtures: small simulated worlds (seconds, not minutes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from configs.settings import SimulateParams
from features.sources.world import simulate_world

pytest_plugins = ["tests.worlds"]


def pytest_configure(config) -> None:
    """Prefect runs in a throw-away home (its ephemeral server's database) with no telemetry."""
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="cem-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def make_world(root: Path, **params) -> Path:
    """Simulate a world under ``root`` (raw/ and truth/) and return ``root``."""
    simulate_world(SimulateParams(**params), root / "raw", root / "truth")
    return root


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """6,000 customers over 24 months with the default mechanisms (about 2 s)."""
    return make_world(tmp_path_factory.mktemp("world"), customers=6000, months=24, seed=7)
