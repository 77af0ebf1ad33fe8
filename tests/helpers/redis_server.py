"""A private redis-server for outage tests: started on a free port, stopped and restarted at
will (never the shared server).

`keep_data=True`: stop() is SHUTDOWN SAVE (clients see their connections drop) and start()
brings the data back. `keep_data=False`: stop() SIGKILLs the server (an abrupt outage, no
goodbye to clients) and start() comes back empty, as a Redis without persistence would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
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
    def __init__(self, directory: Path, *, keep_data: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.keep_data = keep_data
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def _pid_file(self) -> Path:
        return self.directory / "redis.pid"

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
                "--pidfile", str(self._pid_file),
                "--daemonize", "yes",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        self._wait(up=True)

    def stop(self) -> None:
        if self.keep_data:
            with contextlib.suppress(redis.ConnectionError):  # it hangs up as it goes
                self._client().shutdown(save=True)
        else:
            self._kill()
        self._wait(up=False)

    def close(self) -> None:
        """At the end of the test: gone, whatever state it is in, nothing saved."""
        with contextlib.suppress(redis.ConnectionError):
            self._client().shutdown(nosave=True)
        self._kill()

    def answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.ConnectionError:
            return False

    def _kill(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(self._pid_file.read_text().strip()), signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)

    def _wait(self, *, up: bool) -> None:
        for _ in range(200):
            if self.answers() == up:
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not come {'up' if up else 'down'}")
