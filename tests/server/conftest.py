"""Fixtures for the tests that drive a real `phm serve`: a fresh database per server and a
uvicorn process group that can be stopped politely or killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `phm serve`: its base URL and its process (the leader of its own group, so
    the uvicorn supervisor and its workers die together)."""

    url: str
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler, no rollback, no flush."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError):  # orphaned workers, if any
                os.killpg(self.proc.pid, signal.SIGKILL)
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def serve(database_url: str, workers: int = 1) -> Iterator[Server]:
    """`phm serve` on a free port (migrating the database first), ready when /metadata
    answers; stopped (or killed) on exit."""
    port = _free_port()
    # the suite's settings (tests/conftest.py) apply, but links must name this server
    env = {k: v for k, v in os.environ.items() if k != "PHM_BASE_URL"}
    env |= {"PHM_DATABASE_URL": database_url, "PHM_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"phm serve exited with status {proc.returncode}")
            try:
                if httpx.get(f"{server.url}/metadata", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("phm serve did not answer /metadata within 60 s")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
