"""`API_WORKERS=2 python -m backend serve` in development without SECRET_KEY: a token issued
by one uvicorn worker is accepted by the other, because one start draws one key for all of
its processes (and never writes it to the log)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import Served, serving
from tests.e2e.test_metrics_multiprocess import per_process

pytestmark = pytest.mark.slow

ME = "/api/v1/users/me"


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in raw if b"=" in entry)


def log_in(served: Served) -> dict[str, str]:
    credentials = {"email": "two-workers@example.com", "password": "correct-horse-9"}
    with httpx.Client(base_url=served.base, timeout=10) as client:
        assert client.post("/api/v1/auth/register", json=credentials).status_code == 201
        response = client.post("/api/v1/auth/login", json=credentials)
        assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", "Connection": "close"}


def test_every_worker_accepts_the_tokens_of_the_others(tmp_path: Path) -> None:
    with serving(
        tmp_path, unset=("SECRET_KEY",), ENVIRONMENT="development", API_WORKERS="2"
    ) as served:
        workers = served.worker_pids()
        assert len(workers) == 2
        headers = log_in(served)
        statuses = []
        for _ in range(40):  # a new connection each: the kernel spreads them over both workers
            with httpx.Client(base_url=served.base, timeout=10) as client:
                statuses.append(client.get(ME, headers=headers).status_code)
        answered = per_process(served, "http_requests_total", {"handler": ME, "status": "2xx"})
        keys = {environ_of(pid).get("SECRET_KEY") for pid in workers}
        log_text = served.log_path.read_text()
    assert statuses == [200] * 40
    assert set(answered) == workers  # both workers answered, and only with 200s
    (key,) = keys  # one key, drawn once by the parent, in both workers
    assert key and key not in log_text
