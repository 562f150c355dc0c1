"""A local copy of the last champion bundle loaded, served when the registry is unavailable.

Each successful load of the champions (service start, a new champion, a batch scoring run)
writes the whole bundle (model objects, versions, catalogue, FeatureService) to one file
under ``data/serving/champions/``, through a temporary file and ``os.replace``: a reader
sees the previous copy or the new one, never half of one. ``manifest.json`` beside it
says what the copy holds, for operators; the service reads only the bundle file.

At start, when the MLflow registry is missing, damaged or unreachable, the service serves
this copy and ``/readyz`` says ``degraded`` with the reason (``caches.model_cache``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import joblib

from configs.settings import Settings

log = logging.getLogger(__name__)
BUNDLE_FILE, MANIFEST_FILE = "bundle.joblib", "manifest.json"
FORMAT = 1


def _shown(uri: str) -> str:
    """A store URI without its password (the manifest is no place for secrets)."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _write_atomic(target: Path, write: Callable[[IO[bytes]], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide the copy from a service run as another user
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(bundle: Any, settings: Settings) -> Path:
    """Write ``bundle`` as the local copy (atomically) and its manifest; the bundle file's path."""
    folder = settings.champion_copy_dir
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "versions": dict(bundle.versions),
        "feature_service": bundle.feature_service,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tracking_uri": _shown(settings.tracking_uri),
        "file": BUNDLE_FILE,
    }
    _write_atomic(folder / BUNDLE_FILE, lambda fh: joblib.dump({**manifest, "bundle": bundle}, fh))
    text = json.dumps(manifest, indent=2) + "\n"
    _write_atomic(folder / MANIFEST_FILE, lambda fh: fh.write(text.encode()))
    return folder / BUNDLE_FILE


def keep(bundle: Any, settings: Settings) -> Any:
    """``save``, where a failure (read-only or full disk) is logged and scoring goes on."""
    try:
        save(bundle, settings)
    except Exception as err:  # the copy is a fallback: never the reason a load fails
        log.warning("could not write the local copy of the champions to %s: %s: %s",
                    settings.champion_copy_dir, type(err).__name__, err)
    return bundle


def load(settings: Settings) -> Any:
    """The bundle of the local copy; a one-line error naming the file when there is none."""
    from models.legacy import enable_old_names

    path = settings.champion_copy_dir / BUNDLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no local copy of the champion models at {path} (written when the "
                                "service or `cem score` loads them from the registry)")
    enable_old_names()
    try:
        payload = joblib.load(path)
    except Exception as err:  # a damaged file: name it, whatever the unpickler says
        raise ValueError(f"local copy of the champion models {path} cannot be read: "
                         f"{type(err).__name__}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "bundle" not in payload:
        raise ValueError(f"{path} is not a local copy of the champion models (format {FORMAT})")
    return payload["bundle"]


def loader(settings: Settings) -> Callable[[], Any]:
    """``load`` for ``settings``: the model cache's fallback."""
    return lambda: load(settings)
