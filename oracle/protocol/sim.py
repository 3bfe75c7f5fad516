"""A deterministic, seeded N-node simulator for the consensus core (no asyncio).

A virtual clock and one priority queue of events ``(at, seq, event)``: frame deliveries,
node ticks and observation refreshes. Every message goes through the real envelope code:
the sender's action is sealed with its real identity key (:func:`~oracle.transport.envelope.seal`),
the frame travels, and the receiver checks it with its own
:class:`~oracle.transport.envelope.FrameVerifier` (signature, roster, route, replay) before
``receive`` sees it — exactly the checks a transport applies.

Per link (sender → receiver) a :class:`LinkModel` decides, from one seeded
``random.Random``, the delay, loss, duplication, reordering (an extra hold-back) and
*broker replays*: a copy of the frame delivered again much later and checked only with
the stateless :func:`~oracle.transport.envelope.open_frame`, as a receiver that restarted
and lost its replay window would. Same seed, same nodes, same run.

The driver semantics are the production ones: actions run in order; ``RecordSigning`` goes
to a per-node in-memory sign-protection store that refuses a second digest (and then the
rest of the action list is skipped); ``PublishCommitments`` records then broadcasts.

Reusable by ``xon devnet`` (chaos mode) as well as by the tests; the checks
(:meth:`Simulation.safety_violations`) are what the tests assert.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eth_utils.crypto import keccak

from aggregation.frost import DealerOutput, Signature, trusted_dealer_keygen, verify
from aggregation.report import signing_message
from oracle.identity import IdentityKey, NodeId
from oracle.protocol.actions import (
    Action,
    Broadcast,
    EpochChanged,
    Loopback,
    Misbehaviour,
    PublishCommitments,
    RecordSigning,
    ReportFinalized,
    ScheduleTick,
    SendTo,
)
from oracle.protocol.config import FeedSpec, Member, ProtocolConfig, Timing
from oracle.protocol.core import OracleProtocol
from oracle.protocol.messages import Observation, Share
from oracle.protocol.rules import report_values
from oracle.transport.envelope import (
    Envelope,
    FrameVerifier,
    MessageType,
    Rejected,
    SeqCounter,
    SignedEnvelope,
    open_frame,
    seal,
)
from oracle.transport.topics import Topics

__all__ = [
    "SIM_START",
    "Committee",
    "LinkModel",
    "PriceWalk",
    "ProtocolNode",
    "SignEvent",
    "Simulation",
    "make_committee",
]

log = logging.getLogger("xon.protocol.sim")

SIM_START = 1_700_000_000.0  # virtual clock origin (unix seconds)


class ProtocolNode(Protocol):
    """What the simulator drives: :class:`OracleProtocol` or a faulty wrapper of it."""

    @property
    def node_id(self) -> NodeId: ...

    def start(self, now: float) -> list[Action]: ...

    def receive(self, envelope: SignedEnvelope, now: float) -> list[Action]: ...

    def tick(self, now: float) -> list[Action]: ...

    def set_observation(
        self, values: Mapping[str, int], timestamp: int, snapshot_hashes: Sequence[bytes] = ()
    ) -> None: ...


@dataclass(frozen=True)
class LinkModel:
    """Fault model of one directed link; probabilities in [0, 1], times in seconds."""

    delay: tuple[float, float] = (0.005, 0.05)
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # probability of an extra hold-back of up to reorder_window
    reorder_window: float = 0.2
    replay: float = 0.0  # probability of a broker replay much later (stateless receiver)
    replay_delay: tuple[float, float] = (1.0, 20.0)

    def __post_init__(self) -> None:
        for p in (self.drop, self.duplicate, self.reorder, self.replay):
            if not 0.0 <= p <= 1.0:
                raise ValueError("LinkModel probabilities must be in [0, 1]")
        if not 0 <= self.delay[0] <= self.delay[1]:
            raise ValueError("LinkModel.delay must be a range 0 <= low <= high")


# -- committee setup ---------------------------------------------------------------------
@dataclass(frozen=True)
class Committee:
    config: ProtocolConfig
    identities: Mapping[NodeId, IdentityKey]
    dealer: DealerOutput

    def node(self, index: int) -> NodeId:
        """The member with FROST identifier ``index + 1``."""
        return self.config.members[index].node_id

    def protocol(
        self, node: NodeId, seed: int = 0, *, incarnation: int = 0, **kwargs: object
    ) -> OracleProtocol:
        """A core for ``node``. Its randomness is seeded per (seed, incarnation, member): a
        restarted node must get a new ``incarnation``, or it would draw the same nonces
        again — the very reuse that leaks a key share (sims only; real nodes use an OS RNG).
        """
        member = self.config.by_node[node]
        rng = random.Random(f"{seed}/{incarnation}/{member.frost_id}").randbytes
        return OracleProtocol(
            self.config,
            node,
            self.dealer.key_packages[member.frost_id],
            self.dealer.public_key_package,
            rng,
            **kwargs,  # type: ignore[arg-type]
        )


def sim_dealer(n: int, t: int, seed: int = 0) -> DealerOutput:
    """Trusted-dealer keys from a seeded generator (tests only: never for real keys)."""
    return trusted_dealer_keygen(n, t, random.Random(f"dealer/{seed}/{n}/{t}").randbytes)


def make_committee(
    n: int,
    *,
    f: int | None = None,
    t: int | None = None,
    seed: int = 0,
    dealer: DealerOutput | None = None,
    timing: Timing | None = None,
    feeds: Sequence[FeedSpec] | None = None,
    network: str = "sim",
) -> Committee:
    """A committee of ``n`` with deterministic identity keys (FROST ids 1..n)."""
    f = (n - 1) // 3 if f is None else f
    t = 2 * f + 1 if t is None else t
    t = max(t, 2)
    dealer = dealer or sim_dealer(n, t, seed)
    identities: dict[NodeId, IdentityKey] = {}
    members: list[Member] = []
    for i in range(1, n + 1):
        key = IdentityKey(keccak(f"xon-sim/{seed}/{i}".encode()))
        identities[key.node_id] = key
        members.append(Member(key.node_id, i, key.public_key))
    config = ProtocolConfig(
        network=network,
        chain_id=31337,
        verifying_contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
        config_digest=keccak(f"xon-sim/config/{seed}/{n}".encode()),
        members=tuple(members),
        f=f,
        t=t,
        feeds=tuple(feeds)
        if feeds is not None
        else (
            FeedSpec("H100-SXM/USD-HR", deviation_bps=50, heartbeat_s=30),
            FeedSpec("A100-SXM/USD-HR", deviation_bps=50, heartbeat_s=30),
        ),
        timing=timing
        or Timing(
            delta_round=1.0,
            delta_grace=0.1,
            delta_progress=5.0,
            delta_resend=5.0,
            delta_stage=2.0,
            signing_timeout=0.5,
            commitment_ttl=120.0,
            max_observation_age=30.0,
        ),
        commitment_batch=8,
        commitment_low_water=4,
    )
    return Committee(config, identities, dealer)


class PriceWalk:
    """A seeded random walk per feed; each node observes it with its own small noise."""

    def __init__(
        self,
        feeds: Iterable[str],
        *,
        seed: int = 0,
        start: int = 2_50000000,
        step_bps: int = 40,
        noise_bps: int = 10,
    ) -> None:
        self._rng = random.Random(f"walk/{seed}")
        self._noise = random.Random(f"noise/{seed}")
        self._step_bps = step_bps
        self._noise_bps = noise_bps
        self.prices = {name: start + 1_000_000 * i for i, name in enumerate(feeds)}

    def step(self) -> None:
        for name, price in self.prices.items():
            move = self._rng.randint(-self._step_bps, self._step_bps)
            self.prices[name] = max(1, price + price * move // 10_000)

    def observe(self, node: NodeId) -> dict[str, int]:
        del node  # every honest node sees the same market with independent noise
        result = {}
        for name, price in self.prices.items():
            jitter = self._noise.randint(-self._noise_bps, self._noise_bps)
            result[name] = price + price * jitter // 10_000
        return result


# -- records -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignEvent:
    node: NodeId
    kind: int
    epoch: int
    round: int
    digest: bytes
    at: float


@dataclass
class _SimStore:
    """The node store's sign protection, in memory, with the same refusal rule."""

    signed: dict[tuple[int, int, int], bytes] = field(default_factory=dict)
    published: set[bytes] = field(default_factory=set)
    consumed: set[bytes] = field(default_factory=set)

    def record_signing(self, action: RecordSigning) -> bool:
        key = (action.kind, action.epoch, action.round)
        existing = self.signed.get(key)
        if existing is not None and existing != action.digest:
            return False
        cid = action.commitment_id
        if cid is not None and (cid not in self.published or cid in self.consumed):
            return False
        self.signed[key] = action.digest
        if cid is not None:
            self.consumed.add(cid)
        return True


@dataclass
class SimStats:
    sent: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    replayed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    store_refusals: int = 0


# -- the simulation ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Delivery:
    recipient: NodeId
    topic: str
    frame: bytes
    replay: bool = False  # a broker replay: stateless checks only


@dataclass(frozen=True)
class _Tick:
    node: NodeId


@dataclass(frozen=True)
class _Feed:
    pass


_Event = _Delivery | _Tick | _Feed


class Simulation:
    def __init__(
        self,
        committee: Committee,
        nodes: Mapping[NodeId, ProtocolNode],
        *,
        seed: int = 0,
        link: LinkModel | None = None,
        links: Mapping[tuple[NodeId, NodeId], LinkModel] | None = None,
        walk: PriceWalk | None = None,
        observe_every: float = 0.5,
        start: float = SIM_START,
    ) -> None:
        self.committee = committee
        self.config = committee.config
        self.nodes = dict(nodes)
        self.now = start
        self._rng = random.Random(f"net/{seed}")
        self._link = link or LinkModel()
        self._links = dict(links or {})
        self._topics = Topics(self.config.network)
        self._verifiers = {
            node: FrameVerifier(self.config.network, self.config.roster, me=node)
            for node in self.nodes
        }
        self._seq = {node: SeqCounter(clock=lambda: 0) for node in self.nodes}
        self._stores = {node: _SimStore() for node in self.nodes}
        self._queue: list[tuple[float, int, _Event]] = []
        self._counter = itertools.count()
        self._lanes: dict[tuple[NodeId, NodeId, str], float] = {}
        self._pending_ticks: dict[NodeId, set[float]] = {node: set() for node in self.nodes}
        self.walk = walk or PriceWalk(self.config.feeds_by_name, seed=seed)
        self._observe_every = observe_every
        self.stats = SimStats()
        self.finals: list[tuple[NodeId, ReportFinalized]] = []
        self.signings: list[SignEvent] = []
        self.misbehaviour: list[tuple[NodeId, Misbehaviour]] = []
        self.epoch_changes: list[tuple[NodeId, EpochChanged, float]] = []
        self.observations: dict[tuple[int, int], dict[NodeId, dict[str, int]]] = {}
        self.shares_sent: list[tuple[NodeId, int, int, int]] = []
        self._started = False
        self._incarnations: dict[NodeId, int] = {}

    # -- driving -------------------------------------------------------------------------
    def _push(self, at: float, event: _Event) -> None:
        heapq.heappush(self._queue, (at, next(self._counter), event))

    def start(self) -> None:
        self._started = True
        self._feed()
        for node_id, node in self.nodes.items():
            self._execute(node_id, node.start(self.now))

    def run(self, duration: float) -> None:
        """Advance the virtual clock by ``duration`` seconds, processing every event."""
        if not self._started:
            self.start()
        end = self.now + duration
        self._push(self.now + self._observe_every, _Feed())
        steps = 0
        while self._queue and self._queue[0][0] <= end:
            at, _, event = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            steps += 1
            if steps > 5_000_000:
                raise RuntimeError("simulation does not converge (event storm)")
            if isinstance(event, _Delivery):
                self._deliver(event)
            elif isinstance(event, _Tick):
                self._pending_ticks[event.node].discard(at)
                self._execute(event.node, self.nodes[event.node].tick(self.now))
            else:
                self._feed()
                if self.now + self._observe_every <= end:
                    self._push(self.now + self._observe_every, _Feed())
        self.now = end
        # Drop the feed events beyond the horizon; a later run() schedules its own.
        self._queue = [e for e in self._queue if not isinstance(e[2], _Feed)]
        heapq.heapify(self._queue)

    def _feed(self) -> None:
        self.walk.step()
        digest = hashlib.sha256(repr(sorted(self.walk.prices.items())).encode()).digest()
        for node_id, node in self.nodes.items():
            node.set_observation(self.walk.observe(node_id), int(self.now), (digest,))

    # -- actions -------------------------------------------------------------------------
    def _execute(self, node_id: NodeId, actions: Sequence[Action]) -> None:
        store = self._stores[node_id]
        for action in actions:
            if isinstance(action, RecordSigning):
                self.signings.append(
                    SignEvent(
                        node_id, action.kind, action.epoch, action.round, action.digest, self.now
                    )
                )
                if not store.record_signing(action):
                    self.stats.store_refusals += 1
                    log.warning("sim.store_refused node=%s action=%s", node_id, action)
                    return  # the driver skips the rest of the list
            elif isinstance(action, PublishCommitments):
                store.published.update(action.commitment_ids)
                self._send(node_id, MessageType.COMMITMENTS, action.payload, None)
            elif isinstance(action, Broadcast):
                self._send(node_id, action.type, action.payload, None)
            elif isinstance(action, SendTo):
                self._send(node_id, action.type, action.payload, action.to)
            elif isinstance(action, Loopback):
                self._send(node_id, action.type, action.payload, node_id, loopback=True)
            elif isinstance(action, ReportFinalized):
                self.finals.append((node_id, action))
            elif isinstance(action, Misbehaviour):
                self.misbehaviour.append((node_id, action))
            elif isinstance(action, EpochChanged):
                self.epoch_changes.append((node_id, action, self.now))
            elif isinstance(action, ScheduleTick):
                at = max(action.at, self.now)
                pending = self._pending_ticks[node_id]
                if at not in pending:
                    pending.add(at)
                    self._push(at, _Tick(node_id))

    def _send(
        self,
        sender: NodeId,
        type_: MessageType,
        payload: Mapping[str, object],
        to: NodeId | None,
        *,
        loopback: bool = False,
    ) -> None:
        envelope = Envelope(
            net=self.config.network,
            type=type_,
            sender=sender,
            seq=self._seq[sender].next(),
            payload=payload,  # type: ignore[arg-type]
            to=to,
        )
        frame = seal(envelope, self.committee.identities[sender]).frame
        self.stats.sent[type_.value] += 1
        if type_ is MessageType.OBSERVATION:
            observation = Observation.from_payload(envelope.payload)
            per_round = self.observations.setdefault((observation.epoch, observation.round), {})
            per_round.setdefault(sender, observation.value_map())
        elif type_ is MessageType.SHARE:
            share = Share.from_payload(envelope.payload)
            self.shares_sent.append((sender, share.epoch, share.round, share.session))
        if loopback:
            self._push(self.now, _Delivery(sender, self._topics.inbox(sender), frame))
            return
        if to is None:
            topic = self._topics.consensus
            recipients = [node for node in self.nodes if node != sender]
        else:
            topic = self._topics.inbox(to)
            recipients = [to] if to in self.nodes else []
        for recipient in recipients:
            self._transmit(sender, recipient, topic, frame)

    def _transmit(self, sender: NodeId, recipient: NodeId, topic: str, frame: bytes) -> None:
        link = self._links.get((sender, recipient), self._link)
        rng = self._rng
        if rng.random() < link.drop:
            self.stats.dropped += 1
            return
        copies = 2 if rng.random() < link.duplicate else 1
        self.stats.duplicated += copies - 1
        lane = (sender, recipient, topic)
        for _ in range(copies):
            at = self.now + rng.uniform(*link.delay)
            if rng.random() < link.reorder:
                at += rng.uniform(0, link.reorder_window)
            else:
                # A broker keeps one publisher's order within a topic; only the reorder
                # fault breaks it (the receiver then drops the overtaken frame as replayed).
                at = max(at, self._lanes.get(lane, 0.0))
                self._lanes[lane] = at
            self._push(at, _Delivery(recipient, topic, frame))
        if rng.random() < link.replay:
            self.stats.replayed += 1
            later = self.now + rng.uniform(*link.replay_delay)
            self._push(later, _Delivery(recipient, topic, frame, replay=True))

    def _deliver(self, event: _Delivery) -> None:
        recipient, topic, frame = event.recipient, event.topic, event.frame
        if event.replay:
            # A broker replay to a receiver that lost its replay window: stateless checks only.
            opened = open_frame(frame, network=self.config.network, roster=self.config.roster)
            if isinstance(opened, Rejected):
                self.stats.rejected[opened.reason.value] += 1
                return
            if opened.to not in (None, recipient):
                self.stats.rejected["misdirected"] += 1
                return
            envelope: SignedEnvelope = opened
        else:
            verified = self._verifiers[recipient].verify(frame, topic)
            if isinstance(verified, Rejected):
                self.stats.rejected[verified.reason.value] += 1
                return
            envelope = verified
        self.stats.delivered += 1
        self._execute(recipient, self.nodes[recipient].receive(envelope, self.now))

    def restart(
        self,
        node_id: NodeId,
        factory: Callable[[OracleProtocol], ProtocolNode] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        """Crash ``node_id`` and start a fresh process in its place, as a driver would.

        The new core gets what the node store kept — the sign-protection records and the
        ids of the commitments it published but never consumed (to withdraw) — and nothing
        else: nonces, views, votes and the transport's replay window are lost.
        """
        store = self._stores[node_id]
        records = [
            SignEvent(node_id, kind, epoch, round, digest, self.now)
            for (kind, epoch, round), digest in store.signed.items()
        ]
        withdrawn = sorted(store.published - store.consumed)
        store.consumed.update(withdrawn)  # invalidate_all_unconsumed()
        self._incarnations[node_id] = self._incarnations.get(node_id, 0) + 1
        core = self.committee.protocol(
            node_id,
            seed,
            incarnation=self._incarnations[node_id],
            signed=records,
            invalidated_commitments=withdrawn,
        )
        self.nodes[node_id] = factory(core) if factory is not None else core
        self._verifiers[node_id] = FrameVerifier(
            self.config.network, self.config.roster, me=node_id
        )
        self._pending_ticks[node_id] = set()
        self._execute(node_id, self.nodes[node_id].start(self.now))

    # -- checks ----------------------------------------------------------------------------
    def finalized_rounds(self) -> set[tuple[int, int]]:
        return {(a.epoch, a.round) for _, a in self.finals}

    def safety_violations(self, honest: Iterable[NodeId]) -> list[str]:
        """Every invariant the protocol promises, checked over the whole run."""
        honest = set(honest)
        problems: list[str] = []
        group_key = self.committee.dealer.public_key_package.group_key
        config = self.config
        by_round: dict[tuple[int, int], set[bytes]] = {}
        for node, final in self.finals:
            message = signing_message(
                config.chain_id, config.verifying_contract, final.report_bytes
            )
            if message != final.digest or not verify(
                group_key, message, Signature.decode(final.signature)
            ):
                problems.append(f"{node}: FINAL ({final.epoch}, {final.round}) does not verify")
                continue
            by_round.setdefault((final.epoch, final.round), set()).add(final.report_bytes)
            honest_values = {
                n: v
                for n, v in self.observations.get((final.epoch, final.round), {}).items()
                if n in honest
            }
            for name, value in report_values(final.report).items():
                column = [values[name] for values in honest_values.values() if name in values]
                if not column or not min(column) <= value <= max(column):
                    span = (min(column), max(column)) if column else None
                    problems.append(
                        f"({final.epoch}, {final.round}) {name}={value} outside honest {span}"
                    )
        threshold_unique = config.t * 2 > config.n + config.f
        for round_key, reports in by_round.items():
            if len(reports) > 1 and threshold_unique:
                problems.append(f"two different reports finalized for {round_key}")
        signed: dict[tuple[NodeId, int, int, int], set[bytes]] = {}
        for event in self.signings:
            if event.node in honest:
                signed.setdefault((event.node, event.kind, event.epoch, event.round), set()).add(
                    event.digest
                )
        for key, digests in signed.items():
            if len(digests) > 1:
                problems.append(f"honest {key[0]} signed {len(digests)} digests for {key[1:]}")
        return problems

    def epochs_reached(self, honest: Iterable[NodeId]) -> int:
        """The highest epoch any honest node entered."""
        honest = set(honest)
        return max((ev.epoch for node, ev, _ in self.epoch_changes if node in honest), default=1)


def honest_nodes(committee: Committee, faulty: Iterable[NodeId]) -> list[NodeId]:
    bad = set(faulty)
    return [m.node_id for m in committee.config.members if m.node_id not in bad]


def default_nodes(
    committee: Committee,
    *,
    seed: int = 0,
    wrap: Mapping[NodeId, Callable[[OracleProtocol], ProtocolNode]] | None = None,
) -> dict[NodeId, ProtocolNode]:
    """One :class:`OracleProtocol` per member, optionally wrapped (faulty members)."""
    nodes: dict[NodeId, ProtocolNode] = {}
    for member in committee.config.members:
        core = committee.protocol(member.node_id, seed)
        wrapper = (wrap or {}).get(member.node_id)
        nodes[member.node_id] = wrapper(core) if wrapper is not None else core
    return nodes
