"""Security headers on every response, and `Cache-Control: no-store` unless a route chose."""

from __future__ import annotations

API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their bundles from a CDN and use inline scripts.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    b"https://cdn.redoc.ly; worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
# The console (docs/adr/0018): its own files only; no inline script or style, no eval.
CONSOLE_CSP = (
    b"default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
    b"frame-ancestors 'none'"
)
CONSOLE_PATHS = ("/console/",)

STATIC_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
CACHE_CONTROL = b"cache-control"
NO_STORE = (CACHE_CONTROL, b"no-store")


def content_security_policy(path: str) -> bytes:
    if path == "/" or path.startswith(CONSOLE_PATHS):
        return CONSOLE_CSP
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    return API_CSP


class SecurityHeaders:
    """The headers of each kind of page, built once."""

    def __init__(self, *, hsts: bool = False) -> None:
        tail = [(b"strict-transport-security", b"max-age=31536000")] if hsts else []
        self._by_csp = {
            csp: (*STATIC_HEADERS, (b"content-security-policy", csp), *tail)
            for csp in (API_CSP, DOCS_CSP, CONSOLE_CSP)
        }

    def for_path(self, path: str) -> tuple[tuple[bytes, bytes], ...]:
        return self._by_csp[content_security_policy(path)]

    @staticmethod
    def add_cache_control(headers: list[tuple[bytes, bytes]]) -> None:
        """`no-store` unless the response chose its own caching."""
        for name, _value in headers:
            if name.lower() == CACHE_CONTROL:
                return
        headers.append(NO_STORE)
