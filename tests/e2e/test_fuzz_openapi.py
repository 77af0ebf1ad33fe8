"""Schema-driven fuzzing of the whole OpenAPI document (PRODUCT.md "Quality bars: bad input").

Schemathesis generates requests for EVERY operation the app documents, both valid (positive)
and invalid (negative) ones, and sends them in-process (ASGI) as an admin. Each response must
not be a server error and must match what the document says: its status is documented, its
content type and headers are the documented ones, its body validates against the documented
schema. And the document is exact about input: a request off the document is refused
(negative_data_rejection, with our refusal statuses), a request on it is never refused as
invalid input (`documented_input_is_accepted`: judged by the problem type, since business
refusals - an unknown product, a stale If-Match - share statuses with validation errors).

Seeded ids (a product, a customer, an order) are fed to the path parameters in an extra round
so that operations also reach their "found" branches, not only 404s.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.python.asgi
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.core.config import Settings
from tests.helpers.auth import bearer, create_user
from tests.helpers.notifications import seed_notification
from tests.helpers.orders import api_product, api_user, body_of

pytestmark = pytest.mark.slow

EXAMPLES_PER_ROUND = 25
# A request off the document may be refused with any of these (412: an If-Match that is no
# ETag of ours never matches; 413: a body over the limit).
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REFUSALS, "429", "5xx"]}}}
)


# Rules JSON Schema cannot state, each said in the field's description instead.
UNSTATABLE = (
    ("min_price", "must not exceed max_price"),  # a relation between two parameters
    ("email", "special-use or reserved name"),  # `format: email` admits e.g. `x@y.test`
    # maxLength counts characters; bcrypt's limit is 72 bytes (the description says so).
    ("password", "bytes in UTF-8"),
    ("new_password", "bytes in UTF-8"),
)


def _unstatable(error: dict[str, Any]) -> bool:
    field = str(error.get("loc", [""])[-1])
    return any(field == name and text in error.get("msg", "") for name, text in UNSTATABLE)


def documented_input_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the document calls valid is never refused as invalid input. (Schemathesis'
    own positive_data_acceptance judges statuses, and our business refusals share them: an
    unknown product is a 422 too, a wrong current password a 400; the problem type tells.)"""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    problem = response.json()
    if not problem.get("type", "").endswith(("/validation-error", "/malformed-request")):
        return None
    errors = problem.get("errors", [problem])
    if not all(_unstatable(error) for error in errors):
        raise AssertionError(f"documented input refused: {errors}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    documented_input_is_accepted,
]
# Operations a fuzzer cannot judge (none): the notification stream is fuzzed like every
# other operation, its streams cut short by STREAM_LIFETIME so that each 200 is a complete
# response (the ASGI client reads a body to its end) whose content type is checked.
EXCLUDED_PATHS: tuple[str, ...] = ()
STREAM_LIFETIME = 0.2  # seconds
FUZZ_SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES_PER_ROUND,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI failures reproduce locally
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


async def _seed(settings: Settings) -> dict[str, Any]:
    """An admin token and ids that exist, made through a first app instance on the same DB."""
    from backend.api.app import create_app

    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            admin_user = await create_user(client, role="admin")
            admin = bearer(client, admin_user["id"])
            notification_id = await seed_notification(client, admin_user["id"])
            webhook = await client.post(
                "/api/v1/webhooks",
                json={"url": "https://93.184.216.34/hook", "event_types": ["order.created"]},
                headers=admin,
            )
            assert webhook.status_code == 201, webhook.text
            product = await api_product(client, stock=1000)
            customer, customer_headers = await api_user(client)
            placed = await client.post(
                "/api/v1/orders", json=body_of((product.id, 1)), headers=customer_headers
            )
            assert placed.status_code == 201, placed.text
            delivery_id = await _delivery_of(client, webhook.json()["id"], admin)
    return {
        "headers": admin,
        "ids": {
            "product_id": product.id,
            "user_id": customer["id"],
            "order_id": placed.json()["id"],
            "webhook_id": webhook.json()["id"],
            "delivery_id": delivery_id,
            "notification_id": notification_id,
        },
    }


async def _delivery_of(client: httpx.AsyncClient, webhook_id: str, admin: Any) -> str:
    """The webhook's delivery of the order placed: the outbox's events run through their
    consumers here, as a worker would run them."""
    container = client.app.state.container  # type: ignore[attr-defined]
    async with container.uow() as uow:
        pending = await uow.outbox.claim_unpublished(10)
    for record in pending:
        await container.event_dispatcher.dispatch(record.event)
    log = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=admin)
    return str(log.json()["items"][0]["id"])


def _rounds(
    operation: Any, raw: dict[str, Any], ids: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """(name, strategy kwargs) for each round: positive, negative, positive on seeded ids."""
    rounds: list[tuple[str, dict[str, Any]]] = [
        ("positive", {"generation_mode": GenerationMode.POSITIVE}),
    ]
    # An operation that takes no input has no invalid input (Hypothesis: Unsatisfiable).
    if raw.get("parameters") or "requestBody" in raw:
        rounds.append(("negative", {"generation_mode": GenerationMode.NEGATIVE}))
    names = {p.name for p in operation.path_parameters}
    known = {name: value for name, value in ids.items() if name in names}
    if known:
        rounds.append(
            ("seeded ids", {"generation_mode": GenerationMode.POSITIVE, "path_parameters": known})
        )
    return rounds


def _fuzz(strategy: Any, send: Callable[[Any], None]) -> None:
    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)

    run()


@contextmanager
def _stopping_lifespans() -> Iterator[None]:
    """Schemathesis' ASGI client starts the app's lifespan once and keeps it running until the
    process exits; stop it (and the app's background tasks) when the test ends."""
    try:
        yield
    finally:
        schemathesis.python.asgi.shutdown_lifespans()


def test_fuzzer_finds_no_server_error_and_no_response_off_the_schema(settings: Settings) -> None:
    from backend.api.app import create_app

    seed = asyncio.run(_seed(settings))
    app = create_app(settings.model_copy(update={"sse_max_connection_seconds": STREAM_LIFETIME}))
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    operations = 0
    with _stopping_lifespans(), schemathesis.python.asgi.get_client(app) as session:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)

        def send(case: Any) -> None:
            response = case.call_and_validate(
                session=session, headers=seed["headers"], checks=CHECKS
            )
            statuses[f"{case.operation.label} {response.status_code}"] += 1

        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path in EXCLUDED_PATHS:
                continue
            operations += 1
            raw = schema.raw_schema["paths"][operation.path][operation.method.lower()]
            for name, kwargs in _rounds(operation, raw, seed["ids"]):
                try:
                    _fuzz(operation.as_strategy(**kwargs), send)
                # Schemathesis raises a BaseExceptionGroup of its findings; collect every
                # operation's, then fail once.
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label} [{name}]:\n{exc}")

    assert operations >= 37, f"only {operations} operations in the document"
    print("\n".join(f"{n:4d}  {k}" for k, n in sorted(statuses.items())))  # seen with -s
    assert not failures, "\n\n".join(failures)
    # Validated responses: most cases pass their checks (a failing case is not counted).
    assert sum(statuses.values()) >= operations * EXAMPLES_PER_ROUND
