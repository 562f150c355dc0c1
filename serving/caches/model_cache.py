"""The champion models the service scores with, re-checked in the background.

``ModelCache`` loads the bundle once at start and then every
``serving.model_refresh_seconds``: a new champion (different versions) replaces the
bundle without a restart; a failed check (registry unreachable, no champion) keeps
the last loaded bundle and marks the registry unreachable, which readiness reports.
With no bundle loaded yet (a start with the registry missing or damaged), the
``fallback`` (the local copy of the last champions, ``champion_copy``) is served instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from serving.db.write import utcnow
from serving.schemas import ModelsReady

log = logging.getLogger(__name__)
REGISTRY, LOCAL_COPY = "registry", "local_copy"   # where the served bundle came from
COPY_SERVED = "registry unavailable, serving the local copy of the last champions"


class ModelCache:
    """Holds the current bundle; ``refresh`` swaps it atomically when the champion changes."""

    def __init__(self, loader: Callable[[], Any], probe: Callable[[], dict[str, str]] | None = None,
                 fallback: Callable[[], Any] | None = None):
        self._loader, self._probe, self._fallback = loader, probe, fallback
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bundle: Any | None = None
        self.registry_reachable = False
        self.loaded_at: datetime | None = None
        self.last_checked: datetime | None = None
        self.error: str | None = None
        self.source: str | None = None

    @property
    def versions(self) -> dict[str, str]:
        bundle = self.bundle
        return dict(getattr(bundle, "versions", {}) or {}) if bundle is not None else {}

    def refresh(self) -> bool:
        """Check the registry once; True when a new bundle was loaded."""
        with self._lock:
            self.last_checked = utcnow()
            from_registry = self.bundle is not None and self.source == REGISTRY
            try:
                if self._probe is not None and from_registry and self._probe() == self.versions:
                    self.registry_reachable, self.error = True, None
                    return False
                bundle = self._loader()
            except Exception as err:  # the registry's failures are many; any of them keeps the last bundle
                self.registry_reachable, self.error = False, f"{type(err).__name__}: {err}"[:500]
                if self.bundle is None:
                    return self._fall_back()
                if self.source == LOCAL_COPY:
                    self.error = f"{COPY_SERVED}: {self.error}"[:500]
                log.warning("champion check failed, serving the last loaded models %s: %s",
                            self.versions, self.error)
                return False
            self.registry_reachable, self.error = True, None
            if from_registry and dict(getattr(bundle, "versions", {})) == self.versions:
                return False
            self.bundle, self.loaded_at, self.source = bundle, utcnow(), REGISTRY
            log.info("champion models loaded: %s", self.versions)
            return True

    def _fall_back(self) -> bool:
        """No models yet and the registry failed: serve the local copy, or say why there is none."""
        reason = self.error
        if self._fallback is None:
            log.error("no champion models to serve: %s", reason)
            return False
        try:
            bundle = self._fallback()
        except Exception as err:  # no copy, or a damaged one: not ready, with both reasons
            self.error = f"{reason}; {type(err).__name__}: {err}"[:500]
            log.error("no champion models to serve: %s", self.error)
            return False
        self.bundle, self.loaded_at, self.source = bundle, utcnow(), LOCAL_COPY
        self.error = f"{COPY_SERVED}: {reason}"[:500]
        log.warning("serving the local copy of the last champions %s: the registry is unavailable: %s",
                    self.versions, reason)
        return True

    def status(self) -> ModelsReady:
        """What ``/readyz`` and ``/metrics`` report about the models."""
        return ModelsReady(
            loaded=self.bundle is not None,
            versions=self.versions,
            registry_reachable=self.registry_reachable,
            loaded_at=self.loaded_at,
            last_checked=self.last_checked,
            error=self.error,
            source=self.source,
        )

    def start(self, every_seconds: float, after: Callable[[], None] | None = None) -> None:
        """Refresh now (in the background) and then every ``every_seconds``; ``after`` runs after each."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while True:
                self.refresh()
                if after is not None:
                    try:
                        after()
                    except Exception:  # a failing follow-up must not stop the champion checks
                        log.exception("after-refresh step failed")
                if self._stop.wait(every_seconds):
                    return

        self._thread = threading.Thread(target=loop, name="champion-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
