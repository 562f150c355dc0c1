"""A stage that fails half-way leaves the previous output byte-identical: `cem ingest`
(clean tables, report, quarantine) and `cem features` (feature and label tables, Feast
registry)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.conftest import make_world


def _digests(*paths: Path) -> dict[str, str]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))
             if f.is_file()]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _cem(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _debris(data_dir: Path) -> list[str]:
    return sorted(str(p) for p in data_dir.rglob(".*") if "staging" in p.name
                  or "previous" in p.name)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A tiny world through `cem ingest` and `cem features`."""
    root = make_world(tmp_path_factory.mktemp("atomic"), customers=800, months=8, seed=3)
    assert _cem("ingest", "--data-dir", str(root)) == 0
    assert _cem("features", "--data-dir", str(root)) == 0
    return root


def test_ingest_failing_mid_way_leaves_the_previous_tables(built, monkeypatch):
    import features.ingest.run as run

    before = _digests(built / "clean", built / "quarantine")
    real = run.process_table

    def fail_at_orders(table, *args, **kwargs):
        if table == "orders":             # five tables in: their files are written by now
            raise RuntimeError("disk full")
        return real(table, *args, **kwargs)

    monkeypatch.setattr(run, "process_table", fail_at_orders)
    assert _cem("ingest", "--data-dir", str(built)) == 2
    assert _digests(built / "clean", built / "quarantine") == before
    assert _debris(built) == []


def test_features_failing_mid_build_leaves_tables_and_registry(built, monkeypatch):
    import features.transforms.build as build

    outputs = (built / "features", built / "feast" / "registry.db")
    before = _digests(*outputs)
    real, calls = build._write_batch, []

    def fail_on_third(writers, batch):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(writers, batch)

    monkeypatch.setattr(build, "_write_batch", fail_on_third)
    assert _cem("features", "--data-dir", str(built)) == 2
    assert len(calls) == 3
    assert _digests(*outputs) == before
    assert _debris(built) == []


def test_features_failing_in_feast_apply_puts_the_previous_tables_back(built, monkeypatch):
    import features.store as store

    outputs = (built / "features", built / "feast" / "registry.db")
    before = _digests(*outputs)

    def fail(*args, **kwargs):
        raise RuntimeError("registry unreachable")

    monkeypatch.setattr(store, "apply_definitions", fail)
    assert _cem("features", "--data-dir", str(built)) == 2
    assert _digests(*outputs) == before
    assert _debris(built) == []
