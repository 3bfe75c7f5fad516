"""OracleNode in-process: committees of OracleNode instances on a MemoryBus.

Every node runs its real tasks (receive, timer, observe, execute, audit) with its own
SQLite store; only the broker is in-process. Timings are short (ΔRound 0.3 s) and every
wait is bounded by a deadline, never by an assertion on wall time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aggregation.frost import Signature, verify
from aggregation.report import ReportKind, signing_message
from feeds.config import load_default_config
from feeds.errors import FeedError
from oracle.identity import NodeId
from oracle.metrics import NodeMetrics
from oracle.node import FeedsSource, NodeKeys, NodeObservation, ObservationSource, OracleNode
from oracle.protocol.actions import ReportFinalized
from oracle.protocol.config import FeedSpec, Timing
from oracle.protocol.messages import Observation, Share
from oracle.protocol.rules import report_values
from oracle.protocol.sim import Committee, make_committee
from oracle.store import CommitmentStatus, NodeStore
from oracle.transport import Envelope, MemoryBus, MemoryTransport, MessageType, SignedEnvelope
from oracle.transport.envelope import JsonValue, seal
from oracle.transport.topics import Channel, Topics

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "feeds" / "replay" / "default"
NET = "unit"
PRICES = int(ReportKind.PRICES)

TIMING = Timing(
    delta_round=0.3,
    delta_grace=0.05,
    delta_progress=2.0,
    delta_resend=1.0,
    delta_stage=1.0,
    signing_timeout=0.5,
    commitment_ttl=60.0,
    max_observation_age=30.0,
)


# -- helpers -----------------------------------------------------------------------------
class Ramp:
    """Every member sees the same market, moving 1 % every 0.1 s (so every round is due),
    plus a per-member offset of a few units (so medians mean something)."""

    def __init__(self, feeds: Iterable[str], offset: int = 0) -> None:
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


class Static:
    def __init__(self, values: Mapping[str, int]) -> None:
        self.values = dict(values)

    async def observe(self) -> NodeObservation:
        return NodeObservation(self.values)


class Flaky:
    """A source in one of three moods: ``error`` (FeedError), ``hang`` (never answers, so
    the node's own timeout fires) or ``ok`` (a Ramp)."""

    def __init__(self, mood: str, feeds: Iterable[str]) -> None:
        self.mood = mood
        self.calls = 0
        self._ok = Ramp(feeds, offset=7)

    async def observe(self) -> NodeObservation:
        self.calls += 1
        if self.mood == "hang":
            await asyncio.sleep(3600)
        if self.mood == "error":
            raise FeedError("every provider is down")
        return await self._ok.observe()


class RecordingTransport(MemoryTransport):
    """A MemoryTransport that remembers what its node published (type, payload, to)."""

    def __init__(self, bus: MemoryBus, **kwargs: Any) -> None:
        super().__init__(bus, **kwargs)
        self.sent: list[tuple[MessageType, Mapping[str, JsonValue], NodeId | None]] = []

    async def publish(
        self,
        channel: Channel,
        type: MessageType,
        payload: Mapping[str, JsonValue],
        *,
        to: NodeId | None = None,
        report_kind: str | None = None,
        retain: bool | None = None,
    ) -> SignedEnvelope:
        self.sent.append((type, payload, to))
        return await super().publish(
            channel, type, payload, to=to, report_kind=report_kind, retain=retain
        )


@dataclass
class Net:
    committee: Committee
    bus: MemoryBus
    tmp: Path
    finals: list[tuple[NodeId, ReportFinalized]] = field(default_factory=list)
    nodes: dict[NodeId, OracleNode] = field(default_factory=dict)
    transports: dict[NodeId, RecordingTransport] = field(default_factory=dict)

    def node(
        self,
        index: int,
        source: ObservationSource,
        *,
        refresh_s: float = 0.1,
        observe_timeout: float = 120.0,
    ) -> OracleNode:
        member = self.committee.config.members[index]
        node_id = member.node_id
        metrics = NodeMetrics()
        transport = RecordingTransport(
            self.bus,
            network=NET,
            roster=self.committee.config.roster,
            identity=self.committee.identities[node_id],
            metrics=metrics,
        )
        keys = NodeKeys(
            self.committee.identities[node_id],
            self.committee.dealer.key_packages[member.frost_id],
            self.committee.dealer.public_key_package,
        )
        node = OracleNode(
            self.committee.config,
            keys,
            transport,
            self.store_path(index),
            source,
            metrics=metrics,
            refresh_s=refresh_s,
            observe_timeout=observe_timeout,
            on_finalized=lambda action: self.finals.append((node_id, action)),
        )
        self.nodes[node_id] = node
        self.transports[node_id] = transport
        return node

    def store_path(self, index: int) -> Path:
        return self.tmp / f"node-{index + 1}.sqlite"

    def rounds(self, node: NodeId | None = None) -> set[tuple[int, int]]:
        return {(a.epoch, a.round) for n, a in self.finals if node is None or n == node}

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            # Polling: the predicates look at several things (finals, calls, stores).
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.02)


def make_net(n: int, tmp: Path, feeds: Iterable[FeedSpec] | None = None) -> Net:
    committee = make_committee(
        n, timing=TIMING, network=NET, feeds=tuple(feeds) if feeds is not None else None
    )
    return Net(committee, MemoryBus(), tmp)


@asynccontextmanager
async def running(*nodes: OracleNode) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for node in nodes:
            await stack.enter_async_context(node)
        yield


def assert_finals_verify(net: Net) -> None:
    config = net.committee.config
    group_key = net.committee.dealer.public_key_package.group_key
    by_round: dict[tuple[int, int], set[bytes]] = {}
    for _, final in net.finals:
        message = signing_message(config.chain_id, config.verifying_contract, final.report_bytes)
        assert message == final.digest
        assert verify(group_key, message, Signature.decode(final.signature))
        by_round.setdefault((final.epoch, final.round), set()).add(final.report_bytes)
    assert all(len(reports) == 1 for reports in by_round.values()), "two reports for a round"


def count_shares(sent: Iterable[tuple[MessageType, object, object]]) -> int:
    return sum(type_ is MessageType.SHARE for type_, _, _ in sent)


def store_rows(path: Path, query: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(query).fetchall())
    finally:
        conn.close()


# -- happy paths -------------------------------------------------------------------------
async def test_seven_nodes_finalize_reports_that_verify_under_the_group_key(
    tmp_path: Path,
) -> None:
    net = make_net(7, tmp_path)
    feeds = net.committee.config.feeds_by_name
    nodes = [net.node(i, Ramp(feeds, offset=i)) for i in range(7)]
    async with running(*nodes):
        # Every member saw at least three FINALs (each member's own view, not just the leader).
        await net.wait_for(lambda: all(len(net.rounds(n.node_id)) >= 3 for n in nodes))
        status = nodes[0].status()
    assert_finals_verify(net)
    leader = net.committee.config.leader(1)
    assert status.epoch == 1 and status.leader == leader
    assert status.last_reports["prices"].values.keys() == set(feeds)
    assert {m.node_id for m in status.members} == set(net.committee.config.by_node)
    assert all(m.credibility.rounds >= 1 for m in status.members)
    assert status.rounds_finalized >= 3
    leader_node = net.nodes[leader]
    assert leader_node.metrics.sample("xon_rounds_started_total") >= 3
    assert leader_node.metrics.sample("xon_round_latency_seconds_count") >= 3
    # Every FINAL each node saw is in its store, with the same digest.
    for index, node in enumerate(nodes):
        rows = store_rows(
            net.store_path(index), "SELECT epoch, round, digest FROM committed_reports"
        )
        seen = {(a.epoch, a.round): a.digest for n, a in net.finals if n == node.node_id}
        assert {(int(e), int(r)): bytes(d) for e, r, d in rows} == seen


async def test_four_nodes_on_replayed_feeds_finalize_the_recorded_values(
    tmp_path: Path, replayed: NodeObservation
) -> None:
    feeds = load_default_config().feeds
    # Replayed values never move, so only the heartbeat makes a feed due: 1 s here.
    specs = [FeedSpec(f.id, f.decimals, f.deviation_bps, heartbeat_s=1) for f in feeds]
    net = make_net(4, tmp_path, specs)
    nodes = [net.node(i, Static(replayed.values)) for i in range(4)]
    async with running(*nodes):
        await net.wait_for(lambda: len(net.rounds()) >= 2)
    assert_finals_verify(net)
    for _, final in net.finals:
        values = report_values(final.report)
        assert values and values.items() <= replayed.values.items()
    first = min(net.finals, key=lambda item: (item[1].epoch, item[1].round))[1]
    assert report_values(first.report) == dict(replayed.values)  # nothing committed yet


# -- failures that must not stop the node ------------------------------------------------
async def test_malformed_frames_are_dropped_counted_and_rounds_go_on(tmp_path: Path) -> None:
    net = make_net(4, tmp_path)
    feeds = net.committee.config.feeds_by_name
    nodes = [net.node(i, Ramp(feeds, offset=i)) for i in range(4)]
    config = net.committee.config
    topics = Topics(NET)
    liar = config.members[3].node_id
    async with running(*nodes):
        await net.wait_for(lambda: len(net.rounds()) >= 1)
        # Garbage bytes (dropped by the transport), and frames that a member really signed
        # but whose payloads are nonsense (the core names the member as the culprit).
        net.bus.inject(topics.consensus, b"\x00not a frame")
        bad: list[tuple[MessageType, dict[str, JsonValue]]] = [
            (MessageType.PROPOSE, {"e": 1}),
            (MessageType.SHARE, {"e": "x", "r": 1, "session": 0, "share": "0x00"}),
            (MessageType.COMMITMENTS, {"batch": 7}),
            (MessageType.FINAL, {"e": 1, "r": 1, "report": "0x00", "signature": "0x00"}),
        ]
        for type_, payload in bad:
            frame = seal(
                Envelope(NET, type_, liar, time.time_ns(), payload),
                net.committee.identities[liar],
            ).frame
            net.bus.inject(topics.consensus, frame)
        before = len(net.rounds())
        await net.wait_for(lambda: len(net.rounds()) >= before + 2)
        assert all(node.running for node in nodes)
    assert_finals_verify(net)
    observer = nodes[0]
    assert observer.metrics.sample("xon_messages_dropped_total", {"reason": "malformed"}) >= 1
    assert (
        observer.metrics.sample("xon_misbehaviour_total", {"member": liar, "kind": "malformed"})
        >= 3
    )
    liar_status = next(m for m in observer.status().members if m.node_id == liar)
    assert liar_status.misbehaviour.get("malformed", 0) >= 3


async def test_failing_and_hanging_sources_are_counted_and_the_committee_goes_on(
    tmp_path: Path,
) -> None:
    net = make_net(4, tmp_path)
    feeds = net.committee.config.feeds_by_name
    failing, hanging = Flaky("error", feeds), Flaky("hang", feeds)
    nodes = [
        net.node(0, Ramp(feeds)),
        net.node(1, Ramp(feeds, offset=1)),
        net.node(2, failing, refresh_s=0.1),
        net.node(3, hanging, observe_timeout=0.2),
    ]
    # With two members silent, 2f + 1 = 3 observations are impossible: f = 1 tolerates one.
    # So give the hanging one a working source after a while — it must recover on its own.
    async with running(*nodes):
        await net.wait_for(lambda: failing.calls >= 3 and hanging.calls >= 2)
        assert nodes[2].status().observation is None
        hanging.mood = "ok"  # the provider is back: the next refresh must pick it up
        await net.wait_for(lambda: len(net.rounds()) >= 2)
        assert all(node.running for node in nodes)
    assert_finals_verify(net)
    assert nodes[2].metrics.sample("xon_observation_failures_total", {"reason": "error"}) >= 3
    assert nodes[3].metrics.sample("xon_observation_failures_total", {"reason": "timeout"}) >= 1


# -- restarts and sign protection --------------------------------------------------------
async def test_a_restarted_node_withdraws_its_old_commitments_and_never_double_signs(
    tmp_path: Path,
) -> None:
    net = make_net(4, tmp_path)
    feeds = net.committee.config.feeds_by_name
    config = net.committee.config
    leader = config.leader(1)
    # Three of the four members run, so t = 3 means every signing session needs the victim:
    # it must sign before its crash, while signing, and again after its restart.
    others = [i for i, m in enumerate(config.members) if m.node_id != leader]
    victim_index, absent = others[0], others[1]
    victim = config.members[victim_index].node_id
    present = [i for i in range(4) if i not in (victim_index, absent)]
    nodes = [net.node(i, Ramp(feeds, offset=i)) for i in present]
    async with running(*nodes):
        first = net.node(victim_index, Ramp(feeds, offset=9))
        first_sent = net.transports[victim].sent
        async with first:
            await net.wait_for(lambda: len(net.rounds(victim)) >= 2)
            # Leave as soon as it has released a share of the next round: cancellation
            # strikes between two actions, wherever the executor is.
            shares = sum(t is MessageType.SHARE for t, _, _ in first_sent)
            await net.wait_for(
                lambda: sum(t is MessageType.SHARE for t, _, _ in first_sent) > shares
            )
        stopped_at = time.time()
        with pytest.raises(RuntimeError, match="runs once"):
            await first.__aenter__()  # a restart is a new node, built from the store
        published_before = {
            bytes(row[0]): str(row[1])
            for row in store_rows(
                net.store_path(victim_index),
                "SELECT commitment_id, status FROM nonce_commitments",
            )
        }
        assert any(s == "published" for s in published_before.values())
        second = net.node(victim_index, Ramp(feeds, offset=9))
        resent = net.transports[victim].sent
        async with second:
            before = len(net.rounds())
            await net.wait_for(
                lambda: (
                    len(net.rounds()) >= before + 2
                    and any(t is MessageType.SHARE for t, _, _ in resent)
                ),
                within=30.0,
            )
    assert_finals_verify(net)
    rows = store_rows(
        net.store_path(victim_index),
        "SELECT commitment_id, status, closed_at FROM nonce_commitments",
    )
    after = {bytes(r[0]): (str(r[1]), r[2]) for r in rows}
    for cid, status in published_before.items():
        if status == "published":
            # Its nonce died with the first incarnation: withdrawn, never consumed later.
            assert after[cid][0] == CommitmentStatus.INVALIDATED
        else:
            assert after[cid][0] == status
            assert float(after[cid][1]) <= stopped_at
    # The second incarnation signed, with commitments it published itself.
    assert any(s == "consumed" and cid not in published_before for cid, (s, _) in after.items())
    # On the wire: one share per (epoch, round, session) across both incarnations.
    sent = [Share.from_payload(p) for t, p, _ in first_sent + resent if t is MessageType.SHARE]
    keys = [(s.epoch, s.round, s.session) for s in sent]
    assert len(keys) == len(set(keys))
    # And every (epoch, round) it released a share for holds exactly the finalized digest
    # whenever that round finalized.
    signed = {
        (int(e), int(r)): bytes(d)
        for e, r, d in store_rows(
            net.store_path(victim_index),
            f"SELECT epoch, round, digest FROM sign_protection WHERE kind = {PRICES}",
        )
    }
    finals = {(a.epoch, a.round): a.digest for _, a in net.finals}
    assert {(s.epoch, s.round) for s in sent} <= signed.keys()
    assert all(signed[k] == finals[k] for k in signed.keys() & finals.keys())


async def test_a_refused_sign_record_keeps_the_share_unsent(tmp_path: Path) -> None:
    net = make_net(4, tmp_path)
    feeds = net.committee.config.feeds_by_name
    config = net.committee.config
    # The lowest FROST id after the leader: the leader's first choice of co-signer.
    victim_index = next(i for i, m in enumerate(config.members) if m.node_id != config.leader(1))
    victim = config.members[victim_index].node_id
    # Pretend an earlier run of this node promised other digests for the first rounds of
    # epoch 1 (and round 50, the newest, which the core itself is told about): the store is
    # the last line of defence for the early rounds. Several of them, because a round can
    # be abandoned while the four nodes are still starting (too few observations), and the
    # test needs one that is not.
    promised = range(1, 11)
    with NodeStore(net.store_path(victim_index)) as store:
        for round_ in (*promised, 50):
            store.record_signing(PRICES, 1, round_, bytes([round_]) * 32)
    nodes = [net.node(i, Ramp(feeds, offset=i)) for i in range(4)]
    victim_node = net.nodes[victim]

    def refusals() -> float:
        return victim_node.metrics.sample("xon_sign_refusals_total", {"reason": "double_sign"})

    def a_promised_round_finished() -> bool:
        return refusals() >= 1 and any((1, r) in net.rounds() for r in promised)

    async with running(*nodes):
        # A promised round needs a second signer set after the refusal: give a loaded CI
        # machine room (a bound, not a timing assertion).
        await net.wait_for(lambda: a_promised_round_finished() and len(net.rounds()) >= 3, 60)
    assert_finals_verify(net)
    shares = [
        Share.from_payload(p) for t, p, _ in net.transports[victim].sent if t is MessageType.SHARE
    ]
    # The leader asked it first: the store refused, nothing went out for a promised round,
    # and another signer set finished the round.
    assert not [s for s in shares if s.epoch == 1 and s.round in promised]
    assert refusals() >= 1
    rows = store_rows(
        net.store_path(victim_index),
        "SELECT round, digest FROM sign_protection WHERE epoch = 1 AND round <= 10",
    )
    assert {(int(r), bytes(d)) for r, d in rows} == {(r, bytes([r]) * 32) for r in promised}


async def test_the_leader_audits_each_observation_once_and_a_resent_one_is_no_conflict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = make_net(4, tmp_path)
    config = net.committee.config
    leader = config.leader(1)
    leader_index = next(i for i, m in enumerate(config.members) if m.node_id == leader)
    member = next(m.node_id for m in config.members if m.node_id != leader)
    nodes = [net.node(i, Ramp(config.feeds_by_name, offset=i)) for i in range(4)]
    caplog.set_level("INFO", logger="xon.node")
    async with running(*nodes):
        await net.wait_for(lambda: len(net.rounds()) >= 2)
        transport = net.transports[member]
        payload = next(p for t, p, to in transport.sent if t is MessageType.OBSERVATION)
        # The same observation in a new envelope (new seq, new signature): what a member
        # sends when the leader re-sends OBSERVE. Then a different one for that round.
        await transport.publish(Channel.INBOX, MessageType.OBSERVATION, payload, to=leader)
        original = Observation.from_payload(payload)
        forged: dict[str, JsonValue] = {
            **payload,
            "values": {name: str(value + 1) for name, value in original.values},
        }
        await transport.publish(Channel.INBOX, MessageType.OBSERVATION, forged, to=leader)
        await net.wait_for(lambda: "node.audit_conflict" in caplog.text)
    conflicts = [r for r in caplog.records if r.getMessage().startswith("node.audit_conflict")]
    assert len(conflicts) == 1  # the forged one only
    rows = store_rows(
        net.store_path(leader_index),
        "SELECT payload FROM observations "
        f"WHERE sender = '{member}' AND epoch = {payload['e']} AND round = {payload['r']}",
    )
    assert len(rows) == 1  # the first signed copy is the one kept


# -- the feeds source --------------------------------------------------------------------
@pytest.fixture(scope="module")
def replayed() -> NodeObservation:
    """The shipped recording, observed once through FeedsSource (outside any event loop
    test: parsing every provider body is a few hundred ms of CPU)."""

    async def observe_twice() -> tuple[NodeObservation, NodeObservation]:
        async with FeedsSource(load_default_config(), replay_dir=REPLAY, environ={}) as source:
            return await source.observe(), await source.observe()

    first, second = asyncio.run(observe_twice())
    # The second call re-serves the same observation (a recording answers once).
    assert second.values == first.values and second.snapshot_hashes == first.snapshot_hashes
    return first


def test_feeds_source_maps_feed_observations_to_fixed_point_values(
    replayed: NodeObservation,
) -> None:
    feeds = {f.id: f for f in load_default_config().feeds}
    assert set(replayed.values) == set(feeds)  # the recording covers every default feed
    # 8-decimal fixed point, as the feeds pipeline computed it (xon feeds check --replay).
    assert replayed.values["H100-SXM/USD-HR"] == 3_74000000
    assert replayed.values["H100-SXM/USD"] == 27750_00000000
    assert 0 < len(replayed.snapshot_hashes) <= 64
    assert all(len(h) == 32 for h in replayed.snapshot_hashes)
