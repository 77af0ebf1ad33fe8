"""wrk, the load generator: installed from the Debian package when missing, pinned to its own
core where `taskset` works, driven by one Lua script (bench/lua/request.lua)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"
MARKER = "BENCH-JSON "


@dataclass(frozen=True, slots=True)
class Cores:
    """Where the servers and the load run: `taskset -c` prefixes, empty when not pinned."""

    server: tuple[str, ...] = ()
    load: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return bool(self.server)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One wrk run: requests, rate, latency percentiles (ms) and the count of each status."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status <= high)


def ensure_wrk() -> str:
    """The wrk binary; `apt-get install wrk` first when it is missing (sudo unless root)."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("wrk is missing: installing the Debian package", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


def choose_cores() -> Cores:
    """Server on the first allowed core, load on the last, when there are two and taskset
    works; otherwise everything floats (and the output says so)."""
    taskset = shutil.which("taskset")
    allowed = sorted(os.sched_getaffinity(0))
    if taskset is None or len(allowed) < 2:
        return Cores()
    probe = subprocess.run([taskset, "-c", str(allowed[0]), "true"], check=False)
    if probe.returncode != 0:
        return Cores()
    return Cores(
        server=(taskset, "-c", str(allowed[0])),
        load=(taskset, "-c", str(allowed[-1])),
    )


def parse(stdout: str) -> Outcome:
    """The summary line request.lua's done() prints."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    data = json.loads(line[len(MARKER) :])
    latency = data["latency_us"]
    errors = {k: int(v) for k, v in data["errors"].items() if k != "status" and v}
    return Outcome(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        socket_errors=errors,
    )


@dataclass(frozen=True, slots=True)
class Load:
    """What to send: the script's arguments (see request.lua) and how hard."""

    path: str
    method: str = "GET"
    ids_file: Path | None = None
    token: str | None = None
    body: str | None = None
    idempotency: str | None = None
    connections: int = 64

    def script_args(self, round_tag: str) -> list[str]:
        args = [f"method={self.method}", f"path={self.path}"]
        if self.ids_file is not None:
            args.append(f"ids={self.ids_file}")
        if self.token:
            args.append(f"token={self.token}")
        if self.body:
            args.append(f"body={self.body}")
        if self.idempotency:
            args.append(f"idempotency={self.idempotency}-{round_tag}")
        return args


class Wrk:
    def __init__(self, binary: str, cores: Cores) -> None:
        self.binary = binary
        self.cores = cores
        self._runs = 0

    def run(self, base_url: str, load: Load, seconds: int, *, timeout_s: int = 30) -> Outcome:
        """wrk for whole `seconds` (the only durations it takes)."""
        self._runs += 1
        command = [
            *self.cores.load,
            self.binary,
            "-t",
            "1",
            "-c",
            str(load.connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            f"{timeout_s}s",
            "-s",
            str(SCRIPT),
            base_url,
            "--",
            *load.script_args(str(self._runs)),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=seconds + timeout_s + 30
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return parse(done.stdout)
