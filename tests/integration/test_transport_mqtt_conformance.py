"""One conformance suite for every Transport: the in-process bus and MQTT on a real mosquitto.

Each test runs twice (``[memory]`` and ``[mqtt]``); the MQTT run starts its own broker on a
free port (the ``mosquitto`` fixture). Waits are bounded by ``asyncio.timeout`` and poll
briefly; nothing asserts wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiomqtt
import pytest

from oracle.errors import FrameTooLarge, ReadOnlyTransport, TransportClosed
from oracle.identity import IdentityKey, Roster
from oracle.metrics import NodeMetrics
from oracle.transport import (
    Backoff,
    Channel,
    MemoryBus,
    MemoryTransport,
    MessageType,
    MqttSettings,
    MqttTransport,
    Received,
    Topics,
    Transport,
    signing_domain,
)
from tests.conftest import Broker

NET = "conformance"
TOPICS = Topics(NET)
MAX_FRAME = 8 * 1024
WAIT = 5.0  # generous upper bound for any single wait; typical waits are milliseconds


@dataclass
class Network:
    kind: str
    keys: list[IdentityKey]
    roster: Roster
    make_transport: Callable[[IdentityKey | None, Collection[Channel] | None], Transport]
    inject: Callable[[str, bytes], Awaitable[None]]
    outsider: IdentityKey

    def make(
        self, identity: IdentityKey | None, channels: Collection[Channel] | None = None
    ) -> Transport:
        return self.make_transport(identity, channels)


def mqtt_settings(broker: Broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        keepalive=5,
        timeout=3.0,
        backoff=Backoff(initial=0.05, maximum=0.3),
        max_frame=MAX_FRAME,
    )


@pytest.fixture(params=["memory", pytest.param("mqtt", marks=pytest.mark.integration)])
async def network(request: pytest.FixtureRequest) -> AsyncIterator[Network]:
    keys = [IdentityKey.generate() for _ in range(3)]
    roster = Roster.of(*keys)
    outsider = IdentityKey.generate()
    if request.param == "memory":
        bus = MemoryBus()

        def make_memory(
            identity: IdentityKey | None, channels: Collection[Channel] | None
        ) -> Transport:
            return MemoryTransport(
                bus,
                network=NET,
                roster=roster,
                identity=identity,
                channels=channels,
                max_frame=MAX_FRAME,
            )

        async def inject_memory(topic: str, frame: bytes) -> None:
            bus.inject(topic, frame)

        yield Network("memory", keys, roster, make_memory, inject_memory, outsider)
        return

    broker: Broker = request.getfixturevalue("mosquitto")
    settings = mqtt_settings(broker)

    def make_mqtt(identity: IdentityKey | None, channels: Collection[Channel] | None) -> Transport:
        return MqttTransport(
            settings, network=NET, roster=roster, identity=identity, channels=channels
        )

    async def inject_mqtt(topic: str, frame: bytes) -> None:
        # A raw client, not ours: the broker forwards whatever it is given.
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as raw:
            await raw.publish(topic, frame, qos=1)

    yield Network("mqtt", keys, roster, make_mqtt, inject_mqtt, outsider)


async def started(stack: AsyncExitStack, *transports: Transport) -> None:
    for transport in transports:
        await stack.enter_async_context(transport)
    async with asyncio.timeout(WAIT):
        for transport in transports:
            await transport.wait_connected()


async def next_message(transport: Transport) -> Received:
    async with asyncio.timeout(WAIT):
        return await transport.receive()


async def eventually(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        # Polling: counters and broker state have no event to wait on.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def metrics_of(transport: Transport) -> NodeMetrics:
    metrics = getattr(transport, "metrics", None)
    assert isinstance(metrics, NodeMetrics)
    return metrics


def dropped(transport: Transport, reason: str) -> float:
    return metrics_of(transport).sample("xon_messages_dropped_total", {"reason": reason})


async def test_broadcast_reaches_every_other_node_but_not_the_sender(network: Network) -> None:
    a, b, c = (network.make(key) for key in network.keys)
    async with AsyncExitStack() as stack:
        await started(stack, a, b, c)
        sent = await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"epoch": 1, "round": 1})
        for receiver in (b, c):
            got = await next_message(receiver)
            assert (got.sender, got.seq, got.type, got.payload) == (
                a.node_id,
                sent.seq,
                MessageType.OBSERVE,
                {"epoch": 1, "round": 1},
            )
            assert got.frame == sent.frame and got.topic == TOPICS.consensus
        await b.publish(Channel.CONSENSUS, MessageType.OBSERVATION, {"from": "b"})
        # a's first message is b's: a never got its own broadcast back
        got = await next_message(a)
        assert (got.sender, got.payload) == (b.node_id, {"from": "b"})
        assert (await next_message(c)).payload == {"from": "b"}


async def test_inbox_reaches_only_its_node(network: Network) -> None:
    a, b, c = (network.make(key) for key in network.keys)
    async with AsyncExitStack() as stack:
        await started(stack, a, b, c)
        assert b.node_id is not None
        await a.publish(Channel.INBOX, MessageType.SHARE, {"share": "0x01"}, to=b.node_id)
        got = await next_message(b)
        assert (got.type, got.to, got.topic) == (
            MessageType.SHARE,
            b.node_id,
            TOPICS.inbox(b.node_id),
        )
        await a.publish(Channel.CONSENSUS, MessageType.NEWEPOCH, {"epoch": 2})
        assert (await next_message(c)).type is MessageType.NEWEPOCH  # c never saw the share
        assert (await next_message(b)).type is MessageType.NEWEPOCH


async def test_retained_reports_give_a_late_subscriber_the_latest_per_kind(
    network: Network,
) -> None:
    leader = network.make(network.keys[0])
    early = network.make(None)  # read-only: reports only
    async with AsyncExitStack() as stack:
        await started(stack, leader, early)
        for kind, version in (("PRICES", 1), ("PRICES", 2), ("UPTIME", 1)):
            await leader.publish(
                Channel.REPORTS, MessageType.FINAL, {"v": version}, report_kind=kind
            )
        # the early subscriber saw all three live, so the broker has them
        live = [await next_message(early) for _ in range(3)]
        assert [m.payload["v"] for m in live] == [1, 2, 1]
        assert not any(m.retained for m in live)

        late = network.make(None, {Channel.REPORTS})
        await started(stack, late)
        retained = {}
        for _ in range(2):
            got = await next_message(late)
            assert got.retained and got.type is MessageType.FINAL
            retained[got.topic] = got.payload
        assert retained == {TOPICS.report("PRICES"): {"v": 2}, TOPICS.report("UPTIME"): {"v": 1}}
        await leader.publish(Channel.REPORTS, MessageType.FINAL, {"v": 3}, report_kind="PRICES")
        got = await next_message(late)  # not PRICES v1: only the last one was retained
        assert (got.payload, got.retained) == ({"v": 3}, False)


async def test_hostile_frames_are_dropped_and_counted(network: Network) -> None:
    alice, bob, carol = network.keys
    a, b = network.make(alice), network.make(bob)
    domain = signing_domain(NET)

    def body(**fields: object) -> bytes:
        document: dict[str, object] = {
            "net": NET,
            "payload": {},
            "sender": alice.node_id,
            "seq": 1,
            "to": None,
            "type": "observe",
            "v": 1,
        }
        document.update(fields)
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    async with AsyncExitStack() as stack:
        await started(stack, a, b)
        legit = await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 0})
        assert (await next_message(b)).seq == legit.seq
        to_carol = alice.sign(domain, body(seq=legit.seq + 10, to=carol.node_id))
        hostile = {
            "oversized": b"\x00" * (MAX_FRAME + 100),
            "unsigned": b"\x00" * 65 + body(),
            "forged": network.outsider.sign(domain, body()) + body(),
            "outsider": network.outsider.sign(domain, body(sender=network.outsider.node_id))
            + body(sender=network.outsider.node_id),
            "wrong_net": alice.sign(domain, body(net="othernet", seq=2**40))
            + body(net="othernet", seq=2**40),
            "garbage_json": alice.sign(domain, b"{not json") + b"{not json",
            "replay": legit.frame,
            "misrouted": to_carol + body(seq=legit.seq + 10, to=carol.node_id),
        }
        for frame in hostile.values():
            await network.inject(TOPICS.consensus, frame)
        expected = {
            "oversized": 1.0,
            "bad_signature": 2.0,
            "unknown_sender": 1.0,
            "wrong_network": 1.0,
            "malformed": 1.0,
            "duplicate": 1.0,
            "misdirected": 1.0,
        }
        await eventually(lambda: all(dropped(b, r) >= n for r, n in expected.items()))
        assert {r: dropped(b, r) for r in expected} == expected
        marker = await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": "marker"})
        got = await next_message(b)  # nothing hostile was delivered in between
        assert (got.seq, got.payload) == (marker.seq, {"n": "marker"})
        received = metrics_of(b).sample("xon_messages_received_total", {"type": "observe"})
        assert received == 2.0
        assert metrics_of(a).sample("xon_messages_published_total", {"type": "observe"}) == 2.0


async def test_read_only_transports_refuse_to_publish(network: Network) -> None:
    reader = network.make(None)
    async with AsyncExitStack() as stack:
        await started(stack, reader)
        assert reader.node_id is None
        with pytest.raises(ReadOnlyTransport):
            await reader.publish(Channel.REPORTS, MessageType.FINAL, {}, report_kind="PRICES")
    with pytest.raises(ValueError):
        network.make(None, {Channel.INBOX})


async def test_publish_checks_size_and_destination_before_sending(network: Network) -> None:
    a, b = network.make(network.keys[0]), network.make(network.keys[1])
    async with AsyncExitStack() as stack:
        await started(stack, a, b)
        with pytest.raises(FrameTooLarge) as info:
            await a.publish(Channel.CONSENSUS, MessageType.PROPOSE, {"pad": "x" * MAX_FRAME})
        assert info.value.limit == MAX_FRAME and info.value.size > MAX_FRAME
        with pytest.raises(ValueError):
            await a.publish(Channel.INBOX, MessageType.SHARE, {})  # no recipient
        with pytest.raises(ValueError):
            await a.publish(Channel.CONSENSUS, MessageType.SHARE, {}, to=b.node_id)
        assert metrics_of(a).sample("xon_messages_published_total", {"type": "propose"}) == 0
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"ok": True})
        assert (await next_message(b)).payload == {"ok": True}


async def test_lifecycle_closed_transport_and_cancelled_receivers(network: Network) -> None:
    a, b = network.make(network.keys[0]), network.make(network.keys[1])
    with pytest.raises(TransportClosed):
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {})
    async with AsyncExitStack() as stack:
        await started(stack, a, b)
        # a receiver cancelled while waiting leaves the transport usable
        waiting = asyncio.create_task(b.receive())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"after": "cancel"})
        assert (await next_message(b)).payload == {"after": "cancel"}

        collected: list[Received] = []

        async def consume() -> None:
            async for message in b:
                collected.append(message)

        consumer = asyncio.create_task(consume())
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 1})
        await eventually(lambda: len(collected) == 1)
    # leaving the context ends the iteration instead of hanging it
    async with asyncio.timeout(WAIT):
        await consumer
    with pytest.raises(TransportClosed):
        await b.receive()
    assert not a.connected and not b.connected

    class Boom(Exception):
        pass

    # the body's own exception comes out as itself, not wrapped in an ExceptionGroup
    with pytest.raises(Boom):
        async with a:
            raise Boom
