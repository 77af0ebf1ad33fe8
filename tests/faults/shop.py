"""Customers of a running stack, over HTTP only: an admin (FIRST_ADMIN_*) stocks a product,
customers place orders, each with its own Idempotency-Key, retrying the same key through
503s and dropped connections until the order is acknowledged, as a careful client would.
Every answer is recorded, so a test can prove that nothing was lost or duplicated and that
no request failed other than with a 503 carrying Retry-After."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

ADMIN_EMAIL = "admin@faults.example.com"
ADMIN_PASSWORD = "correct-horse-battery-9"
PASSWORD = "correct-horse-9"
RETRYABLE = {503, 409}  # unavailable; the same key still in flight (idempotency-in-flight)


def _token(base: str, email: str, password: str) -> dict[str, str]:
    body = {"email": email, "password": password}
    response = httpx.post(f"{base}/api/v1/auth/login", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Shop:
    base: str
    product_id: str
    customer: dict[str, str]

    @classmethod
    def open(cls, base: str, stock: int) -> Shop:
        admin = _token(base, ADMIN_EMAIL, ADMIN_PASSWORD)
        sku = f"FAULT-{uuid.uuid4().hex[:8]}"
        product = {"sku": sku, "name": "Fault kit", "price": "10.00", "stock": stock}
        response = httpx.post(f"{base}/api/v1/products", json=product, headers=admin, timeout=30)
        assert response.status_code == 201, response.text
        email = f"c-{uuid.uuid4().hex[:10]}@faults.example.com"
        registered = httpx.post(
            f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
        )
        assert registered.status_code == 201, registered.text
        return cls(base, response.json()["id"], _token(base, email, PASSWORD))


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    error: str | None
    seconds: float
    retry_after: str | None
    started: float
    body: Any = None


@dataclass
class Record:
    answers: list[Answer] = field(default_factory=list)
    order_ids: set[str] = field(default_factory=set)


class OrderStream:
    """`clients` threads placing one-unit orders until stopped; `reader` threads reading the
    product and the order list. Requests go on fresh connections (`Connection: close`), so a
    shutdown never races a reused keep-alive connection."""

    def __init__(self, shop: Shop, clients: int = 4, readers: int = 1) -> None:
        self.shop = shop
        self.records: dict[str, Record] = {}
        self.reads: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._threads = [
            threading.Thread(target=self._customer, daemon=True) for _ in range(clients)
        ] + [threading.Thread(target=self._reader, daemon=True) for _ in range(readers)]

    def __enter__(self) -> OrderStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def stop(self, *, abandon: bool = False) -> None:
        """Stop placing new orders; the key in hand is retried until acknowledged, unless
        `abandon` (the server is gone for good)."""
        if abandon:
            self._abandon.set()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        started = time.monotonic()
        headers = {"Connection": "close", **self.shop.customer, **kwargs.pop("headers", {})}
        try:
            with httpx.Client(base_url=self.shop.base, timeout=30) as client:
                response = client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as error:
            return Answer(None, type(error).__name__, time.monotonic() - started, None, started)
        return Answer(
            response.status_code,
            None if response.status_code < 500 else response.text[:300],
            time.monotonic() - started,
            response.headers.get("retry-after"),
            started,
            response.json() if response.content else None,
        )

    def _customer(self) -> None:
        while not self._stop.is_set():
            key = uuid.uuid4().hex
            record = Record()
            with self._lock:
                self.records[key] = record
            self._place(key, record)

    def _place(self, key: str, record: Record) -> None:
        body = {"items": [{"product_id": self.shop.product_id, "quantity": 1}]}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not self._abandon.is_set():
            answer = self._send("POST", "/api/v1/orders", json=body,
                                headers={"Idempotency-Key": key})  # fmt: skip
            record.answers.append(answer)
            if answer.status in (200, 201):
                record.order_ids.add(answer.body["id"])
                return
            if answer.status is not None and answer.status not in RETRYABLE:
                return  # recorded; the test fails on it
            time.sleep(0.2)

    def _reader(self) -> None:
        paths = [f"/api/v1/products/{self.shop.product_id}", "/api/v1/orders?limit=5"]
        while not self._stop.is_set():
            for path in paths:
                answer = self._send("GET", path)
                with self._lock:
                    self.reads.append(answer)
            time.sleep(0.05)

    # ------------------------------------------------------------------ what happened
    def answers(self) -> list[Answer]:
        return [a for r in self.records.values() for a in r.answers] + self.reads

    def acknowledged(self) -> dict[str, str]:
        """Idempotency-Key -> the one order id every acknowledgement of it named."""
        return {key: next(iter(r.order_ids)) for key, r in self.records.items() if r.order_ids}

    def statuses(self) -> Counter[int | str | None]:
        return Counter(a.status if a.status is not None else a.error for a in self.answers())

    def assert_clean(self, *, allow_unanswered: bool = False) -> None:
        """No 5xx but 503 with Retry-After; one order per key; every key acknowledged."""
        answers = self.answers()
        bad = [a for a in answers if a.status is not None and a.status >= 500 and a.status != 503]
        assert not bad, bad[:5]
        assert all(a.retry_after for a in answers if a.status == 503)
        refused = [a for a in answers if a.status is not None and 400 <= a.status < 500
                   and a.status not in RETRYABLE]  # fmt: skip
        assert not refused, refused[:5]
        if not allow_unanswered:
            assert not [a for a in answers if a.status is None], self.statuses()
        split = {k: r.order_ids for k, r in self.records.items() if len(r.order_ids) > 1}
        assert not split, split  # a retried key never made a second order
        unacknowledged = [k for k, r in self.records.items() if not r.order_ids]
        assert not unacknowledged, (len(unacknowledged), self.statuses())
