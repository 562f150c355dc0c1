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


@pytest.fixture(scope="session")
def two_worker_client():
    """A LocalCluster of 2 single-thread worker processes, as `cluster.address: local` starts
    it: shared by the equivalence tests of the stages that run on a cluster."""
    from configs.settings import ClusterParams
    from pipelines.cluster import cluster_client

    params = ClusterParams(address="local", workers=2, threads_per_worker=1, memory_limit="2GB")
    with cluster_client(params, announce=lambda line: None, dashboard_address=":0",
                        quiet=True) as client:
        yield client
