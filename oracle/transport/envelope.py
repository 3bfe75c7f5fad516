"""Signed message envelopes: the wire format every XON transport carries (sans-io).

Wire format
-----------
A *frame* is ``signature (65 bytes) ‖ body``.

* ``body`` is the envelope serialized **once**, by the sender, as canonical JSON: UTF-8,
  keys sorted, no whitespace, no floats/NaN (money and values are integers or strings),
  binary values as ``0x``-prefixed hex strings::

      {"net":"devnet","payload":{...},"sender":"0xAbC…","seq":1732230000123456789,
       "to":null,"type":"observation","v":1}

  ``to`` is ``null`` for a broadcast and the recipient's NodeId for an inbox message. It is
  part of the signed bytes so an untrusted broker cannot re-route a message addressed to
  one node into another node's inbox or onto the broadcast topic.
* ``signature`` is the sender's identity signature (:mod:`oracle.identity`, ``r ‖ s ‖
  recid``, low-s) over ``keccak256("xon/<network>/v1" ‖ body)``: the domain binds the frame
  to one network and one envelope version.

Receiving
---------
:class:`FrameVerifier` checks a frame in this order and returns either a :class:`Received`
envelope or a :class:`Rejected` with a :class:`DropReason`; it never raises on input:

1. size ≤ cap, before anything else ........................... ``oversized``
2. exact copy of a frame already accepted (bounded LRU of hashes) ``duplicate``
3. signature well-formed and recovering a key, over the exact
   received body bytes (never a re-serialisation) ................ ``bad_signature``
4. body is one JSON object (strict UTF-8, no duplicate keys) ...... ``malformed``
5. recovered address == ``sender`` ............................... ``bad_signature``
6. ``sender`` is in the roster ..................................... ``unknown_sender``
7. ``net`` is ours / ``v`` is ours ....................... ``wrong_network`` / ``bad_version``
8. exact field set and types .................................... ``malformed``
9. ``type`` is a known :class:`MessageType` ......................... ``unknown_type``
10. the topic fits ``to`` (broadcast topic ⇔ ``to`` null; own inbox ⇔ ``to`` = us) ``misdirected``
11. ``seq`` above the last accepted one for (sender, topic) ......... ``replayed``

The body is decoded to a dict at step 4 (bounded by the size cap) so that a forged frame
can be told apart from a member's frame; the payload is *interpreted* (typed messages,
signatures inside it) only by the consumer of an accepted :class:`Received`.

Ordering and replays
--------------------
``seq`` is per sender and strictly increasing: :class:`SeqCounter` issues
``max(time_ns(), last + 1)``, so it survives restarts without storage as long as the wall
clock does not step back past the last issued value (pass the persisted last value as
``start`` if that matters). Receivers keep the highest accepted ``seq`` per (sender, topic):
per topic because MQTT orders messages only within a topic, and the retained report of
each kind arrives in broker order, not publication order. A frame reordered within a
topic arrives below the high-water mark and is dropped as ``replayed``; the consensus
layer tolerates loss (the broker may drop anyway) and de-duplicates semantically by
(sender, type, epoch, round).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeAlias, cast

from aggregation import jsonsafe
from aggregation.errors import CryptoError, EncodingError
from oracle.identity import SIGNATURE_SIZE, IdentityKey, NodeId, Roster, recover_signer
from oracle.transport.topics import Channel, Topics

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "DropReason",
    "Envelope",
    "FrameVerifier",
    "JsonValue",
    "MessageType",
    "Received",
    "Rejected",
    "SeqCounter",
    "SignedEnvelope",
    "encode_body",
    "from_hex",
    "open_frame",
    "seal",
    "signing_domain",
    "to_hex",
]

PROTOCOL_VERSION: Final = 1
DEFAULT_MAX_FRAME: Final = 256 * 1024
"""Default cap on a whole frame (signature + body). A PROPOSE carries 2f+1 signed
observations; with n = 7 and ~100 feeds that is well under 100 KiB."""

JsonValue: TypeAlias = "bool | int | str | list[JsonValue] | dict[str, JsonValue] | None"

_FIELDS: Final = frozenset({"net", "payload", "sender", "seq", "to", "type", "v"})
_MAX_SEQ: Final = 2**63 - 1  # fits a signed 64-bit integer in any other implementation


class MessageType(StrEnum):
    """Envelope types. New protocols (DKG, device agent) add members here; a receiver drops
    a type it does not know (``unknown_type``) instead of guessing."""

    OBSERVE = "observe"
    OBSERVATION = "observation"
    PROPOSE = "propose"
    SHARE = "share"
    FINAL = "final"
    NEWEPOCH = "newepoch"
    COMMITMENTS = "commitments"
    # Distributed key generation (oracle/dkg_session.py)
    DKG_ROUND1 = "dkg_round1"
    DKG_ECHO = "dkg_echo"
    DKG_ROUND2 = "dkg_round2"
    DKG_COMPLAINT = "dkg_complaint"
    DKG_DONE = "dkg_done"


class DropReason(StrEnum):
    """Label values of ``xon_messages_dropped_total{reason}``."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_SENDER = "unknown_sender"
    WRONG_NETWORK = "wrong_network"
    BAD_VERSION = "bad_version"
    UNKNOWN_TYPE = "unknown_type"
    MISDIRECTED = "misdirected"
    REPLAYED = "replayed"
    DUPLICATE = "duplicate"
    # Local overload, not the sender's fault: see the transports.
    INCOMING_QUEUE_FULL = "incoming_queue_full"
    OUTGOING_QUEUE_FULL = "outgoing_queue_full"


def to_hex(data: bytes) -> str:
    """Binary payload values travel as ``0x``-prefixed lowercase hex."""
    return "0x" + data.hex()


def from_hex(text: str) -> bytes:
    """Inverse of :func:`to_hex`; raises :class:`EncodingError` on anything else."""
    if not text.startswith("0x"):
        raise EncodingError("hex value must start with 0x")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise EncodingError("invalid hex value") from None


def signing_domain(network: str) -> bytes:
    return f"xon/{network}/v{PROTOCOL_VERSION}".encode("ascii")


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a sender signs. ``payload`` is a JSON object owned by the message type."""

    net: str
    type: MessageType
    sender: NodeId
    seq: int
    payload: Mapping[str, JsonValue] = field(hash=False)
    to: NodeId | None = None
    v: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedEnvelope(Envelope):
    """An envelope with the exact frame that carries it (``signature ‖ body``).

    The frame is non-repudiable evidence: attach it to a ``PeerMisbehaviour`` when the
    payload turns out to be wrong, or embed it (hex) in another message, e.g. the signed
    observations inside a PROPOSE, for others to check with :func:`open_frame`.
    """

    frame: bytes = field(repr=False)

    @property
    def signature(self) -> bytes:
        return self.frame[:SIGNATURE_SIZE]

    @property
    def body(self) -> bytes:
        return self.frame[SIGNATURE_SIZE:]


@dataclass(frozen=True, slots=True, kw_only=True)
class Received(SignedEnvelope):
    """A signed envelope that passed every receive check, with how it arrived."""

    topic: str
    retained: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a frame was dropped. ``detail`` is for debug logs only (never a metric label)."""

    reason: DropReason
    detail: str
    sender: NodeId | None = None


def _check_json(value: object, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise EncodingError(f"{path}: floats are not allowed in signed payloads (use int/str)")
    if isinstance(value, bytes | bytearray):
        raise EncodingError(f"{path}: binary values must be hex strings (to_hex)")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"{path}: object keys must be strings, got {key!r}")
            _check_json(item, f"{path}.{key}")
        return
    raise EncodingError(f"{path}: {type(value).__name__} is not a JSON value")


def encode_body(envelope: Envelope) -> bytes:
    """The canonical body bytes of ``envelope`` (the only serialisation there is)."""
    payload = dict(envelope.payload)
    _check_json(payload, "payload")
    document = {
        "net": envelope.net,
        "payload": payload,
        "sender": envelope.sender,
        "seq": envelope.seq,
        "to": envelope.to,
        "type": str(envelope.type),
        "v": envelope.v,
    }
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (ValueError, TypeError) as exc:  # lone surrogates (UnicodeEncodeError), NaN
        raise EncodingError(f"payload cannot be encoded canonically: {exc}") from None


def seal(envelope: Envelope, key: IdentityKey) -> SignedEnvelope:
    """Serialize once and sign; the result's ``frame`` is ``signature ‖ body``."""
    if key.node_id != envelope.sender:
        raise ValueError("the envelope's sender must be the signing key's node id")
    body = encode_body(envelope)
    frame = key.sign(signing_domain(envelope.net), body) + body
    return SignedEnvelope(
        net=envelope.net,
        type=envelope.type,
        sender=envelope.sender,
        seq=envelope.seq,
        payload=envelope.payload,
        to=envelope.to,
        v=envelope.v,
        frame=frame,
    )


class SeqCounter:
    """Strictly increasing, restart-safe sequence numbers from a nanosecond wall clock."""

    def __init__(self, start: int = 0, clock: Callable[[], int] = time.time_ns) -> None:
        self._last = start
        self._clock = clock

    def next(self) -> int:
        self._last = max(self._clock(), self._last + 1)
        return self._last


def _reject_value(token: str) -> object:
    raise ValueError(f"non-integer number {token!r}")


def _unique_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return document


def _parse_object(body: bytes) -> dict[str, object]:
    """Strict JSON decoding; raises ValueError, or EncodingError on absurd nesting (checked
    before parsing: see aggregation.jsonsafe for why json's own recursion guard is not
    enough in a process that imports web3)."""
    document = jsonsafe.loads(
        body.decode("utf-8"),
        object_pairs_hook=_unique_object,
        parse_float=_reject_value,
        parse_constant=_reject_value,
    )
    if not isinstance(document, dict):
        raise ValueError("body is not a JSON object")
    return document


def open_frame(
    frame: bytes, *, network: str, roster: Roster, max_frame: int = DEFAULT_MAX_FRAME
) -> SignedEnvelope | Rejected:
    """Stateless checks 1 and 3–9 of the module docstring (no replay, no topic).

    For frames embedded in other messages (the signed observations inside a PROPOSE) and
    for audits; live traffic goes through :class:`FrameVerifier`, which adds the rest.
    """
    if len(frame) > max_frame:
        return Rejected(DropReason.OVERSIZED, f"{len(frame)} > {max_frame} bytes")
    return _open(frame, signing_domain(network), network, roster)


def _open(frame: bytes, domain: bytes, network: str, roster: Roster) -> SignedEnvelope | Rejected:
    if len(frame) < SIGNATURE_SIZE + 2:
        return Rejected(DropReason.MALFORMED, "frame shorter than signature + body")
    signature, body = frame[:SIGNATURE_SIZE], frame[SIGNATURE_SIZE:]
    try:
        signer = recover_signer(domain, body, signature)
    except CryptoError as exc:
        return Rejected(DropReason.BAD_SIGNATURE, str(exc))
    try:
        document = _parse_object(body)
    except (ValueError, RecursionError, EncodingError) as exc:  # UnicodeDecodeError: ValueError
        return Rejected(DropReason.MALFORMED, f"body: {exc}"[:200])
    sender = document.get("sender")
    if not isinstance(sender, str):
        return Rejected(DropReason.MALFORMED, "sender missing")
    if sender != signer:
        return Rejected(DropReason.BAD_SIGNATURE, "signature is not the sender's")
    if signer not in roster:
        return Rejected(DropReason.UNKNOWN_SENDER, "sender not in roster", signer)
    net = document.get("net")
    if not isinstance(net, str):
        return Rejected(DropReason.MALFORMED, "net missing", signer)
    if net != network:
        return Rejected(DropReason.WRONG_NETWORK, f"net {net[:40]!r}", signer)
    version = document.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        return Rejected(DropReason.MALFORMED, "v missing", signer)
    if version != PROTOCOL_VERSION:
        return Rejected(DropReason.BAD_VERSION, f"v {version}", signer)
    if document.keys() != _FIELDS:
        return Rejected(DropReason.MALFORMED, "unexpected field set", signer)
    seq, payload, to, kind = document["seq"], document["payload"], document["to"], document["type"]
    if (
        not isinstance(seq, int)
        or isinstance(seq, bool)
        or not 0 < seq <= _MAX_SEQ
        or not isinstance(payload, dict)
        or not isinstance(kind, str)
        or not (to is None or isinstance(to, str))
    ):
        return Rejected(DropReason.MALFORMED, "field types", signer)
    try:
        message_type = MessageType(kind)
    except ValueError:
        return Rejected(DropReason.UNKNOWN_TYPE, f"type {kind[:40]!r}", signer)
    return SignedEnvelope(
        net=net,
        type=message_type,
        sender=signer,
        seq=seq,
        # The strict decoder admits no floats, so the object is a JsonValue tree.
        payload=cast("dict[str, JsonValue]", payload),
        to=NodeId(to) if to is not None else None,
        v=version,
        frame=frame,
    )


class FrameVerifier:
    """Receive-side checks for one node (or one read-only subscriber) on one network.

    Holds the replay state: a bounded LRU of accepted frame hashes and the highest ``seq``
    per (sender, topic). Only roster members reach that state, so it is bounded by the
    roster size times the topics subscribed to.
    """

    def __init__(
        self,
        network: str,
        roster: Roster,
        *,
        me: NodeId | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        dedupe_capacity: int = 4096,
    ) -> None:
        self._topics = Topics(network)
        self._domain = signing_domain(network)
        self._roster = roster
        self._me = me
        self._max_frame = max_frame
        self._dedupe_capacity = dedupe_capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._high_water: dict[tuple[NodeId, str], int] = {}

    @property
    def network(self) -> str:
        return self._topics.network

    @property
    def roster(self) -> Roster:
        return self._roster

    def set_roster(self, roster: Roster) -> None:
        """Adopt a new membership; the replay state of remaining members is kept."""
        self._roster = roster
        self._high_water = {k: v for k, v in self._high_water.items() if k[0] in roster}

    def verify(self, frame: bytes, topic: str, *, retained: bool = False) -> Received | Rejected:
        """Check one frame as received on ``topic``. Never raises on hostile input."""
        if len(frame) > self._max_frame:
            return Rejected(DropReason.OVERSIZED, f"{len(frame)} > {self._max_frame} bytes")
        # Only accepted frames enter the LRU, so a hit is an exact copy of a good frame
        # (a QoS 1 redelivery, a retained copy, the same FINAL on two topics): drop it
        # before spending a signature recovery on it.
        digest = hashlib.blake2b(frame, digest_size=16).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return Rejected(DropReason.DUPLICATE, "frame already accepted")
        opened = _open(frame, self._domain, self._topics.network, self._roster)
        if isinstance(opened, Rejected):
            return opened
        if not self._routed_correctly(topic, opened.to):
            return Rejected(
                DropReason.MISDIRECTED, f"to={opened.to!r} on {topic[:100]!r}", opened.sender
            )
        key = (opened.sender, topic)
        if opened.seq <= self._high_water.get(key, 0):
            return Rejected(
                DropReason.REPLAYED, f"seq {opened.seq} not above high-water", opened.sender
            )
        self._high_water[key] = opened.seq
        self._seen[digest] = None
        if len(self._seen) > self._dedupe_capacity:
            self._seen.popitem(last=False)
        return Received(
            net=opened.net,
            type=opened.type,
            sender=opened.sender,
            seq=opened.seq,
            payload=opened.payload,
            to=opened.to,
            v=opened.v,
            frame=frame,
            topic=topic,
            retained=retained,
        )

    def _routed_correctly(self, topic: str, to: NodeId | None) -> bool:
        route = self._topics.route(topic)
        if route is None:
            return False
        if route.channel is Channel.INBOX:
            return to is not None and to == route.key == self._me
        return to is None
