"""The sans-io DKG session: honest ceremonies, Byzantine members, lost messages, re-runs.

Every member is a :class:`DkgSession`; a tiny deterministic router (below) seals each
action with the member's identity key, so frames and complaint evidence are the real signed
bytes, and delivers them in FIFO order; when nothing is in flight, time jumps to the next
wake-up. ``intercept`` lets a test drop, replace or forge deliveries.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from aggregation.frost import (
    DkgConfig,
    DkgParticipant,
    PublicKeyPackage,
    Round2Package,
    sign_with_committee,
    verify,
)
from oracle.dkg_session import (
    TRANSITIONS,
    Action,
    Broadcast,
    Completed,
    DkgEvent,
    DkgKeyRejected,
    DkgMisbehaviour,
    DkgPhase,
    DkgResult,
    DkgSession,
    DkgSessionConfig,
    DkgSessionError,
    DkgSessionStateError,
    DkgTimeout,
    Failed,
    Restarted,
    SendTo,
    derive_session_id,
)
from oracle.identity import IdentityKey, NodeId, Roster
from oracle.keystore import check_public_key_package
from oracle.transport.envelope import (
    Envelope,
    JsonValue,
    MessageType,
    SignedEnvelope,
    from_hex,
    seal,
    to_hex,
)

NET = "dkg-test"

Intercept = Callable[[NodeId, NodeId, SignedEnvelope], list[SignedEnvelope]]


def identity(seed: int, index: int) -> IdentityKey:
    return IdentityKey(b"\x01" + random.Random(seed * 1000 + index).randbytes(31))


@dataclass
class Router:
    n: int
    threshold: int
    seed: int = 0
    label: bytes = b"unit-test"
    rng_salt: str = ""
    timeout: float = 30.0
    dispute_window: float = 3.0
    key_acceptable: Callable[[PublicKeyPackage], bool] | None = None
    intercept: Intercept | None = None
    keys: dict[NodeId, IdentityKey] = field(init=False)
    sessions: dict[NodeId, DkgSession] = field(init=False)
    results: dict[NodeId, DkgResult] = field(init=False, default_factory=dict)
    errors: dict[NodeId, DkgSessionError] = field(init=False, default_factory=dict)
    restarts: dict[NodeId, list[Action]] = field(init=False, default_factory=dict)
    sent: list[SignedEnvelope] = field(init=False, default_factory=list)
    now: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        keys = [identity(self.seed, i) for i in range(self.n)]
        self.roster = Roster.of(*keys)
        self.keys = {k.node_id: k for k in keys}
        self.members = self.roster.node_ids
        self.config = DkgSessionConfig(
            network=NET,
            roster=self.roster,
            threshold=self.threshold,
            label=self.label,
            timeout=self.timeout,
            resend_interval=1.0,
            dispute_window=self.dispute_window,
        )
        self.sessions = {
            m: DkgSession(
                self.config,
                m,
                random.Random(f"{self.seed}-{self.rng_salt}-{m}").randbytes,
                key_acceptable=self.key_acceptable,
            )
            for m in self.members
        }
        self._queue: deque[tuple[NodeId, SignedEnvelope]] = deque()
        self._seq = itertools.count(1)

    def seal(
        self,
        sender: NodeId,
        type: MessageType,
        payload: dict[str, JsonValue],
        to: NodeId | None = None,
    ) -> SignedEnvelope:
        return seal(Envelope(NET, type, sender, next(self._seq), payload, to), self.keys[sender])

    def deliver(self, sender: NodeId, recipient: NodeId, envelope: SignedEnvelope) -> None:
        copies = (
            self.intercept(sender, recipient, envelope)
            if self.intercept is not None
            else [envelope]
        )
        self._queue.extend((recipient, copy) for copy in copies)

    def inject(self, recipient: NodeId, envelope: SignedEnvelope) -> None:
        self._queue.append((recipient, envelope))

    def execute(self, member: NodeId, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                envelope = self.seal(member, action.type, action.payload)
                self.sent.append(envelope)
                for other in self.members:
                    if other != member:
                        self.deliver(member, other, envelope)
            elif isinstance(action, SendTo):
                envelope = self.seal(member, action.type, action.payload, to=action.to)
                self.sent.append(envelope)
                self.deliver(member, action.to, envelope)
            elif isinstance(action, Completed):
                self.results[member] = action.result
            elif isinstance(action, Failed):
                self.errors[member] = action.error
            else:
                self.restarts.setdefault(member, []).append(action)

    def start(self) -> None:
        for member, session in self.sessions.items():
            self.execute(member, session.start(self.now))

    def run(self, *, max_time: float = 600.0) -> Router:
        self.start()
        self.drain(max_time=max_time)
        return self

    def drain(self, *, max_time: float = 600.0, members: tuple[NodeId, ...] | None = None) -> None:
        """Deliver and tick until the given members (default: all) finished."""
        watched = [self.sessions[m] for m in (members or self.members)]
        for _ in range(500_000):
            if all(s.finished for s in watched):
                return
            if self._queue:
                recipient, envelope = self._queue.popleft()
                self.execute(recipient, self.sessions[recipient].receive(envelope, self.now))
                continue
            wake = min(s.wakeup_at for s in self.sessions.values())
            if wake == float("inf") or wake > max_time:
                return
            self.now = max(self.now, wake)
            for member, session in self.sessions.items():
                self.execute(member, session.tick(self.now))
        raise AssertionError("the router did not settle")


def other_round1(router: Router, member: NodeId, session_hex: str, seed: int) -> SignedEnvelope:
    """A second, valid round-1 package of ``member`` for the same session (equivocation)."""
    ids = tuple(range(1, router.n + 1))
    session_id = from_hex(session_hex)
    participant = DkgParticipant(
        DkgConfig(session_id, router.threshold, ids), router.members.index(member) + 1
    )
    package = participant.round1(random.Random(seed).randbytes)
    return router.seal(
        member,
        MessageType.DKG_ROUND1,
        {"session": session_hex, "package": to_hex(package.encode())},
    )


def honest(router: Router, *culprits: NodeId) -> list[NodeId]:
    return [m for m in router.members if m not in culprits]


# -- honest ceremonies ---------------------------------------------------------------------
@pytest.mark.parametrize(("n", "t"), [(3, 2), (4, 3), (5, 3), (6, 4), (7, 5)])
def test_honest_ceremony_gives_everyone_one_usable_key(n: int, t: int) -> None:
    router = Router(n, t, seed=n).run()

    assert not router.errors
    assert set(router.results) == set(router.members)
    publics = {r.public_key_package.group_key.encode() for r in router.results.values()}
    assert len(publics) == 1
    result = router.results[router.members[0]]
    public = result.public_key_package
    check_public_key_package(public)  # verifying shares lie on one degree t-1 polynomial
    assert public.threshold == t and public.max_signers == n
    for member, res in router.results.items():
        assert res.identifier == router.members.index(member) + 1
        assert res.key_package.verifying_share == public.verifying_shares[res.identifier]
        assert res.public_key_package.verifying_shares == public.verifying_shares
        assert res.attempt == 0
    assert result.chain_key.x < 2**256  # chain-compatible (chain_key raises otherwise)
    # Any t members sign under the group key.
    packages = {r.identifier: r.key_package for r in router.results.values()}
    signers = sorted(random.Random(n).sample(range(1, n + 1), t))
    message = bytes(range(32))
    signature = sign_with_committee(packages, public, signers, message, random.Random(1).randbytes)
    assert verify(public.group_key, message, signature)
    # No resend or timeout was needed in a lossless run.
    assert router.now == 0.0


def test_every_message_is_bound_to_the_session() -> None:
    router = Router(3, 2).run()
    session_hex = to_hex(router.config.session_id(0))
    assert router.sent
    assert all(envelope.payload["session"] == session_hex for envelope in router.sent)


def test_session_id_depends_on_every_public_input() -> None:
    keys = [identity(9, i) for i in range(4)]
    roster = Roster.of(*keys)
    base = derive_session_id("devnet", roster, 3, b"ceremony", 0)
    assert len(base) == 32
    assert base == derive_session_id("devnet", Roster.of(*reversed(keys)), 3, b"ceremony", 0)
    others = {
        derive_session_id("mainnet", roster, 3, b"ceremony", 0),
        derive_session_id("devnet", Roster.of(*keys[:3]), 3, b"ceremony", 0),
        derive_session_id("devnet", roster, 2, b"ceremony", 0),
        derive_session_id("devnet", roster, 3, b"ceremony2", 0),
        derive_session_id("devnet", roster, 3, b"ceremony", 1),
    }
    assert base not in others and len(others) == 5


def test_lost_messages_are_resent_until_acknowledged() -> None:
    # A late subscriber: member 0 hears nothing during the first 3 seconds.
    router = Router(4, 3, seed=4)
    late = router.members[0]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        return [] if recipient == late and router.now < 3.0 else [env]

    router.intercept = intercept
    router.run()
    assert not router.errors
    assert len({r.group_key.encode() for r in router.results.values()}) == 1
    assert router.now >= 3.0


def test_random_loss_still_completes() -> None:
    rng = random.Random(7)
    router = Router(5, 3, seed=5)
    router.intercept = lambda s, r, env: [] if rng.random() < 0.3 else [env]
    router.run()
    assert not router.errors
    assert len({r.group_key.encode() for r in router.results.values()}) == 1


def test_completed_member_answers_a_peer_that_missed_its_done() -> None:
    router = Router(3, 2, seed=11)
    laggard = router.members[2]
    first = router.members[0]
    dropped: list[bool] = []

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        # The laggard never gets `first`'s first DONE; by then `first` has completed.
        to_laggard = sender == first and recipient == laggard
        if env.type is MessageType.DKG_DONE and to_laggard and not dropped:
            dropped.append(True)
            return []
        return [env]

    router.intercept = intercept
    router.run()
    assert dropped and not router.errors and set(router.results) == set(router.members)


def test_old_session_messages_are_ignored() -> None:
    old = Router(4, 3, seed=3, label=b"ceremony-1").run()
    assert len(old.results) == 4
    replay = list(old.sent)

    router = Router(4, 3, seed=3, label=b"ceremony-2", rng_salt="fresh")
    router.start()
    # The broker replays the whole previous ceremony to everyone before anything new.
    for member in router.members:
        for envelope in replay:
            if envelope.sender != member and envelope.to in (None, member):
                router.inject(member, envelope)
    router.drain()
    assert not router.errors
    assert len(router.results) == 4
    new_key = router.results[router.members[0]].group_key
    assert new_key != old.results[old.members[0]].group_key
    assert all(s.ignored.get("stale_session", 0) > 0 for s in router.sessions.values())


# -- re-run on an unusable key -------------------------------------------------------------
def test_unacceptable_key_reruns_with_a_derived_session_id() -> None:
    refused: list[bytes] = []

    def acceptable(public: PublicKeyPackage) -> bool:
        key = public.group_key.encode()
        if not refused:
            refused.append(key)  # the first key any member computes is "incompatible"
        return key not in refused

    router = Router(4, 3, seed=21, key_acceptable=acceptable).run()
    assert not router.errors
    keys = {r.group_key.encode() for r in router.results.values()}
    assert len(keys) == 1 and keys.isdisjoint(refused)
    assert all(r.attempt == 1 for r in router.results.values())
    assert all(r.session_id == router.config.session_id(1) for r in router.results.values())
    assert all([type(a) for a in router.restarts[m]] == [Restarted] for m in router.members)


def test_rerun_survives_a_share_lost_before_the_others_moved_on() -> None:
    refused: list[bytes] = []

    def acceptable(public: PublicKeyPackage) -> bool:
        if not refused:
            refused.append(public.group_key.encode())
        return public.group_key.encode() not in refused

    router = Router(3, 2, seed=23, key_acceptable=acceptable)
    sender, laggard = router.members[0], router.members[1]
    lost: list[SignedEnvelope] = []

    def intercept(src: NodeId, dst: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        # The laggard loses `sender`'s first share of attempt 0; everyone else restarts
        # before the laggard can finish attempt 0, so their attempt-1 packages wait for it.
        if src == sender and dst == laggard and env.type is MessageType.DKG_ROUND2 and not lost:
            lost.append(env)
            return []
        return [env]

    router.intercept = intercept
    router.run()
    assert lost and not router.errors
    assert {r.attempt for r in router.results.values()} == {1}
    assert len({r.group_key.encode() for r in router.results.values()}) == 1


def test_no_usable_key_after_max_attempts_fails() -> None:
    router = Router(3, 2, seed=22, key_acceptable=lambda public: False).run()
    assert not router.results
    assert all(isinstance(e, DkgKeyRejected) for e in router.errors.values())
    assert len(router.errors) == 3


# -- Byzantine members ---------------------------------------------------------------------
def test_round1_equivocation_is_detected_and_named() -> None:
    router = Router(5, 3, seed=31)
    cheat = router.members[1]
    fooled = set(router.members[3:])
    forged: dict[str, SignedEnvelope] = {}

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and env.type is MessageType.DKG_ROUND1 and recipient in fooled:
            session = str(env.payload["session"])
            if session not in forged:
                forged[session] = other_round1(router, cheat, session, seed=99)
            return [forged[session]]
        return [env]

    router.intercept = intercept
    router.run()
    assert not router.results
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour), error
        assert error.culprits == (cheat,)
        assert error.proven
        assert len(error.evidence) == 2  # two packages signed by the cheat


def test_broadcast_equivocation_seen_by_one_member_is_proven() -> None:
    router = Router(4, 3, seed=32)
    cheat = router.members[0]
    victim = router.members[2]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and env.type is MessageType.DKG_ROUND1 and recipient == victim:
            return [env, other_round1(router, cheat, str(env.payload["session"]), seed=5)]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        assert error.proven


def test_echo_liar_is_named_after_the_dispute_window() -> None:
    router = Router(4, 3, seed=33)
    liar = router.members[3]
    subject = 1  # claims a different hash for member 1's package

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == liar and env.type is MessageType.DKG_ECHO:
            hashes = list(env.payload["hashes"])  # type: ignore[arg-type]
            hashes[subject - 1] = to_hex(bytes(32))
            return [router.seal(liar, env.type, {**env.payload, "hashes": hashes})]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, liar):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour), error
        assert error.culprits == (liar,)
        assert error.phase is DkgPhase.DISPUTE


def test_bad_share_is_named_by_its_recipient_and_reported_to_the_others() -> None:
    router = Router(4, 3, seed=34)
    cheat = router.members[2]
    victim = router.members[0]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and recipient == victim and env.type is MessageType.DKG_ROUND2:
            package = Round2Package.decode(from_hex(str(env.payload["package"])))
            tampered = Round2Package(
                package.sender,
                package.recipient,
                package.session_id,
                bytes(len(package.ciphertext)),
            )
            payload = {**env.payload, "package": to_hex(tampered.encode())}
            return [router.seal(cheat, env.type, payload, to=victim)]
        return [env]

    router.intercept = intercept
    router.run()
    own = router.errors[victim]
    assert isinstance(own, DkgMisbehaviour) and own.culprits == (cheat,) and own.proven
    for member in honest(router, cheat, victim):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour), error
        assert error.culprits == (cheat,)
        assert error.accuser == victim and not error.proven
    assert victim not in router.results


def test_bad_share_arriving_before_round2_is_named_when_opened() -> None:
    router = Router(3, 2, seed=45)
    cheat, victim = router.members[0], router.members[2]
    held: list[SignedEnvelope] = []

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if recipient == victim and env.type is MessageType.DKG_ECHO and router.now < 1.0:
            held.append(env)
            return []  # the victim's echoes come late (resent after 1 s)
        if sender == cheat and recipient == victim and env.type is MessageType.DKG_ROUND2:
            package = Round2Package.decode(from_hex(str(env.payload["package"])))
            bad = Round2Package(package.sender, package.recipient, package.session_id, b"\x01")
            return [
                router.seal(
                    cheat, env.type, {**env.payload, "package": to_hex(bad.encode())}, to=victim
                )
            ]
        return [env]

    router.intercept = intercept
    router.run()
    assert held
    error = router.errors[victim]
    assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,) and error.proven
    assert error.phase is DkgPhase.ROUND2


def test_two_different_shares_are_proven_equivocation() -> None:
    router = Router(3, 2, seed=35)
    cheat, victim = router.members[1], router.members[2]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and recipient == victim and env.type is MessageType.DKG_ROUND2:
            package = Round2Package.decode(from_hex(str(env.payload["package"])))
            other = Round2Package(
                package.sender, package.recipient, package.session_id, b"\x00" * 48
            )
            second = router.seal(
                cheat, env.type, {**env.payload, "package": to_hex(other.encode())}, to=victim
            )
            return [env, second]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        # Two shares signed by the cheat for one recipient: anyone can check that.
        assert error.proven and len(error.evidence) == 2


def test_done_with_another_key_is_named() -> None:
    router = Router(3, 2, seed=36)
    cheat = router.members[0]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and env.type is MessageType.DKG_DONE:
            return [router.seal(cheat, env.type, {**env.payload, "digest": to_hex(bytes(32))})]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        assert error.proven


def test_done_mismatch_seen_by_one_member_is_proven_to_the_others() -> None:
    router = Router(4, 3, seed=46)
    cheat, victim = router.members[3], router.members[0]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and recipient == victim and env.type is MessageType.DKG_DONE:
            return [router.seal(cheat, env.type, {**env.payload, "digest": to_hex(bytes(32))})]
        if sender == victim and env.type is MessageType.DKG_DONE:
            return []  # so the others are still confirming when the complaint comes
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        # The cheat's signed DONE contradicts the digest each member computed itself.
        assert error.proven
        assert error.accuser == (None if member == victim else victim)


def test_dispute_backed_by_non_evidence_names_the_complainer() -> None:
    router = Router(3, 2, seed=47)
    liar = router.members[0]
    router.start()
    done = router.seal(liar, MessageType.DKG_DONE, {"session": to_hex(router.config.session_id(0))})
    complaint = router.seal(
        liar,
        MessageType.DKG_COMPLAINT,
        {
            "session": to_hex(router.config.session_id(0)),
            "kind": "dispute",
            "accused": None,
            "evidence": [to_hex(done.frame)],
        },
    )
    actions = router.sessions[router.members[1]].receive(complaint, 0.0)
    assert isinstance(actions[-1], Failed)
    error = actions[-1].error
    assert isinstance(error, DkgMisbehaviour) and error.culprits == (liar,)


def test_dispute_without_a_contradiction_names_the_complainer_after_the_window() -> None:
    router = Router(3, 2, seed=48)
    liar = router.members[0]
    router.start()
    honest_round1 = [e for e in router.sent if e.type is MessageType.DKG_ROUND1]
    complaint = router.seal(
        liar,
        MessageType.DKG_COMPLAINT,
        {
            "session": to_hex(router.config.session_id(0)),
            "kind": "dispute",
            "accused": None,
            "evidence": [to_hex(e.frame) for e in honest_round1],
        },
    )
    for member in router.members[1:]:
        router.inject(member, complaint)
    router.drain(members=router.members[1:])
    for member in router.members[1:]:
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (liar,)
        assert error.phase is DkgPhase.DISPUTE
    assert router.now == pytest.approx(router.dispute_window)


def test_malformed_message_with_our_session_names_its_signer() -> None:
    router = Router(4, 3, seed=37)
    cheat, victim = router.members[1], router.members[3]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        # Only the victim gets the malformed package; its complaint tells the others.
        if sender == cheat and recipient == victim and env.type is MessageType.DKG_ROUND1:
            return [router.seal(cheat, env.type, {**env.payload, "package": "0x00"})]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        assert error.proven and "malformed" in str(error)
    assert router.now < router.timeout  # nobody had to wait for the deadline


def test_complaint_about_a_wellformed_message_names_the_complainer() -> None:
    router = Router(3, 2, seed=40)
    liar, target = router.members[0], router.members[1]
    router.start()
    good = next(e for e in router.sent if e.sender == target)
    complaint = router.seal(
        liar,
        MessageType.DKG_COMPLAINT,
        {
            "session": to_hex(router.config.session_id(0)),
            "kind": "malformed",
            "accused": None,
            "evidence": [to_hex(good.frame)],
        },
    )
    actions = router.sessions[router.members[2]].receive(complaint, 0.0)
    assert isinstance(actions[-1], Failed)
    error = actions[-1].error
    assert isinstance(error, DkgMisbehaviour) and error.culprits == (liar,)


def test_invalid_proof_of_knowledge_is_named() -> None:
    router = Router(3, 2, seed=38)
    cheat = router.members[2]

    def intercept(sender: NodeId, recipient: NodeId, env: SignedEnvelope) -> list[SignedEnvelope]:
        if sender == cheat and env.type is MessageType.DKG_ROUND1:
            raw = bytearray(from_hex(str(env.payload["package"])))
            raw[-33 - 1] ^= 1  # last byte of the proof's z
            return [router.seal(cheat, env.type, {**env.payload, "package": to_hex(bytes(raw))})]
        return [env]

    router.intercept = intercept
    router.run()
    for member in honest(router, cheat):
        error = router.errors[member]
        assert isinstance(error, DkgMisbehaviour) and error.culprits == (cheat,)
        assert error.proven


def test_false_equivocation_complaint_names_the_complainer() -> None:
    router = Router(3, 2, seed=39)
    liar = router.members[0]
    router.start()
    session = to_hex(router.config.session_id(0))
    honest_frame = next(e for e in router.sent if e.sender == router.members[1])
    complaint = router.seal(
        liar,
        MessageType.DKG_COMPLAINT,
        {
            "session": session,
            "kind": "equivocation",
            "accused": router.members[1],
            "evidence": [to_hex(honest_frame.frame), to_hex(honest_frame.frame)],
        },
    )
    victim = router.members[2]
    router.execute(liar, [])
    actions = router.sessions[victim].receive(complaint, 0.0)
    assert isinstance(actions[-1], Failed)
    error = actions[-1].error
    assert isinstance(error, DkgMisbehaviour) and error.culprits == (liar,)


# -- silence -------------------------------------------------------------------------------
def test_silent_member_times_out_and_is_named() -> None:
    router = Router(5, 3, seed=41, timeout=20.0)
    mute = router.members[4]
    router.intercept = lambda s, r, env: [] if s == mute else [env]
    router.run()
    assert not router.results
    for member in honest(router, mute):
        error = router.errors[member]
        assert isinstance(error, DkgTimeout), error
        assert error.silent == (mute,)
        assert error.phase is DkgPhase.ROUND1
    assert router.now == pytest.approx(20.0)


def test_member_silent_in_round2_is_named() -> None:
    router = Router(4, 3, seed=42, timeout=15.0)
    mute = router.members[1]
    router.intercept = lambda s, r, env: (
        [] if s == mute and env.type is MessageType.DKG_ROUND2 else [env]
    )
    router.run()
    for member in honest(router, mute):
        error = router.errors[member]
        assert isinstance(error, DkgTimeout) and error.silent == (mute,)
        assert error.phase is DkgPhase.ROUND2


# -- the state machine ---------------------------------------------------------------------
def test_receive_before_start_is_our_bug() -> None:
    router = Router(3, 2)
    session = router.sessions[router.members[0]]
    envelope = router.seal(router.members[1], MessageType.DKG_DONE, {"session": "0x00"})
    with pytest.raises(DkgSessionStateError):
        session.receive(envelope, 0.0)
    session.start(0.0)
    with pytest.raises(DkgSessionStateError):
        session.start(0.0)
    assert session.phase is DkgPhase.ROUND1


def test_transitions_table_has_no_exit_from_terminal_phases() -> None:
    assert not any(phase in (DkgPhase.COMPLETE, DkgPhase.FAILED) for phase, _ in TRANSITIONS)
    assert TRANSITIONS[(DkgPhase.ROUND2, DkgEvent.RESTART)] is DkgPhase.ROUND1


def test_failed_session_ignores_further_messages_and_ticks() -> None:
    router = Router(3, 2, seed=43, timeout=5.0)
    router.intercept = lambda s, r, env: []
    router.run()
    session = router.sessions[router.members[0]]
    assert session.phase is DkgPhase.FAILED
    assert session.tick(1e9) == []
    envelope = router.seal(router.members[1], MessageType.DKG_DONE, {"session": "0x00"})
    assert session.receive(envelope, 1e9) == []


def test_non_member_and_foreign_types_are_ignored() -> None:
    router = Router(3, 2, seed=44)
    router.start()
    session = router.sessions[router.members[0]]
    outsider = IdentityKey(b"\x02" * 32)
    stray = seal(
        Envelope(NET, MessageType.DKG_ROUND1, outsider.node_id, 1, {"session": "0x"}), outsider
    )
    assert session.receive(stray, 0.0) == []
    other = router.seal(router.members[1], MessageType.OBSERVE, {"x": 1})
    assert session.receive(other, 0.0) == []
    assert session.ignored == {"not_member": 1, "not_dkg": 1}


def test_largest_dispute_complaint_fits_the_frame_cap() -> None:
    # 31 members (the tooling's maximum), t = 21. Every other member's echo disagrees with
    # us only about the package that reaches us last, so the dispute opens holding every
    # round-1 frame and 30 offending echoes: the complaint must still fit one frame.
    router = Router(31, 21, seed=50)
    router.start()
    me = router.members[0]
    session = router.sessions[me]
    packages = {e.sender: e for e in router.sent if e.type is MessageType.DKG_ROUND1}
    hashes = [
        to_hex(hashlib.sha256(from_hex(str(packages[m].payload["package"]))).digest())
        for m in router.members
    ]
    last = router.members[-1]
    lie = [*hashes[:-1], to_hex(bytes(32))]
    for echoer in router.members[1:]:
        payload: dict[str, JsonValue] = {
            "session": to_hex(router.config.session_id(0)),
            "hashes": list(lie),
        }
        assert session.receive(router.seal(echoer, MessageType.DKG_ECHO, payload), 0.0) == []
    for member in router.members[1:-1]:
        assert session.receive(packages[member], 0.0) == []
    actions = session.receive(packages[last], 0.0)
    assert len(actions) == 1 and isinstance(actions[0], Broadcast)
    complaint = actions[0]
    assert complaint.type is MessageType.DKG_COMPLAINT and session.phase is DkgPhase.DISPUTE
    evidence = complaint.payload["evidence"]
    assert isinstance(evidence, list) and len(evidence) == 2 + 30  # capped echoes + packages
    frame = router.seal(me, MessageType.DKG_COMPLAINT, complaint.payload).frame
    assert len(frame) <= router.config.max_frame
