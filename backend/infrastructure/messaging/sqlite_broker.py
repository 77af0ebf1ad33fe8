"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, polled faster.

kombu's virtual transports sleep `polling_interval` (1 s) whenever a poll finds nothing to
take, which includes "the pool is busy": with `worker_prefetch_multiplier=1` a worker of
concurrency 2 then moves two messages per second, whatever their size. 0.1 s lifts that
tenfold for the price of a few cheap queries per second on a local file. (The stock
transport cannot take the option: it hands all its options to `create_engine`.)

The stock transport also keeps every message it hands out, marked `visible = false`, and
never reads it again (it does not restore the messages of a dead worker either: ADR 0004),
so the table would grow by every relay kick and Beat tick, forever. Every `SWEEP_EVERY`
takes, a channel deletes the taken rows.

It creates a missing queue row with an insert guarded by a thread lock only: when the worker
and Beat of one start declare a queue at the same moment, the slower process's insert fails
with an IntegrityError that kombu lets escape without rolling its session back, and every
later publish on that channel fails ("channel disconnected"): Beat then scheduled nothing
until it was restarted. The slower process now rolls back and reads the row the other wrote.
"""

from __future__ import annotations

from typing import Any

import structlog
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SqlAlchemyChannel
from kombu.transport.sqlalchemy import Transport as SqlAlchemyTransport
from sqlalchemy.exc import IntegrityError

ALIAS = "oflite"  # a URL scheme prefix: `oflite+sqlite:///path/to/broker.sqlite`
POLLING_INTERVAL = 0.1
SWEEP_EVERY = 100

log = structlog.get_logger(__name__)


class Channel(SqlAlchemyChannel):
    _taken = 0

    def _get_or_create(self, queue: Any) -> Any:
        try:
            return super()._get_or_create(queue)
        except IntegrityError:  # another process created it between our read and our insert
            self.session.rollback()
            return self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).one()

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        payload = super()._get(queue)  # raises Empty when there is nothing to take
        self._taken += 1
        if self._taken % SWEEP_EVERY == 0:
            try:
                self.sweep()
            except Exception:  # the message is taken: hand it over; the next sweep retries
                self.session.rollback()
                log.warning("broker_sweep_failed", exc_info=True)
        return payload

    def sweep(self) -> int:
        """Delete the messages already handed out (of every queue); how many."""
        taken = self.session.query(self.message_cls).filter(self.message_cls.visible == False)  # noqa: E712
        deleted = int(taken.delete(synchronize_session=False))
        self.session.commit()
        return deleted


class Transport(SqlAlchemyTransport):
    Channel = Channel
    polling_interval = POLLING_INTERVAL


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")


def embedded_broker_url(broker_url: str) -> str:
    """`sqla+sqlite:///...` (the settings' spelling) served by this transport."""
    if broker_url.startswith("sqla+sqlite:"):
        return f"{ALIAS}+{broker_url.removeprefix('sqla+')}"
    return broker_url
