"""The one way a service writes a domain event.

`EventRecorder.record(tx, event)` adds the event to the transaction's outbox and registers
what follows its commit on the transaction: the business metrics (committed changes only)
and a kick that asks a worker to relay the outbox now (once per transaction, however many
events; Beat's poll is the safety net). Nothing of it happens if the transaction rolls
back. Effects of a use case's own (dropping cached stock, an SSE wake-up) it registers
itself with `tx.on_commit` (ADR 0014). A set-based move writes its events in the
repository's own statement; `written_by_repository` registers what follows them (ADR 0019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from backend.core.metrics import observe_order_events, observe_transitions
from backend.domain.events import ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.ports import OnCommit, Transaction


class EventRecorder:
    def __init__(self, kick_relay: OnCommit) -> None:
        self._kick_relay = kick_relay

    async def record(self, tx: Transaction, event: DomainEvent) -> None:
        await tx.outbox.add(event)
        tx.on_commit(partial(_observe, (event,)))
        tx.on_commit(self._kick_relay)  # the same callable: registered once per transaction

    def written_by_repository(
        self, tx: Transaction, event_type: str, transitions: Mapping[tuple[str, str, str], int]
    ) -> None:
        """What follows the commit of events a repository wrote itself in a set-based
        statement (`OrderRepository.move_batch`): the metrics, counted per
        (from status, to status, actor), and the kick, as `record` registers them."""
        counts = {key: n for key, n in transitions.items() if n}
        if not counts:
            return
        if event_type == ORDER_STATUS_CHANGED:
            tx.on_commit(partial(_observe_transitions, counts))
        tx.on_commit(self._kick_relay)


async def _observe(events: Sequence[DomainEvent]) -> None:
    observe_order_events(events)


async def _observe_transitions(counts: Mapping[tuple[str, str, str], int]) -> None:
    for (from_status, to_status, actor), n in counts.items():
        observe_transitions(from_status, to_status, actor, n)


async def no_kick() -> None:
    """For processes that publish nothing (tests, CLI): the outbox poll relays."""
