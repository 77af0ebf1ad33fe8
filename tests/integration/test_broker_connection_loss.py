"""What Celery's consumer does when it loses Redis with a message in hand: collect the
connection, then close it. When the channel could not be closed during the collect (Redis
vanished under its BRPOP), the collect still drops the transport's client, and the later
close restores the unacked message through that transport: kombu raised AttributeError
('NoneType' object has no attribute 'hostname'), which Celery does not ignore, and the
worker died. With the guard it is a connection error, which Celery's cleanup ignores
(ADR 0017)."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Exchange, Queue
from kombu.common import ignore_errors

from backend.infrastructure.messaging.celery import make_celery
from tests.support import service_url

pytestmark = pytest.mark.redis


def test_closing_a_collected_connection_with_an_unacked_message_is_not_fatal() -> None:
    url = service_url("TEST_REDIS_URL", "Redis server")
    make_celery(url)  # the application's broker setup installs the guard
    name = f"oftest-collect-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name), routing_key=name)
    connection = Connection(url, transport_options={"global_keyprefix": f"{name}:"})
    try:
        with connection.Producer() as producer:
            producer.publish({"n": 1}, exchange=queue.exchange, routing_key=name, declare=[queue])
        channel = connection.default_channel
        message = channel.basic_get(name, no_ack=False)  # in hand, not acknowledged
        assert message is not None
        assert channel.qos._delivered

        # What collect() leaves when closing the channel failed: the transport's client gone,
        # the channel still open with its message in hand. Then Celery closes the connection.
        connection._do_close_transport()
        ignore_errors(connection, connection.close)
        assert channel.closed
    finally:
        cleanup = Connection(url, transport_options={"global_keyprefix": f"{name}:"})
        with cleanup.channel() as channel:
            client = channel.client
            keys = list(client.scan_iter(match=f"{name}:*"))
            if keys:
                client.delete(*keys)
        cleanup.release()
