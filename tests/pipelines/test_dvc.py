"""dvc.yaml wiring: `dvc repro` runs every stage once; a second run with nothing changed
runs nothing; changing one stage's params re-runs that stage and what follows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture
def project(tmp_path) -> tuple[Path, dict]:
    """A copy of the pipeline's code, params and dvc.yaml in a fresh git + DVC repo."""
    repo = tmp_path / "repo"
    for item in ("configs", "features", "models", "serving", "pipelines", "dvc.yaml", ".dvcignore"):
        src = ROOT / item
        copy = shutil.copytree if src.is_dir() else shutil.copy
        copy(src, repo / item, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                  if src.is_dir() else {}))
    params = yaml.safe_load((repo / "configs/params.yaml").read_text())
    params["simulate"].update(customers=800, months=16)
    (repo / "configs/params.yaml").write_text(yaml.safe_dump(params))
    env = os.environ | {
        "PATH": f"{BIN}:{os.environ['PATH']}", "CEM_DATA_DIR": str(repo / "data"),
        "CEM_PARAMS_FILE": str(repo / "configs/params.yaml"),
    }
    _run(["git", "init", "-q"], repo, env)
    _run([str(BIN / "dvc"), "init", "-q"], repo, env)
    _run([str(BIN / "dvc"), "config", "core.analytics", "false"], repo, env)
    return repo, env


def _stages_run(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_runs_each_stage_once_then_nothing(project):
    repo, env = project
    dvc = str(BIN / "dvc")
    first = _run([dvc, "repro"], repo, env)
    assert _stages_run(first) == {"simulate", "ingest", "features", "train", "score"}
    assert (repo / "data/feast/registry.db").exists()
    second = _run([dvc, "repro"], repo, env)
    assert _stages_run(second) == set()
    params = yaml.safe_load((repo / "configs/params.yaml").read_text())
    params["features"]["churn_horizon_days"] = 60
    (repo / "configs/params.yaml").write_text(yaml.safe_dump(params))
    third = _run([dvc, "repro"], repo, env)
    assert _stages_run(third) == {"features", "train", "score"}


def test_every_stage_names_its_code_params_and_outputs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "configs/params.yaml").read_text())
    for name, stage in stages.items():
        assert stage["cmd"] == f"cem {name}"
        assert any(not d.startswith("data/") for d in stage["deps"]), name
        for entry in stage["params"]:
            for keys in entry.values():
                for key in keys:
                    assert key in params, f"{name}: params key {key} not in params.yaml"
        outs = [o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]]
        assert all(o.startswith("data/") for o in outs), name
