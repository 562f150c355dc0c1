"""The MLflow tracking store as scoring reads it: never created, and portable with ``data/``.

MLflow's SQLAlchemy store creates any missing tables on its first connection (SQLite
also creates the file): pointed at a deleted or damaged database it would quietly start
an empty registry, and the service would have no models. Readers therefore check the
store first and fail with one line naming it; only training (``registry.configure``)
creates one.

MLflow records artifact locations as absolute paths. With the default store (SQLite in
``data/mlflow``) the artifacts live beside it, so a path recorded under another data
folder's ``mlflow/artifacts`` is read from this data folder's: a copied or moved
``data/`` scores with its own artifacts.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote, urlparse

from configs.settings import Settings

ARTIFACTS_DIR = "artifacts"   # under settings.mlflow_dir: one folder per experiment
SQLITE_HEADER = b"SQLite format 3\x00"
# tables the registry reads; MLflow's schema version table proves its migrations ran
REGISTRY_TABLES = ("alembic_version", "experiments", "registered_models", "model_versions",
                   "registered_model_aliases")
SQL_SCHEMES = ("postgresql", "mysql", "mssql")
HINT = "run `cem train` to create it (only training creates the MLflow database)"


class TrackingStoreUnavailable(RuntimeError):
    """The MLflow tracking database is missing, is not an MLflow database, or cannot be read."""


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///").split("?", 1)[0]))


def check_store(settings: Settings) -> None:
    """Raise ``TrackingStoreUnavailable`` unless the tracking database exists with MLflow's
    tables; nothing is created or written. A tracking server (http) guards its own database."""
    uri = settings.tracking_uri
    path = sqlite_path(uri)
    if path is not None:
        _check_sqlite(path)
    elif uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES:
        _check_sql(uri)


def _check_sqlite(path: Path) -> None:
    if not path.is_file():
        raise TrackingStoreUnavailable(f"MLflow tracking database {path} not found: {HINT}")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise TrackingStoreUnavailable(
            f"MLflow tracking database {path} is not a SQLite database (damaged?): "
            f"restore it from a backup or move it aside and {HINT}")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as err:
        raise TrackingStoreUnavailable(
            f"MLflow tracking database {path} cannot be read ({err}): "
            f"restore it from a backup or move it aside and {HINT}") from err
    _require_tables(str(path), tables)


def _check_sql(uri: str) -> None:
    import sqlalchemy

    url = sqlalchemy.engine.make_url(uri)
    shown = url.render_as_string(hide_password=True)
    engine = sqlalchemy.create_engine(url)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    except Exception as err:  # driver errors differ: a missing database, refused, bad credentials
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingStoreUnavailable(
            f"MLflow tracking database {shown} cannot be read ({first}): {HINT}") from err
    finally:
        engine.dispose()
    _require_tables(shown, tables)


def _require_tables(shown: str, tables: set[str]) -> None:
    missing = [t for t in REGISTRY_TABLES if t not in tables]
    if missing:
        raise TrackingStoreUnavailable(
            f"MLflow tracking database {shown} has no MLflow registry (missing tables: "
            f"{', '.join(missing)}): {HINT}")


def local_artifacts(settings: Settings, uri: str) -> Path | None:
    """The local folder behind a recorded artifact location; None for remote stores (s3, http).

    With the default store, a location under some ``.../mlflow/artifacts/`` is read from this
    data folder's ``mlflow/artifacts`` when that copy exists (a copied or moved ``data/``)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return None
    recorded = Path(unquote(parsed.path))
    if settings.mlflow_tracking_uri is None:
        here = _in_this_data_dir(settings, recorded)
        if here is not None and here.is_dir():
            return here
    return recorded


def _in_this_data_dir(settings: Settings, recorded: Path) -> Path | None:
    parts = recorded.parts
    marker = (settings.mlflow_dir.name, ARTIFACTS_DIR)
    starts = [i for i in range(len(parts) - 1) if parts[i:i + 2] == marker]
    if not starts:
        return None
    return settings.mlflow_dir.joinpath(ARTIFACTS_DIR, *parts[starts[-1] + 2:])
