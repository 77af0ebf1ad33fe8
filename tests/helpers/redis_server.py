"""A private redis-server for outage tests: started on a free port, stopped and restarted
at will (never the shared server). Data survives a stop/start (saved on shutdown)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _client(self) -> redis.Redis:
        # No retries: redis-py's default backoff would turn each "is it down yet?" into seconds.
        return redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> None:
        subprocess.run(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--pidfile", str(self.directory / "redis.pid"),
                "--daemonize", "yes",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self._wait(up=True)

    def stop(self) -> None:
        """SHUTDOWN SAVE: clients see their connections drop; the data is kept on disk."""
        with contextlib.suppress(redis.ConnectionError):  # the server hangs up as it goes
            self._client().shutdown(save=True)
        self._wait(up=False)

    def _wait(self, *, up: bool) -> None:
        for _ in range(200):
            try:
                self._client().ping()
                if up:
                    return
            except redis.ConnectionError:
                if not up:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not come {'up' if up else 'down'}")

    def close(self) -> None:
        with contextlib.suppress(redis.ConnectionError):
            self._client().shutdown(nosave=True)
