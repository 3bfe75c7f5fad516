"""The :class:`Transport` protocol: how a node talks to the rest of the network.

Two implementations sit side by side and pass one conformance suite
(``tests/integration/test_transport_mqtt_conformance.py``):

* :class:`~oracle.transport.mqtt.MqttTransport` — MQTT 5 through a broker (aiomqtt);
* :class:`~oracle.transport.memory.MemoryTransport` — many nodes in one process on a
  shared :class:`~oracle.transport.memory.MemoryBus`, with optional fault injection.

Life cycle: ``async with transport:`` starts the background work (in a ``TaskGroup``
owned by the context manager) and ``__aexit__`` stops it; a transport is not reentrant.
Inside, :meth:`~Transport.publish` seals (serialize once, sign, size-check) and hands the
frame over; :meth:`~Transport.receive` / ``async for`` yield only frames that passed every
check of :mod:`oracle.transport.envelope` — everything else is dropped and counted in
``xon_messages_dropped_total{reason}``, never raised into the receive loop.

A transport built without an identity key is *read-only* (e.g. a relayer that only
follows ``reports``): it verifies what it receives and refuses to publish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Protocol, Self

from oracle.identity import NodeId, Roster
from oracle.transport.envelope import JsonValue, MessageType, Received, SignedEnvelope
from oracle.transport.topics import Channel

__all__ = ["Transport"]


class Transport(Protocol):
    """A signed publish/subscribe channel among the members of one roster."""

    @property
    def network(self) -> str:
        """The network id (``xon/{network}/...`` topics, ``xon/{network}/v1`` signing domain)."""
        ...

    @property
    def node_id(self) -> NodeId | None:
        """Our identity, or ``None`` for a read-only transport."""
        ...

    @property
    def connected(self) -> bool:
        """True while the transport can deliver in both directions (for readiness checks)."""
        ...

    async def wait_connected(self) -> None:
        """Return once connected and subscribed (bound it with ``asyncio.timeout``)."""
        ...

    @property
    def roster(self) -> Roster: ...

    def set_roster(self, roster: Roster) -> None:
        """Accept frames from a new membership from now on (committee rotation)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

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
        """Sign and send one message.

        ``channel`` picks the topic: CONSENSUS (broadcast to every other subscriber),
        INBOX (``to`` = the recipient), REPORTS (``report_kind`` names the last level;
        retained by default, so a late subscriber gets the latest one). ``retain=None``
        means "retained on REPORTS only". Returns the signed envelope (its ``frame`` is the
        exact bytes sent). Raises :class:`~oracle.errors.FrameTooLarge`,
        :class:`~oracle.errors.ReadOnlyTransport` or
        :class:`~oracle.errors.TransportClosed`; delivery itself is asynchronous and
        best-effort (QoS 1), see the implementation for what happens while disconnected.
        """
        ...

    async def receive(self) -> Received:
        """The next verified message; raises TransportClosed once the transport stopped."""
        ...

    def __aiter__(self) -> AsyncIterator[Received]:
        """Verified messages until the transport stops."""
        ...
