"""Start real servers for tests (Debian packages), on free loopback ports.

Outside CI a missing server binary skips the test with the install command; in CI
(CI=true) it fails, because .ci/run installs every server the suite needs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: apt-get install {package}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throw-away redis-server; yields its ``host:port``."""
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _port_open(port), f"redis-server on port {port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


def wait_until(
    ready: Callable[[], bool], what: str, proc: subprocess.Popen, timeout: float = 15.0, every: float = 0.05
) -> None:
    """Poll ``ready()`` until it is true; fail at once if the server process exited meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if ready():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} did not start in {timeout}s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Ask the server to stop; kill it if it has not within ``timeout``."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _postgres_binary(name: str) -> str:
    """PostgreSQL's server binaries live outside PATH on Debian (/usr/lib/postgresql/<v>/bin)."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None)
    return found or require_binary(name, "postgresql")


def _server_user() -> dict:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user the package creates."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        message = "running as root and no `postgres` user to run PostgreSQL as: apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on a free loopback port; yields a SQLAlchemy psycopg URL."""
    import psycopg

    initdb, postgres = _postgres_binary("initdb"), _postgres_binary("postgres")
    who = _server_user()
    root = Path(tempfile.mkdtemp(prefix="cem-pg-"))  # not under pytest's 0700 tmp: the server user reaches it
    data = root / "data"
    if who:
        os.chown(root, who["user"], who["group"])
    subprocess.run([initdb, "-D", str(data), "-U", "cem", "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **who)
    port = free_port()
    proc = subprocess.Popen(
        [postgres, "-D", str(data), "-p", str(port), "-k", str(root), "-c", "listen_addresses=127.0.0.1",
         "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **who,
    )
    try:
        # the port opens before the server accepts sessions ("the database system is starting up")
        dsn = f"host=127.0.0.1 port={port} user=cem dbname=postgres"
        wait_until(lambda: _connects(psycopg, dsn), f"PostgreSQL on port {port}", proc, timeout=60, every=0.1)
        yield f"postgresql+psycopg://cem@127.0.0.1:{port}/postgres"
    finally:
        stop(proc, signal.SIGINT, timeout=30)           # fast shutdown: does not wait for clients
        shutil.rmtree(root, ignore_errors=True)


def _connects(psycopg, dsn: str) -> bool:
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError:
        return False
    return True
