"""The order services wired the way the Container wires them, over any unit-of-work
factory (the fakes in unit tests, `SqlUnitOfWork` in adapter tests), with a recording cache
and a counted relay kick in place of the broker."""

from __future__ import annotations

from backend.domain.orders import Order
from backend.domain.ports import Clock, UnitOfWorkFactory
from backend.services.event_recorder import EventRecorder
from backend.services.maintenance import Maintenance
from backend.services.order_workflow import OrderWorkflow, WorkflowPolicy
from backend.services.orders import OrderPolicy, OrderService
from backend.services.progression import OrderValidationConsumer, WorkflowJobs
from tests.fakes.catalog import RecordingCache
from tests.fakes.orders import SteppingClock


class FakeServices:
    """`orders`, `workflow`, `jobs`, `maintenance` and the validation consumer on one fake
    database; `relay_kicks` counts the after-commit relay kicks, `cache` records the
    invalidations."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        clock: Clock,
        policy: WorkflowPolicy | None = None,
        order_policy: OrderPolicy | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy or WorkflowPolicy()
        self.cache = RecordingCache()
        self.relay_kicks = 0
        self.events = EventRecorder(self._kick_relay)
        self.orders = OrderService(db, clock, self.events, self.cache, order_policy)
        self.workflow = OrderWorkflow(db, clock, self.events, self.cache, self.policy)
        self.jobs = WorkflowJobs(db, clock, self.workflow)
        self.maintenance = Maintenance(db, clock, self.policy)
        self.validation = OrderValidationConsumer(self.workflow, clock)

    async def _kick_relay(self) -> None:
        self.relay_kicks += 1


def services(
    db: UnitOfWorkFactory,
    clock: Clock | None = None,
    policy: WorkflowPolicy | None = None,
    order_policy: OrderPolicy | None = None,
) -> FakeServices:
    return FakeServices(db, clock or SteppingClock(), policy, order_policy)


async def validate(
    db: UnitOfWorkFactory, clock: Clock, order_id: str, policy: WorkflowPolicy
) -> Order | None:
    """One validation in a unit of its own, as the validation consumer runs it: the order
    as it is afterwards (None when absent; unchanged when it was not pending)."""
    workflow = services(db, clock, policy).workflow
    async with db() as tx:
        order = await tx.orders.get(order_id)
        if order is None:
            return None
        after = await workflow.validate_in(tx, order, clock.now())
        await tx.commit()
    if after is not None:
        return after
    async with db() as tx:
        return await tx.orders.get(order_id)
