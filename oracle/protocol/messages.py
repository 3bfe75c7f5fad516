"""Typed consensus messages and their JSON payload codecs.

Each message is a frozen dataclass with ``to_payload()`` (the ``payload`` object of the
signed envelope, see :mod:`oracle.transport.envelope`) and ``from_payload()``, which is
strict: exact key set, exact types (``bool`` is not an ``int``), ranges, byte lengths, list
sizes. Anything else raises :class:`~aggregation.errors.EncodingError`; the core turns that
into a ``Misbehaviour(kind=MALFORMED)`` naming the (authenticated) sender.

Wire conventions: binary values are ``0x`` hex; integers that may exceed 53 bits (feed
values, int256) are decimal *strings* so that no JSON implementation rounds them;
epoch, round, session and timestamps are JSON integers.

=============  ===================================================================
type           payload
=============  ===================================================================
observe        ``{e, r, leader}``
observation    ``{e, r, ts, values: {feed: "int"}, snapshots: [hex32]}``
propose        ``{e, r, session, report: hex|null, observations: [hex frame],
               signers: [{node, id: hex16, commitments: hex98}],
               finals: [{report: hex, signature: hex65}]}``
share          ``{e, r, session, share: hex32}``
final          ``{e, r, report: hex, signature: hex65}``
newepoch       ``{e}``
commitments    ``{batch, commitments: [{id: hex16, commitments: hex98}],
               invalidate: [hex16]}``
=============  ===================================================================

A PROPOSE with ``report: null`` (and no signers) says "round closed, nothing is due"; it
still carries the observations, so followers can check that claim against their own view.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Self, TypeAlias

from eth_utils.crypto import keccak

from aggregation.errors import CryptoError, EncodingError
from aggregation.frost import SigningCommitments
from aggregation.report import feed_id
from oracle.identity import NodeId, parse_node_id
from oracle.protocol.config import MAX_EPOCH, MAX_ROUND
from oracle.transport.envelope import JsonValue, MessageType, from_hex, to_hex

__all__ = [
    "COMMITMENT_ID_SIZE",
    "MAX_JUSTIFYING_FINALS",
    "MAX_OBSERVATION_FRAME",
    "PROPOSE_OBSERVATIONS_BUDGET",
    "CommitmentEntry",
    "Commitments",
    "FinalReport",
    "Message",
    "NewEpoch",
    "Observation",
    "Observe",
    "Payload",
    "Propose",
    "Share",
    "SignerEntry",
    "commitment_id",
    "decode_message",
]

Payload: TypeAlias = dict[str, JsonValue]

COMMITMENT_ID_SIZE: Final = 16
_COMMITMENTS_SIZE: Final = 98
_SHARE_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 65
_HASH_SIZE: Final = 32
_MAX_SESSION: Final = 1023
_MAX_FEEDS: Final = 128
_MAX_SNAPSHOTS: Final = 64
_MAX_OBSERVATIONS: Final = 256
#: Cap on one signed observation frame embedded in a PROPOSE (an honest one with 128
#: feeds and 64 snapshot hashes stays well below it).
MAX_OBSERVATION_FRAME: Final = 16 * 1024
#: Raw bytes of embedded observation frames a leader puts in one PROPOSE: hex doubles them,
#: so a PROPOSE stays under the transport's 256 KiB frame cap.
PROPOSE_OBSERVATIONS_BUDGET: Final = 96 * 1024
#: Earlier FINALs a PROPOSE may carry to justify the feeds it leaves out.
MAX_JUSTIFYING_FINALS: Final = 4
_MAX_REPORT: Final = 64 * 1024
_MAX_SIGNERS: Final = 256
_MAX_BATCH: Final = 256
_MAX_INVALIDATE: Final = 4096
_I256_MIN, _I256_MAX = -(2**255), 2**255 - 1
_BATCH_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_INT_RE: Final = re.compile(r"-?(0|[1-9][0-9]{0,77})")


# Memoised: every member meets the same commitments many times (announced, then inside
# each PROPOSE that uses them, then in the leader's bookkeeping), and the inputs are
# immutable values.
@functools.lru_cache(maxsize=8192)
def commitment_id(commitments: SigningCommitments) -> bytes:
    """The id of a published nonce commitment: binds the id to the points (and signer)."""
    return keccak(b"xon/commitment/v1" + commitments.encode())[:COMMITMENT_ID_SIZE]


# -- strict readers ----------------------------------------------------------------------
def _exact(payload: Mapping[str, JsonValue], keys: frozenset[str], what: str) -> None:
    if not isinstance(payload, Mapping):
        raise EncodingError(f"{what}: payload is not an object")
    if set(payload.keys()) != keys:
        raise EncodingError(f"{what}: expected keys {sorted(keys)}, got {sorted(payload)}")


def _int(payload: Mapping[str, JsonValue], key: str, lo: int, hi: int) -> int:
    value = payload[key]
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise EncodingError(f"{key}: expected an integer in [{lo}, {hi}]")
    return value


def _hex(value: JsonValue, key: str, *, size: int | None = None, max_size: int = 0) -> bytes:
    if not isinstance(value, str):
        raise EncodingError(f"{key}: expected a 0x hex string")
    if max_size and len(value) > 2 + 2 * max_size:
        raise EncodingError(f"{key}: longer than {max_size} bytes")
    if value != value.lower():
        raise EncodingError(f"{key}: hex must be lowercase")  # one encoding per value
    data = from_hex(value)
    if size is not None and len(data) != size:
        raise EncodingError(f"{key}: expected {size} bytes, got {len(data)}")
    return data


def _list(payload: Mapping[str, JsonValue], key: str, max_len: int) -> list[JsonValue]:
    value = payload[key]
    if not isinstance(value, list) or len(value) > max_len:
        raise EncodingError(f"{key}: expected a list of at most {max_len} items")
    return value


def _obj(value: JsonValue, what: str) -> Mapping[str, JsonValue]:
    if not isinstance(value, dict):
        raise EncodingError(f"{what}: expected an object")
    return value


def _node(value: JsonValue, key: str) -> NodeId:
    if not isinstance(value, str):
        raise EncodingError(f"{key}: expected an address")
    try:
        parsed = parse_node_id(value)
    except ValueError as exc:
        raise EncodingError(f"{key}: {exc}") from None
    if parsed != value:
        raise EncodingError(f"{key}: address must be EIP-55 checksummed")
    return parsed


def _commitments(value: JsonValue, key: str) -> SigningCommitments:
    raw = _hex(value, key, size=_COMMITMENTS_SIZE)
    try:
        return _decode_commitments(raw)
    except CryptoError as exc:
        raise EncodingError(f"{key}: {exc}") from None


# A commitment is parsed (two curve points) by every member for every PROPOSE that uses it;
# the result is immutable, and a failure raises, so it is never cached.
@functools.lru_cache(maxsize=8192)
def _decode_commitments(raw: bytes) -> SigningCommitments:
    return SigningCommitments.decode(raw)


def _epoch_round(payload: Mapping[str, JsonValue]) -> tuple[int, int]:
    return _int(payload, "e", 1, MAX_EPOCH), _int(payload, "r", 1, MAX_ROUND)


# -- messages ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Observe:
    """Leader → all: please observe for (epoch, round)."""

    TYPE: ClassVar[MessageType] = MessageType.OBSERVE
    _KEYS: ClassVar[frozenset[str]] = frozenset({"e", "r", "leader"})

    epoch: int
    round: int
    leader: NodeId

    def to_payload(self) -> Payload:
        return {"e": self.epoch, "r": self.round, "leader": self.leader}

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "observe")
        epoch, round_ = _epoch_round(payload)
        return cls(epoch, round_, _node(payload["leader"], "leader"))


@dataclass(frozen=True)
class Observation:
    """Follower → leader: this node's values for (epoch, round), signed by the envelope.

    ``values`` holds (feed name, fixed-point value) pairs sorted by name; a node that has no
    value for a feed leaves it out.
    """

    TYPE: ClassVar[MessageType] = MessageType.OBSERVATION
    _KEYS: ClassVar[frozenset[str]] = frozenset({"e", "r", "ts", "values", "snapshots"})

    epoch: int
    round: int
    timestamp: int
    values: tuple[tuple[str, int], ...]
    snapshot_hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.values))
        names = [name for name, _ in ordered]
        if len(set(names)) != len(names):
            raise EncodingError("observation: duplicate feed")
        object.__setattr__(self, "values", ordered)

    def value_map(self) -> dict[str, int]:
        return dict(self.values)

    def to_payload(self) -> Payload:
        return {
            "e": self.epoch,
            "r": self.round,
            "ts": self.timestamp,
            "values": {name: str(value) for name, value in self.values},
            "snapshots": [to_hex(h) for h in self.snapshot_hashes],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "observation")
        epoch, round_ = _epoch_round(payload)
        timestamp = _int(payload, "ts", 0, 2**64 - 1)
        raw_values = _obj(payload["values"], "values")
        if len(raw_values) > _MAX_FEEDS:
            raise EncodingError(f"values: more than {_MAX_FEEDS} feeds")
        values: list[tuple[str, int]] = []
        for name, text in raw_values.items():
            feed_id(name)  # a valid feed name or EncodingError
            if not isinstance(text, str) or not _INT_RE.fullmatch(text):
                raise EncodingError(f"values.{name}: expected a canonical decimal string")
            value = int(text)
            if not _I256_MIN <= value <= _I256_MAX or text == "-0":
                raise EncodingError(f"values.{name}: not an int256")
            values.append((name, value))
        snapshots = tuple(
            _hex(h, "snapshots[]", size=_HASH_SIZE)
            for h in _list(payload, "snapshots", _MAX_SNAPSHOTS)
        )
        return cls(epoch, round_, timestamp, tuple(values), snapshots)


@dataclass(frozen=True)
class SignerEntry:
    """One signer of a signing session and the pre-published commitment it must use."""

    node: NodeId
    commitment_id: bytes
    commitments: SigningCommitments

    def __post_init__(self) -> None:
        if commitment_id(self.commitments) != self.commitment_id:
            raise EncodingError("signer entry: commitment id does not match the commitments")

    def to_json(self) -> Payload:
        return {
            "node": self.node,
            "id": to_hex(self.commitment_id),
            "commitments": to_hex(self.commitments.encode()),
        }

    @classmethod
    def from_json(cls, value: JsonValue) -> Self:
        obj = _obj(value, "signers[]")
        _exact(obj, frozenset({"node", "id", "commitments"}), "signers[]")
        return cls(
            _node(obj["node"], "signers[].node"),
            _hex(obj["id"], "signers[].id", size=COMMITMENT_ID_SIZE),
            _commitments(obj["commitments"], "signers[].commitments"),
        )


@dataclass(frozen=True)
class Propose:
    """Leader → all: the report for (epoch, round), the signed observations it is derived
    from, and signing session ``session``'s signer set. ``report is None``: nothing due.

    ``finals``: up to :data:`MAX_JUSTIFYING_FINALS` earlier finalized (report, signature)
    pairs — those that set the last committed values of the feeds the leader left out — so
    a member that missed one catches up before judging which feeds are due.
    """

    TYPE: ClassVar[MessageType] = MessageType.PROPOSE
    _KEYS: ClassVar[frozenset[str]] = frozenset(
        {"e", "r", "session", "report", "observations", "signers", "finals"}
    )

    epoch: int
    round: int
    session: int
    report: bytes | None
    observations: tuple[bytes, ...]
    signers: tuple[SignerEntry, ...]
    finals: tuple[tuple[bytes, bytes], ...] = ()

    def __post_init__(self) -> None:
        if self.report is None and (self.signers or self.session):
            raise EncodingError("propose: an empty proposal has no signers and session 0")
        if self.report is not None and not self.signers:
            raise EncodingError("propose: a report needs signers")
        nodes = [s.node for s in self.signers]
        if len(set(nodes)) != len(nodes):
            raise EncodingError("propose: duplicate signer")

    def to_payload(self) -> Payload:
        return {
            "e": self.epoch,
            "r": self.round,
            "session": self.session,
            "report": None if self.report is None else to_hex(self.report),
            "observations": [to_hex(frame) for frame in self.observations],
            "signers": [s.to_json() for s in self.signers],
            "finals": [
                {"report": to_hex(report), "signature": to_hex(signature)}
                for report, signature in self.finals
            ],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "propose")
        epoch, round_ = _epoch_round(payload)
        session = _int(payload, "session", 0, _MAX_SESSION)
        raw_report = payload["report"]
        report = None if raw_report is None else _hex(raw_report, "report", max_size=_MAX_REPORT)
        frames = tuple(
            _hex(frame, "observations[]", max_size=MAX_OBSERVATION_FRAME)
            for frame in _list(payload, "observations", _MAX_OBSERVATIONS)
        )
        signers = tuple(
            SignerEntry.from_json(entry) for entry in _list(payload, "signers", _MAX_SIGNERS)
        )
        finals: list[tuple[bytes, bytes]] = []
        for raw in _list(payload, "finals", MAX_JUSTIFYING_FINALS):
            obj = _obj(raw, "finals[]")
            _exact(obj, frozenset({"report", "signature"}), "finals[]")
            finals.append(
                (
                    _hex(obj["report"], "finals[].report", max_size=_MAX_REPORT),
                    _hex(obj["signature"], "finals[].signature", size=_SIGNATURE_SIZE),
                )
            )
        return cls(epoch, round_, session, report, frames, signers, tuple(finals))


@dataclass(frozen=True)
class Share:
    """Signer → leader: a FROST signature share for session ``session`` of (epoch, round)."""

    TYPE: ClassVar[MessageType] = MessageType.SHARE
    _KEYS: ClassVar[frozenset[str]] = frozenset({"e", "r", "session", "share"})

    epoch: int
    round: int
    session: int
    share: bytes

    def to_payload(self) -> Payload:
        return {
            "e": self.epoch,
            "r": self.round,
            "session": self.session,
            "share": to_hex(self.share),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "share")
        epoch, round_ = _epoch_round(payload)
        session = _int(payload, "session", 0, _MAX_SESSION)
        return cls(epoch, round_, session, _hex(payload["share"], "share", size=_SHARE_SIZE))


@dataclass(frozen=True)
class FinalReport:
    """Leader → all: the report and the committee's FROST signature over its message."""

    TYPE: ClassVar[MessageType] = MessageType.FINAL
    _KEYS: ClassVar[frozenset[str]] = frozenset({"e", "r", "report", "signature"})

    epoch: int
    round: int
    report: bytes
    signature: bytes

    def to_payload(self) -> Payload:
        return {
            "e": self.epoch,
            "r": self.round,
            "report": to_hex(self.report),
            "signature": to_hex(self.signature),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "final")
        epoch, round_ = _epoch_round(payload)
        report = _hex(payload["report"], "report", max_size=_MAX_REPORT)
        signature = _hex(payload["signature"], "signature", size=_SIGNATURE_SIZE)
        return cls(epoch, round_, report, signature)


@dataclass(frozen=True)
class NewEpoch:
    """Pacemaker vote: the sender wants to move to epoch ``epoch``."""

    TYPE: ClassVar[MessageType] = MessageType.NEWEPOCH
    _KEYS: ClassVar[frozenset[str]] = frozenset({"e"})

    epoch: int

    def to_payload(self) -> Payload:
        return {"e": self.epoch}

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "newepoch")
        return cls(_int(payload, "e", 1, MAX_EPOCH))


@dataclass(frozen=True)
class CommitmentEntry:
    commitment_id: bytes
    commitments: SigningCommitments

    def __post_init__(self) -> None:
        if commitment_id(self.commitments) != self.commitment_id:
            raise EncodingError("commitment id does not match the commitments")

    @classmethod
    def of(cls, commitments: SigningCommitments) -> Self:
        return cls(commitment_id(commitments), commitments)


@dataclass(frozen=True)
class Commitments:
    """Pre-published FROST nonce commitments of the sender, and ids it withdraws
    (e.g. everything published before a restart: those nonces are gone)."""

    TYPE: ClassVar[MessageType] = MessageType.COMMITMENTS
    _KEYS: ClassVar[frozenset[str]] = frozenset({"batch", "commitments", "invalidate"})

    batch: str
    entries: tuple[CommitmentEntry, ...]
    invalidated: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not _BATCH_RE.fullmatch(self.batch):
            raise EncodingError("commitments: batch name must be 1-64 of [A-Za-z0-9_.:-]")
        ids = [e.commitment_id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise EncodingError("commitments: duplicate id")
        if len({e.commitments.identifier for e in self.entries}) > 1:
            raise EncodingError("commitments: entries of more than one signer")

    def to_payload(self) -> Payload:
        return {
            "batch": self.batch,
            "commitments": [
                {"id": to_hex(e.commitment_id), "commitments": to_hex(e.commitments.encode())}
                for e in self.entries
            ],
            "invalidate": [to_hex(i) for i in self.invalidated],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, JsonValue]) -> Self:
        _exact(payload, cls._KEYS, "commitments")
        batch = payload["batch"]
        if not isinstance(batch, str):
            raise EncodingError("batch: expected a string")
        entries: list[CommitmentEntry] = []
        for raw in _list(payload, "commitments", _MAX_BATCH):
            obj = _obj(raw, "commitments[]")
            _exact(obj, frozenset({"id", "commitments"}), "commitments[]")
            entries.append(
                CommitmentEntry(
                    _hex(obj["id"], "commitments[].id", size=COMMITMENT_ID_SIZE),
                    _commitments(obj["commitments"], "commitments[].commitments"),
                )
            )
        invalidated = tuple(
            _hex(i, "invalidate[]", size=COMMITMENT_ID_SIZE)
            for i in _list(payload, "invalidate", _MAX_INVALIDATE)
        )
        return cls(batch, tuple(entries), invalidated)


Message: TypeAlias = Observe | Observation | Propose | Share | FinalReport | NewEpoch | Commitments

_DECODERS: Final[Mapping[MessageType, type[Message]]] = {
    MessageType.OBSERVE: Observe,
    MessageType.OBSERVATION: Observation,
    MessageType.PROPOSE: Propose,
    MessageType.SHARE: Share,
    MessageType.FINAL: FinalReport,
    MessageType.NEWEPOCH: NewEpoch,
    MessageType.COMMITMENTS: Commitments,
}


def decode_message(type_: MessageType, payload: Mapping[str, JsonValue]) -> Message:
    """The typed message of an envelope; :class:`EncodingError` for anything malformed."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        raise EncodingError(f"no consensus message of type {type_!r}")
    try:
        return decoder.from_payload(payload)
    except KeyError as exc:  # _exact guards the key set; this is belt and braces
        raise EncodingError(f"missing key {exc}") from None
