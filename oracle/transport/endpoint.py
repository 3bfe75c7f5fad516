"""The half of a transport that does not depend on the wire: sealing outgoing envelopes,
verifying incoming frames, counting, and the bounded queue of verified messages.

Both :class:`~oracle.transport.mqtt.MqttTransport` and
:class:`~oracle.transport.memory.MemoryTransport` own one :class:`Endpoint`, so a frame
follows the same encode / verify / drop rules whichever transport carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from oracle.errors import FrameTooLarge, ReadOnlyTransport, TransportClosed
from oracle.identity import IdentityKey, NodeId, Roster
from oracle.metrics import NodeMetrics
from oracle.transport.envelope import (
    DEFAULT_MAX_FRAME,
    DropReason,
    Envelope,
    FrameVerifier,
    JsonValue,
    MessageType,
    Received,
    Rejected,
    SeqCounter,
    SignedEnvelope,
    seal,
)
from oracle.transport.topics import Channel, Topics

__all__ = ["DEFAULT_INCOMING_LIMIT", "Endpoint", "Outgoing", "default_channels"]

logger = logging.getLogger("xon.transport")

DEFAULT_INCOMING_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One sealed frame on its way to a topic."""

    topic: str
    frame: bytes
    retain: bool
    envelope: SignedEnvelope


class _Closed:
    """Queue sentinel: the transport stopped."""


_CLOSED = _Closed()


def default_channels(identity: IdentityKey | None) -> frozenset[Channel]:
    """A node listens to the consensus topic and its inbox; a read-only client to reports."""
    if identity is None:
        return frozenset({Channel.REPORTS})
    return frozenset({Channel.CONSENSUS, Channel.INBOX})


class Endpoint:
    """Seal, verify, count, queue. Not thread-safe; lives on one event loop."""

    def __init__(
        self,
        *,
        network: str,
        roster: Roster,
        identity: IdentityKey | None,
        metrics: NodeMetrics,
        channels: Collection[Channel] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        incoming_limit: int = DEFAULT_INCOMING_LIMIT,
        seq: SeqCounter | None = None,
    ) -> None:
        self.topics = Topics(network)
        self.identity = identity
        self.metrics = metrics
        self.max_frame = max_frame
        self.channels = frozenset(channels) if channels is not None else default_channels(identity)
        if Channel.INBOX in self.channels and identity is None:
            raise ValueError("a read-only transport has no inbox to subscribe to")
        self._verifier = FrameVerifier(
            network, roster, me=identity.node_id if identity else None, max_frame=max_frame
        )
        self._seq = seq or SeqCounter()
        self._incoming_limit = incoming_limit
        self._queue: asyncio.Queue[Received | _Closed] = asyncio.Queue()
        self._open = False
        # Make every drop reason visible at 0 so alerts and dashboards need no special case.
        for reason in DropReason:
            metrics.messages_dropped.labels(reason=reason.value)

    @property
    def node_id(self) -> NodeId | None:
        return self.identity.node_id if self.identity is not None else None

    @property
    def roster(self) -> Roster:
        return self._verifier.roster

    def set_roster(self, roster: Roster) -> None:
        self._verifier.set_roster(roster)

    def subscriptions(self) -> list[str]:
        """The topic filters this endpoint listens on."""
        filters = []
        if Channel.CONSENSUS in self.channels:
            filters.append(self.topics.consensus)
        if Channel.INBOX in self.channels and self.identity is not None:
            filters.append(self.topics.inbox(self.identity.node_id))
        if Channel.REPORTS in self.channels:
            filters.append(self.topics.reports_filter)
        return filters

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        # Drain anything left from a previous run, including its close sentinel.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._queue.put_nowait(_CLOSED)

    @property
    def is_open(self) -> bool:
        return self._open

    # -- outgoing ----------------------------------------------------------------------

    def seal(
        self,
        channel: Channel,
        type: MessageType,
        payload: Mapping[str, JsonValue],
        *,
        to: NodeId | None = None,
        report_kind: str | None = None,
        retain: bool | None = None,
    ) -> Outgoing:
        """Build, serialize once, sign and size-check one message."""
        if not self._open:
            raise TransportClosed("the transport is not running")
        if self.identity is None:
            raise ReadOnlyTransport("a read-only transport cannot publish")
        if channel is Channel.INBOX and to is not None and report_kind is None:
            topic = self.topics.inbox(to)
        elif channel is Channel.REPORTS and report_kind is not None and to is None:
            topic = self.topics.report(report_kind)
        elif channel is Channel.CONSENSUS and to is None and report_kind is None:
            topic = self.topics.consensus
        else:
            raise ValueError(
                "INBOX needs `to`, REPORTS needs `report_kind`, CONSENSUS takes neither"
            )
        envelope = Envelope(
            net=self.topics.network,
            type=MessageType(type),
            sender=self.identity.node_id,
            seq=self._seq.next(),
            payload=payload,
            to=to,
        )
        signed = seal(envelope, self.identity)
        if len(signed.frame) > self.max_frame:
            raise FrameTooLarge(len(signed.frame), self.max_frame, topic=topic)
        if retain is None:
            retain = channel is Channel.REPORTS
        return Outgoing(topic=topic, frame=signed.frame, retain=retain, envelope=signed)

    def published(self, outgoing: Outgoing) -> None:
        self.metrics.messages_published.labels(type=outgoing.envelope.type.value).inc()

    def outgoing_dropped(self, outgoing: Outgoing) -> None:
        self.metrics.messages_dropped.labels(reason=DropReason.OUTGOING_QUEUE_FULL.value).inc()
        logger.debug(
            "transport.outgoing_dropped topic=%s type=%s seq=%d",
            outgoing.topic,
            outgoing.envelope.type,
            outgoing.envelope.seq,
        )

    # -- incoming ----------------------------------------------------------------------

    def deliver(self, topic: str, frame: bytes, *, retained: bool = False) -> Received | None:
        """Verify one frame as received on ``topic``; queue it or count the drop."""
        result = self._verifier.verify(frame, topic, retained=retained)
        if isinstance(result, Rejected):
            self._drop(result, topic)
            return None
        if self._queue.qsize() >= self._incoming_limit:
            # The consumer is not keeping up; dropping the newest keeps memory bounded and
            # is what a congested broker would do to us anyway.
            self._drop(Rejected(DropReason.INCOMING_QUEUE_FULL, "consumer behind"), topic)
            return None
        self.metrics.messages_received.labels(type=result.type.value).inc()
        self._queue.put_nowait(result)
        return result

    def _drop(self, rejected: Rejected, topic: str) -> None:
        self.metrics.messages_dropped.labels(reason=rejected.reason.value).inc()
        logger.debug(
            "transport.dropped reason=%s sender=%s topic=%s detail=%s",
            rejected.reason,
            rejected.sender,
            topic[:120],
            rejected.detail,
        )

    def receive_nowait(self) -> Received | None:
        """The next verified message if one is queued, else ``None`` (never waits)."""
        if self._queue.empty():
            if not self._open:
                raise TransportClosed("the transport is not running")
            return None
        item = self._queue.get_nowait()
        if isinstance(item, _Closed):
            self._queue.put_nowait(item)
            raise TransportClosed("the transport stopped")
        return item

    async def receive(self) -> Received:
        """The next verified message; :class:`TransportClosed` once the transport stops."""
        if not self._open and self._queue.empty():
            raise TransportClosed("the transport is not running")
        item = await self._queue.get()
        if isinstance(item, _Closed):
            # Leave the sentinel for any other waiting receiver.
            self._queue.put_nowait(item)
            raise TransportClosed("the transport stopped")
        return item


class EndpointBacked:
    """The ``Transport`` members every implementation answers from its :class:`Endpoint`
    and its readiness flag; implementations set the four attributes in ``__init__``."""

    _endpoint: Endpoint
    _metrics: NodeMetrics
    _ready: asyncio.Event
    _task_group: asyncio.TaskGroup | None

    @property
    def network(self) -> str:
        return self._endpoint.topics.network

    @property
    def node_id(self) -> NodeId | None:
        return self._endpoint.node_id

    @property
    def metrics(self) -> NodeMetrics:
        return self._metrics

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def wait_connected(self) -> None:
        if self._task_group is None:
            raise TransportClosed("the transport is not running")
        await self._ready.wait()

    @property
    def roster(self) -> Roster:
        return self._endpoint.roster

    def set_roster(self, roster: Roster) -> None:
        self._endpoint.set_roster(roster)
