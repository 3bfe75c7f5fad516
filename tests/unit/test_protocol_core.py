"""OracleProtocol, message by message: the round, the follower's checks, sign protection,
ROAST retries, the FINAL check, commitments and restarts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from aggregation.frost import encode_scalar, verify
from aggregation.frost.signing import Signature
from aggregation.report import Report, ReportKind, signing_message
from oracle.identity import NodeId
from oracle.protocol import (
    EMPTY_PROPOSAL,
    EpochChanged,
    FollowerPhase,
    LeaderPhase,
    Misbehaviour,
    MisbehaviourKind,
    OracleProtocol,
    ProtocolStateError,
    PublishCommitments,
    RecordSigning,
    ReportFinalized,
    ScheduleTick,
    SendTo,
)
from oracle.protocol.actions import Action, Broadcast, Loopback
from oracle.protocol.messages import (
    Commitments,
    FinalReport,
    Observe,
    Propose,
    Share,
    SignerEntry,
)
from oracle.protocol.rules import make_report, report_values
from oracle.transport.envelope import MessageType, to_hex
from tests.sim.helpers import T0, Sealer, committee, of_type, sends

FEEDS = ("A100-SXM/USD-HR", "H100-SXM/USD-HR")
BASE = {"H100-SXM/USD-HR": 2_50000000, "A100-SXM/USD-HR": 1_20000000}


@dataclass
class Net:
    """Four cores with instant, in-order delivery; ``hold`` keeps matching sends back."""

    n: int = 4
    hold: Callable[[NodeId, Action], bool] = lambda sender, action: False
    now: float = T0
    cores: dict[NodeId, OracleProtocol] = field(default_factory=dict)
    log: list[tuple[NodeId, list[Action]]] = field(default_factory=list)
    held: list[tuple[NodeId, Action]] = field(default_factory=list)
    step: int = 0  # price steps taken by _run_rounds

    def __post_init__(self) -> None:
        self.committee = committee(self.n)
        self.config = self.committee.config
        self.sealer = Sealer(self.committee)
        for member in self.config.members:
            self.cores[member.node_id] = self.committee.protocol(member.node_id, seed=5)
        self.leader = self.config.leader(1)
        self.followers = [m.node_id for m in self.config.members if m.node_id != self.leader]

    def observe_all(self, values: Mapping[str, int] | None = None, spread: int = 1000) -> None:
        for i, core in enumerate(self.cores.values()):
            vals = {k: v + i * spread for k, v in (values or BASE).items()}
            core.set_observation(vals, int(self.now), (b"\x11" * 32,))

    def start(self) -> None:
        self.observe_all()
        queue = [(node, core.start(self.now)) for node, core in self.cores.items()]
        self._run(queue)

    def call(self, node: NodeId, actions: list[Action]) -> list[Action]:
        self.log.append((node, actions))
        self._run([(node, actions)], logged=True)
        return actions

    def deliver(self, node: NodeId, envelope: Any) -> list[Action]:
        return self.call(node, self.cores[node].receive(envelope, self.now))

    def tick(self, dt: float) -> None:
        self.now += dt
        self._run([(node, core.tick(self.now)) for node, core in self.cores.items()])

    def _run(self, queue: list[tuple[NodeId, list[Action]]], logged: bool = False) -> None:
        if not logged:
            self.log += queue
        while queue:
            sender, actions = queue.pop(0)
            for action in actions:
                if not isinstance(action, Broadcast | SendTo | Loopback | PublishCommitments):
                    continue
                if self.hold(sender, action):
                    self.held.append((sender, action))
                    continue
                send = (
                    Broadcast(MessageType.COMMITMENTS, action.payload)
                    if isinstance(action, PublishCommitments)
                    else action
                )
                envelope = self.sealer.of(sender, send)
                if isinstance(send, Broadcast):
                    targets = [n for n in self.cores if n != sender]
                elif isinstance(send, SendTo):
                    targets = [send.to]
                else:
                    targets = [sender]
                for target in targets:
                    result = self.cores[target].receive(envelope, self.now)
                    self.log.append((target, result))
                    queue.append((target, result))

    def actions_of(self, node: NodeId) -> list[Action]:
        return [a for n, actions in self.log if n == node for a in actions]


@dataclass(frozen=True)
class SignedRow:
    """A sign-protection row as the store returns it (OracleProtocol's ``signed=``)."""

    kind: int
    epoch: int
    round: int
    digest: bytes


def _is_propose(sender: NodeId, action: Action) -> bool:
    return isinstance(action, Broadcast) and action.type is MessageType.PROPOSE


def _held_propose(net: Net) -> Propose:
    proposals = [a for _, a in net.held if isinstance(a, Broadcast | SendTo)]
    assert proposals, "the leader proposed nothing"
    return Propose.from_payload(proposals[0].payload)


def test_a_round_finalizes_and_every_member_commits_the_medians() -> None:
    net = Net()
    net.start()
    finals = [(n, a) for n, actions in net.log for a in actions if isinstance(a, ReportFinalized)]
    assert {n for n, _ in finals} == set(net.cores)  # once per member
    final = finals[0][1]
    group_key = net.committee.dealer.public_key_package.group_key
    message = signing_message(
        net.config.chain_id, net.config.verifying_contract, final.report_bytes
    )
    assert verify(group_key, message, Signature.decode(final.signature))
    # Observations were BASE + 0, 1000, 2000, 3000: lower median of four is BASE + 1000.
    assert report_values(final.report) == {k: v + 1000 for k, v in BASE.items()}
    assert final.report.kind is ReportKind.PRICES and (final.epoch, final.round) == (1, 1)
    for core in net.cores.values():
        assert core.committed["H100-SXM/USD-HR"].value == BASE["H100-SXM/USD-HR"] + 1000
        assert core.round_phase(1, 1) is FollowerPhase.FINALIZED
    assert net.cores[net.leader].leader_phase is LeaderPhase.FINALIZED
    staged = sorted(a.transmit_delay for _, a in finals)
    assert staged == [i * net.config.timing.delta_stage for i in range(4)]


def test_start_publishes_commitments_first_and_withdraws_the_old_ones() -> None:
    c = committee(4)
    node = c.node(0)
    old = [b"\x01" * 16, b"\x02" * 16]
    core = c.protocol(node, seed=9, invalidated_commitments=old)
    actions = core.start(T0)
    assert isinstance(actions[0], PublishCommitments)
    assert actions[0].invalidated == tuple(old)
    message = Commitments.from_payload(actions[0].payload)
    assert message.invalidated == tuple(old)
    assert len(message.entries) == c.config.commitment_batch == len(actions[0].commitment_ids)
    assert any(isinstance(a, EpochChanged) for a in actions)
    assert isinstance(actions[-1], ScheduleTick)
    with pytest.raises(ProtocolStateError):
        core.start(T0)


def test_receive_before_start_is_a_local_error() -> None:
    c = committee(4)
    core = c.protocol(c.node(0))
    envelope = Sealer(c).envelope(c.node(1), MessageType.NEWEPOCH, {"e": 2})
    with pytest.raises(ProtocolStateError):
        core.receive(envelope, T0)


def test_follower_answers_one_observation_per_round_even_if_asked_twice() -> None:
    net = Net(hold=lambda s, a: True)  # nobody hears anybody
    net.start()
    follower = net.followers[0]
    observe = {"e": 1, "r": 7, "leader": net.leader}
    first = net.deliver(follower, net.sealer.envelope(net.leader, MessageType.OBSERVE, observe))
    net.cores[follower].set_observation({"H100-SXM/USD-HR": 1}, int(net.now))
    second = net.deliver(follower, net.sealer.envelope(net.leader, MessageType.OBSERVE, observe))
    (a,) = sends(first, MessageType.OBSERVATION)
    (b,) = sends(second, MessageType.OBSERVATION)
    assert isinstance(a, SendTo) and a.to == net.leader
    assert a.payload == b.payload  # the same observation, never a second one


def test_observe_from_a_member_that_is_not_the_leader_is_misbehaviour() -> None:
    net = Net(hold=lambda s, a: True)
    net.start()
    impostor, follower = net.followers[0], net.followers[1]
    payload = {"e": 1, "r": 3, "leader": impostor}
    actions = net.deliver(follower, net.sealer.envelope(impostor, MessageType.OBSERVE, payload))
    (fault,) = of_type(actions, Misbehaviour)
    assert fault.culprit == impostor and fault.kind is MisbehaviourKind.NOT_LEADER
    assert not sends(actions, MessageType.OBSERVATION)


def test_record_signing_precedes_the_share_and_closes_the_action_list() -> None:
    net = Net()
    net.start()
    for node in net.followers:
        for _, actions in [(n, a) for n, a in net.log if n == node]:
            records = [i for i, a in enumerate(actions) if isinstance(a, RecordSigning)]
            for i in records:
                nxt = actions[i + 1]
                assert isinstance(nxt, SendTo) and nxt.type is MessageType.SHARE
                assert all(isinstance(a, ScheduleTick) for a in actions[i + 2 :])
            shares = [
                i
                for i, a in enumerate(actions)
                if isinstance(a, SendTo) and a.type is MessageType.SHARE
            ]
            assert len(shares) == len(records)


def _forge(net: Net, propose: Propose, **changes: Any) -> Any:
    """The leader's PROPOSE with ``changes``, sealed with the leader's real identity key."""
    forged = dataclasses.replace(propose, **changes)
    return net.sealer.envelope(net.leader, MessageType.PROPOSE, forged.to_payload())


def _signer_follower(net: Net, propose: Propose) -> NodeId:
    return next(s.node for s in propose.signers if s.node != net.leader)


def test_follower_signs_the_genuine_proposal() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    node = _signer_follower(net, propose)
    actions = net.deliver(node, _forge(net, propose))
    (record,) = of_type(actions, RecordSigning)
    assert record.digest == signing_message(
        net.config.chain_id, net.config.verifying_contract, propose.report or b""
    )
    assert net.cores[node].round_phase(1, 1) is FollowerPhase.SIGNED


@pytest.mark.parametrize(
    "tamper",
    ["value", "missing_observation", "duplicate_observation", "foreign_frame", "bad_signature"],
)
def test_follower_refuses_anything_but_the_median_of_valid_observations(tamper: str) -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    node = _signer_follower(net, propose)
    frames = propose.observations
    if tamper == "value":
        assert propose.report is not None
        report = Report.decode(propose.report)
        values = report_values(report)
        values["H100-SXM/USD-HR"] += 1
        forged = make_report(net.config, 1, 1, report.observations_timestamp, values)
        envelope = _forge(net, propose, report=forged.encode())
    elif tamper == "missing_observation":
        envelope = _forge(net, propose, observations=frames[: net.config.quorum - 1])
    elif tamper == "duplicate_observation":
        envelope = _forge(net, propose, observations=(frames[0], frames[0], frames[1]))
    elif tamper == "foreign_frame":
        other = net.sealer.envelope(net.leader, MessageType.NEWEPOCH, {"e": 1}, to=net.leader)
        envelope = _forge(net, propose, observations=(*frames[:-1], other.frame))
    else:
        broken = frames[0][:10] + bytes([frames[0][10] ^ 1]) + frames[0][11:]
        envelope = _forge(net, propose, observations=(broken, *frames[1:]))
    actions = net.deliver(node, envelope)
    assert not of_type(actions, RecordSigning) and not sends(actions, MessageType.SHARE)
    (fault,) = of_type(actions, Misbehaviour)
    assert fault.culprit == net.leader and fault.kind is MisbehaviourKind.INVALID_PROPOSAL
    assert net.cores[node].round_phase(1, 1) is FollowerPhase.REJECTED
    # Once rejected, the genuine proposal is an equivocation too: never signed in this round.
    later = net.deliver(node, _forge(net, propose))
    assert not of_type(later, RecordSigning)


def test_equivocating_leader_is_named_and_the_second_report_is_not_signed() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    node = _signer_follower(net, propose)
    first = net.deliver(node, _forge(net, propose))
    assert of_type(first, RecordSigning)
    assert propose.report is not None
    report = Report.decode(propose.report)
    values = report_values(report)
    del values["H100-SXM/USD-HR"]  # still a valid report: just one feed fewer
    other = make_report(net.config, 1, 1, report.observations_timestamp, values)
    second = net.deliver(node, _forge(net, propose, report=other.encode(), session=1))
    assert not of_type(second, RecordSigning)
    (fault,) = of_type(second, Misbehaviour)
    assert fault.kind is MisbehaviourKind.EQUIVOCATION and fault.culprit == net.leader
    assert len(fault.evidence) == 2 and all(isinstance(f, bytes) for f in fault.evidence)
    assert net.cores[node].round_phase(1, 1) is FollowerPhase.REJECTED


def test_a_retry_session_signs_the_same_digest_with_a_fresh_commitment() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    node = _signer_follower(net, propose)
    first = of_type(net.deliver(node, _forge(net, propose)), RecordSigning)
    # Same session again: nothing (one share per session).
    assert not of_type(net.deliver(node, _forge(net, propose)), RecordSigning)
    # A new session that reuses the consumed commitment: refused, the nonce is gone.
    assert not of_type(net.deliver(node, _forge(net, propose, session=1)), RecordSigning)
    # A new session with a fresh commitment of ours: signed, same digest.
    fresh = net.cores[node]._pool.oldest()
    assert fresh is not None
    signers = tuple(
        SignerEntry(node, fresh[0], fresh[1]) if s.node == node else s for s in propose.signers
    )
    retry = of_type(
        net.deliver(node, _forge(net, propose, session=2, signers=signers)), RecordSigning
    )
    assert len(first) == len(retry) == 1
    assert retry[0].digest == first[0].digest and retry[0].commitment_id != first[0].commitment_id


def test_persisted_sign_protection_survives_a_restart() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    node = _signer_follower(net, propose)
    restarted = net.committee.protocol(
        node, seed=77, signed=[SignedRow(int(ReportKind.PRICES), 1, 1, b"\x99" * 32)]
    )
    assert restarted.signed_digest(1, 1) == b"\x99" * 32
    restarted.start(net.now)
    # Feed it the leader's commitments so it could sign, then the proposal naming it.
    for sender, action in [
        (n, a) for n, actions in net.log for a in actions if isinstance(a, PublishCommitments)
    ]:
        if sender != node:
            restarted.receive(
                net.sealer.envelope(sender, MessageType.COMMITMENTS, action.payload), net.now
            )
    actions = restarted.receive(_forge(net, propose), net.now)
    assert not of_type(actions, RecordSigning) and not sends(actions, MessageType.SHARE)


def test_restart_resumes_at_the_highest_signed_epoch() -> None:
    c = committee(4)
    core = c.protocol(c.node(2), signed=[SignedRow(1, 9, 4, b"\x01" * 32), None])
    assert core.epoch == 9


def _deliver_shares(net: Net, make_bad: NodeId | None = None) -> tuple[Propose, list[Action]]:
    """Let the PROPOSE reach the followers, collect their shares, hand them to the leader."""
    propose = _held_propose(net)
    shares: list[tuple[NodeId, SendTo]] = []
    for node in net.followers:
        out = net.cores[node].receive(_forge(net, propose), net.now)
        shares += [(node, a) for a in out if isinstance(a, SendTo) and a.type is MessageType.SHARE]
    leader_actions: list[Action] = []
    for node, action in shares:
        payload = dict(action.payload)
        if node == make_bad:
            payload["share"] = to_hex(encode_scalar(12345))
        leader_actions += net.cores[net.leader].receive(
            net.sealer.envelope(node, MessageType.SHARE, payload, to=net.leader), net.now
        )
    return propose, leader_actions


def test_an_invalid_share_names_the_signer_and_starts_a_new_session_at_once() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    cheat = _signer_follower(net, propose)
    _, actions = _deliver_shares(net, make_bad=cheat)
    faults = of_type(actions, Misbehaviour)
    assert [(f.culprit, f.kind) for f in faults] == [(cheat, MisbehaviourKind.INVALID_SHARE)]
    retries = [Propose.from_payload(a.payload) for a in sends(actions, MessageType.PROPOSE)]
    assert retries and retries[0].session == 1 and retries[0].report == propose.report
    assert cheat not in {s.node for s in retries[0].signers}
    assert net.cores[net.leader].credibility()[cheat].invalid_shares == 1


def test_a_silent_signer_times_out_into_a_session_without_it() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    silent = _signer_follower(net, propose)
    for node in net.followers:
        if node != silent:
            out = net.cores[node].receive(_forge(net, propose), net.now)
            for a in out:
                if isinstance(a, SendTo) and a.type is MessageType.SHARE:
                    net.cores[net.leader].receive(
                        net.sealer.envelope(node, MessageType.SHARE, a.payload, to=net.leader),
                        net.now,
                    )
    leader = net.cores[net.leader]
    assert leader.leader_phase is LeaderPhase.SIGNING
    actions = leader.tick(net.now + net.config.timing.signing_timeout)
    retries = [Propose.from_payload(a.payload) for a in sends(actions, MessageType.PROPOSE)]
    assert len(retries) == 1 and retries[0].session == 1
    assert silent not in {s.node for s in retries[0].signers}


def test_a_final_that_does_not_verify_is_misbehaviour_and_changes_nothing() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    assert propose.report is not None
    node = net.followers[0]
    bogus = FinalReport(1, 1, propose.report, b"\x02" + b"\x01" * 32 + b"\x05" * 32)
    actions = net.deliver(
        node, net.sealer.envelope(net.followers[1], MessageType.FINAL, bogus.to_payload())
    )
    (fault,) = of_type(actions, Misbehaviour)
    assert fault.kind in (MisbehaviourKind.INVALID_FINAL, MisbehaviourKind.MALFORMED)
    assert not of_type(actions, ReportFinalized)
    assert not net.cores[node].committed


def test_commitments_for_another_signer_are_refused() -> None:
    net = Net(hold=lambda s, a: True)
    net.start()
    a, b = net.followers[0], net.followers[1]
    theirs = next(
        act for n, acts in net.log if n == b for act in acts if isinstance(act, PublishCommitments)
    )
    actions = net.deliver(
        net.leader, net.sealer.envelope(a, MessageType.COMMITMENTS, theirs.payload)
    )
    (fault,) = of_type(actions, Misbehaviour)
    assert fault.culprit == a and fault.kind is MisbehaviourKind.INVALID_COMMITMENTS


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        (MessageType.SHARE, {"e": 1, "r": 1, "session": 0, "share": "0x00"}),
        (MessageType.OBSERVE, {"e": 0, "r": 1, "leader": "x"}),
        (MessageType.NEWEPOCH, {"e": True}),
        (MessageType.PROPOSE, {"e": 1}),
    ],
)
def test_malformed_payloads_are_attributed_to_their_sender(
    type_: MessageType, payload: dict[str, Any]
) -> None:
    net = Net(hold=lambda s, a: True)
    net.start()
    sender = net.followers[0]
    actions = net.deliver(net.leader, net.sealer.envelope(sender, type_, payload))
    (fault,) = of_type(actions, Misbehaviour)
    assert fault.culprit == sender and fault.kind is MisbehaviourKind.MALFORMED


def test_nothing_due_closes_the_round_with_an_empty_proposal() -> None:
    net = Net()
    net.start()  # round 1 finalizes BASE + 1000
    net.tick(net.config.timing.delta_round)  # round 2 with the same observations: not due
    leader_actions = net.actions_of(net.leader)
    empties = [
        Propose.from_payload(a.payload)
        for a in sends(leader_actions, MessageType.PROPOSE)
        if a.payload["report"] is None
    ]
    assert empties and empties[-1].round == 2 and not empties[-1].signers
    assert net.cores[net.leader].leader_phase is LeaderPhase.EMPTY
    # Followers count it as progress: their pacemaker deadline moved.
    assert all(core.epoch == 1 for core in net.cores.values())


def test_an_empty_proposal_is_recorded_first_and_a_restarted_leader_resumes_after_it() -> None:
    net = Net()
    net.start()  # round 1 finalizes
    net.tick(net.config.timing.delta_round)  # round 2: nothing due, an empty PROPOSE
    (actions,) = [
        acts
        for n, acts in net.log
        if n == net.leader
        and any(a.payload["report"] is None for a in sends(acts, MessageType.PROPOSE))
    ]
    (record,) = of_type(actions, RecordSigning)
    assert (record.epoch, record.round, record.digest) == (1, 2, EMPTY_PROPOSAL)
    assert record.commitment_id is None  # no share, no nonce
    after = actions[actions.index(record) + 1]
    assert isinstance(after, Broadcast) and after.type is MessageType.PROPOSE  # guarded
    leader = net.cores[net.leader]
    assert leader.signed_digest(1, 2) == EMPTY_PROPOSAL
    # Restarted with its newest record (what NodeStore.highest_signed returns): it opens
    # round 3, never a second proposal for round 2.
    restarted = net.committee.protocol(
        net.leader, seed=41, signed=[SignedRow(int(ReportKind.PRICES), 1, 2, EMPTY_PROPOSAL)]
    )
    restarted.set_observation(BASE, int(net.now))
    observe = sends(restarted.start(net.now), MessageType.OBSERVE)
    assert [Observe.from_payload(a.payload).round for a in observe] == [3]


def test_the_report_header_carries_our_config_and_the_median_timestamp() -> None:
    net = Net(hold=_is_propose)
    net.start()
    propose = _held_propose(net)
    assert propose.report is not None
    report = Report.decode(propose.report)
    assert report.observations_timestamp == int(T0)
    assert report.config_digest == net.config.config_digest


def test_unsigned_share_for_a_finished_round_is_ignored() -> None:
    net = Net()
    net.start()
    leader = net.cores[net.leader]
    late = Share(1, 1, 0, encode_scalar(5))
    actions = leader.receive(
        net.sealer.envelope(net.followers[0], MessageType.SHARE, late.to_payload(), to=net.leader),
        net.now,
    )
    assert not of_type(actions, Misbehaviour)


def test_a_member_that_missed_a_final_catches_up_from_the_next_proposal() -> None:
    net = Net()
    net.start()  # round 1 finalizes
    net.hold = _is_propose
    net.tick(net.config.timing.delta_round)  # round 2: nothing due, an empty PROPOSE
    propose = _held_propose(net)
    assert propose.report is None and len(propose.finals) == 1  # justifies round 1
    node = net.followers[0]
    fresh = net.committee.protocol(node, seed=31)  # as if every FINAL had been lost
    fresh.start(net.now)
    fresh.set_observation(BASE, int(net.now))
    actions = fresh.receive(_forge(net, propose), net.now)
    (caught_up,) = of_type(actions, ReportFinalized)
    assert (caught_up.epoch, caught_up.round) == (1, 1) and caught_up.latency is None
    assert fresh.committed["H100-SXM/USD-HR"].value == BASE["H100-SXM/USD-HR"] + 1000
    # A forged justification is the leader's fault.
    report, signature = propose.finals[0]
    bad = bytes([signature[0]]) + bytes(64)
    other = net.committee.protocol(net.followers[1], seed=32)
    other.start(net.now)
    refused = other.receive(_forge(net, propose, finals=((report, bad),)), net.now)
    (fault,) = of_type(refused, Misbehaviour)
    assert fault.culprit == net.leader and fault.kind is MisbehaviourKind.INVALID_PROPOSAL
    assert not other.committed


def _run_rounds(net: Net, rounds: int) -> None:
    """``rounds`` more rounds, each with prices 2 % apart from the last (so each signs)."""
    for _ in range(rounds):
        net.step += 1
        net.observe_all({k: v + 5_000_000 * net.step for k, v in BASE.items()})
        net.tick(net.config.timing.delta_round)


def test_a_signer_tops_up_its_commitments_after_the_final_not_before_its_share() -> None:
    net = Net()
    net.start()
    # Batch 8, low water 4: a follower that signs every round crosses low water at its
    # fifth share.
    _run_rounds(net, 6)
    signers = {n for n, acts in net.log if sends(acts, MessageType.SHARE)}
    assert signers, "no follower signed"
    for node in signers:
        lists = [acts for n, acts in net.log if n == node]
        topped_up = [acts for acts in lists[1:] if of_type(acts, PublishCommitments)]
        assert topped_up, "a follower that signed every round never topped up"
        for acts in lists:
            # Never in the same breath as a share: n batches would land on every member
            # while the leader collects shares.
            assert not (of_type(acts, PublishCommitments) and sends(acts, MessageType.SHARE))
        for acts in topped_up:
            assert of_type(acts, ReportFinalized)  # the FINAL released it
    finals = of_type(net.actions_of(net.leader), ReportFinalized)
    assert {(a.epoch, a.round) for a in finals} == {(1, r) for r in range(1, 8)}


def test_a_top_up_held_for_a_share_goes_out_when_the_leader_never_finalizes() -> None:
    net = Net()
    net.start()
    _run_rounds(net, 3)  # rounds 1-4: four shares each, one more crosses low water
    net.hold = lambda sender, action: (
        isinstance(action, Broadcast) and action.type is (MessageType.FINAL)
    )
    net.log.clear()
    _run_rounds(net, 1)
    signer = next(n for n, acts in net.log if n in net.followers and sends(acts, MessageType.SHARE))
    assert not of_type(net.actions_of(signer), PublishCommitments)  # held while in flight
    net.tick(net.config.timing.signing_timeout)
    assert of_type(net.actions_of(signer), PublishCommitments)  # the leader went quiet


def test_resync_reannounces_commitments_and_reasks_observations_at_once() -> None:
    # Observations never reach the leader: it stays in OBSERVING, as after a broker outage.
    def observation(sender: NodeId, action: Action) -> bool:
        return isinstance(action, SendTo) and action.type is MessageType.OBSERVATION

    net = Net(hold=observation)
    net.start()
    leader, follower = net.cores[net.leader], net.cores[net.followers[0]]
    assert leader.leader_phase is LeaderPhase.OBSERVING
    net.now += 0.01  # past start: neither re-announcing nor re-asking is due yet
    for core in (leader, follower):
        quiet = core.tick(net.now)
        assert not sends(quiet, MessageType.COMMITMENTS) and not sends(quiet, MessageType.OBSERVE)
    for core, is_leader in ((leader, True), (follower, False)):
        (tick,) = of_type(core.resync(net.now), ScheduleTick)
        assert tick.at == net.now  # what it has to say goes out at the next tick
        actions = core.tick(net.now)
        announced = [
            Commitments.from_payload(a.payload) for a in sends(actions, MessageType.COMMITMENTS)
        ]
        assert sum(len(m.entries) for m in announced) == net.config.commitment_batch
        assert bool(sends(actions, MessageType.OBSERVE)) is is_leader
