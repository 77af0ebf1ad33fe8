"""A private PostgreSQL for outage tests: initdb into a scratch directory, pg_ctl start on a
free port, stopped and restarted at will (never the shared server).

`stop("smart")` starts a smart shutdown and returns at once: the server refuses new sessions
with 57P03 ("the database system is shutting down") while existing ones go on, and it ends
when the last session does. `stop("fast")` ends every session (57P01) and waits.

initdb refuses to run as root: as root, the commands run as the `postgres` account, in a
directory it owns (under /tmp, which every account can reach).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers.redis_server import free_port
from tests.support import skip_unless_allowed


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in Path(path).parts[4].split(".") if part.isdigit())


class PostgresServer:
    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            skip_unless_allowed("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bindir = bindir
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="orderflow-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._command("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "--no-instructions")  # fmt: skip

    def _command(self, tool: str, *args: str, check: bool = True) -> int:
        done = subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}\n{self._tail()}")
        return done.returncode

    def _tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100"
        )
        self._command("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                      "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        self._command("pg_ctl", "-D", str(self.data), "-m", mode, "-t", "60",
                      "stop", "-w" if wait else "-W")  # fmt: skip

    def running(self) -> bool:
        return self._command("pg_ctl", "-D", str(self.data), "status", check=False) == 0

    def close(self) -> None:
        if self.running():
            self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop",
                          check=False)  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)
