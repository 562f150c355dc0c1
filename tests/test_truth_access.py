"""Only the world writes the hidden truth and only evaluation code reads it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = ("features/sources/world/", "models/nps/evaluate", "models/uplift/evaluate",
           "models/prescribe/evaluate")   # the writer, and evaluation code
GUARDED = ("features", "models", "serving")


def offenders() -> list[str]:
    found = []
    for package in GUARDED:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(ALLOWED):
                continue
            if re.search(r"truth", path.read_text(), flags=re.IGNORECASE):
                found.append(rel)
    return found


def test_no_feature_model_or_serving_code_touches_the_truth():
    assert offenders() == []


def test_the_guard_sees_a_violation(tmp_path, monkeypatch):
    bad = ROOT / "models" / "_tmp_truth_probe.py"
    bad.write_text("PATH = settings.truth_dir\n")
    try:
        assert "models/_tmp_truth_probe.py" in offenders()
    finally:
        bad.unlink()
