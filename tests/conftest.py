"""Shared fixtures: small simulated worlds (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.settings import SimulateParams
from features.world import simulate_world


def make_world(root: Path, **params) -> Path:
    """Simulate a world under ``root`` (raw/ and truth/) and return ``root``."""
    simulate_world(SimulateParams(**params), root / "raw", root / "truth")
    return root


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """6,000 customers over 24 months with the default mechanisms (about 2 s)."""
    return make_world(tmp_path_factory.mktemp("world"), customers=6000, months=24, seed=7)
