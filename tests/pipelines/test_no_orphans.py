"""A `cem` killed by SIGKILL in the middle of a step leaves no process behind (Prefect's
temporary API server stops with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _wait_for_child(proc: psutil.Process, timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = proc.children(recursive=True)
        if any("uvicorn" in " ".join(c.cmdline()) for c in children):
            return children
        time.sleep(0.2)
    pytest.fail("cem started no API server within the time allowed")


def test_sigkill_of_cem_leaves_no_child(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    cem = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "simulate",
         "--customers", "3000", "--months", "12", "--data-dir", str(tmp_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        children = _wait_for_child(psutil.Process(cem.pid), timeout=120)
    finally:
        cem.send_signal(signal.SIGKILL)
        cem.wait()
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [c for c in alive if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    for child in alive:   # do not leave them to the next test either
        child.kill()
    assert not alive, [" ".join(c.cmdline()) for c in alive]
