"""The real service in a child process, started the way users start it (`cem serve`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from configs.settings import PROJECT_ROOT
from tests.servers import free_port, stop, wait_until


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
            wait_until(lambda: _healthy(base), f"cem serve on {base}", proc, timeout=120, every=0.2)
            yield base
        finally:
            stop(proc)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
