"""The Prometheus kit against the real tools: promtool accepts the configuration and the
rules (and their unit tests pass), and a real Prometheus scrapes a running API, finds the
target up, and evaluates every alert rule without error on its real series.

Needs the `prometheus` Debian package (prometheus + promtool; `.ci/run` installs it): the
tests skip visibly without it, and fail instead under REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.processes import free_port
from tests.e2e.serving import serving

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"`{name}` is not installed (Debian package `prometheus`; .ci/run installs it)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_accepts_the_scrape_configurations(config: str) -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(PROMETHEUS_DIR / "alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a typo in an expression is refused."""
    broken = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    broken["groups"][0]["rules"][0]["expr"] = "sum(rate(http_requests_total[5m]) >"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    assert promtool("check", "rules", str(path)).returncode != 0


@contextmanager
def prometheus(tmp_path: Path, api_base: str) -> Iterator[str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "orderflow-api",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [api_base.removeprefix("http://")]}],
            }
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = tmp_path / "prometheus.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def poll(url: str, params: dict[str, str] | None, done: Any, what: str) -> Any:
    """GET the Prometheus API until `done(data)` holds (bounded: 60 s)."""
    deadline = time.monotonic() + 60
    last: Any = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, params=params, timeout=2)
            if response.status_code == 200:
                last = response.json()["data"]
                if done(last):
                    return last
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{what}: not reached in 60 s; last answer {last}")


@pytest.mark.slow
def test_a_real_prometheus_finds_the_api_up_and_evaluates_every_rule(tmp_path: Path) -> None:
    tool("prometheus")
    with serving(tmp_path, API_WORKERS="2") as api, prometheus(tmp_path, api.base) as prom:
        targets = poll(
            f"{prom}/api/v1/targets",
            None,
            lambda data: any(t["health"] == "up" for t in data["activeTargets"]),
            "the API target up",
        )
        (target,) = targets["activeTargets"]
        assert target["labels"]["job"] == "orderflow-api"
        assert target["lastError"] == ""

        up = poll(
            f"{prom}/api/v1/query",
            {"query": 'up{job="orderflow-api"}'},
            lambda data: bool(data["result"]),
            "up{job=orderflow-api}",
        )
        assert up["result"][0]["value"][1] == "1"
        series = poll(
            f"{prom}/api/v1/query",
            {"query": 'http_requests_total{job="orderflow-api",handler="/api/v1/health"}'},
            lambda data: bool(data["result"]),
            "the HTTP metrics of the API",
        )
        assert float(series["result"][0]["value"][1]) >= 1

        def evaluated(data: dict[str, Any]) -> bool:
            rules = [rule for group in data["groups"] for rule in group["rules"]]
            return bool(rules) and all(
                rule["lastEvaluation"] > "0001-01-01T00:00:00Z" for rule in rules
            )

        rules = poll(f"{prom}/api/v1/rules", None, evaluated, "every rule evaluated")
        evaluated_rules = [rule for group in rules["groups"] for rule in group["rules"]]
        defined = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
        assert len(evaluated_rules) == sum(len(g["rules"]) for g in defined["groups"])
        for rule in evaluated_rules:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
