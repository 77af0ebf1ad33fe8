"""The embedded broker (kombu's SQLAlchemy transport on SQLite, our subclass): messages it
has handed out are deleted in sweeps instead of piling up, and no waiting one is touched."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from kombu import Connection

from backend.infrastructure.messaging import sqlite_broker
from backend.infrastructure.messaging.celery import make_celery


def rows(broker: Path) -> tuple[int, int]:
    """(waiting, handed out) rows of the message table."""
    with closing(sqlite3.connect(broker)) as conn:
        counts = dict(conn.execute("SELECT visible, count(*) FROM kombu_message GROUP BY visible"))
    return counts.get(1, 0), counts.get(0, 0)


def test_taken_messages_are_swept_and_waiting_ones_stay(tmp_path: Path) -> None:
    broker = tmp_path / "broker.sqlite"
    url = f"sqla+sqlite:///{broker}"
    make_celery(url)  # creates the file in WAL mode, as the app does
    every = sqlite_broker.SWEEP_EVERY
    with Connection(sqlite_broker.embedded_broker_url(url)) as conn:
        queue = conn.SimpleQueue("sweep-test")
        for n in range(2 * every + every // 2):
            queue.put({"n": n})
        assert rows(broker) == (2 * every + every // 2, 0)

        received = []
        for _ in range(every + 1):
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        # The 100th take swept the 100 taken so far; the 101st is kept until the next sweep.
        assert rows(broker) == (every + every // 2 - 1, 1)

        while len(received) < 2 * every + every // 2:
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        queue.close()

    assert received == list(range(2 * every + every // 2))  # all of them, once, in order
    assert rows(broker) == (0, every // 2)  # only what was taken since the last sweep


def test_a_queue_another_process_creates_meanwhile_is_used_not_fatal(tmp_path: Path) -> None:
    """The worker and Beat of one start declare the same queue at once: the process whose
    insert loses the race reads the winner's row and goes on publishing."""
    from sqlalchemy import event

    broker = tmp_path / "broker.sqlite"
    url = f"sqla+sqlite:///{broker}"
    make_celery(url)
    with Connection(sqlite_broker.embedded_broker_url(url)) as conn:
        channel = conn.default_channel
        raced = []

        @event.listens_for(channel.session, "before_flush")
        def other_process_inserts_first(*_args: object) -> None:
            if not raced:  # the insert of the other process lands between read and insert
                raced.append(True)
                with closing(sqlite3.connect(broker, timeout=5)) as other:
                    other.execute("INSERT INTO kombu_queue (name) VALUES ('raced')")
                    other.commit()

        queue = conn.SimpleQueue("raced")
        queue.put({"n": 1})
        queue.put({"n": 2})
        assert raced
        assert [queue.get(timeout=5).payload["n"] for _ in range(2)] == [1, 2]
        queue.close()
    with closing(sqlite3.connect(broker)) as db:
        count = db.execute("SELECT count(*) FROM kombu_queue WHERE name = 'raced'").fetchone()
    assert count == (1,)
