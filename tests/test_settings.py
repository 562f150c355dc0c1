"""Typed settings: params.yaml, CEM_* overrides, and clear errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from configs.settings import load_settings


def test_defaults_come_from_params_yaml():
    settings = load_settings()
    assert settings.simulate.customers == 20000
    assert settings.truth_dir.parent == settings.raw_dir.parent


def test_environment_overrides_one_key_and_keeps_the_rest(monkeypatch, tmp_path):
    monkeypatch.setenv("CEM_SIMULATE__CUSTOMERS", "1234")
    monkeypatch.setenv("CEM_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.simulate.customers == 1234
    assert settings.simulate.months == 24
    assert settings.raw_dir == tmp_path / "raw"


def test_invalid_value_names_the_field(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("simulate:\n  customers: -5\n")
    with pytest.raises(ValidationError, match="simulate.customers"):
        load_settings(bad)


def test_a_planning_section_setting_is_checked_and_named(tmp_path, monkeypatch):
    """The planning sections live in configs/plan_settings.py; their errors still name the key."""
    bad = tmp_path / "params.yaml"
    bad.write_text("prescribe:\n  experiment_spend: everything\n")
    with pytest.raises(ValidationError, match="prescribe.experiment_spend"):
        load_settings(bad)
    monkeypatch.setenv("CEM_PRESCRIBE__EXPERIMENT_SPEND", "whole")
    assert load_settings().prescribe.experiment_spend == "whole"


def test_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("simulate:\n  customerz: 5\n")
    with pytest.raises(ValidationError, match="customerz"):
        load_settings(bad)


def test_missing_params_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml")


def test_a_relative_data_folder_is_resolved_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir="data")
    assert settings.data_dir == tmp_path / "data" and settings.feast_dir.is_absolute()
    monkeypatch.setenv("CEM_DATA_DIR", "elsewhere")
    assert load_settings().data_dir == tmp_path / "elsewhere"
