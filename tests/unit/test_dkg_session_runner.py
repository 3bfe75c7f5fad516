"""``run_dkg`` over the in-process transport: lossy links, staggered starts, silence,
the overall bound and cancellation."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack

import pytest

from oracle.dkg_runner import run_dkg
from oracle.dkg_session import DkgResult, DkgSession, DkgSessionConfig, DkgTimeout
from oracle.identity import IdentityKey, Roster
from oracle.transport import Channel, Faults, MemoryBus, MemoryTransport, MessageType

NET = "dkg-runner"


def committee(n: int, seed: int) -> list[IdentityKey]:
    return [IdentityKey(b"\x03" + random.Random(seed * 100 + i).randbytes(31)) for i in range(n)]


def config(keys: list[IdentityKey], t: int, *, timeout: float = 10.0) -> DkgSessionConfig:
    return DkgSessionConfig(
        network=NET,
        roster=Roster.of(*keys),
        threshold=t,
        label=b"runner-test",
        timeout=timeout,
        resend_interval=0.1,
        dispute_window=0.5,
    )


def session(cfg: DkgSessionConfig, key: IdentityKey, seed: int) -> DkgSession:
    return DkgSession(cfg, key.node_id, random.Random(f"{seed}-{key.node_id}").randbytes)


async def member(
    bus: MemoryBus, cfg: DkgSessionConfig, key: IdentityKey, *, delay: float = 0.0
) -> DkgResult:
    await asyncio.sleep(delay)
    transport = bus.transport(network=NET, roster=cfg.roster, identity=key)
    async with transport:
        return await run_dkg(transport, session(cfg, key, 1), linger=0.3)


async def test_lossy_delayed_links_complete_with_one_key() -> None:
    keys = committee(4, seed=1)
    cfg = config(keys, 3)
    bus = MemoryBus(Faults(drop=0.2, delay=(0.0, 0.02), reorder=0.1), seed=3)
    async with asyncio.timeout(20):
        results = await asyncio.gather(*(member(bus, cfg, k) for k in keys))
    assert bus.stats.dropped > 0
    assert len({r.group_key.encode() for r in results}) == 1
    assert sorted(r.identifier for r in results) == [1, 2, 3, 4]


async def test_members_starting_at_different_times_complete() -> None:
    keys = committee(3, seed=2)
    cfg = config(keys, 2)
    bus = MemoryBus()
    async with asyncio.timeout(20):
        results = await asyncio.gather(
            *(member(bus, cfg, k, delay=0.25 * i) for i, k in enumerate(keys))
        )
    assert len({r.group_key.encode() for r in results}) == 1


async def test_member_that_never_starts_is_named_by_the_others() -> None:
    keys = committee(3, seed=3)
    cfg = config(keys, 2, timeout=0.6)
    bus = MemoryBus()
    absent = keys[2]

    async def expect_timeout(key: IdentityKey) -> DkgTimeout:
        with pytest.raises(DkgTimeout) as caught:
            await member(bus, cfg, key)
        return caught.value

    async with asyncio.timeout(10):
        errors = await asyncio.gather(*(expect_timeout(k) for k in keys[:2]))
    assert all(e.silent == (absent.node_id,) for e in errors)


async def test_overall_time_limit_names_the_silent_members() -> None:
    keys = committee(3, seed=4)
    cfg = config(keys, 2, timeout=60.0)
    bus = MemoryBus()
    transport = bus.transport(network=NET, roster=cfg.roster, identity=keys[0])
    async with transport:
        with pytest.raises(DkgTimeout) as caught:
            await run_dkg(transport, session(cfg, keys[0], 1), time_limit=0.3, linger=0)
    assert set(caught.value.silent) == {keys[1].node_id, keys[2].node_id}


async def test_cancellation_stops_the_run_and_leaves_the_transport_usable() -> None:
    keys = committee(3, seed=5)
    cfg = config(keys, 2)
    bus = MemoryBus()
    async with AsyncExitStack() as stack:
        transports: list[MemoryTransport] = [
            await stack.enter_async_context(
                bus.transport(network=NET, roster=cfg.roster, identity=k)
            )
            for k in keys[:2]
        ]
        task = asyncio.create_task(run_dkg(transports[0], session(cfg, keys[0], 1)))
        await asyncio.sleep(0.3)  # the third member never shows up: it is waiting
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The transport still works for whatever the caller does next.
        await transports[0].publish(Channel.CONSENSUS, MessageType.OBSERVE, {"after": 1})
        async with asyncio.timeout(5):
            while True:
                received = await transports[1].receive()
                if received.type is MessageType.OBSERVE:
                    break
        assert received.payload == {"after": 1}
