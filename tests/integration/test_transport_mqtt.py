"""MQTT-only behaviour against a real mosquitto: reconnects, the outgoing queue, shutdown.

The broker is stopped and started with the ``mosquitto`` fixture (in a worker thread, as
its start/stop calls block). Waits are bounded; nothing asserts wall-clock time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from oracle.identity import IdentityKey, Roster
from oracle.transport import (
    Backoff,
    Channel,
    MessageType,
    MqttSettings,
    MqttTransport,
    Received,
)
from tests.conftest import Broker

pytestmark = pytest.mark.integration

NET = "mqtt-test"
WAIT = 10.0  # upper bound only; a reconnect takes well under a second here


def settings(broker: Broker, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "keepalive": 5,
        "timeout": 2.0,
        "backoff": Backoff(initial=0.05, maximum=0.3),
        "close_flush_timeout": 0.5,
    }
    values.update(overrides)
    return MqttSettings(**values)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        # Polling: connection state and counters have no event to wait on from outside.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def next_message(transport: MqttTransport) -> Received:
    async with asyncio.timeout(WAIT):
        return await transport.receive()


def pair(broker: Broker, **overrides: object) -> tuple[MqttTransport, MqttTransport]:
    keys = [IdentityKey.generate() for _ in range(2)]
    roster = Roster.of(*keys)
    return tuple(  # type: ignore[return-value]
        MqttTransport(settings(broker, **overrides), network=NET, roster=roster, identity=key)
        for key in keys
    )


async def test_reconnects_resubscribes_and_flows_again_after_a_broker_restart(
    mosquitto: Broker,
) -> None:
    a, b = pair(mosquitto)
    async with a, b:
        async with asyncio.timeout(WAIT):
            await a.wait_connected()
            await b.wait_connected()
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 1})
        assert (await next_message(b)).payload == {"n": 1}

        await asyncio.to_thread(mosquitto.stop)
        await eventually(lambda: not a.connected and not b.connected)
        assert a.metrics.sample("xon_transport_connected") == 0

        await asyncio.to_thread(mosquitto.start)
        await eventually(lambda: a.connected and b.connected)
        for t in (a, b):
            assert t.metrics.sample("xon_transport_reconnects_total") == 1
            assert t.metrics.sample("xon_transport_connected") == 1
        # both ends resubscribed: broadcast and inbox work again
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 2})
        assert (await next_message(b)).payload == {"n": 2}
        assert a.node_id is not None
        await b.publish(Channel.INBOX, MessageType.SHARE, {"n": 3}, to=a.node_id)
        assert (await next_message(a)).payload == {"n": 3}


async def test_frames_published_during_an_outage_go_out_after_reconnecting(
    mosquitto: Broker,
) -> None:
    a, _ = pair(mosquitto)
    reader = MqttTransport(
        settings(mosquitto), network=NET, roster=a.roster, channels={Channel.REPORTS}
    )
    async with a:
        async with asyncio.timeout(WAIT):
            await a.wait_connected()
        await asyncio.to_thread(mosquitto.stop)
        await eventually(lambda: not a.connected)
        # queued, not lost: a retained report, so whoever subscribes later still gets it
        sent = await a.publish(Channel.REPORTS, MessageType.FINAL, {"r": 1}, report_kind="PRICES")
        await asyncio.to_thread(mosquitto.start)
        async with reader:
            got = await next_message(reader)
            assert (got.seq, got.payload) == (sent.seq, {"r": 1})


async def test_starts_while_the_broker_is_down_and_connects_when_it_appears(
    mosquitto: Broker,
) -> None:
    await asyncio.to_thread(mosquitto.stop)
    a, b = pair(mosquitto)
    async with a, b:
        await asyncio.sleep(0.2)  # a few failed attempts
        assert not a.connected and not b.connected
        await asyncio.to_thread(mosquitto.start)
        async with asyncio.timeout(WAIT):
            await a.wait_connected()
            await b.wait_connected()
        assert a.metrics.sample("xon_transport_reconnects_total") == 0  # first connection
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 1})
        assert (await next_message(b)).payload == {"n": 1}


async def test_the_outgoing_queue_is_bounded_while_disconnected(mosquitto: Broker) -> None:
    await asyncio.to_thread(mosquitto.stop)
    (a, _) = pair(mosquitto, outgoing_limit=3)
    async with a:
        for n in range(5):
            await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})
        assert a.metrics.sample("xon_messages_published_total", {"type": "observe"}) == 3
        assert (
            a.metrics.sample("xon_messages_dropped_total", {"reason": "outgoing_queue_full"}) == 2
        )


async def test_cancelling_the_owner_stops_every_background_task(mosquitto: Broker) -> None:
    a, b = pair(mosquitto)
    ready = asyncio.Event()

    async def node() -> None:
        async with a:
            await a.wait_connected()
            ready.set()
            await a.receive()  # blocks until cancelled

    owner = asyncio.create_task(node())
    async with asyncio.timeout(WAIT):
        await ready.wait()
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().startswith("xon-mqtt")]
    assert leftovers == []
    assert not a.connected
    # and the transport can be started again afterwards
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(a)
        await stack.enter_async_context(b)
        async with asyncio.timeout(WAIT):
            await a.wait_connected()
            await b.wait_connected()
        await b.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"again": True})
        assert (await next_message(a)).payload == {"again": True}


async def test_leaving_while_disconnected_does_not_hang(mosquitto: Broker) -> None:
    a, _ = pair(mosquitto)
    async with asyncio.timeout(WAIT):  # a hang guard, not a timing assertion
        async with a:
            await a.wait_connected()
            await asyncio.to_thread(mosquitto.stop)
            await eventually(lambda: not a.connected)
            await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"never": "sent"})
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("xon-mqtt")] == []


def test_backoff_grows_with_equal_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, multiplier=2.0)
    rng = random.Random(7)
    for failures, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0), (500, 8.0)]:
        delays = [backoff.delay(failures, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)


async def test_a_clean_exit_flushes_what_was_published(mosquitto: Broker) -> None:
    a, b = pair(mosquitto)
    async with b:
        async with asyncio.timeout(WAIT):
            await b.wait_connected()
        async with a:
            async with asyncio.timeout(WAIT):
                await a.wait_connected()
            for n in range(20):
                await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})
        # a has left; its queue was drained before the connection closed
        assert [(await next_message(b)).payload["n"] for _ in range(20)] == list(range(20))
