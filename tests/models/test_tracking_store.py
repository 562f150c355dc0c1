"""Reading the registry never creates or rewrites the MLflow database, and artifact paths
recorded under another data folder are read from this one's."""

from __future__ import annotations

import sqlite3

import pytest

from configs.settings import load_settings
from models.bundle import load_champions
from models.registry import champion_versions
from models.tracking_store import TrackingStoreUnavailable, check_store, local_artifacts


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_a_missing_database_is_an_error_and_nothing_is_created(settings):
    db = settings.mlflow_dir / "mlflow.db"
    with pytest.raises(TrackingStoreUnavailable) as err:
        load_champions(settings)
    text = _one_line(err)
    assert str(db) in text and "`cem train`" in text
    with pytest.raises(TrackingStoreUnavailable):
        champion_versions(settings, ("churn",))
    assert not settings.data_dir.exists()                # no database, not even its folder


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100,
                                     b"SQLite format 3\x00" + b"\x00" * 200])
def test_a_damaged_database_is_an_error_and_left_byte_identical(settings, content):
    db = settings.mlflow_dir / "mlflow.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(TrackingStoreUnavailable) as err:
        load_champions(settings)
    assert str(db) in _one_line(err)
    assert db.read_bytes() == content
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db"]   # no journal left behind


def test_a_sqlite_file_without_mlflow_tables_is_not_upgraded(settings):
    db = settings.mlflow_dir / "mlflow.db"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE other (x)")
    before = db.read_bytes()
    with pytest.raises(TrackingStoreUnavailable, match="missing tables: alembic_version"):
        check_store(settings)
    assert db.read_bytes() == before


def test_a_missing_server_database_is_an_error(settings):
    missing = settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{settings.data_dir}/x/none.db"})
    with pytest.raises(TrackingStoreUnavailable, match="not found"):
        check_store(missing)
    server = settings.model_copy(update={"mlflow_tracking_uri": "postgresql+psycopg://u:secret@127.0.0.1:1/mlflow"})
    with pytest.raises(TrackingStoreUnavailable) as err:
        check_store(server)
    assert "secret" not in str(err.value) and "`cem train`" in str(err.value)


def test_artifacts_recorded_under_another_data_folder_are_read_from_this_one(settings):
    here = settings.mlflow_dir / "artifacts" / "churn" / "models" / "m-1" / "artifacts"
    recorded = "file:///gone/old%20data/mlflow/artifacts/churn/models/m-1/artifacts"
    gone = "/gone/old data/mlflow/artifacts/churn/models/m-1/artifacts"
    assert local_artifacts(settings, recorded).as_posix() == gone          # no copy here: as recorded
    here.mkdir(parents=True)
    assert local_artifacts(settings, recorded) == here
    assert local_artifacts(settings, "s3://bucket/churn/models/m-1/artifacts") is None
    remote = settings.model_copy(update={"mlflow_tracking_uri": "http://mlflow:5000"})
    assert local_artifacts(remote, recorded).as_posix() == gone            # another store: as recorded
