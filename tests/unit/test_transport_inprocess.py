"""The in-process bus: fault injection (seeded), link cuts, and bus-specific lifecycle.

The behaviour it shares with MQTT is covered by the conformance suite
(tests/integration/test_transport_mqtt_conformance.py, ``[memory]`` runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from oracle.errors import TransportError
from oracle.identity import IdentityKey, NodeId, Roster
from oracle.transport import Channel, Faults, MemoryBus, MemoryTransport, MessageType, Received

NET = "sim"
KEYS = [IdentityKey(bytes([i]) * 32) for i in range(1, 5)]
ROSTER = Roster.of(*KEYS)
WAIT = 5.0


def nodes(bus: MemoryBus, count: int = 2) -> list[MemoryTransport]:
    return [bus.transport(network=NET, roster=ROSTER, identity=key) for key in KEYS[:count]]


async def collect_until(
    transport: MemoryTransport, done: Callable[[list[Received]], bool]
) -> list[Received]:
    """Poll ``transport`` until ``done(messages so far)``; bounded by WAIT."""
    got: list[Received] = []
    async with asyncio.timeout(WAIT):
        while not done(got):
            await asyncio.sleep(0.005)  # delayed deliveries have no outside event
            got.extend(drain(transport))
    return got


def drain(transport: MemoryTransport) -> list[Received]:
    """Everything already queued for ``transport``, without waiting."""
    out: list[Received] = []
    while (message := transport.receive_nowait()) is not None:
        out.append(message)
    return out


def dropped(transport: MemoryTransport, reason: str) -> float:
    return transport.metrics.sample("xon_messages_dropped_total", {"reason": reason})


async def run_lossy(seed: int) -> list[int]:
    """Which of 40 broadcasts survive a 50% drop rate, for one seed."""
    bus = MemoryBus(Faults(drop=0.5), seed=seed)
    a, b = nodes(bus)
    async with a, b:
        for n in range(40):
            await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})
        return [int(m.payload["n"]) for m in drain(b)]  # type: ignore[call-overload]


async def test_faults_are_reproducible_from_the_seed() -> None:
    first, again, other = await run_lossy(1), await run_lossy(1), await run_lossy(2)
    assert first == again
    assert first != other
    assert 0 < len(first) < 40


async def test_drop_all_and_no_faults() -> None:
    bus = MemoryBus(Faults(drop=1.0))
    a, b = nodes(bus)
    async with a, b:
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {})
        assert drain(b) == []
        assert bus.stats.dropped == 1
        bus.faults = Faults()  # faults can change mid-run
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"ok": 1})
        assert [m.payload for m in drain(b)] == [{"ok": 1}]


async def test_duplicates_reach_the_receiver_once_and_are_counted() -> None:
    bus = MemoryBus(Faults(duplicate=1.0))
    a, b = nodes(bus)
    async with a, b:
        for n in range(3):
            await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})
        assert [m.payload["n"] for m in drain(b)] == [0, 1, 2]
        assert dropped(b, "duplicate") == 3
        assert bus.stats.duplicated == 3


async def test_delayed_messages_arrive_later() -> None:
    bus = MemoryBus(Faults(delay=(0.01, 0.03)), seed=3)
    a, b = nodes(bus)
    async with a, b:
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 0})
        assert drain(b) == []  # not yet: it is in flight
        got = await collect_until(b, lambda got: len(got) == 1)
        assert got[0].payload == {"n": 0}
        assert bus.stats.delayed == 1


async def test_reordered_frames_are_either_in_order_or_dropped_as_replayed() -> None:
    bus = MemoryBus(Faults(reorder=0.5, reorder_window=0.2), seed=11)
    a, b = nodes(bus)
    async with a, b:
        sent = [
            (await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})).seq
            for n in range(30)
        ]
        got = await collect_until(b, lambda got: len(got) + dropped(b, "replayed") == len(sent))
        seqs = [m.seq for m in got]
        assert seqs == sorted(seqs) and set(seqs) <= set(sent)
        assert dropped(b, "replayed") > 0  # the seed does reorder some


async def test_a_link_filter_partitions_the_network() -> None:
    cut: set[tuple[NodeId | None, NodeId | None]] = set()
    bus = MemoryBus(link_filter=lambda pub, sub, topic: (pub, sub) not in cut)
    a, b, c = nodes(bus, 3)
    async with a, b, c:
        cut.add((a.node_id, b.node_id))
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 1})
        assert drain(b) == [] and len(drain(c)) == 1
        assert bus.stats.cut == 1
        cut.clear()
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": 2})
        assert [m.payload for m in drain(b)] == [{"n": 2}]


async def test_retained_report_can_be_cleared_and_raw_injection_reaches_subscribers() -> None:
    bus = MemoryBus()
    (leader,) = nodes(bus, 1)
    async with leader:
        await leader.publish(Channel.REPORTS, MessageType.FINAL, {"v": 1}, report_kind="PRICES")
    bus.inject("xon/sim/reports/PRICES", b"", retain=True)  # MQTT: empty retained = clear
    reader = bus.transport(network=NET, roster=ROSTER)
    async with reader:
        assert drain(reader) == []
        bus.inject("xon/sim/reports/PRICES", b"junk")
        assert drain(reader) == [] and dropped(reader, "malformed") == 1


async def test_lifecycle_is_not_reentrant_and_pending_deliveries_die_with_it() -> None:
    bus = MemoryBus(Faults(delay=(0.5, 0.5)))
    a, b = nodes(bus)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(a)
        await stack.enter_async_context(b)
        with pytest.raises(TransportError):
            await a.__aenter__()
        await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {})
    # b closed with a delivery still pending: no task is left behind
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("xon-memory")] == []
    assert not a.connected and not b.connected


async def test_a_slow_consumer_loses_new_messages_not_memory() -> None:
    bus = MemoryBus()
    a = bus.transport(network=NET, roster=ROSTER, identity=KEYS[0])
    b = MemoryTransport(bus, network=NET, roster=ROSTER, identity=KEYS[1], incoming_limit=2)
    async with a, b:
        for n in range(3):
            await a.publish(Channel.CONSENSUS, MessageType.OBSERVE, {"n": n})
        assert [m.payload["n"] for m in drain(b)] == [0, 1]
        assert dropped(b, "incoming_queue_full") == 1
