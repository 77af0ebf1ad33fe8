"""Schemathesis' stateful phase: sequences of calls chained by the links it infers from the
document (a product's id from POST /products into GET/PATCH/DELETE /products/{id} and into
an order, an order's into its actions, ...), sent in-process as an admin, every response held
to the same checks as the single-call fuzzing (tests/e2e/test_fuzz_openapi.py).

Failures are collected, not raised, as Schemathesis' own runner does: the app keeps its
state between scenarios, so Hypothesis could not replay (shrink) a failing one anyway. For
the same reason Hypothesis may find that a scenario it replays to branch from draws
differently the second time (FlakyStrategyDefinition): like Schemathesis' runner, we then
start a new suite with another seed, until SUITES suites ran."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
import schemathesis.python.asgi
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import FlakyStrategyDefinition

from backend.core.config import Settings
from tests.e2e.test_fuzz_openapi import CHECKS, CONFIG, _seed, _stopping_lifespans

pytestmark = pytest.mark.slow

SUITES = 6
SCENARIOS = 30
STEPS_PER_SCENARIO = 10
MIN_STEPS = 300  # the suites together sent at least this many requests
STATEFUL_SETTINGS = hypothesis_settings(
    max_examples=SCENARIOS,
    stateful_step_count=STEPS_PER_SCENARIO,
    phases=[Phase.generate],
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def test_stateful_sequences_find_no_server_error_and_nothing_off_the_schema(
    settings: Settings,
) -> None:
    from backend.api.app import create_app

    seed = asyncio.run(_seed(settings))
    app = create_app(settings)
    steps: Counter[str] = Counter()
    failures: dict[str, str] = {}
    with _stopping_lifespans(), schemathesis.python.asgi.get_client(app) as session:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)

        class Machine(schema.as_state_machine()):  # type: ignore[misc]
            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                return {"session": session, "headers": seed["headers"]}

            def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
                label = f"{case.operation.label} {response.status_code}"
                steps[label] += 1
                try:
                    case.validate_response(response, checks=CHECKS, headers=seed["headers"])
                except (Exception, BaseExceptionGroup) as failure:
                    failures.setdefault(f"{label}: {str(failure).splitlines()[0]}", str(failure))

        for suite in range(SUITES):
            with contextlib.suppress(FlakyStrategyDefinition):
                hypothesis.seed(suite)(Machine).run(settings=STATEFUL_SETTINGS)
    print("\n".join(f"{n:4d}  {k}" for k, n in sorted(steps.items())))  # seen with -s
    assert not failures, "\n\n".join(failures.values())
    assert sum(steps.values()) >= MIN_STEPS, steps
    on_created = {label for label in steps if "{" in label and label.endswith((" 200", " 204"))}
    assert on_created, steps  # sequences reached resources that earlier steps created
