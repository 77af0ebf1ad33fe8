"""What the console's browser tests share: a watched page (console errors, page errors and
CSP violations are collected and must stay empty), a seeding client, screenshots."""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium, never a browser downloaded by `playwright install`.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-123"
PASSWORD = "customer-password-1"
# Reported to the test through an exposed binding: it survives navigations, and an init
# script runs outside the page's CSP (it cannot itself be the violation it reports).
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI} (${where})`);
});
"""
SCREENSHOTS_DIR = ROOT / "docs" / "screenshots"


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Watched:
    """Everything the browser complained about while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)  # names what the errors were

    def attach(self, page: Any) -> None:
        page.on(
            "response",
            lambda r: (
                self.failed_requests.append(f"{r.request.method} {r.url} {r.status}")
                if r.status >= 400
                else None
            ),
        )
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def expected_refusals(self, *statuses: int) -> None:
        """Forget the failed responses a test provoked on purpose (and Chromium's console
        line for each), so that only the unexpected ones fail it."""
        lines = {f"status of {status} " for status in statuses}
        self.console_errors[:] = [
            e
            for e in self.console_errors
            if not (e.startswith("Failed to load resource") and any(s in e for s in lines))
        ]
        self.failed_requests[:] = [
            r for r in self.failed_requests if int(r.rsplit(" ", 1)[1]) not in statuses
        ]

    def complaints(self) -> dict[str, list[str]]:
        return {
            "console errors": self.console_errors,
            "page errors": self.page_errors,
            "CSP violations": self.csp_violations,
            "failed requests": self.failed_requests,
        }


class Seeder:
    """Sets the scene through the API (not the thing under test here)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
        self.admin = self.token(ADMIN_EMAIL, ADMIN_PASSWORD)

    def token(self, email: str, password: str) -> dict[str, str]:
        response = self.http.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def customer(self) -> tuple[str, dict[str, str]]:
        email = new_email("customer")
        response = self.http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return email, self.token(email, PASSWORD)

    def product(self, name: str, price: str, stock: int) -> dict[str, Any]:
        body = {"sku": f"SKU-{uuid.uuid4().hex[:8]}", "name": name, "price": price, "stock": stock}
        response = self.http.post("/products", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def orders(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        response = self.http.get("/orders", params={"limit": 100}, headers=headers)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def place(self, headers: dict[str, str], product_id: str, quantity: int) -> dict[str, Any]:
        body = {"items": [{"product_id": product_id, "quantity": quantity}]}
        response = self.http.post("/orders", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(f"/orders/{order_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def close(self) -> None:
        self.http.close()


def screenshot(page: Any, name: str, directory: Path) -> None:
    """Save the screen, once it passes the accessibility audit."""
    assert audit_accessibility(page) == [], (name, audit_accessibility(page))
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def screenshots_dir(tmp_dir: Path) -> Path:
    """docs/screenshots when asked for (`make screenshots`), else a temporary folder: a test
    run leaves the work tree as it found it."""
    directory = SCREENSHOTS_DIR if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_dir
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# Labels and contrast, audited in the page (see the script's comment).
A11Y_AUDIT = (Path(__file__).parent / "a11y_audit.js").read_text()


def audit_accessibility(page: Any) -> list[str]:
    return list(page.evaluate(A11Y_AUDIT))


class Receiver:
    """A webhook target on loopback: answers 204 and keeps each request's headers."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/orders"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
