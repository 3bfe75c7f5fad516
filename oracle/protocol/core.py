"""The consensus node: one sans-io object per member (see docs/protocol.md).

::

    node = OracleProtocol(config, me, key_package, public_key_package, rng,
                          signed=[store.highest_signed(ReportKind.PRICES)],
                          invalidated_commitments=[c.commitment_id for c in
                                                   store.invalidate_all_unconsumed()])
    actions = node.start(now)
    node.set_observation(values, timestamp, snapshot_hashes)   # whenever feeds produce one
    actions = node.receive(envelope, now)                     # every verified envelope
    actions = node.tick(now)                                  # at ScheduleTick.at (or more often)

The object plays every role at once: pacemaker member, follower of the current leader,
and — when ``leader(epoch)`` is this node — the round's leader and FROST coordinator.
It does no I/O and reads no clock: ``now`` (seconds, the same clock as observation
timestamps) and randomness (``rng``) come in, a list of actions comes out; the driver
executes them in order (see :mod:`oracle.protocol.actions`). Nothing a peer sends can make
it raise: a bad message becomes a ``Misbehaviour`` action and is otherwise ignored.
``ProtocolStateError`` (a ``LocalProtocolError``) means the caller or this code is wrong.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

from aggregation.errors import CryptoError, EncodingError
from aggregation.frost import (
    FrostError,
    KeyPackage,
    PublicKeyPackage,
    Rng,
    Signature,
    SignatureShare,
    SigningContext,
    SigningPackage,
    aggregate,
    decode_scalar,
    encode_scalar,
    sign,
    verify,
    verify_signature_share,
)
from aggregation.report import Report, ReportKind, signing_message
from oracle.identity import NodeId
from oracle.protocol.actions import (
    EMPTY_PROPOSAL,
    Action,
    Broadcast,
    Loopback,
    Misbehaviour,
    RecordSigning,
    ReportFinalized,
    ScheduleTick,
    SendTo,
)
from oracle.protocol.config import MAX_ROUND, ProtocolConfig
from oracle.protocol.credibility import CredibilityScore, CredibilityTracker
from oracle.protocol.errors import MisbehaviourKind, ProtocolFault, ProtocolStateError
from oracle.protocol.messages import (
    MAX_JUSTIFYING_FINALS,
    MAX_OBSERVATION_FRAME,
    PROPOSE_OBSERVATIONS_BUDGET,
    Commitments,
    FinalReport,
    Message,
    NewEpoch,
    Observation,
    Observe,
    Payload,
    Propose,
    Share,
    SignerEntry,
    decode_message,
)
from oracle.protocol.nonces import CommitmentBook, NoncePool
from oracle.protocol.pacemaker import Pacemaker
from oracle.protocol.roast import Session, SigningRound
from oracle.protocol.rules import (
    CommittedValue,
    due_feeds,
    make_report,
    observations_timestamp,
    quorum_medians,
    report_values,
)
from oracle.protocol.states import (
    FOLLOWER_TRANSITIONS,
    LEADER_TRANSITIONS,
    EpochPhase,
    FollowerPhase,
    LeaderPhase,
    StateMachine,
)
from oracle.transport.envelope import MessageType, Rejected, SignedEnvelope, open_frame

__all__ = ["OracleProtocol", "SigningRecord"]

log = logging.getLogger("xon.protocol")

_PRICES: Final = int(ReportKind.PRICES)
_KEPT_ROUNDS: Final = 64  # per-round views kept in the current epoch
_FUTURE_PER_SENDER: Final = 4  # buffered messages for a later epoch, per sender
_RELIABILITY_ALPHA: Final = 0.2
_FRAME_CACHE: Final = 1024


class SigningRecord(Protocol):
    """A persisted sign-protection row (``oracle.store.SignedRound`` fits)."""

    @property
    def kind(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def round(self) -> int: ...
    @property
    def digest(self) -> bytes: ...


@dataclass
class _LeaderRound:
    epoch: int
    round: int
    started_at: float
    observe_deadline: float
    machine: StateMachine[LeaderPhase] = field(
        default_factory=lambda: StateMachine(
            "leader round", LeaderPhase.OBSERVING, LEADER_TRANSITIONS
        )
    )
    observations: dict[NodeId, tuple[Observation, bytes]] = field(default_factory=dict)
    grace_deadline: float = float("inf")
    resend_at: float = float("inf")  # re-broadcast OBSERVE once if no quorum by then
    signing: SigningRound | None = None

    @property
    def phase(self) -> LeaderPhase:
        return self.machine.state

    @property
    def done(self) -> bool:
        return self.phase in (LeaderPhase.FINALIZED, LeaderPhase.EMPTY, LeaderPhase.ABANDONED)


_NO_PROPOSAL: Final = object()


@dataclass
class _RoundView:
    """One (epoch, round) as a member sees it."""

    epoch: int
    round: int
    machine: StateMachine[FollowerPhase] = field(
        default_factory=lambda: StateMachine("round view", FollowerPhase.NEW, FOLLOWER_TRANSITIONS)
    )
    observe_at: float | None = None
    answer: Payload | None = None
    proposal: object = _NO_PROPOSAL  # bytes (report) | None (empty) once a PROPOSE arrived
    propose_frame: bytes | None = None
    expect_progress: bool | None = None  # did the leader include every feed we consider due?
    sessions: dict[int, tuple[NodeId, ...]] = field(default_factory=dict)
    signed_sessions: int = 0

    @property
    def phase(self) -> FollowerPhase:
        return self.machine.state

    def move(self, phase: FollowerPhase) -> None:
        if self.machine.state is not phase or self.machine.can(phase):
            self.machine.move(phase)


class _Out:
    """Actions of one call: plain ones first, then sign-guarded pairs, then the tick hint."""

    def __init__(self) -> None:
        self.plain: list[Action] = []
        self.guarded: list[Action] = []

    def finish(self, next_tick: float) -> list[Action]:
        actions = self.plain + self.guarded
        if next_tick != float("inf"):
            actions.append(ScheduleTick(next_tick))
        return actions


class OracleProtocol:
    """One committee member's consensus state machine (sans-io)."""

    def __init__(
        self,
        config: ProtocolConfig,
        me: NodeId,
        key_package: KeyPackage,
        public_key_package: PublicKeyPackage,
        rng: Rng,
        *,
        signed: Iterable[SigningRecord | None] = (),
        invalidated_commitments: Iterable[bytes] = (),
        committed: Mapping[str, CommittedValue] | None = None,
    ) -> None:
        member = config.by_node.get(me)
        if member is None:
            raise ValueError(f"{me} is not a committee member")
        if key_package.identifier != member.frost_id:
            raise ValueError("the key package's identifier is not this member's FROST id")
        if key_package.group_key != public_key_package.group_key:
            raise ValueError("key package and public key package disagree on the group key")
        if public_key_package.threshold != config.t or key_package.threshold != config.t:
            raise ValueError("the FROST threshold differs from the configured t")
        if set(public_key_package.verifying_shares) != set(config.by_frost_id):
            raise ValueError("the public key package does not cover exactly the members")
        self._config = config
        self._me = me
        self._key_package = key_package
        self._public = public_key_package
        self._group_key = public_key_package.group_key
        self._signed: dict[tuple[int, int, int], bytes] = {}
        for record in signed:
            if record is not None:
                self._signed[(record.kind, record.epoch, record.round)] = bytes(record.digest)
        start_epoch = max([e for k, e, _ in self._signed if k == _PRICES] + [1])
        self._pacemaker = Pacemaker(config, me, start_epoch)
        self._pool = NoncePool(config, key_package, rng)
        self._book = CommitmentBook(config)
        self._withdraw = tuple(invalidated_commitments)
        self._committed: dict[str, CommittedValue] = dict(committed or {})
        # The FINALs (report, signature) that set the committed values: justifications.
        self._sources: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._observation: Observation | None = None
        self._views: dict[tuple[int, int], _RoundView] = {}
        self._leader_round: _LeaderRound | None = None
        self._next_round = 1
        self._next_round_at = float("inf")
        self._finalized: deque[tuple[int, int]] = deque(maxlen=_KEPT_ROUNDS)
        self._future: dict[NodeId, deque[tuple[int, SignedEnvelope]]] = {}
        self._frame_cache: dict[bytes, tuple[NodeId, Observation]] = {}
        self._credibility = CredibilityTracker(m.node_id for m in config.members)
        self._reliability: dict[NodeId, float] = {m.node_id: 1.0 for m in config.members}
        # Until when a share of ours may still be collected, and for which (epoch, round):
        # nonce top-ups for low water wait meanwhile (NoncePool.maintain).
        self._share_in_flight_until = 0.0
        self._share_round = (0, 0)
        self._invalid_shares: dict[NodeId, int] = {m.node_id: 0 for m in config.members}
        self._started = False
        self._out = _Out()

    # -- read-only view ----------------------------------------------------------------
    @property
    def node_id(self) -> NodeId:
        return self._me

    @property
    def config(self) -> ProtocolConfig:
        return self._config

    @property
    def epoch(self) -> int:
        return self._pacemaker.epoch

    @property
    def leader(self) -> NodeId:
        return self._pacemaker.leader

    @property
    def is_leader(self) -> bool:
        return self.leader == self._me

    @property
    def epoch_phase(self) -> EpochPhase:
        return self._pacemaker.phase

    @property
    def leader_phase(self) -> LeaderPhase | None:
        return None if self._leader_round is None else self._leader_round.phase

    def round_phase(self, epoch: int, round: int) -> FollowerPhase | None:
        view = self._views.get((epoch, round))
        return None if view is None else view.phase

    @property
    def committed(self) -> Mapping[str, CommittedValue]:
        return MappingProxyType(self._committed)

    @property
    def unused_commitments(self) -> int:
        return len(self._pool)

    def signed_digest(self, epoch: int, round: int) -> bytes | None:
        return self._signed.get((_PRICES, epoch, round))

    def credibility(self) -> dict[NodeId, CredibilityScore]:
        signing = {m: (self._reliability[m], self._invalid_shares[m]) for m in self._reliability}
        return self._credibility.scores(signing)

    # -- inputs ----------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """Publish fresh commitments (withdrawing the pre-restart ones), enter the epoch."""
        if self._started:
            raise ProtocolStateError("start() called twice")
        self._started = True
        out = self._begin()
        out.plain.append(self._pool.publish(now, invalidate=self._withdraw))
        self._withdraw = ()
        out.plain += self._pacemaker.start(now)
        self._enter_epoch(now)
        return self._end(now)

    def set_observation(
        self, values: Mapping[str, int], timestamp: int, snapshot_hashes: Sequence[bytes] = ()
    ) -> None:
        """This node's latest values (fixed-point ints per feed name) for the next OBSERVE."""
        unknown = set(values) - set(self._config.feeds_by_name)
        if unknown:
            raise ValueError(f"unknown feeds {sorted(unknown)}")
        # Validated through the wire type, so what we sign is what peers will accept.
        observation = Observation(1, 1, timestamp, tuple(values.items()), tuple(snapshot_hashes))
        Observation.from_payload(observation.to_payload())
        self._observation = observation

    def receive(self, envelope: SignedEnvelope, now: float) -> list[Action]:
        """Handle one envelope the transport verified (signature, roster, network)."""
        self._require_started()
        self._begin()
        sender = envelope.sender
        if sender not in self._config.by_node:
            log.debug("protocol.drop reason=not_member sender=%s", sender)
            return self._end(now)
        try:
            message = decode_message(envelope.type, envelope.payload)
        except EncodingError as exc:
            self._fault(sender, MisbehaviourKind.MALFORMED, str(exc), evidence=envelope.frame)
            return self._end(now)
        self._dispatch(sender, message, envelope, now)
        return self._end(now)

    def tick(self, now: float) -> list[Action]:
        """Run every timer that is due at ``now``."""
        self._require_started()
        self._begin()
        epoch = self._pacemaker.epoch
        self._out.plain += self._pacemaker.tick(now)
        if self._pacemaker.epoch != epoch:
            self._enter_epoch(now)
        for message in self._pool.announcements(now):
            self._out.plain.append(Broadcast(Commitments.TYPE, message.to_payload()))
        self._book.expire(now)
        self._leader_timers(now)
        return self._end(now)

    def resync(self, now: float) -> list[Action]:
        """The transport is back after a break: whatever it carried meanwhile may be lost.

        Re-announce our commitments now rather than at the next ΔResend (a leader that
        missed our last batch cannot put us in a signer set), and, as a leader still
        collecting observations, ask for them again now. Everything else heals by itself:
        signing sessions time out into new signer sets and the pacemaker moves on.
        """
        self._require_started()
        self._begin()
        self._pool.announce_soon(now)
        lr = self._leader_round
        if self.is_leader and lr is not None and lr.phase is LeaderPhase.OBSERVING:
            lr.resend_at = now
        log.info("protocol.resync epoch=%d", self._pacemaker.epoch)
        return self._end(now)  # the next deadline is now: the tick sends both

    # -- plumbing --------------------------------------------------------------------
    def _require_started(self) -> None:
        if not self._started:
            raise ProtocolStateError("call start() first")

    def _begin(self) -> _Out:
        self._out = _Out()
        return self._out

    def _end(self, now: float) -> list[Action]:
        # Top up as soon as a PROPOSE drained the pool below low water, not at the next
        # tick: a leader can only pick members whose commitments it has. While a share of
        # ours is being collected the top-up waits for the FINAL (or the leader's signing
        # timeout), off the round's critical path.
        published = self._pool.maintain(now, signing=now < self._share_in_flight_until)
        if published is not None:
            self._out.plain.append(published)
        return self._out.finish(self._next_deadline(now))

    def _next_deadline(self, now: float) -> float:
        deadlines = [self._pacemaker.next_deadline(), self._pool.next_deadline()]
        if now < self._share_in_flight_until:
            deadlines.append(self._share_in_flight_until)
        lr = self._leader_round
        if self.is_leader:
            if lr is None or lr.done:
                deadlines.append(self._next_round_at)
            elif lr.phase is LeaderPhase.OBSERVING:
                deadlines += [lr.observe_deadline, lr.resend_at]
            elif lr.phase is LeaderPhase.GRACE:
                deadlines.append(lr.grace_deadline)
            elif lr.signing is not None:
                deadlines += [s.deadline for s in lr.signing.sessions if not s.timed_out]
        return max(min(deadlines), now)

    def _fault(
        self,
        culprit: NodeId,
        kind: MisbehaviourKind,
        detail: str,
        *,
        epoch: int | None = None,
        round: int | None = None,
        evidence: object = None,
    ) -> None:
        log.warning(
            "protocol.misbehaviour culprit=%s kind=%s epoch=%s round=%s detail=%s",
            culprit,
            kind,
            epoch,
            round,
            detail[:200],
        )
        self._out.plain.append(Misbehaviour(culprit, kind, detail, epoch, round, evidence))

    def _send(self, to: NodeId, type_: MessageType, payload: Payload) -> Action:
        return Loopback(type_, payload) if to == self._me else SendTo(to, type_, payload)

    def _dispatch(
        self, sender: NodeId, message: Message, envelope: SignedEnvelope, now: float
    ) -> None:
        if isinstance(message, Observe):
            self._on_observe(sender, message, envelope, now)
        elif isinstance(message, Observation):
            self._on_observation(sender, message, envelope, now)
        elif isinstance(message, Propose):
            self._on_propose(sender, message, envelope, now)
        elif isinstance(message, Share):
            self._on_share(sender, message, envelope, now)
        elif isinstance(message, FinalReport):
            self._on_final(sender, message, envelope, now)
        elif isinstance(message, NewEpoch):
            epoch = self._pacemaker.epoch
            self._out.plain += self._pacemaker.on_newepoch(sender, message.epoch, now)
            if self._pacemaker.epoch != epoch:
                self._enter_epoch(now)
        else:
            self._on_commitments(sender, message, envelope, now)

    # -- epochs ----------------------------------------------------------------------
    def _enter_epoch(self, now: float) -> None:
        epoch = self._pacemaker.epoch
        lr = self._leader_round
        if lr is not None and not lr.done:
            lr.machine.move(LeaderPhase.ABANDONED)
        self._leader_round = None
        self._views = {k: v for k, v in self._views.items() if k[0] >= epoch}
        # We never sign in an earlier epoch again, so only the newest record matters there.
        newest = max(self._signed, default=None)
        self._signed = {k: v for k, v in self._signed.items() if k[1] >= epoch or k == newest}
        if self.is_leader:
            signed_rounds = [r for k, e, r in self._signed if k == _PRICES and e == epoch]
            self._next_round = max(signed_rounds, default=0) + 1
            self._next_round_at = now
            self._leader_timers(now)
        else:
            self._next_round_at = float("inf")
        self._replay_future(epoch, now)

    def _buffer_future(self, sender: NodeId, epoch: int, envelope: SignedEnvelope) -> None:
        queue = self._future.setdefault(sender, deque(maxlen=_FUTURE_PER_SENDER))
        queue.append((epoch, envelope))

    def _replay_future(self, epoch: int, now: float) -> None:
        ready: list[SignedEnvelope] = []
        for sender, queue in list(self._future.items()):
            keep = deque(((e, env) for e, env in queue if e > epoch), maxlen=_FUTURE_PER_SENDER)
            ready += [env for e, env in queue if e == epoch]
            if keep:
                self._future[sender] = keep
            else:
                del self._future[sender]
        for envelope in ready:
            try:
                message = decode_message(envelope.type, envelope.payload)
            except EncodingError:  # was decoded once already
                continue
            self._dispatch(envelope.sender, message, envelope, now)

    def _check_leader_message(
        self, sender: NodeId, epoch: int, envelope: SignedEnvelope, what: str
    ) -> bool:
        """True if (sender, epoch) may act as the leader now; buffers/reports otherwise."""
        current = self._pacemaker.epoch
        if epoch > current:
            self._buffer_future(sender, epoch, envelope)
            return False
        if epoch < current:
            return False
        if sender != self._config.leader(epoch):
            self._fault(
                sender,
                MisbehaviourKind.NOT_LEADER,
                f"{what} from a member that is not leader({epoch})",
                epoch=epoch,
                evidence=envelope.frame,
            )
            return False
        return True

    def _view(self, epoch: int, round: int) -> _RoundView:
        key = (epoch, round)
        view = self._views.get(key)
        if view is None:
            view = _RoundView(epoch, round)
            self._views[key] = view
            if len(self._views) > _KEPT_ROUNDS:
                del self._views[min(self._views)]
        return view

    def _stale_round(self, epoch: int, round: int) -> bool:
        """A round older than every round we still keep a view of (in this epoch)."""
        if (epoch, round) in self._views:
            return False
        kept = [r for e, r in self._views if e == epoch]
        return len(kept) >= _KEPT_ROUNDS and round < min(kept)

    # -- follower: OBSERVE -----------------------------------------------------------
    def _on_observe(
        self, sender: NodeId, message: Observe, envelope: SignedEnvelope, now: float
    ) -> None:
        if message.leader != sender:
            self._fault(sender, MisbehaviourKind.MALFORMED, "OBSERVE names another leader")
            return
        if not self._check_leader_message(sender, message.epoch, envelope, "OBSERVE"):
            return
        self._answer_observe(message.epoch, message.round, now)

    def _answer_observe(self, epoch: int, round: int, now: float) -> None:
        if self._stale_round(epoch, round):
            return
        view = self._view(epoch, round)
        leader = self._config.leader(epoch)
        if view.answer is None:
            if self._observation is None or view.phase is not FollowerPhase.NEW:
                return
            observation = Observation(
                epoch,
                round,
                self._observation.timestamp,
                self._observation.values,
                self._observation.snapshot_hashes,
            )
            view.answer = observation.to_payload()
            view.observe_at = now
            view.move(FollowerPhase.OBSERVED)
        # Asked again (the leader lost it): the same observation, never a second one.
        self._out.plain.append(self._send(leader, Observation.TYPE, view.answer))

    # -- leader: rounds ----------------------------------------------------------------
    def _leader_timers(self, now: float) -> None:
        if not self.is_leader:
            return
        lr = self._leader_round
        if lr is not None and not lr.done:
            if lr.phase is LeaderPhase.OBSERVING and now >= lr.observe_deadline:
                log.info(
                    "protocol.round_abandoned epoch=%d round=%d observations=%d",
                    lr.epoch,
                    lr.round,
                    len(lr.observations),
                )
                lr.machine.move(LeaderPhase.ABANDONED)
            elif lr.phase is LeaderPhase.OBSERVING and now >= lr.resend_at:
                # Some OBSERVE or OBSERVATION got lost; members answer again with the same
                # observation, never a second one.
                lr.resend_at = float("inf")
                observe = Observe(lr.epoch, lr.round, self._me)
                self._out.plain.append(Broadcast(Observe.TYPE, observe.to_payload()))
            elif lr.phase is LeaderPhase.GRACE and now >= lr.grace_deadline:
                self._close_observations(lr, now)
            elif lr.phase is LeaderPhase.SIGNING:
                self._signing_timeouts(lr, now)
        lr = self._leader_round
        if (lr is None or lr.done) and now >= self._next_round_at:
            self._start_round(now)

    def _start_round(self, now: float) -> None:
        epoch, round = self._pacemaker.epoch, self._next_round
        if round > MAX_ROUND:
            self._next_round_at = float("inf")  # the pacemaker will move us on
            return
        self._next_round += 1
        timing = self._config.timing
        self._leader_round = _LeaderRound(
            epoch, round, now, now + timing.delta_round, resend_at=now + timing.delta_round / 2
        )
        self._next_round_at = now + timing.delta_round
        log.debug("protocol.round_start epoch=%d round=%d", epoch, round)
        self._out.plain.append(
            Broadcast(Observe.TYPE, Observe(epoch, round, self._me).to_payload())
        )
        self._answer_observe(epoch, round, now)

    def _on_observation(
        self, sender: NodeId, message: Observation, envelope: SignedEnvelope, now: float
    ) -> None:
        lr = self._leader_round
        if (
            lr is None
            or not self.is_leader
            or (message.epoch, message.round) != (lr.epoch, lr.round)
            or lr.phase not in (LeaderPhase.OBSERVING, LeaderPhase.GRACE)
        ):
            return  # late, early or not for us: the broker may deliver anything any time
        if envelope.to != self._me or len(envelope.frame) > MAX_OBSERVATION_FRAME:
            # Followers accept only observations addressed to the leader, within the size
            # cap; embedding anything else would get our PROPOSE refused.
            log.info("protocol.observation_skipped sender=%s reason=route_or_size", sender)
            return
        previous = lr.observations.get(sender)
        if previous is not None:
            if previous[0] != message:
                self._fault(
                    sender,
                    MisbehaviourKind.CONFLICTING_OBSERVATION,
                    "two different observations for one round",
                    epoch=message.epoch,
                    round=message.round,
                    evidence=(previous[1], envelope.frame),
                )
            return
        unknown = {name for name, _ in message.values} - set(self._config.feeds_by_name)
        if unknown:
            self._fault(
                sender,
                MisbehaviourKind.MALFORMED,
                f"observation of unknown feeds {sorted(unknown)[:5]}",
                evidence=envelope.frame,
            )
            return
        timing = self._config.timing
        if not now - timing.max_observation_age <= message.timestamp <= now + timing.max_clock_skew:
            log.info(
                "protocol.observation_skipped sender=%s reason=timestamp ts=%d now=%.0f",
                sender,
                message.timestamp,
                now,
            )
            return
        lr.observations[sender] = (message, envelope.frame)
        count = len(lr.observations)
        if lr.phase is LeaderPhase.OBSERVING and count >= self._config.quorum:
            lr.machine.move(LeaderPhase.GRACE)
            lr.grace_deadline = min(now + timing.delta_grace, lr.observe_deadline)
        if lr.phase is LeaderPhase.GRACE and (count == self._config.n or now >= lr.grace_deadline):
            self._close_observations(lr, now)

    def _close_observations(self, lr: _LeaderRound, now: float) -> None:
        config = self._config
        # Smallest frames first within a byte budget (a member could pad its observation to
        # make the PROPOSE too big to deliver); quorum is guaranteed by the per-frame cap.
        budget = PROPOSE_OBSERVATIONS_BUDGET
        chosen: list[tuple[NodeId, tuple[Observation, bytes]]] = []
        for node, item in sorted(lr.observations.items(), key=lambda kv: len(kv[1][1])):
            if len(item[1]) > budget and len(chosen) >= config.quorum:
                break
            budget -= len(item[1])
            chosen.append((node, item))
        ordered = sorted(chosen, key=lambda item: config.by_node[item[0]].frost_id)
        observations = [obs for _, (obs, _) in ordered]
        frames = tuple(frame for _, (_, frame) in ordered)
        medians = quorum_medians(observations, config.feeds_by_name, config.quorum)
        timestamp = observations_timestamp(observations)
        due = due_feeds(medians, timestamp, self._committed, config.feeds_by_name)
        view = self._view(lr.epoch, lr.round)
        self._score_round(view, medians, {node: obs for node, (obs, _) in ordered})
        justify = sorted(
            {
                (cv.epoch, cv.round)
                for name in set(medians) - due
                if (cv := self._committed.get(name)) is not None
            },
            reverse=True,
        )
        finals = tuple(self._sources[k] for k in justify if k in self._sources)
        finals = finals[:MAX_JUSTIFYING_FINALS]
        if not due:
            if not self._may_sign(lr.epoch, lr.round, EMPTY_PROPOSAL):
                # Before a restart we signed a report for this round: do not contradict it.
                log.warning(
                    "protocol.round_skipped epoch=%d round=%d reason=signed", lr.epoch, lr.round
                )
                lr.machine.move(LeaderPhase.ABANDONED)
                return
            lr.machine.move(LeaderPhase.EMPTY)
            view.proposal = None
            view.expect_progress = True
            self._pacemaker.progress(now)
            log.debug("protocol.round_empty epoch=%d round=%d", lr.epoch, lr.round)
            # Recorded like a signature, before the PROPOSE leaves: a leader restarted later
            # in this epoch resumes after this round instead of proposing it again (its
            # peers would see two proposals for one round: equivocation).
            self._remember_signing(lr.epoch, lr.round, EMPTY_PROPOSAL)
            self._out.guarded += [
                RecordSigning(_PRICES, lr.epoch, lr.round, EMPTY_PROPOSAL, None),
                Broadcast(
                    Propose.TYPE,
                    Propose(lr.epoch, lr.round, 0, None, frames, (), finals).to_payload(),
                ),
            ]
            return
        report = make_report(
            config, lr.epoch, lr.round, timestamp, {name: medians[name] for name in due}
        )
        report_bytes = report.encode()
        message = signing_message(config.chain_id, config.verifying_contract, report_bytes)
        if not self._may_sign(lr.epoch, lr.round, message):
            # We already signed another report for this (epoch, round) before a restart.
            log.warning(
                "protocol.round_skipped epoch=%d round=%d reason=signed", lr.epoch, lr.round
            )
            lr.machine.move(LeaderPhase.ABANDONED)
            return
        lr.machine.move(LeaderPhase.SIGNING)
        lr.signing = SigningRound(report, report_bytes, message, frames, finals)
        view.proposal = report_bytes
        view.expect_progress = True
        if view.phase in (FollowerPhase.NEW, FollowerPhase.OBSERVED):
            view.move(FollowerPhase.ACCEPTED)
        self._start_session(lr, now)

    # -- leader: signing sessions -------------------------------------------------------
    def _has_commitment(self, node: NodeId) -> bool:
        if node == self._me:
            return len(self._pool) > 0
        return self._book.available(node) > 0

    def _start_session(self, lr: _LeaderRound, now: float) -> None:
        signing = lr.signing
        if signing is None or lr.phase is not LeaderPhase.SIGNING:
            raise ProtocolStateError("no signing round to start a session in")
        chosen = signing.choose(self._config, self._me, self._has_commitment, self._reliability)
        if chosen is None:
            signing.want_session = True
            log.info(
                "protocol.session_waiting epoch=%d round=%d sessions=%d bad=%d pending=%d",
                lr.epoch,
                lr.round,
                len(signing.sessions),
                len(signing.bad),
                len(signing.pending),
            )
            return
        entries: list[SignerEntry] = []
        for node in chosen:
            taken = self._pool.oldest() if node == self._me else self._book.take_oldest(node, now)
            if taken is None:  # _has_commitment said otherwise
                raise ProtocolStateError(f"no commitment for {node}")
            entries.append(SignerEntry(node, taken[0], taken[1]))
        package = SigningPackage(tuple(e.commitments for e in entries), signing.message)
        context = SigningContext(package, self._group_key)
        session = Session(
            index=len(signing.sessions),
            signers=tuple(entries),
            package=package,
            context=context,
            started_at=now,
            deadline=now + self._config.timing.signing_timeout,
        )
        signing.open_session(session, self._me)
        guarded: list[Action] = []
        mine = next((e for e in entries if e.node == self._me), None)
        if mine is not None:
            nonces = self._pool.take(mine.commitment_id)
            if nonces is None:
                raise ProtocolStateError("own nonce vanished")
            self._remember_signing(lr.epoch, lr.round, signing.message)
            share = sign(package, nonces, self._key_package, context=context)
            session.shares[self._me] = share
            self._share_in_flight(lr.epoch, lr.round, session.deadline)
            guarded.append(
                RecordSigning(_PRICES, lr.epoch, lr.round, signing.message, mine.commitment_id)
            )
            view = self._view(lr.epoch, lr.round)
            view.sessions[session.index] = session.nodes
            view.signed_sessions += 1
            if view.machine.can(FollowerPhase.SIGNED):
                view.move(FollowerPhase.SIGNED)
        propose = Propose(
            lr.epoch,
            lr.round,
            session.index,
            signing.report_bytes,
            signing.frames,
            tuple(entries),
            signing.finals,
        )
        guarded.append(Broadcast(Propose.TYPE, propose.to_payload()))
        self._out.guarded += guarded
        log.debug(
            "protocol.session_start epoch=%d round=%d session=%d signers=%s",
            lr.epoch,
            lr.round,
            session.index,
            [self._config.by_node[n].frost_id for n in session.nodes],
        )

    def _signing_timeouts(self, lr: _LeaderRound, now: float) -> None:
        signing = lr.signing
        if signing is None:
            return
        expired = False
        for session in signing.sessions:
            if not session.timed_out and now >= session.deadline:
                expired = True
                for node in signing.timed_out(session):
                    self._rate_signer(node, ok=False)
                log.info(
                    "protocol.session_timeout epoch=%d round=%d session=%d silent=%s",
                    lr.epoch,
                    lr.round,
                    session.index,
                    [self._config.by_node[n].frost_id for n in session.silent()],
                )
        newest = signing.sessions[-1] if signing.sessions else None
        if (expired and newest is not None and newest.timed_out) or signing.want_session:
            self._start_session(lr, now)

    def _on_share(
        self, sender: NodeId, message: Share, envelope: SignedEnvelope, now: float
    ) -> None:
        lr = self._leader_round
        if (
            lr is None
            or lr.signing is None
            or (message.epoch, message.round) != (lr.epoch, lr.round)
            or lr.phase is not LeaderPhase.SIGNING
            or message.session >= len(lr.signing.sessions)
        ):
            return
        signing = lr.signing
        session = signing.sessions[message.session]
        if sender not in session.nodes or sender in session.shares or sender in signing.bad:
            return
        frost_id = self._config.by_node[sender].frost_id
        try:
            share: SignatureShare | None = SignatureShare(frost_id, decode_scalar(message.share))
        except CryptoError:
            share = None
        valid = share is not None and verify_signature_share(
            share, self._public.verifying_shares[frost_id], session.context
        )
        if share is None or not valid:
            self._fault(
                sender,
                MisbehaviourKind.INVALID_SHARE,
                f"signature share for session {message.session} does not verify",
                epoch=message.epoch,
                round=message.round,
                evidence=envelope.frame,
            )
            signing.caught(sender)
            self._invalid_shares[sender] += 1
            self._reliability[sender] = 0.0
            self._start_session(lr, now)  # at once, without the culprit
            return
        session.shares[sender] = share
        signing.answered(sender, session)
        self._rate_signer(sender, ok=True)
        if session.complete:
            self._finish_round(lr, session, now)
        elif signing.want_session:
            self._start_session(lr, now)

    def _rate_signer(self, node: NodeId, *, ok: bool) -> None:
        previous = self._reliability[node]
        self._reliability[node] = (1 - _RELIABILITY_ALPHA) * previous + _RELIABILITY_ALPHA * (
            1.0 if ok else 0.0
        )

    def _finish_round(self, lr: _LeaderRound, session: Session, now: float) -> None:
        signing = lr.signing
        if signing is None:
            raise ProtocolStateError("no signing round")
        try:
            signature = aggregate(
                session.package, session.shares.values(), self._public, context=session.context
            )
        except FrostError as exc:  # every share was verified on arrival
            raise ProtocolStateError(f"aggregation failed after share checks: {exc}") from exc
        if not verify(self._group_key, signing.message, signature):
            raise ProtocolStateError("aggregated signature does not verify")
        lr.machine.move(LeaderPhase.FINALIZED)
        encoded = signature.encode()
        final = FinalReport(lr.epoch, lr.round, signing.report_bytes, encoded)
        self._out.plain.append(Broadcast(FinalReport.TYPE, final.to_payload()))
        log.info(
            "protocol.finalized epoch=%d round=%d sessions=%d latency=%.3f",
            lr.epoch,
            lr.round,
            len(signing.sessions),
            now - lr.started_at,
        )
        self._apply_final(
            signing.report,
            signing.report_bytes,
            encoded,
            signing.message,
            now,
            latency=now - lr.started_at,
            sessions=len(signing.sessions),
            signers=session.nodes,
        )
        self._leader_timers(now)

    # -- follower: PROPOSE -----------------------------------------------------------
    def _on_propose(
        self, sender: NodeId, message: Propose, envelope: SignedEnvelope, now: float
    ) -> None:
        if not self._check_leader_message(sender, message.epoch, envelope, "PROPOSE"):
            return
        epoch, round = message.epoch, message.round
        if sender == self._me or self._stale_round(epoch, round):
            return
        for entry in message.signers:
            self._book.mark_spent(entry.node, entry.commitment_id, now)
        view = self._view(epoch, round)
        if view.proposal is not _NO_PROPOSAL:
            if view.proposal != message.report:
                self._fault(
                    sender,
                    MisbehaviourKind.EQUIVOCATION,
                    "two different proposals for one (epoch, round)",
                    epoch=epoch,
                    round=round,
                    evidence=(view.propose_frame, envelope.frame),
                )
                if view.phase is not FollowerPhase.FINALIZED:
                    view.move(FollowerPhase.REJECTED)
                self._discard_own(message)
                return
        else:
            try:
                self._accept_proposal(view, message, envelope, now)
            except ProtocolFault as fault:
                self._fault(
                    sender,
                    fault.kind,
                    str(fault),
                    epoch=epoch,
                    round=round,
                    evidence=envelope.frame,
                )
                view.proposal = message.report
                view.propose_frame = envelope.frame
                if view.phase is not FollowerPhase.FINALIZED:
                    view.move(FollowerPhase.REJECTED)
                self._discard_own(message)
                return
        if message.report is not None:
            self._maybe_sign(sender, view, message, now)
        self._discard_own(message)

    def _discard_own(self, message: Propose) -> None:
        # The leaders now consider our commitment in this PROPOSE spent; so do we.
        for entry in message.signers:
            if entry.node == self._me:
                self._pool.discard(entry.commitment_id)

    def _open_observations(
        self, epoch: int, round: int, leader: NodeId, frames: Sequence[bytes]
    ) -> dict[NodeId, Observation]:
        config = self._config

        def bad(detail: str) -> ProtocolFault:
            return ProtocolFault(detail, culprit=leader, kind=MisbehaviourKind.INVALID_PROPOSAL)

        if not config.quorum <= len(frames) <= config.n:
            raise bad(f"{len(frames)} observations; need {config.quorum}..{config.n}")
        observations: dict[NodeId, Observation] = {}
        for frame in frames:
            cached = self._frame_cache.get(frame)
            if cached is None:
                opened = open_frame(frame, network=config.network, roster=config.roster)
                if isinstance(opened, Rejected):
                    raise bad(f"embedded observation rejected: {opened.reason}")
                if opened.type is not MessageType.OBSERVATION or opened.to != leader:
                    raise bad("embedded frame is not an observation sent to the leader")
                try:
                    observation = Observation.from_payload(opened.payload)
                except EncodingError as exc:
                    raise bad(f"embedded observation malformed: {exc}") from None
                cached = (opened.sender, observation)
                if len(self._frame_cache) >= _FRAME_CACHE:
                    self._frame_cache.pop(next(iter(self._frame_cache)))
                self._frame_cache[frame] = cached
            sender, observation = cached
            if (observation.epoch, observation.round) != (epoch, round):
                raise bad("embedded observation is for another round")
            if sender in observations:
                raise bad(f"two observations from {sender}")
            if {name for name, _ in observation.values} - set(config.feeds_by_name):
                raise bad(f"observation from {sender} has unknown feeds")
            observations[sender] = observation
        return observations

    def _accept_proposal(
        self, view: _RoundView, message: Propose, envelope: SignedEnvelope, now: float
    ) -> None:
        """Re-derive the report from the signed observations; raise ProtocolFault if the
        PROPOSE is anything but f(observations)."""
        config = self._config
        leader = envelope.sender
        self._catch_up(leader, message.finals, now)
        observations = self._open_observations(
            message.epoch, message.round, leader, message.observations
        )
        values = list(observations.values())
        medians = quorum_medians(values, config.feeds_by_name, config.quorum)
        timestamp = observations_timestamp(values)
        own_due = due_feeds(medians, timestamp, self._committed, config.feeds_by_name)
        if message.report is None:
            view.expect_progress = not own_due
        else:
            try:
                report = Report.decode(message.report)
                reported = report_values(report)
            except EncodingError as exc:
                raise ProtocolFault(
                    f"report does not decode: {exc}",
                    culprit=leader,
                    kind=MisbehaviourKind.INVALID_PROPOSAL,
                ) from None
            missing = set(reported) - set(medians)
            if not reported or missing:
                raise ProtocolFault(
                    f"report feeds without a quorum of observations: {sorted(missing)[:5]}",
                    culprit=leader,
                    kind=MisbehaviourKind.INVALID_PROPOSAL,
                )
            expected = make_report(
                config,
                message.epoch,
                message.round,
                timestamp,
                {name: medians[name] for name in reported},
            )
            if expected.encode() != message.report:
                raise ProtocolFault(
                    "report is not the median of the included observations",
                    culprit=leader,
                    kind=MisbehaviourKind.INVALID_PROPOSAL,
                    evidence={"expected": expected.encode().hex()},
                )
            # Feed selection is the leader's policy (our committed view may lag), but a
            # leader that leaves out what we consider due does not count as progress.
            view.expect_progress = own_due <= set(reported)
            if not view.expect_progress:
                log.info(
                    "protocol.due_feeds_omitted epoch=%d round=%d feeds=%s",
                    message.epoch,
                    message.round,
                    sorted(own_due - set(reported))[:5],
                )
        self._score_round(view, medians, observations)
        view.proposal = message.report
        view.propose_frame = envelope.frame
        if view.phase in (FollowerPhase.NEW, FollowerPhase.OBSERVED):
            view.move(FollowerPhase.ACCEPTED)
        if message.report is None and view.expect_progress:
            self._pacemaker.progress(now)

    def _score_round(
        self,
        view: _RoundView,
        medians: Mapping[str, int],
        observations: Mapping[NodeId, Observation],
    ) -> None:
        if view.proposal is not _NO_PROPOSAL:
            return  # scored once per (epoch, round), whatever a leader sends later
        outliers = self._credibility.observe_round(
            medians, {node: obs.value_map() for node, obs in observations.items()}
        )
        for node, name, value, median in outliers:
            log.info(
                "protocol.outlier member=%s feed=%s value=%d median=%d epoch=%d round=%d",
                node,
                name,
                value,
                median,
                view.epoch,
                view.round,
            )

    def _maybe_sign(self, leader: NodeId, view: _RoundView, message: Propose, now: float) -> None:
        config = self._config
        if view.phase not in (FollowerPhase.ACCEPTED, FollowerPhase.SIGNED):
            return
        nodes = tuple(entry.node for entry in message.signers)
        known = view.sessions.get(message.session)
        if known is not None:
            if known != nodes:
                self._fault(
                    leader,
                    MisbehaviourKind.CONFLICTING_SESSION,
                    f"session {message.session} announced with two signer sets",
                    epoch=message.epoch,
                    round=message.round,
                )
            return
        for entry in message.signers:
            member = config.by_node.get(entry.node)
            if member is None or entry.commitments.identifier != member.frost_id:
                self._fault(
                    leader,
                    MisbehaviourKind.INVALID_PROPOSAL,
                    "signer set names a non-member or another member's commitment",
                    epoch=message.epoch,
                    round=message.round,
                )
                return
        if not config.t <= len(nodes) <= config.n:
            self._fault(
                leader,
                MisbehaviourKind.INVALID_PROPOSAL,
                f"signer set of {len(nodes)}",
                epoch=message.epoch,
                round=message.round,
            )
            return
        view.sessions[message.session] = nodes
        mine = next((e for e in message.signers if e.node == self._me), None)
        if mine is None:
            return
        if view.signed_sessions >= config.session_cap:
            log.warning("protocol.sign_refused reason=session_cap epoch=%d", message.epoch)
            return
        if message.report is None:
            return
        digest = signing_message(config.chain_id, config.verifying_contract, message.report)
        if not self._may_sign(message.epoch, message.round, digest):
            log.warning(
                "protocol.sign_refused reason=double_sign epoch=%d round=%d",
                message.epoch,
                message.round,
            )
            return
        nonces = self._pool.take(mine.commitment_id)
        if nonces is None:
            self._pool.announce_soon(now)
            log.info(
                "protocol.sign_refused reason=unknown_commitment epoch=%d round=%d session=%d",
                message.epoch,
                message.round,
                message.session,
            )
            return
        if nonces.commitments != mine.commitments:
            self._fault(
                leader,
                MisbehaviourKind.INVALID_PROPOSAL,
                "our commitment id with other points",
                epoch=message.epoch,
                round=message.round,
            )
            return
        try:
            package = SigningPackage(tuple(e.commitments for e in message.signers), digest)
            context = SigningContext(package, self._group_key)
        except FrostError as exc:
            self._fault(
                leader,
                MisbehaviourKind.INVALID_PROPOSAL,
                f"unusable signing package: {exc}",
                epoch=message.epoch,
                round=message.round,
            )
            return
        self._remember_signing(message.epoch, message.round, digest)
        share = sign(package, nonces, self._key_package, context=context)
        view.signed_sessions += 1
        view.move(FollowerPhase.SIGNED)
        reply = Share(message.epoch, message.round, message.session, encode_scalar(share.share))
        self._share_in_flight(message.epoch, message.round, now + config.timing.signing_timeout)
        self._out.guarded += [
            RecordSigning(_PRICES, message.epoch, message.round, digest, mine.commitment_id),
            SendTo(leader, Share.TYPE, reply.to_payload()),
        ]

    def _share_in_flight(self, epoch: int, round: int, until: float) -> None:
        self._share_round = (epoch, round)
        self._share_in_flight_until = until

    # -- sign protection -------------------------------------------------------------
    def _may_sign(self, epoch: int, round: int, digest: bytes) -> bool:
        existing = self._signed.get((_PRICES, epoch, round))
        return existing is None or existing == digest

    def _remember_signing(self, epoch: int, round: int, digest: bytes) -> None:
        if not self._may_sign(epoch, round, digest):
            raise ProtocolStateError(f"refusing to sign a second digest for ({epoch}, {round})")
        self._signed[(_PRICES, epoch, round)] = digest

    # -- FINAL -----------------------------------------------------------------------
    def _check_final(
        self, report_bytes: bytes, signature_bytes: bytes, epoch: int, round: int
    ) -> tuple[Report, bytes] | tuple[MisbehaviourKind, str]:
        """(report, digest) of a valid FINAL, or (kind, detail) of what is wrong with it."""
        config = self._config
        try:
            report = Report.decode(report_bytes)
            report_values(report)
            signature = Signature.decode(signature_bytes)
        except (EncodingError, CryptoError) as exc:
            return MisbehaviourKind.MALFORMED, f"FINAL: {exc}"
        if report.config_digest != config.config_digest or (report.epoch, report.round) != (
            epoch,
            round,
        ):
            return MisbehaviourKind.MALFORMED, "FINAL for another config or round"
        digest = signing_message(config.chain_id, config.verifying_contract, report_bytes)
        if not verify(self._group_key, digest, signature):
            return MisbehaviourKind.INVALID_FINAL, "signature does not verify under the group key"
        return report, digest

    def _known_final(self, epoch: int, round: int) -> bool:
        """Applied already, or older than everything in our window (a replay)."""
        key = (epoch, round)
        window = self._finalized
        return key in window or (len(window) == window.maxlen and key < min(window))

    def _on_final(
        self, sender: NodeId, message: FinalReport, envelope: SignedEnvelope, now: float
    ) -> None:
        if self._known_final(message.epoch, message.round):
            return
        checked = self._check_final(message.report, message.signature, message.epoch, message.round)
        if isinstance(checked[0], MisbehaviourKind):
            self._fault(
                sender,
                checked[0],
                str(checked[1]),
                epoch=message.epoch,
                round=message.round,
                evidence=envelope.frame,
            )
            return
        report, digest = checked
        if message.epoch > self._pacemaker.epoch:
            self._out.plain += self._pacemaker.jump(message.epoch, now)
            self._enter_epoch(now)
        view = self._views.get((message.epoch, message.round))
        latency = None if view is None or view.observe_at is None else now - view.observe_at
        self._apply_final(report, message.report, message.signature, digest, now, latency=latency)

    def _catch_up(self, leader: NodeId, finals: Sequence[tuple[bytes, bytes]], now: float) -> None:
        """Apply the earlier FINALs a PROPOSE carries (those we missed); raise ProtocolFault
        for a bad one: the leader vouched for it."""
        for report_bytes, signature in finals:
            try:
                header = Report.decode(report_bytes)
            except EncodingError as exc:
                raise ProtocolFault(
                    f"justifying FINAL: {exc}",
                    culprit=leader,
                    kind=MisbehaviourKind.INVALID_PROPOSAL,
                ) from None
            key = (header.epoch, header.round)
            if self._known_final(*key) or header.epoch > self._pacemaker.epoch:
                continue
            checked = self._check_final(report_bytes, signature, *key)
            if isinstance(checked[0], MisbehaviourKind):
                raise ProtocolFault(
                    f"justifying FINAL: {checked[1]}",
                    culprit=leader,
                    kind=MisbehaviourKind.INVALID_PROPOSAL,
                )
            report, digest = checked
            self._apply_final(report, report_bytes, signature, digest, now, latency=None)

    def _apply_final(
        self,
        report: Report,
        report_bytes: bytes,
        signature: bytes,
        digest: bytes,
        now: float,
        *,
        latency: float | None,
        sessions: int | None = None,
        signers: tuple[NodeId, ...] = (),
    ) -> None:
        epoch, round = report.epoch, report.round
        if (epoch, round) >= self._share_round:
            self._share_in_flight_until = 0.0  # collected: top up now, if low
        self._finalized.append((epoch, round))
        for name, value in report_values(report).items():
            last = self._committed.get(name)
            if last is None or last.older_than(epoch, round):
                self._committed[name] = CommittedValue(
                    value, report.observations_timestamp, epoch, round
                )
                self._sources[(epoch, round)] = (report_bytes, signature)
        referenced = {(cv.epoch, cv.round) for cv in self._committed.values()}
        for key in [k for k in self._sources if k not in referenced]:
            del self._sources[key]
        view = self._views.get((epoch, round))
        if view is not None and view.phase is not FollowerPhase.FINALIZED:
            view.move(FollowerPhase.FINALIZED)
        if epoch == self._pacemaker.epoch and (view is None or view.expect_progress is not False):
            self._pacemaker.progress(now)
        leader = self._config.leader(epoch)
        self._out.plain.append(
            ReportFinalized(
                report=report,
                report_bytes=report_bytes,
                signature=signature,
                digest=digest,
                epoch=epoch,
                round=round,
                leader=leader,
                is_leader=leader == self._me,
                transmit_delay=self._config.stage_position(epoch, self._me)
                * self._config.timing.delta_stage,
                finalized_at=now,
                latency=latency,
                sessions=sessions,
                signers=signers,
            )
        )

    # -- COMMITMENTS -----------------------------------------------------------------
    def _on_commitments(
        self, sender: NodeId, message: Commitments, envelope: SignedEnvelope, now: float
    ) -> None:
        frost_id = self._config.by_node[sender].frost_id
        if any(entry.commitments.identifier != frost_id for entry in message.entries):
            self._fault(
                sender,
                MisbehaviourKind.INVALID_COMMITMENTS,
                "commitments for another signer",
                evidence=envelope.frame,
            )
            return
        self._book.add(sender, message, now)
        lr = self._leader_round
        if (
            lr is not None
            and lr.phase is LeaderPhase.SIGNING
            and lr.signing is not None
            and lr.signing.want_session
        ):
            self._start_session(lr, now)
