"""Debounced relay kicks: one send per interval, and every call covered by a send that
starts after it."""

from __future__ import annotations

import asyncio

from backend.infrastructure.messaging.kicks import DebouncedKick

INTERVAL = 0.05


class Sends:
    def __init__(self) -> None:
        self.started: list[int] = []  # how many calls had been made when each send started
        self.calls = 0

    async def __call__(self) -> None:
        self.started.append(self.calls)


async def call(kick: DebouncedKick, sends: Sends) -> None:
    sends.calls += 1
    await kick()


async def test_the_first_kick_is_sent_before_the_call_returns() -> None:
    sends = Sends()
    await call(DebouncedKick(sends, INTERVAL), sends)
    assert sends.started == [1]


async def test_a_burst_inside_the_interval_is_one_trailing_send_after_the_last_call() -> None:
    sends = Sends()
    kick = DebouncedKick(sends, INTERVAL)
    await call(kick, sends)
    for _ in range(20):
        await call(kick, sends)  # returns at once: nobody waits for the trailing send
    assert sends.started == [1]
    await asyncio.sleep(INTERVAL * 4)
    assert sends.started == [1, 21]  # one more send, started after all 21 calls


async def test_a_call_after_the_interval_sends_at_once_again() -> None:
    sends = Sends()
    kick = DebouncedKick(sends, INTERVAL)
    await call(kick, sends)
    await asyncio.sleep(INTERVAL * 2)
    await call(kick, sends)
    assert sends.started == [1, 2]


async def test_a_call_while_the_trailing_send_runs_gets_a_send_of_its_own() -> None:
    sends = Sends()
    gate = asyncio.Event()

    async def slow_send() -> None:
        await sends()
        if len(sends.started) == 2:
            await gate.wait()  # the trailing send is in flight

    kick = DebouncedKick(slow_send, INTERVAL)
    await call(kick, sends)
    await call(kick, sends)  # schedules the trailing send
    await asyncio.sleep(INTERVAL * 2)
    assert sends.started == [1, 2]
    await call(kick, sends)  # the trailing send started before this call: not covered by it
    gate.set()
    await asyncio.sleep(INTERVAL * 3)
    assert sends.started == [1, 2, 3]


async def test_closing_drops_a_scheduled_send() -> None:
    sends = Sends()
    kick = DebouncedKick(sends, INTERVAL)
    await call(kick, sends)
    await call(kick, sends)
    await kick.aclose()
    await asyncio.sleep(INTERVAL * 2)
    assert sends.started == [1]
