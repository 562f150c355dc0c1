"""Prefect's local API server dies with the `cem` process that started it.

Without ``PREFECT_API_URL`` Prefect starts a temporary API server (uvicorn, about
200 MB) in a child process and stops it at exit; a `cem` killed outright
(``kill -9``, the OOM killer) never reaches that exit hook, and the server would
run on as an orphan. On Linux the child is started with a parent-death signal
(``PR_SET_PDEATHSIG``), so the kernel stops it when its parent goes away.
Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import types
from collections.abc import Callable

PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def _die_with_parent(parent: int, prctl: Callable[..., int]) -> Callable[[], None]:
    """Run in the child before exec: SIGTERM when the parent dies (or already has)."""

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _guarded_subprocess(prctl: Callable[..., int]) -> types.SimpleNamespace:
    """A stand-in for the ``subprocess`` module whose ``Popen`` sets the parent-death signal."""

    def popen(*args, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(*args, preexec_fn=_die_with_parent(os.getpid(), prctl), **kwargs)

    return types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})


def guard_api_server() -> None:
    """Make the temporary API server Prefect may start stop with this process (Linux)."""
    if not sys.platform.startswith("linux") or os.environ.get("PREFECT_API_URL"):
        return
    from prefect.server.api import server as api

    instance = api.SubprocessASGIServer()          # the one Prefect's client will use
    if getattr(instance, "_dies_with_parent", False):
        return
    start_child = instance._run_uvicorn_command
    guarded = _guarded_subprocess(ctypes.CDLL(None, use_errno=True).prctl)

    def run_uvicorn() -> subprocess.Popen:
        api.subprocess = guarded
        try:
            return start_child()
        finally:
            api.subprocess = subprocess

    instance._run_uvicorn_command = run_uvicorn
    instance._dies_with_parent = True
