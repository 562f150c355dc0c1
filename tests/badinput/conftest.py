"""A good ingest to compare against, and running `cem` in-process on a broken export."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from tests.features.ingest.conftest import base_world, write_world

OUTPUTS = ("clean", "quarantine")


@dataclass
class Outcome:
    code: int
    text: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every output file's digest (names and bytes): what "untouched" means."""
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in OUTPUTS for p in sorted((data_dir / folder).rglob("*")) if p.is_file()}


def leftovers(data_dir: Path) -> list[str]:
    """Staging folders or files a run left behind."""
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="session")
def previous_output(tmp_path_factory) -> Path:
    """A data folder holding the output of a successful ingest of the base world."""
    root = tmp_path_factory.mktemp("previous")
    src = write_world(base_world(), root / "src", "csv")
    with pytest.raises(SystemExit) as done:
        main(["ingest", "--source", str(src), "--data-dir", str(root / "data")])
    assert done.value.code in (0, None)
    return root / "data"


@pytest.fixture
def cem(tmp_path, previous_output, capsys):
    """Run ``cem <args>`` against a copy of the previous output; returns the outcome."""
    data_dir = tmp_path / "data"
    shutil.copytree(previous_output, data_dir)

    def _run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main([*args, "--data-dir", str(data_dir)])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return Outcome(int(code), out.out + out.err)

    _run.data_dir = data_dir
    return _run


def report(data_dir: Path) -> dict:
    import json

    return json.loads((data_dir / "clean" / "ingest_report.json").read_text())


def quarantined(data_dir: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "quarantine" / f"{table}.parquet")


# The API cases (test_api.py) run the real app over a small database: the serving fixtures.
from tests.serving.conftest import app, client, online, runs, settings, tokens  # noqa: E402, F401
