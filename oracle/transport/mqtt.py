"""MQTT 5 transport on aiomqtt (2.5.x).

Behaviour
---------
* **One connection task** runs in a ``TaskGroup`` owned by ``async with MqttTransport``:
  connect → subscribe → (reader ‖ writer) until the connection breaks → back off → again.
  ``__aenter__`` does not wait for the broker: a node starts even while the broker is down
  and becomes ready later; use :attr:`connected` / :meth:`wait_connected` for readiness.
* **Reconnect** with "equal jitter" exponential backoff: the n-th consecutive failure
  waits ``d/2 + U(0, d/2)`` with ``d = min(maximum, initial · multiplier^n)``; the
  counter resets once a connection is established and subscribed. Every connection is a
  clean MQTT session (session expiry 0), so the subscriptions are sent again each time.
* **QoS 1** both ways. Subscriptions use MQTT 5 *no-local*, so a node does not receive its
  own broadcasts back.
* **Outgoing queue**: :meth:`publish` seals the frame and appends it to a bounded queue
  that the writer drains, up to ``max_inflight`` unacknowledged publishes at a time. While
  disconnected, frames wait in the queue (up to ``outgoing_limit``); beyond that a new
  frame is dropped and counted as ``outgoing_queue_full`` (publish still returns: the
  caller's protocol treats the network as lossy anyway). A frame whose PUBACK did not come
  before the connection broke is sent again after the reconnect (receivers drop the copy
  as ``duplicate``). On a clean exit the queue gets ``close_flush_timeout`` seconds to
  drain while connected; what is still queued after that is discarded.
* **Size caps**: an outgoing frame above ``max_frame`` raises
  :class:`~oracle.errors.FrameTooLarge`; incoming frames above it are dropped as
  ``oversized``. The CONNECT packet also announces a maximum packet size of
  ``2·max_frame + 1 KiB``, so the broker never sends us anything absurdly large (those are
  dropped by the broker and visible in its own statistics, not in ours).
* Errors from aiomqtt/paho never leave this module: a broken connection is a reconnect,
  a refused subscription is logged and retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from oracle.errors import TransportClosed, TransportError
from oracle.identity import IdentityKey, NodeId, Roster
from oracle.metrics import NodeMetrics
from oracle.transport.endpoint import DEFAULT_INCOMING_LIMIT, Endpoint, EndpointBacked, Outgoing
from oracle.transport.envelope import (
    DEFAULT_MAX_FRAME,
    JsonValue,
    MessageType,
    Received,
    SeqCounter,
    SignedEnvelope,
)
from oracle.transport.topics import Channel

if TYPE_CHECKING:
    from oracle.transport.base import Transport

__all__ = ["Backoff", "MqttSettings", "MqttTransport"]

logger = logging.getLogger("xon.transport.mqtt")
_paho_logger = logging.getLogger("xon.transport.mqtt.paho")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: capped exponential growth with equal jitter."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.multiplier < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and multiplier >= 1")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (0 → about ``initial``)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** min(failures, 64))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where the broker is and how hard to try."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_context: ssl.SSLContext | None = None
    keepalive: int = 30
    timeout: float = 10.0
    """Seconds for one broker operation: connect (CONNACK), subscribe (SUBACK), PUBACK."""
    backoff: Backoff = Backoff()
    max_frame: int = DEFAULT_MAX_FRAME
    outgoing_limit: int = 1_000
    incoming_limit: int = DEFAULT_INCOMING_LIMIT
    max_inflight: int = 64
    close_flush_timeout: float = 1.0


def _describe(error: BaseException | None) -> str:
    """aiomqtt wraps the socket-level reason in ``__cause__``; show both."""
    if error is None:
        return "session ended"
    cause = error.__cause__
    return f"{error} ({cause})" if cause is not None and str(cause) else str(error)


def _clear_stale_cancellation() -> None:
    """Undo the cancel request a failed session's TaskGroup left on the connection task.

    Python 3.11's TaskGroup cancels its parent task to report a child's error and, when the
    child fails while the group is already exiting, never uncancels it (3.12 fixes this).
    Only our own ``__aexit__`` cancels the connection task, and it sets ``_closing`` first,
    so any count left here is stale; left alone it would grow by one per reconnect.
    """
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


@dataclass(slots=True)
class _Outbox:
    """FIFO of sealed frames with a bound, an "anything to send" event and an idle event."""

    limit: int
    items: deque[Outgoing] = field(default_factory=deque)
    inflight: int = 0
    nonempty: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def put(self, item: Outgoing) -> bool:
        if len(self.items) >= self.limit:
            return False
        self.items.append(item)
        self.nonempty.set()
        self.idle.clear()
        return True

    async def take(self, most: int) -> list[Outgoing]:
        while not self.items:
            self.nonempty.clear()
            await self.nonempty.wait()
        batch = [self.items.popleft() for _ in range(min(most, len(self.items)))]
        self.inflight += len(batch)
        return batch

    def finished(self, count: int) -> None:
        self.inflight -= count
        if not self.items and self.inflight == 0:
            self.idle.set()

    def requeue(self, items: list[Outgoing]) -> None:
        """Put unconfirmed frames back at the front, in their original order."""
        self.inflight -= len(items)
        self.items.extendleft(reversed(items))
        if self.items:
            self.nonempty.set()

    def clear(self) -> None:
        self.items.clear()
        self.inflight = 0
        self.idle.set()


class _SubscribeRefused(TransportError):
    """The broker refused a subscription (typically an ACL)."""


class MqttTransport(EndpointBacked):
    """:class:`~oracle.transport.base.Transport` over an MQTT 5 broker."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        network: str,
        roster: Roster,
        identity: IdentityKey | None = None,
        metrics: NodeMetrics | None = None,
        channels: Collection[Channel] | None = None,
        rng: random.Random | None = None,
        seq: SeqCounter | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics if metrics is not None else NodeMetrics()
        self._endpoint = Endpoint(
            network=network,
            roster=roster,
            identity=identity,
            metrics=self._metrics,
            channels=channels,
            max_frame=settings.max_frame,
            incoming_limit=settings.incoming_limit,
            seq=seq,
        )
        self._rng = rng if rng is not None else random.Random()
        self._outbox = _Outbox(settings.outgoing_limit)
        self._ready = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._connection_task: asyncio.Task[None] | None = None
        self._overflowing = False
        self._established = False
        self._closing = False
        self._sessions = 0
        tag = identity.node_id[2:10].lower() if identity is not None else "ro"
        # A random suffix: two processes with one identity (a node and its debugging twin)
        # must not keep taking each other's session over.
        self._client_id = f"xon-{network}-{tag}-{secrets.token_hex(4)}"

    # -- Transport protocol ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise TransportError("the transport is already running (not reentrant)")
        task_group = asyncio.TaskGroup()
        await task_group.__aenter__()
        self._task_group = task_group
        self._closing = False
        self._endpoint.open()
        self._connection_task = task_group.create_task(
            self._run(), name=f"xon-mqtt-connection-{self._client_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return
        try:
            if exc_type is None and self.connected:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.close_flush_timeout):
                        await self._outbox.idle.wait()
        finally:
            self._closing = True
            self._endpoint.close()
            if self._connection_task is not None:
                self._connection_task.cancel()
                self._connection_task = None
            try:
                # Our tasks are cancelled above; passing the body's exception on would make the
                # TaskGroup wrap it in an ExceptionGroup. Only a crashed task of ours raises here.
                await task_group.__aexit__(None, None, None)
            finally:
                self._outbox.clear()
                self._set_ready(False)

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
        if self._task_group is None:
            raise TransportClosed("the transport is not running")
        outgoing = self._endpoint.seal(
            channel, type, payload, to=to, report_kind=report_kind, retain=retain
        )
        if self._outbox.put(outgoing):
            self._endpoint.published(outgoing)
            self._overflowing = False
        else:
            self._endpoint.outgoing_dropped(outgoing)
            if not self._overflowing:
                self._overflowing = True
                logger.warning(
                    "transport.outgoing_queue_full limit=%d connected=%s: dropping new frames",
                    self._settings.outgoing_limit,
                    self.connected,
                )
        return outgoing.envelope

    async def receive(self) -> Received:
        return await self._endpoint.receive()

    async def __aiter__(self) -> AsyncIterator[Received]:
        while True:
            try:
                yield await self._endpoint.receive()
            except TransportClosed:
                return

    # -- connection management ---------------------------------------------------------

    def _set_ready(self, ready: bool) -> None:
        if ready:
            self._ready.set()
        else:
            self._ready.clear()
        self._metrics.transport_connected.set(1 if ready else 0)

    async def _run(self) -> None:
        failures = 0
        while True:
            self._established = False
            error: BaseException | None = None
            try:
                await self._session()
            except* (aiomqtt.MqttError, TransportError) as group:
                error = group.exceptions[0]
            if self._closing:
                # A connection error raced with our own cancellation and the session's
                # TaskGroup reported the error instead: honour the cancellation.
                raise asyncio.CancelledError
            _clear_stale_cancellation()
            if self._established:
                failures = 0
            delay = self._settings.backoff.delay(failures, self._rng)
            failures += 1
            log = logger.warning if self._established or failures == 1 else logger.debug
            log(
                "transport.%s host=%s port=%d error=%s retry_in=%.2fs",
                "disconnected" if self._established else "connect_failed",
                self._settings.host,
                self._settings.port,
                _describe(error),
                delay,
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection: connect, subscribe, then read and write until it breaks (an
        aiomqtt error, always: a session never ends quietly)."""
        settings = self._settings
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.MaximumPacketSize = 2 * settings.max_frame + 1024
        client = aiomqtt.Client(
            settings.host,
            settings.port,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            username=settings.username,
            password=settings.password,
            tls_context=settings.tls_context,
            keepalive=settings.keepalive,
            timeout=settings.timeout,
            max_inflight_messages=settings.max_inflight,
            # Our reader moves frames on at once; this only bounds memory if it stalls.
            max_queued_incoming_messages=settings.incoming_limit,
            properties=properties,
            logger=_paho_logger,
            # Consensus messages are small and latency-bound: without TCP_NODELAY, Nagle's
            # algorithm holds a PROPOSE or SHARE behind our own unacknowledged PUBACKs until
            # the broker's delayed ACK (~40 ms per hop; bench/round.py measured 4x slower
            # rounds).
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # aiomqtt warns above 10 outstanding calls; we keep up to max_inflight on purpose.
        client.pending_calls_threshold = settings.max_inflight + 8
        async with client:
            await self._subscribe(client)
            self._established = True
            self._sessions += 1
            if self._sessions > 1:
                self._metrics.transport_reconnects.inc()
            logger.info(
                "transport.connected host=%s port=%d client=%s session=%d",
                settings.host,
                settings.port,
                self._client_id,
                self._sessions,
            )
            self._set_ready(True)
            try:
                async with asyncio.TaskGroup() as session_tasks:
                    session_tasks.create_task(self._read(client), name="xon-mqtt-reader")
                    session_tasks.create_task(self._write(client), name="xon-mqtt-writer")
            finally:
                self._set_ready(False)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        filters = self._endpoint.subscriptions()
        if not filters:
            return
        options = SubscribeOptions(qos=1, noLocal=True)
        codes = await client.subscribe([(topic, options) for topic in filters])
        for topic, code in zip(filters, codes, strict=False):
            # MQTT 5 answers ReasonCodes; a 3.1.1-style answer is a granted-QoS int.
            if isinstance(code, ReasonCode):
                failed = code.is_failure
            else:
                failed = not isinstance(code, int) or code >= 0x80
            if failed:
                raise _SubscribeRefused(f"subscription refused: {code}", topic=topic)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):  # paho always gives bytes
                continue
            self._endpoint.deliver(message.topic.value, bytes(payload), retained=message.retain)
        raise aiomqtt.MqttError("message stream ended")  # pragma: no cover

    async def _write(self, client: aiomqtt.Client) -> None:
        while True:
            batch = await self._outbox.take(self._settings.max_inflight)
            try:
                # gather starts the publishes in order, so paho sends them in order.
                results = await asyncio.gather(
                    *(
                        client.publish(item.topic, item.frame, qos=1, retain=item.retain)
                        for item in batch
                    ),
                    return_exceptions=True,
                )
            except asyncio.CancelledError:
                # Unknown which ones the broker got: send them all again next session.
                self._outbox.requeue(batch)
                raise
            failed = [
                item for item, result in zip(batch, results, strict=True) if result is not None
            ]
            self._outbox.finished(len(batch) - len(failed))
            if failed:
                self._outbox.requeue(failed)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(
                        result, aiomqtt.MqttError | asyncio.CancelledError
                    ):
                        raise result  # a bug, not a network condition
                raise aiomqtt.MqttError(f"{len(failed)} publishes not acknowledged")


if TYPE_CHECKING:
    # mypy proves the structural match with the protocol here, once, for every caller.
    def _conforms(transport: MqttTransport) -> Transport:
        return transport
