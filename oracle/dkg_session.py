"""One committee member's side of a DKG ceremony over signed messages (sans-io).

:class:`DkgSession` drives an :class:`aggregation.frost.DkgParticipant` (the Pedersen DKG
maths) through the message exchange that makes it safe between mutually distrustful nodes.
It is a plain object: :meth:`~DkgSession.start`, :meth:`~DkgSession.receive` (a verified
envelope) and :meth:`~DkgSession.tick` take the current time and return a list of
:data:`Action` for the driver (:mod:`oracle.dkg_runner`) to execute in order. No I/O, no
clock, randomness passed in.

Protocol (one *attempt*; every message carries the attempt's ``session`` id)
-------------------------------------------------------------------------
1. ``dkg_round1`` (broadcast): our :class:`~aggregation.frost.Round1Package`.
2. ``dkg_echo`` (broadcast), once we hold all n round-1 packages: the SHA-256 of every
   package, in identifier order (ours included).
3. We go on only when **all n members echoed exactly our list** (unanimity, see below). Then
   ``dkg_round2`` to each peer's inbox: its share, already encrypted to it by the
   participant (ECDH + HKDF + ChaCha20-Poly1305).
4. With every share checked, the participant computes the key. If the group key is not
   chain-compatible (Px >= n) or the optional ``key_acceptable`` predicate refuses it, every
   honest member sees the same (the key is a function of the agreed commitments) and starts
   the next attempt at once, with a session id derived from the same inputs and the attempt
   number: nothing needs to be agreed on.
5. ``dkg_done`` (broadcast): the group key and a digest of the whole public key package.
   The session completes when all n digests are equal.

Why unanimity. A Pedersen DKG needs every participant's contribution: the shares of a
member left out would not combine. So all n members must hold the *same* set of round-1
commitments, and a quorum rule (Bracha's ⌈(n+f+1)/2⌉ echoes) buys nothing here: a member
whose package is not agreed by everyone cannot be part of the key anyway. With all n echoes
equal to ours, every member that reaches round 2 holds the same n commitments, so the honest
members derive the same group key and consistent verification shares; one silent member
stops the ceremony (naming it, after the timeout) instead of splitting it.

Faults and who is named (:class:`DkgMisbehaviour`, a ``PeerMisbehaviour``)
-------------------------------------------------------------------------
Two *signed* frames of one member that say different things for the same session and
message type (two round-1 packages, two echoes, two shares for one recipient, two DONEs) are
a proof anyone can check: ``dkg_complaint`` of kind ``equivocation`` carries both.

An echo that disagrees with what we hold starts a *dispute*: the member who sees it
broadcasts a ``dispute`` complaint with the offending echo frames and every round-1 frame it
holds; everyone else answers with an ``evidence`` complaint (its round-1 frames). Each
member pools the frames and names, as soon as the pool shows it: a member with two different
signed round-1 packages or echoes, or with an invalid round-1 package (bad proof of
knowledge, wrong degree). When the dispute window closes: a member whose echo lists a hash
that no signed round-1 frame in the pool backs (it lied), else the complainers (a complaint
with nothing wrong in it).

A share that does not decrypt or does not match its sender's commitment is proven only to
its recipient (``bad_share``): the others abort naming the accused with ``proven=False`` and
the accuser (a public proof would need the pairwise key and a DLEQ proof; future work).
A DONE with a different key is named by its receiver (``done_mismatch``). A malformed
message with our session id is its signer's fault. A message for another session (an old
ceremony, another attempt) is ignored; one for the next attempt is kept until we get there.

Lost messages. MQTT drops what is published before a peer has subscribed, so until a member
knows its peers have a message, it sends it again every ``resend_interval``: the round-1
package until every peer's echo arrived, the echo until every peer's share arrived, each
share until its recipient's DONE arrived, DONE until complete. A member that completed an
attempt (or left it for the next one) still answers a peer that is behind in it (with its
DONE and that peer's share), at most once per interval, for as long as the driver keeps it
running.

Errors::

    OracleError
    └── DkgSessionError            the ceremony did not produce a key (``phase``)
        ├── DkgTimeout             peers stayed silent past the deadline (``silent``)
        ├── DkgMisbehaviour        (also PeerMisbehaviour) ``culprits``, ``evidence``,
        │                          ``accuser``, ``proven``
        ├── DkgKeyRejected         no acceptable group key within ``max_attempts``
        └── DkgSessionStateError   (also LocalProtocolError) we drove the session wrongly
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from aggregation.errors import CryptoError, EncodingError, LocalProtocolError, PeerMisbehaviour
from aggregation.frost import (
    ChainIncompatibleKey,
    ChainKey,
    DkgConfig,
    DkgParticipant,
    DkgPeerMisbehaviour,
    DkgState,
    KeyPackage,
    Point,
    PublicKeyPackage,
    Rng,
    Round1Package,
    Round2Package,
    chain_key,
)
from aggregation.frost.dkg import verify_proof_of_knowledge
from oracle.errors import OracleError
from oracle.identity import NodeId, Roster
from oracle.transport.envelope import (
    DEFAULT_MAX_FRAME,
    JsonValue,
    MessageType,
    Rejected,
    SignedEnvelope,
    from_hex,
    open_frame,
    to_hex,
)

__all__ = [
    "Action",
    "Broadcast",
    "Completed",
    "DkgKeyRejected",
    "DkgMisbehaviour",
    "DkgPhase",
    "DkgResult",
    "DkgSession",
    "DkgSessionConfig",
    "DkgSessionError",
    "DkgSessionStateError",
    "DkgTimeout",
    "Failed",
    "Restarted",
    "SendTo",
    "derive_session_id",
    "public_key_digest",
]

logger = logging.getLogger("xon.dkg")

_DOMAIN: Final = b"xon-dkg/v1"
_HASH_SIZE: Final = 32
#: Echo frames a dispute complaint carries (besides every round-1 frame we hold).
_MAX_OFFENDING_ECHOES: Final = 2
#: Messages kept for the next attempt while we finish the current one.
_NEXT_ATTEMPT_BUFFER: Final = 256


# -- errors --------------------------------------------------------------------------------
class DkgSessionError(OracleError):
    """The DKG ceremony did not produce a key. ``phase`` is where it stopped."""

    phase: DkgPhase | None = None


class DkgTimeout(DkgSessionError):
    """The deadline passed while ``silent`` members had not sent what the phase needs."""

    def __init__(self, message: str, *, silent: tuple[NodeId, ...]) -> None:
        super().__init__(message)
        self.silent = silent


class DkgMisbehaviour(DkgSessionError, PeerMisbehaviour):
    """Members broke the protocol. ``culprit`` is the first of ``culprits``; ``evidence``
    holds signed frames; ``proven`` is False when we only have ``accuser``'s word."""

    def __init__(
        self,
        message: str,
        *,
        culprits: tuple[NodeId, ...],
        evidence: tuple[bytes, ...] = (),
        accuser: NodeId | None = None,
        proven: bool = True,
    ) -> None:
        super().__init__(message, culprit=culprits[0], evidence=evidence)
        self.culprits = culprits
        self.accuser = accuser
        self.proven = proven


class DkgKeyRejected(DkgSessionError):
    """Every attempt produced a group key that cannot be used (Px >= n, or refused by the
    ``key_acceptable`` predicate)."""


class DkgSessionStateError(DkgSessionError, LocalProtocolError):
    """The session was driven wrongly (e.g. ``receive`` before ``start``): our bug."""


# -- configuration and results -------------------------------------------------------------
def derive_session_id(
    network: str, roster: Roster, threshold: int, label: bytes, attempt: int
) -> bytes:
    """The 32-byte DKG session id of one attempt. Every member derives the same value from
    the ceremony's public inputs, so a member with a different roster, threshold, label or
    network simply never hears the others (and a finished ceremony's messages never mix
    into a new one with another label)."""
    hasher = hashlib.sha256(_DOMAIN)
    for part in (network.encode(), label, threshold.to_bytes(2, "big")):
        hasher.update(len(part).to_bytes(2, "big") + part)
    for node_id in roster.node_ids:
        hasher.update(bytes.fromhex(node_id[2:]) + roster[node_id])
    hasher.update(attempt.to_bytes(4, "big"))
    return hasher.digest()


def public_key_digest(public: PublicKeyPackage) -> bytes:
    """SHA-256 over threshold, group key and every verifying share (identifier order):
    what the members compare in DONE."""
    hasher = hashlib.sha256(_DOMAIN + b" public key package")
    hasher.update(public.threshold.to_bytes(2, "big") + public.group_key.encode())
    for identifier, share in sorted(public.verifying_shares.items()):
        hasher.update(identifier.to_bytes(2, "big") + share.encode())
    return hasher.digest()


@dataclass(frozen=True)
class DkgSessionConfig:
    """What every member of one ceremony must agree on, and local timing choices.

    Identifiers follow the roster order (node ids sorted case-insensitively), as for
    ``xon keys dealer``. ``label`` is the operator-chosen ceremony name (``--session``);
    ``timeout`` bounds each attempt; ``dispute_window`` is how long a dispute collects
    evidence before it names an echo nobody backs.
    """

    network: str
    roster: Roster
    threshold: int
    label: bytes
    timeout: float = 120.0
    resend_interval: float = 1.0
    dispute_window: float = 5.0
    max_attempts: int = 3
    max_frame: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        if len(self.roster) < 2:
            raise ValueError("a DKG needs at least two members")
        if not 2 <= self.threshold <= len(self.roster):
            raise ValueError(f"threshold must be in [2, {len(self.roster)}]")
        if not self.label:
            raise ValueError("the session label must not be empty")
        if self.timeout <= 0 or self.resend_interval <= 0 or self.dispute_window <= 0:
            raise ValueError("timeout, resend_interval and dispute_window must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def members(self) -> tuple[NodeId, ...]:
        return self.roster.node_ids

    def identifier(self, node_id: NodeId) -> int:
        return self.members.index(node_id) + 1

    def session_id(self, attempt: int) -> bytes:
        return derive_session_id(self.network, self.roster, self.threshold, self.label, attempt)


@dataclass(frozen=True)
class DkgResult:
    """A completed ceremony: our key package and the committee's public data."""

    network: str
    session_id: bytes
    attempt: int
    identifier: int
    node_ids: Mapping[int, NodeId]
    key_package: KeyPackage = field(repr=False)
    public_key_package: PublicKeyPackage

    @property
    def group_key(self) -> Point:
        return self.public_key_package.group_key

    @property
    def chain_key(self) -> ChainKey:
        return chain_key(self.group_key)


# -- actions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Broadcast:
    """Sign and publish on the consensus topic."""

    type: MessageType
    payload: dict[str, JsonValue] = field(hash=False)


@dataclass(frozen=True)
class SendTo:
    """Sign and publish to ``to``'s inbox."""

    to: NodeId
    type: MessageType
    payload: dict[str, JsonValue] = field(hash=False)


@dataclass(frozen=True)
class Restarted:
    """Informational: the previous attempt's key was unusable; attempt ``attempt`` began."""

    attempt: int
    reason: str


@dataclass(frozen=True)
class Completed:
    result: DkgResult


@dataclass(frozen=True)
class Failed:
    """Terminal: the ceremony failed with ``error`` (raise it, after sending what precedes)."""

    error: DkgSessionError


Action: TypeAlias = Broadcast | SendTo | Restarted | Completed | Failed


# -- states --------------------------------------------------------------------------------
class DkgPhase(enum.Enum):
    NEW = "new"
    ROUND1 = "round1"  # our package is out; collecting the others'
    ECHO = "echo"  # our echo is out; collecting everyone's
    ROUND2 = "round2"  # our shares are out; collecting ours
    CONFIRM = "confirm"  # our DONE is out; collecting everyone's
    DISPUTE = "dispute"  # an echo disagreed; collecting evidence
    COMPLETE = "complete"
    FAILED = "failed"


class DkgEvent(enum.Enum):
    START = "start"
    HAVE_ROUND1 = "have_round1"
    ECHOES_AGREE = "echoes_agree"
    KEY_READY = "key_ready"
    CONFIRMED = "confirmed"
    DISPUTE = "dispute"
    RESTART = "restart"
    FAIL = "fail"


_P = DkgPhase
_E = DkgEvent
_LIVE: Final = (_P.ROUND1, _P.ECHO, _P.ROUND2, _P.CONFIRM)
#: Every allowed (phase, event) -> next phase; anything else is a DkgSessionStateError.
TRANSITIONS: Final[Mapping[tuple[DkgPhase, DkgEvent], DkgPhase]] = MappingProxyType(
    {
        (_P.NEW, _E.START): _P.ROUND1,
        (_P.ROUND1, _E.HAVE_ROUND1): _P.ECHO,
        (_P.ECHO, _E.ECHOES_AGREE): _P.ROUND2,
        (_P.ROUND2, _E.KEY_READY): _P.CONFIRM,
        (_P.ROUND2, _E.RESTART): _P.ROUND1,
        (_P.CONFIRM, _E.CONFIRMED): _P.COMPLETE,
        **{(phase, _E.DISPUTE): _P.DISPUTE for phase in _LIVE},
        **{(phase, _E.FAIL): _P.FAILED for phase in (*_LIVE, _P.DISPUTE)},
    }
)


class _Malformed(Exception):
    """A message with our session id that does not parse: its signer's fault."""


# -- per-attempt state ---------------------------------------------------------------------
@dataclass(eq=False)
class _Attempt:
    number: int
    session_id: bytes
    participant: DkgParticipant | None  # dropped (with its secrets) when the session fails
    own_package: Round1Package
    deadline: float
    # What we hold, by identifier. Hashes of round-1 packages include our own.
    round1: dict[int, bytes] = field(default_factory=dict)
    echoes: dict[int, tuple[bytes, ...]] = field(default_factory=dict)
    shares_from: set[int] = field(default_factory=set)
    dones: dict[int, bytes] = field(default_factory=dict)
    # Signed frames by (sender, type, to) -> payload digest -> frame, for equivocation proofs.
    frames: dict[tuple[int, MessageType, NodeId | None], dict[bytes, bytes]] = field(
        default_factory=dict
    )
    # The dispute's evidence pool: every signed round-1 package and echo we have seen.
    r1_pool: dict[int, dict[bytes, bytes | None]] = field(default_factory=dict)
    echo_pool: dict[int, dict[bytes, tuple[tuple[bytes, ...], bytes]]] = field(default_factory=dict)
    validated: set[bytes] = field(default_factory=set)
    complainers: set[int] = field(default_factory=set)  # opened a dispute
    responders: set[int] = field(default_factory=set)  # answered one with evidence
    dispute_deadline: float | None = None
    evidence_sent: bool = False
    # What we sent, for resending.
    echo: dict[str, JsonValue] | None = None
    shares_out: dict[int, dict[str, JsonValue]] = field(default_factory=dict)
    done: dict[str, JsonValue] | None = None
    public_digest: bytes | None = None
    complaint: dict[str, JsonValue] | None = None


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _payload_digest(payload: Mapping[str, JsonValue]) -> bytes:
    """Digest of a payload's content, independent of the envelope's seq (so a resent
    message is the same statement and a different one is equivocation)."""
    return _sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


class DkgSession:
    """One member's DKG ceremony. Not thread-safe; time is any monotonic float (seconds)."""

    def __init__(
        self,
        config: DkgSessionConfig,
        me: NodeId,
        rng: Rng,
        *,
        key_acceptable: Callable[[PublicKeyPackage], bool] | None = None,
    ) -> None:
        if me not in config.roster:
            raise ValueError(f"{me} is not in the roster")
        self.config = config
        self.me = me
        self._rng = rng
        self._key_acceptable = key_acceptable
        self._members = config.members
        self._ids: dict[NodeId, int] = {m: i for i, m in enumerate(self._members, start=1)}
        self._my_id = self._ids[me]
        self._peers = tuple(i for i in self._ids.values() if i != self._my_id)
        self._phase = DkgPhase.NEW
        self._attempt: _Attempt | None = None
        self._previous: _Attempt | None = None
        self._next_session: bytes = b""
        self._buffered: list[SignedEnvelope] = []
        self._next_resend = 0.0
        self._last_reply: dict[tuple[int, int], float] = {}
        self._result: DkgResult | None = None
        self._error: DkgSessionError | None = None
        #: Messages ignored, by reason (stale_session, not_member, duplicate, late).
        self.ignored: dict[str, int] = {}

    # -- public state ----------------------------------------------------------------------
    @property
    def phase(self) -> DkgPhase:
        return self._phase

    @property
    def attempt(self) -> int:
        return self._attempt.number if self._attempt is not None else 0

    @property
    def session_id(self) -> bytes:
        return self._attempt.session_id if self._attempt is not None else b""

    @property
    def result(self) -> DkgResult | None:
        return self._result

    @property
    def error(self) -> DkgSessionError | None:
        return self._error

    @property
    def finished(self) -> bool:
        return self._phase in (DkgPhase.COMPLETE, DkgPhase.FAILED)

    @property
    def wakeup_at(self) -> float:
        """When :meth:`tick` has something to do (ticking more often is harmless)."""
        attempt = self._attempt
        if attempt is None or self.finished:
            return float("inf")
        times = [self._next_resend, attempt.deadline]
        if attempt.dispute_deadline is not None:
            times.append(attempt.dispute_deadline)
        return min(times)

    def silent_members(self) -> tuple[NodeId, ...]:
        """Members whose message for the current phase has not arrived."""
        attempt = self._attempt
        if attempt is None:
            return self._members_of(self._peers)
        have: Iterable[int]
        if self._phase is DkgPhase.ROUND1:
            have = attempt.round1
        elif self._phase is DkgPhase.ECHO:
            have = attempt.echoes
        elif self._phase is DkgPhase.ROUND2:
            have = attempt.shares_from
        elif self._phase is DkgPhase.CONFIRM:
            have = attempt.dones
        else:
            return ()
        have = set(have)
        return self._members_of(i for i in self._peers if i not in have)

    # -- driving ---------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        """Begin attempt 0: broadcast our round-1 package."""
        self._move(DkgEvent.START)
        return self._begin_attempt(0, now)

    def receive(self, envelope: SignedEnvelope, now: float) -> list[Action]:
        """Handle one verified envelope (the transport checked signature, roster, topic)."""
        if self._phase is DkgPhase.NEW:
            raise DkgSessionStateError("receive() before start()")
        attempt = self._attempt
        assert attempt is not None
        if self._phase is DkgPhase.FAILED:
            return self._ignore("late")
        sender_id = self._ids.get(envelope.sender)
        if sender_id is None or sender_id == self._my_id:
            return self._ignore("not_member")
        if envelope.type not in _HANDLERS:
            return self._ignore("not_dkg")
        session = envelope.payload.get("session")
        if session != to_hex(attempt.session_id):
            if session == to_hex(self._next_session):
                if len(self._buffered) < _NEXT_ATTEMPT_BUFFER:
                    self._buffered.append(envelope)
                return []
            previous = self._previous
            if previous is not None and session == to_hex(previous.session_id):
                # A peer still finishing the attempt we left may lack our share of it.
                return self._answer_laggard(previous, sender_id, envelope, now)
            return self._ignore("stale_session")
        if self._phase is DkgPhase.COMPLETE:
            return self._answer_laggard(attempt, sender_id, envelope, now)
        try:
            return _HANDLERS[envelope.type](self, attempt, sender_id, envelope, now)
        except _Malformed as exc:
            return [
                self._complaint(attempt, "malformed", [envelope.frame]),
                *self._fail(
                    DkgMisbehaviour(
                        f"{envelope.sender} sent a malformed {envelope.type}: {exc}",
                        culprits=(envelope.sender,),
                        evidence=(envelope.frame,),
                    )
                ),
            ]

    def tick(self, now: float) -> list[Action]:
        """Resend what peers may lack, close a dispute, enforce the deadline."""
        attempt = self._attempt
        if attempt is None or self.finished:
            return []
        if attempt.dispute_deadline is not None and now >= attempt.dispute_deadline:
            return self._fail(self._judge(attempt))
        if now >= attempt.deadline:
            silent = self.silent_members()
            return self._fail(
                DkgTimeout(
                    f"DKG attempt {attempt.number} timed out in phase {self._phase.value}"
                    + (f" waiting for {', '.join(silent)}" if silent else ""),
                    silent=silent,
                )
            )
        if now < self._next_resend:
            return []
        self._next_resend = now + self.config.resend_interval
        return self._resend(attempt)

    # -- transitions -----------------------------------------------------------------------
    def _move(self, event: DkgEvent) -> None:
        try:
            self._phase = TRANSITIONS[(self._phase, event)]
        except KeyError:
            raise DkgSessionStateError(
                f"illegal DKG session move {event.value} in phase {self._phase.value}"
            ) from None
        logger.debug("dkg.phase me=%s phase=%s", self.me, self._phase.value)

    def _begin_attempt(self, number: int, now: float) -> list[Action]:
        session_id = self.config.session_id(number)
        participant = DkgParticipant(
            DkgConfig(session_id, self.config.threshold, tuple(self._ids.values())), self._my_id
        )
        package = participant.round1(self._rng)
        attempt = _Attempt(
            number=number,
            session_id=session_id,
            participant=participant,
            own_package=package,
            deadline=now + self.config.timeout,
        )
        own_hash = _sha256(package.encode())
        attempt.round1[self._my_id] = own_hash
        attempt.r1_pool[self._my_id] = {own_hash: None}
        self._previous, self._attempt = self._attempt, attempt
        if self._previous is not None:
            self._previous.participant = None  # its key was refused; drop the secrets
        self._next_session = self.config.session_id(number + 1)
        self._next_resend = now + self.config.resend_interval
        actions: list[Action] = [self._round1_broadcast(attempt)]
        # Messages of this attempt that arrived while we finished the previous one.
        buffered, self._buffered = self._buffered, []
        for envelope in buffered:
            if self._attempt is not attempt or self.finished:
                break
            actions += self.receive(envelope, now)
        return actions

    def _round1_broadcast(self, attempt: _Attempt) -> Broadcast:
        return Broadcast(
            MessageType.DKG_ROUND1,
            {
                "session": to_hex(attempt.session_id),
                "package": to_hex(attempt.own_package.encode()),
            },
        )

    # -- handlers --------------------------------------------------------------------------
    def _on_round1(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        self._expect_broadcast(envelope)
        package = self._round1_package(attempt, sender, envelope.payload)
        proof = self._record_frame(attempt, sender, envelope)
        if proof is not None:
            return proof
        digest = _sha256(package.encode())
        if attempt.round1.get(sender) == digest:
            return self._ignore("duplicate")
        attempt.r1_pool.setdefault(sender, {})[digest] = envelope.frame
        attempt.round1[sender] = digest
        if self._phase is DkgPhase.DISPUTE:
            return self._after_evidence(attempt, now)
        try:
            _participant(attempt).receive(package)
        except DkgPeerMisbehaviour as exc:
            # A bad proof or degree: proven by the frame itself; show it to everyone.
            return [
                self._complaint(attempt, "dispute", [envelope.frame]),
                *self._fail(
                    DkgMisbehaviour(
                        f"invalid round-1 package from {envelope.sender}: {exc}",
                        culprits=(envelope.sender,),
                        evidence=(envelope.frame,),
                    )
                ),
            ]
        attempt.validated.add(digest)
        actions = self._check_echoes(attempt, now)
        if actions:
            return actions
        if self._phase is DkgPhase.ROUND1 and len(attempt.round1) == len(self._members):
            self._move(DkgEvent.HAVE_ROUND1)
            hashes = [to_hex(attempt.round1[i]) for i in range(1, len(self._members) + 1)]
            attempt.echo = {"session": to_hex(attempt.session_id), "hashes": list(hashes)}
            attempt.echoes[self._my_id] = tuple(attempt.round1[i] for i in sorted(attempt.round1))
            actions.append(Broadcast(MessageType.DKG_ECHO, dict(attempt.echo)))
            actions += self._maybe_round2(attempt, now)
        return actions

    def _on_echo(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        self._expect_broadcast(envelope)
        hashes = self._echo_hashes(envelope.payload)
        proof = self._record_frame(attempt, sender, envelope)
        if proof is not None:
            return proof
        if sender in attempt.echoes:
            return self._ignore("duplicate")
        attempt.echoes[sender] = hashes
        attempt.echo_pool.setdefault(sender, {})[_sha256(b"".join(hashes))] = (
            hashes,
            envelope.frame,
        )
        if self._phase is DkgPhase.DISPUTE:
            return self._after_evidence(attempt, now)
        actions = self._check_echoes(attempt, now)
        return actions or self._maybe_round2(attempt, now)

    def _on_round2(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        if envelope.to != self.me:
            raise _Malformed("a round-2 share must be sent to one member's inbox")
        package = self._round2_package(attempt, sender, envelope.payload)
        proof = self._record_frame(attempt, sender, envelope)
        if proof is not None:
            return proof
        if sender in attempt.shares_from:
            return self._ignore("duplicate")
        attempt.shares_from.add(sender)
        if self._phase is DkgPhase.DISPUTE:
            return []
        try:
            _participant(attempt).receive(package)
        except DkgPeerMisbehaviour as exc:
            return self._bad_share(attempt, envelope, str(exc))
        except ChainIncompatibleKey:
            return self._restart(attempt, now, "the group key has Px >= n")
        return self._maybe_key_ready(attempt, now)

    def _on_done(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        self._expect_broadcast(envelope)
        digest = _hex_field(envelope.payload, "digest", _HASH_SIZE)
        _hex_field(envelope.payload, "group_key", 33)
        proof = self._record_frame(attempt, sender, envelope)
        if proof is not None:
            return proof
        if sender in attempt.dones:
            return self._ignore("duplicate")
        attempt.dones[sender] = digest
        if self._phase is DkgPhase.CONFIRM:
            return self._maybe_confirmed(attempt, now)
        return []

    def _on_complaint(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        self._expect_broadcast(envelope)
        kind, frames, accused_id = self._parse_complaint(envelope.payload)
        name = envelope.sender
        if kind in ("dispute", "evidence"):
            (attempt.complainers if kind == "dispute" else attempt.responders).add(sender)
            for frame in frames:
                if not self._add_evidence(attempt, frame):
                    return self._fail(
                        DkgMisbehaviour(
                            f"{name} backed its complaint with a frame that is not valid "
                            "evidence for this session",
                            culprits=(name,),
                            evidence=(envelope.frame,),
                        )
                    )
            return self._after_evidence(attempt, now)
        if kind == "equivocation":
            culprit = self._check_equivocation(attempt, frames)
            if culprit is None:
                return self._fail(
                    DkgMisbehaviour(
                        f"{name} claimed an equivocation its evidence does not show",
                        culprits=(name,),
                        evidence=(envelope.frame,),
                    )
                )
            return self._fail(
                DkgMisbehaviour(
                    f"{culprit} sent two different messages of one kind (reported by {name})",
                    culprits=(culprit,),
                    evidence=tuple(frames),
                    accuser=name,
                )
            )
        if kind == "malformed":
            culprit = self._malformed_signer(attempt, frames)
            return self._fail(
                DkgMisbehaviour(
                    f"{culprit} sent a malformed message (reported by {name})"
                    if culprit is not None
                    else f"{name} reported a malformed message that is well-formed",
                    culprits=(culprit or name,),
                    evidence=tuple(frames) if culprit is not None else (envelope.frame,),
                    accuser=name if culprit is not None else None,
                )
            )
        # bad_share / done_mismatch (_parse_complaint checked that `accused` is a member)
        assert accused_id is not None
        accused_name = self._members[accused_id - 1]
        proven = kind == "done_mismatch" and self._done_contradicts(attempt, frames)
        return self._fail(
            DkgMisbehaviour(
                f"{name} reports {kind.replace('_', ' ')} by {accused_name}",
                culprits=(accused_name,),
                evidence=(envelope.frame, *frames),
                accuser=name,
                proven=proven,
            )
        )

    # -- payload parsing -------------------------------------------------------------------
    def _expect_broadcast(self, envelope: SignedEnvelope) -> None:
        if envelope.to is not None:
            raise _Malformed(f"{envelope.type} must be broadcast")

    def _round1_package(
        self, attempt: _Attempt, sender: int, payload: Mapping[str, JsonValue]
    ) -> Round1Package:
        try:
            package = Round1Package.decode(_hex_field(payload, "package"))
        except CryptoError as exc:
            raise _Malformed(str(exc)) from None
        if package.sender != sender or package.session_id != attempt.session_id:
            raise _Malformed("the package names another sender or session")
        return package

    def _round2_package(
        self,
        attempt: _Attempt,
        sender: int,
        payload: Mapping[str, JsonValue],
        recipient: int | None = None,
    ) -> Round2Package:
        try:
            package = Round2Package.decode(_hex_field(payload, "package"))
        except CryptoError as exc:
            raise _Malformed(str(exc)) from None
        if (
            package.sender != sender
            or package.recipient != (recipient or self._my_id)
            or package.session_id != attempt.session_id
        ):
            raise _Malformed("the share names another sender, recipient or session")
        return package

    def _parse_complaint(
        self, payload: Mapping[str, JsonValue]
    ) -> tuple[str, list[bytes], int | None]:
        kind = payload.get("kind")
        if not isinstance(kind, str) or kind not in _COMPLAINT_KINDS:
            raise _Malformed(f"unknown complaint kind {str(kind)[:40]!r}")
        evidence = payload.get("evidence")
        if not isinstance(evidence, list):
            raise _Malformed("evidence must be a list of hex frames")
        frames = [_from_hex(e) if isinstance(e, str) else b"" for e in evidence]
        accused = payload.get("accused")
        accused_id = self._ids.get(NodeId(accused)) if isinstance(accused, str) else None
        if kind in ("bad_share", "done_mismatch") and accused_id is None:
            raise _Malformed(f"a {kind} complaint must name a member")
        return kind, frames, accused_id

    def _check_wellformed(self, attempt: _Attempt, envelope: SignedEnvelope) -> None:
        """Raise _Malformed unless ``envelope`` parses as its type for this attempt."""
        sender = self._ids[envelope.sender]
        payload = envelope.payload
        if envelope.type is MessageType.DKG_ROUND2:
            recipient = self._ids.get(envelope.to) if envelope.to is not None else None
            if recipient is None:
                raise _Malformed("a round-2 share must be sent to one member's inbox")
            self._round2_package(attempt, sender, payload, recipient)
            return
        self._expect_broadcast(envelope)
        if envelope.type is MessageType.DKG_ROUND1:
            self._round1_package(attempt, sender, payload)
        elif envelope.type is MessageType.DKG_ECHO:
            self._echo_hashes(payload)
        elif envelope.type is MessageType.DKG_DONE:
            _hex_field(payload, "digest", _HASH_SIZE)
            _hex_field(payload, "group_key", 33)
        else:
            self._parse_complaint(payload)

    def _malformed_signer(self, attempt: _Attempt, frames: Sequence[bytes]) -> NodeId | None:
        """The signer of the one frame in ``frames`` if it is a malformed message of this
        session, else None."""
        opened = self._open_evidence(attempt, frames[0]) if len(frames) == 1 else None
        if opened is None or opened.type not in _HANDLERS:
            return None
        try:
            self._check_wellformed(attempt, opened)
        except _Malformed:
            return opened.sender
        return None

    def _echo_hashes(self, payload: Mapping[str, JsonValue]) -> tuple[bytes, ...]:
        raw = payload.get("hashes")
        if not isinstance(raw, list) or len(raw) != len(self._members):
            raise _Malformed(f"an echo lists exactly {len(self._members)} hashes")
        hashes = tuple(_from_hex(h) if isinstance(h, str) else b"" for h in raw)
        if any(len(h) != _HASH_SIZE for h in hashes):
            raise _Malformed("echo hashes are 32-byte hex strings")
        return hashes

    # -- equivocation ----------------------------------------------------------------------
    def _record_frame(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope
    ) -> list[Action] | None:
        """Keep the signed frame; two different statements of one kind are a proof."""
        known = attempt.frames.setdefault((sender, envelope.type, envelope.to), {})
        digest = _payload_digest(envelope.payload)
        if digest in known:
            return None
        if known:
            other = next(iter(known.values()))
            return [
                self._complaint(attempt, "equivocation", [other, envelope.frame]),
                *self._fail(
                    DkgMisbehaviour(
                        f"{envelope.sender} sent two different {envelope.type} messages",
                        culprits=(envelope.sender,),
                        evidence=(other, envelope.frame),
                    )
                ),
            ]
        known[digest] = envelope.frame
        return None

    def _open_evidence(self, attempt: _Attempt, frame: bytes) -> SignedEnvelope | None:
        opened = open_frame(
            frame,
            network=self.config.network,
            roster=self.config.roster,
            max_frame=self.config.max_frame,
        )
        if isinstance(opened, Rejected) or opened.payload.get("session") != to_hex(
            attempt.session_id
        ):
            return None
        return opened

    def _check_equivocation(self, attempt: _Attempt, frames: Sequence[bytes]) -> NodeId | None:
        """The signer of two valid frames of one kind with different content, else None."""
        if len(frames) != 2:
            return None
        first, second = (self._open_evidence(attempt, f) for f in frames)
        if first is None or second is None:
            return None
        same_kind = (first.sender, first.type, first.to) == (second.sender, second.type, second.to)
        if not same_kind or _payload_digest(first.payload) == _payload_digest(second.payload):
            return None
        return first.sender

    def _done_contradicts(self, attempt: _Attempt, frames: Sequence[bytes]) -> bool:
        if attempt.public_digest is None or len(frames) != 1:
            return False
        done = self._open_evidence(attempt, frames[0])
        if done is None or done.type is not MessageType.DKG_DONE:
            return False
        return done.payload.get("digest") != to_hex(attempt.public_digest)

    # -- echo checking and the dispute -----------------------------------------------------
    def _check_echoes(self, attempt: _Attempt, now: float) -> list[Action]:
        """Open a dispute if an echo disagrees with a round-1 package we hold."""
        offending = [
            frame
            for echoer, entries in attempt.echo_pool.items()
            if echoer != self._my_id
            for hashes, frame in entries.values()
            if any(
                subject in attempt.round1 and attempt.round1[subject] != claimed
                for subject, claimed in enumerate(hashes, start=1)
            )
        ]
        if not offending:
            return []
        logger.warning("dkg.echo_mismatch me=%s attempt=%d", self.me, attempt.number)
        attempt.complainers.add(self._my_id)
        # One offending echo substantiates the dispute; a few more help, all of them could
        # overflow the frame cap (31 members: 30 echoes of ~5 KiB hex next to our round-1
        # frames).
        return self._open_dispute(attempt, now, "dispute", offending[:_MAX_OFFENDING_ECHOES])

    def _open_dispute(
        self, attempt: _Attempt, now: float, kind: str, extra: Sequence[bytes]
    ) -> list[Action]:
        actions: list[Action] = []
        if self._phase is not DkgPhase.DISPUTE:
            self._move(DkgEvent.DISPUTE)
            attempt.dispute_deadline = now + self.config.dispute_window
        if not attempt.evidence_sent:
            attempt.evidence_sent = True
            ours = [
                frame
                for entries in attempt.r1_pool.values()
                for frame in entries.values()
                if frame is not None
            ]
            actions.append(self._complaint(attempt, kind, [*extra, *ours]))
        return actions

    def _add_evidence(self, attempt: _Attempt, frame: bytes) -> bool:
        """Pool one round-1 or echo frame from a complaint; False if it is not evidence."""
        opened = self._open_evidence(attempt, frame)
        if opened is None or opened.to is not None:
            return False
        signer = self._ids[opened.sender]
        try:
            if opened.type is MessageType.DKG_ROUND1:
                package = self._round1_package(attempt, signer, opened.payload)
                entries = attempt.r1_pool.setdefault(signer, {})
                entries.setdefault(_sha256(package.encode()), frame)
            elif opened.type is MessageType.DKG_ECHO:
                hashes = self._echo_hashes(opened.payload)
                pool = attempt.echo_pool.setdefault(signer, {})
                pool.setdefault(_sha256(b"".join(hashes)), (hashes, frame))
            else:
                return False
        except _Malformed:
            return False
        return True

    def _after_evidence(self, attempt: _Attempt, now: float) -> list[Action]:
        pair = self._equivocation_in_pool(attempt)
        if pair is not None:
            verdict, frames = pair
            return [self._complaint(attempt, "equivocation", frames), *self._fail(verdict)]
        invalid = self._invalid_in_pool(attempt)
        if invalid is not None:
            return self._fail(invalid)
        return self._open_dispute(attempt, now, "evidence", [])

    def _judge(self, attempt: _Attempt) -> DkgMisbehaviour:
        """The verdict when the dispute window closes: what the pool proves, else whoever
        echoed a package that no signed frame backs, else the complainers."""
        pair = self._equivocation_in_pool(attempt)
        if pair is not None:
            return pair[0]
        verdict = self._invalid_in_pool(attempt)
        if verdict is not None:
            return verdict
        liars: list[NodeId] = []
        liar_frames: list[bytes] = []
        for echoer, echo_entries in sorted(attempt.echo_pool.items()):
            for hashes, frame in echo_entries.values():
                backed = all(
                    claimed in attempt.r1_pool.get(subject, {})
                    for subject, claimed in enumerate(hashes, start=1)
                )
                if not backed:
                    liars.append(self._members[echoer - 1])
                    liar_frames.append(frame)
        if liars:
            return DkgMisbehaviour(
                f"echoed round-1 packages that no signed frame backs: {', '.join(liars)}",
                culprits=tuple(liars),
                evidence=tuple(liar_frames),
            )
        return self._unfounded(attempt)

    def _equivocation_in_pool(
        self, attempt: _Attempt
    ) -> tuple[DkgMisbehaviour, list[bytes]] | None:
        """A member with two different signed round-1 packages or echoes in the pool."""
        pools: list[tuple[str, dict[int, list[bytes]]]] = [
            (
                "round-1 packages",
                {
                    m: [f for f in entries.values() if f is not None]
                    for m, entries in attempt.r1_pool.items()
                },
            ),
            (
                "echoes",
                {m: [f for _, f in entries.values()] for m, entries in attempt.echo_pool.items()},
            ),
        ]
        for what, pool in pools:
            for member, frames in sorted(pool.items()):
                if len(frames) > 1:
                    name = self._members[member - 1]
                    return (
                        DkgMisbehaviour(
                            f"{name} sent two different signed {what}",
                            culprits=(name,),
                            evidence=tuple(frames[:2]),
                        ),
                        frames[:2],
                    )
        return None

    def _invalid_in_pool(self, attempt: _Attempt) -> DkgMisbehaviour | None:
        """A signed round-1 package in the pool with a bad proof of knowledge or degree."""
        for member, entries in sorted(attempt.r1_pool.items()):
            for digest, frame in entries.items():
                if frame is None or digest in attempt.validated:
                    continue
                if not self._valid_round1(attempt, member, frame):
                    name = self._members[member - 1]
                    return DkgMisbehaviour(
                        f"{name} sent an invalid round-1 package",
                        culprits=(name,),
                        evidence=(frame,),
                    )
                attempt.validated.add(digest)
        return None

    def _valid_round1(self, attempt: _Attempt, member: int, frame: bytes) -> bool:
        opened = self._open_evidence(attempt, frame)
        if opened is None:
            return False
        try:
            package = self._round1_package(attempt, member, opened.payload)
        except _Malformed:
            return False
        return len(package.commitment) == self.config.threshold and verify_proof_of_knowledge(
            member, package.commitment, package.proof_of_knowledge
        )

    def _unfounded(self, attempt: _Attempt) -> DkgMisbehaviour:
        # Our own detections always leave a contradiction in the pool (so _judge names
        # someone); reaching this means a peer disputed with nothing wrong in its evidence.
        accusers = (attempt.complainers or attempt.responders) - {self._my_id}
        complainers = self._members_of(sorted(accusers)) or self._members_of(self._peers)
        return DkgMisbehaviour(
            f"complaint without evidence of a fault from {', '.join(complainers)}",
            culprits=complainers,
        )

    # -- round 2 and completion ------------------------------------------------------------
    def _maybe_round2(self, attempt: _Attempt, now: float) -> list[Action]:
        if self._phase is not DkgPhase.ECHO or len(attempt.echoes) != len(self._members):
            return []
        ours = attempt.echoes[self._my_id]
        if any(hashes != ours for hashes in attempt.echoes.values()):
            return []  # _check_echoes has opened the dispute already
        self._move(DkgEvent.ECHOES_AGREE)
        try:
            packages = _participant(attempt).round2()
        except DkgPeerMisbehaviour as exc:
            # A share that arrived early, opened now.
            frame = self._share_frame(attempt, exc.culprit)
            return self._bad_share_named(attempt, exc.culprit, frame, str(exc))
        except ChainIncompatibleKey:
            return self._restart(attempt, now, "the group key has Px >= n")
        actions: list[Action] = []
        for recipient, package in sorted(packages.items()):
            payload: dict[str, JsonValue] = {
                "session": to_hex(attempt.session_id),
                "package": to_hex(package.encode()),
            }
            attempt.shares_out[recipient] = payload
            actions.append(SendTo(self._members[recipient - 1], MessageType.DKG_ROUND2, payload))
        return actions + self._maybe_key_ready(attempt, now)

    def _maybe_key_ready(self, attempt: _Attempt, now: float) -> list[Action]:
        participant = _participant(attempt)
        if self._phase is not DkgPhase.ROUND2 or participant.state is not DkgState.DONE:
            return []
        public = participant.output.public_key_package
        if self._key_acceptable is not None and not self._key_acceptable(public):
            return self._restart(attempt, now, "the group key was refused")
        self._move(DkgEvent.KEY_READY)
        attempt.public_digest = public_key_digest(public)
        attempt.done = {
            "session": to_hex(attempt.session_id),
            "group_key": to_hex(public.group_key.encode()),
            "digest": to_hex(attempt.public_digest),
        }
        done = Broadcast(MessageType.DKG_DONE, dict(attempt.done))
        return [done, *self._maybe_confirmed(attempt, now)]

    def _maybe_confirmed(self, attempt: _Attempt, now: float) -> list[Action]:
        expected = attempt.public_digest
        for member, digest in sorted(attempt.dones.items()):
            if digest != expected:
                name = self._members[member - 1]
                frame = next(iter(attempt.frames[(member, MessageType.DKG_DONE, None)].values()))
                return [
                    self._complaint(attempt, "done_mismatch", [frame], accused=name),
                    *self._fail(
                        DkgMisbehaviour(
                            f"{name} confirmed a different group key",
                            culprits=(name,),
                            evidence=(frame,),
                        )
                    ),
                ]
        if len(attempt.dones) != len(self._peers):
            return []
        self._move(DkgEvent.CONFIRMED)
        output = _participant(attempt).output
        self._result = DkgResult(
            network=self.config.network,
            session_id=attempt.session_id,
            attempt=attempt.number,
            identifier=self._my_id,
            node_ids=MappingProxyType(dict(enumerate(self._members, start=1))),
            key_package=output.key_package,
            public_key_package=output.public_key_package,
        )
        logger.info(
            "dkg.complete me=%s attempt=%d group_key=%s",
            self.me,
            attempt.number,
            output.public_key_package.group_key.encode().hex(),
        )
        return [Completed(self._result)]

    def _restart(self, attempt: _Attempt, now: float, reason: str) -> list[Action]:
        if attempt.number + 1 >= self.config.max_attempts:
            return self._fail(
                DkgKeyRejected(f"{reason}; no usable key after {attempt.number + 1} attempts")
            )
        logger.warning(
            "dkg.restart me=%s attempt=%d reason=%s", self.me, attempt.number + 1, reason
        )
        self._move(DkgEvent.RESTART)
        return [
            Restarted(attempt.number + 1, reason),
            *self._begin_attempt(attempt.number + 1, now),
        ]

    # -- complaints about shares -----------------------------------------------------------
    def _share_frame(self, attempt: _Attempt, culprit: Any) -> bytes | None:
        if not isinstance(culprit, int) or not 1 <= culprit <= len(self._members):
            return None
        entries = attempt.frames.get((culprit, MessageType.DKG_ROUND2, self.me), {})
        return next(iter(entries.values()), None)

    def _bad_share(self, attempt: _Attempt, envelope: SignedEnvelope, detail: str) -> list[Action]:
        return self._bad_share_named(attempt, self._ids[envelope.sender], envelope.frame, detail)

    def _bad_share_named(
        self, attempt: _Attempt, culprit: Any, frame: bytes | None, detail: str
    ) -> list[Action]:
        if not isinstance(culprit, int) or not 1 <= culprit <= len(self._members):
            raise DkgSessionStateError(f"participant named no member: {culprit!r}")
        name = self._members[culprit - 1]
        evidence = [frame] if frame is not None else []
        return [
            self._complaint(attempt, "bad_share", evidence, accused=name),
            *self._fail(
                DkgMisbehaviour(
                    f"bad secret share from {name}: {detail}",
                    culprits=(name,),
                    evidence=tuple(evidence),
                )
            ),
        ]

    # -- helpers ---------------------------------------------------------------------------
    def _complaint(
        self,
        attempt: _Attempt,
        kind: str,
        frames: Sequence[bytes],
        *,
        accused: NodeId | None = None,
    ) -> Broadcast:
        payload: dict[str, JsonValue] = {
            "session": to_hex(attempt.session_id),
            "kind": kind,
            "accused": accused,
            "evidence": [to_hex(f) for f in frames],
        }
        attempt.complaint = payload
        return Broadcast(MessageType.DKG_COMPLAINT, payload)

    def _resend(self, attempt: _Attempt) -> list[Action]:
        peers = set(self._peers)
        actions: list[Action] = []
        if self._phase is DkgPhase.DISPUTE:
            if attempt.complaint is not None:
                actions.append(Broadcast(MessageType.DKG_COMPLAINT, dict(attempt.complaint)))
            return actions
        if not peers <= attempt.echoes.keys():
            actions.append(self._round1_broadcast(attempt))
        if attempt.echo is not None and not peers <= attempt.shares_from:
            actions.append(Broadcast(MessageType.DKG_ECHO, dict(attempt.echo)))
        for recipient, payload in sorted(attempt.shares_out.items()):
            if recipient not in attempt.dones:
                actions.append(
                    SendTo(self._members[recipient - 1], MessageType.DKG_ROUND2, dict(payload))
                )
        if attempt.done is not None:
            actions.append(Broadcast(MessageType.DKG_DONE, dict(attempt.done)))
        return actions

    def _answer_laggard(
        self, attempt: _Attempt, sender: int, envelope: SignedEnvelope, now: float
    ) -> list[Action]:
        """A peer still talks in an attempt we finished (completed, or left for the next
        one): it lacks something of ours, so send our share and DONE again."""
        if envelope.type is MessageType.DKG_COMPLAINT:
            logger.warning("dkg.complaint_after_completion me=%s from=%s", self.me, envelope.sender)
            return self._ignore("late")
        key = (attempt.number, sender)
        if now < self._last_reply.get(key, float("-inf")) + self.config.resend_interval:
            return self._ignore("duplicate")
        self._last_reply[key] = now
        actions: list[Action] = []
        if sender in attempt.shares_out:
            actions.append(
                SendTo(envelope.sender, MessageType.DKG_ROUND2, dict(attempt.shares_out[sender]))
            )
        if attempt.done is not None:
            actions.append(Broadcast(MessageType.DKG_DONE, dict(attempt.done)))
        return actions

    def _fail(self, error: DkgSessionError) -> list[Action]:
        error.phase = self._phase
        self._move(DkgEvent.FAIL)
        self._error = error
        if self._attempt is not None:
            self._attempt.participant = None
        logger.warning("dkg.failed me=%s error=%s", self.me, error)
        return [Failed(error)]

    def _ignore(self, reason: str) -> list[Action]:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1
        return []

    def _members_of(self, identifiers: Iterable[int]) -> tuple[NodeId, ...]:
        return tuple(self._members[i - 1] for i in identifiers)


def _participant(attempt: _Attempt) -> DkgParticipant:
    if attempt.participant is None:
        raise DkgSessionStateError("the DKG attempt has ended")
    return attempt.participant


def _from_hex(text: str) -> bytes:
    try:
        return from_hex(text)
    except EncodingError as exc:
        raise _Malformed(str(exc)) from None


def _hex_field(payload: Mapping[str, JsonValue], name: str, size: int | None = None) -> bytes:
    value = payload.get(name)
    if not isinstance(value, str):
        raise _Malformed(f"{name} must be a hex string")
    data = _from_hex(value)
    if size is not None and len(data) != size:
        raise _Malformed(f"{name} must be {size} bytes")
    return data


_COMPLAINT_KINDS: Final = frozenset(
    {"dispute", "evidence", "equivocation", "bad_share", "done_mismatch", "malformed"}
)
_Handler: TypeAlias = Callable[[DkgSession, _Attempt, int, SignedEnvelope, float], list[Action]]
_HANDLERS: Final[Mapping[MessageType, _Handler]] = MappingProxyType(
    {
        MessageType.DKG_ROUND1: DkgSession._on_round1,
        MessageType.DKG_ECHO: DkgSession._on_echo,
        MessageType.DKG_ROUND2: DkgSession._on_round2,
        MessageType.DKG_DONE: DkgSession._on_done,
        MessageType.DKG_COMPLAINT: DkgSession._on_complaint,
    }
)
