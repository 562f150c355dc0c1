"""The real service in a child process, started the way users start it (`cem serve`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from configs.settings import PROJECT_ROOT
from tests.servers import free_port


@contextmanager
def live_service(data_dir: Path, log_file: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`cem serve` on a free loopback port; its stdout and stderr go to ``log_file``; yields the base URL."""
    port = free_port()
    code = f"from pipelines.cli import app; app(['serve', '--port', '{port}', '--data-dir', r'{data_dir}'])"
    with log_file.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base, proc)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_until_up(base: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cem serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"cem serve did not answer on {base} within {timeout}s")
