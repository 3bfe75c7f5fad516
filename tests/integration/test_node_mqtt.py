"""Seven OracleNodes over a real mosquitto, each with its own MQTT client, and a broker that
is killed and restarted in the middle of the run.

What must hold: reports finalize before the outage and again after it; every FINAL verifies
under the group key; no two different reports finalize for one (epoch, round); no store
holds a sign-protection digest for a finalized round other than the finalized one; all
stores agree on every committed report. Waits are bounded; nothing asserts wall time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from aggregation.frost import Signature, verify
from aggregation.report import signing_message
from oracle.identity import NodeId
from oracle.metrics import NodeMetrics
from oracle.node import NodeKeys, NodeObservation, OracleNode
from oracle.protocol.actions import ReportFinalized
from oracle.protocol.config import Timing
from oracle.protocol.sim import Committee, make_committee
from oracle.transport import Backoff, MqttSettings, MqttTransport
from tests.conftest import Broker

pytestmark = pytest.mark.integration

NET = "node-it"
TIMING = Timing(
    delta_round=0.4,
    delta_grace=0.05,
    delta_progress=3.0,
    delta_resend=1.0,
    delta_stage=1.0,
    signing_timeout=0.6,
    commitment_ttl=120.0,
    max_observation_age=30.0,
)


class Ramp:
    """One market for everyone, 1 % up every 0.1 s (so every round is due), per-node offset."""

    def __init__(self, feeds: Iterable[str], offset: int) -> None:
        self.feeds = sorted(feeds)
        self.offset = offset

    async def observe(self) -> NodeObservation:
        step = int(time.time() * 10) % 40
        return NodeObservation(
            {
                name: 2_00000000 + 2_000_000 * step + 1_000_000 * i + self.offset
                for i, name in enumerate(self.feeds)
            }
        )


def mqtt(broker: Broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        keepalive=5,
        timeout=2.0,
        backoff=Backoff(initial=0.05, maximum=0.3),
        close_flush_timeout=0.5,
    )


def build(
    committee: Committee,
    broker: Broker,
    tmp: Path,
    finals: list[tuple[NodeId, ReportFinalized]],
) -> list[OracleNode]:
    config = committee.config
    nodes = []
    for index, member in enumerate(config.members):
        metrics = NodeMetrics()
        identity = committee.identities[member.node_id]
        transport = MqttTransport(
            mqtt(broker), network=NET, roster=config.roster, identity=identity, metrics=metrics
        )
        keys = NodeKeys(
            identity,
            committee.dealer.key_packages[member.frost_id],
            committee.dealer.public_key_package,
        )
        nodes.append(
            OracleNode(
                config,
                keys,
                transport,
                tmp / f"node-{index + 1}.sqlite",
                Ramp(config.feeds_by_name, offset=index),
                metrics=metrics,
                refresh_s=0.1,
                on_finalized=lambda a, n=member.node_id: finals.append((n, a)),  # type: ignore[misc]
            )
        )
    return nodes


async def eventually(predicate: Callable[[], bool], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        # Polling: the predicates read lists the nodes' callbacks append to.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def rows(path: Path, query: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(query).fetchall())
    finally:
        conn.close()


def check_stores(paths: list[Path], finals: dict[tuple[int, int], bytes]) -> int:
    """Every store's reports and sign-protection records agree with the finalized digests.

    Returns how many (store, round) sign records were compared."""
    committed: dict[tuple[int, int, int], set[bytes]] = {}
    compared = 0
    for path in paths:
        for kind, epoch, round_, digest in rows(
            path, "SELECT kind, epoch, round, digest FROM committed_reports"
        ):
            committed.setdefault((kind, epoch, round_), set()).add(bytes(digest))
        signed = rows(path, "SELECT kind, epoch, round, digest FROM sign_protection")
        assert len({(k, e, r) for k, e, r, _ in signed}) == len(signed)
        for _, epoch, round_, digest in signed:
            final = finals.get((epoch, round_))
            if final is not None:
                compared += 1
                assert bytes(digest) == final, f"{path.name} signed another digest"
    assert all(len(digests) == 1 for digests in committed.values()), "stores disagree"
    return compared


async def test_seven_nodes_finalize_and_survive_a_broker_restart(
    mosquitto: Broker, tmp_path: Path
) -> None:
    committee = make_committee(7, timing=TIMING, network=NET)
    config = committee.config
    finals: list[tuple[NodeId, ReportFinalized]] = []
    nodes = build(committee, mosquitto, tmp_path, finals)

    def rounds(since: float = 0.0) -> set[tuple[int, int]]:
        return {(a.epoch, a.round) for _, a in finals if a.finalized_at >= since}

    async with AsyncExitStack() as stack:
        for node in nodes:
            await stack.enter_async_context(node)
        await eventually(lambda: all(node.status().connected for node in nodes))
        await eventually(lambda: len(rounds()) >= 3)

        await asyncio.to_thread(mosquitto.stop)
        await eventually(lambda: not any(node.status().connected for node in nodes))
        await asyncio.sleep(1.0)  # nodes keep running: timers fire, messages queue up
        assert all(node.running for node in nodes)
        await asyncio.to_thread(mosquitto.start)
        restarted = time.time()

        await eventually(lambda: all(node.status().connected for node in nodes))
        await eventually(lambda: len(rounds(restarted)) >= 3, within=30.0)
        # Every member, not just the leader, sees the new reports.
        await eventually(
            lambda: all(
                any(a.finalized_at >= restarted for n, a in finals if n == node.node_id)
                for node in nodes
            )
        )
        reconnects = [node.metrics.sample("xon_transport_reconnects_total") for node in nodes]
        # Each node noticed the link come back and re-announced its commitments at once.
        resyncs = [node.metrics.sample("xon_resyncs_total") for node in nodes]

    assert all(count >= 1 for count in reconnects)
    assert all(count >= 1 for count in resyncs)
    group_key = committee.dealer.public_key_package.group_key
    digests: dict[tuple[int, int], bytes] = {}
    for _, final in finals:
        message = signing_message(config.chain_id, config.verifying_contract, final.report_bytes)
        assert message == final.digest
        assert verify(group_key, message, Signature.decode(final.signature))
        assert digests.setdefault((final.epoch, final.round), final.digest) == final.digest
    compared = check_stores([tmp_path / f"node-{i + 1}.sqlite" for i in range(7)], digests)
    assert compared >= config.t * 6  # each of the 6+ rounds signed by at least t members
