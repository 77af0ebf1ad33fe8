"""The web console's page and files: served by the API with the console's CSP, revalidated,
never rate limited, nothing but the console's own files; the API keeps its own CSP."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import httpx

from tests.api.test_foundation import assert_problem
from tests.support import make_settings

CONSOLE_CSP = (
    "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
WEB = Path(__file__).resolve().parents[2] / "web"
IMPORT = re.compile(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""")


async def test_the_page_is_served_at_the_root_with_the_console_csp(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONSOLE_CSP
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/console/app.js">' in response.text


async def test_every_file_the_page_loads_is_served_as_what_it_is(
    client: httpx.AsyncClient,
) -> None:
    """The page's links and every relative import of every module resolve to served files."""
    page = (await client.get("/")).text
    pending = re.findall(r'(?:src|href)="(/console/[^"]+)"', page)
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONSOLE_CSP
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["etag"]
        if path.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript"), path
            base = path.rsplit("/", 1)[0]
            for relative in IMPORT.findall(response.text):
                pending.append(posixpath.normpath(posixpath.join(base, relative)))
    served_modules = {p for p in seen if p.endswith(".js")}
    shipped_modules = {f"/console/{p.relative_to(WEB)}" for p in WEB.rglob("*.js")}
    assert served_modules == shipped_modules  # no module is dead, none is missing
    assert "/console/style.css" in seen and "/console/icon.svg" in seen


async def test_a_file_the_console_lacks_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/console/nothing.js"), 404, "not-found")


async def test_python_files_of_the_web_package_are_not_served(client: httpx.AsyncClient) -> None:
    assert (WEB / "__init__.py").exists()
    assert_problem(await client.get("/console/__init__.py"), 404, "not-found")
    assert_problem(await client.get("/console/../backend/cli.py"), 404, "not-found")


async def test_the_api_keeps_its_own_strict_csp(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["cache-control"] == "no-store"


async def test_the_console_files_spend_no_rate_limit_budget(
    tmp_path: Path, sqlite_url: str, client_for
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path, sqlite_url, rate_limit_enabled=True, rate_limit_default="2/minute"
    )
    async with client_for(settings) as client:
        for _ in range(4):
            for path in ("/", "/console/app.js", "/console/style.css"):
                response = await client.get(path)
                assert response.status_code == 200, path
                assert "ratelimit-policy" not in response.headers
        assert (await client.get("/api/v1/products")).status_code == 200
        assert (await client.get("/api/v1/products")).status_code == 200
        limited = await client.get("/api/v1/products")
        assert_problem(limited, 429, "quota-exceeded")


async def test_the_page_only_answers_reads(client: httpx.AsyncClient) -> None:
    response = await client.post("/")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_a_folder_of_the_console_is_not_listed(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/console/"), 404, "not-found")
    assert_problem(await client.get("/console/vendor/"), 404, "not-found")
