"""Signed messaging between nodes: envelopes, the Transport protocol, MQTT and in-process.

Layers, dependencies one way (like h11 → httpcore):

* :mod:`~oracle.transport.topics` and :mod:`~oracle.transport.envelope` — sans-io: the topic
  layout, the wire format, sealing and the receive-side checks;
* :mod:`~oracle.transport.endpoint` — the wire-independent half of a transport;
* :mod:`~oracle.transport.mqtt` and :mod:`~oracle.transport.memory` — the two
  implementations of :class:`~oracle.transport.base.Transport`.
"""

from oracle.transport.base import Transport
from oracle.transport.envelope import (
    DEFAULT_MAX_FRAME,
    PROTOCOL_VERSION,
    DropReason,
    Envelope,
    FrameVerifier,
    JsonValue,
    MessageType,
    Received,
    Rejected,
    SeqCounter,
    SignedEnvelope,
    encode_body,
    from_hex,
    open_frame,
    seal,
    signing_domain,
    to_hex,
)
from oracle.transport.memory import Faults, MemoryBus, MemoryTransport
from oracle.transport.mqtt import Backoff, MqttSettings, MqttTransport
from oracle.transport.topics import Channel, Topics

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "Backoff",
    "Channel",
    "DropReason",
    "Envelope",
    "Faults",
    "FrameVerifier",
    "JsonValue",
    "MemoryBus",
    "MemoryTransport",
    "MessageType",
    "MqttSettings",
    "MqttTransport",
    "Received",
    "Rejected",
    "SeqCounter",
    "SignedEnvelope",
    "Topics",
    "Transport",
    "encode_body",
    "from_hex",
    "open_frame",
    "seal",
    "signing_domain",
    "to_hex",
]
