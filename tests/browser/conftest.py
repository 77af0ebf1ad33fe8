"""Fixtures of the browser tests: Debian's chromium through Playwright, against the real
processes of `make run` (API + Celery worker + Beat, embedded mode, workflow steps of 1 s)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    WATCH_CSP,
    Receiver,
    Seeder,
    Watched,
    screenshots_dir,
)
from tests.e2e.processes import running_stack

FAST_WORKFLOW = {
    "ORDER_PROGRESSION_INTERVAL": "1",
    "ORDER_GRACE_PERIOD": "1",
    "ORDER_PROCESSING_TIME": "1",
    "OUTBOX_POLL_INTERVAL": "1",
    "AUTO_APPROVE_MAX_TOTAL": "100.00",
    "ORDER_MAX_TOTAL": "10000.00",
    "FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
    "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "BCRYPT_ROUNDS": "4",
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the test's receiver is on loopback
    # Every test logs in through the same loopback address; the limits have their own tests.
    "RATE_LIMIT_LOGIN": "1000/minute",
    "RATE_LIMIT_REGISTER": "1000/hour",
}


def _unavailable(message: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is open, and every asyncio test collected after the browser tests would fail with
# "Runner.run() cannot be called from a running event loop".
@pytest.fixture(scope="module")
def playwright_browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def stack(playwright_browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running `python -m backend run` (what `make run` starts)."""
    with running_stack(tmp_path_factory.mktemp("console-stack"), **FAST_WORKFLOW) as (
        _proc,
        base,
        _log,
    ):
        yield base


@pytest.fixture
def seed(stack: str) -> Iterator[Seeder]:
    seeder = Seeder(stack)
    yield seeder
    seeder.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    yield target
    target.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path / "screenshots")


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def open_page(playwright_browser: Any, stack: str, watched: Watched) -> Iterator[Any]:
    """`open_page()` -> a page on the console in a fresh browser context (its own cookies),
    watched for console errors, page errors and CSP violations, which fail the test."""
    contexts: list[Any] = []

    def open_() -> Any:
        context = playwright_browser.new_context(
            base_url=stack, viewport={"width": 1280, "height": 860}
        )
        context.expose_binding(
            "reportCspViolation", lambda _source, text: watched.csp_violations.append(text)
        )
        context.add_init_script(WATCH_CSP)
        contexts.append(context)
        page = context.new_page()
        watched.attach(page)
        page.goto("/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not any(watched.complaints().values()), watched.complaints()
