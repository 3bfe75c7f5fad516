"""In-process transport: many nodes in one process on a shared :class:`MemoryBus`.

Same interface and same frames as the MQTT transport — every message is sealed (serialized
once, signed) by the sender's :class:`~oracle.transport.endpoint.Endpoint` and verified by
each receiver's, so the drop rules and counters are identical. What the bus imitates from
a broker: topic filters with ``+``/``#``, MQTT 5 *no-local* (a publisher does not get its
own message back), retained messages per topic (delivered to later subscribers, flagged
``retained``), and no loss unless asked.

Fault injection (simulations, Byzantine tests), all drawn from one ``random.Random(seed)``
in publication order, so a run with the same seed and the same sequence of publishes
injects the same faults:

* :class:`Faults` — per delivery (one publisher → one subscriber): ``drop`` probability,
  ``duplicate`` probability (a second copy, which the receiver drops as ``duplicate``),
  ``delay`` (uniform latency range) and ``reorder`` (probability of an extra hold-back of
  up to ``reorder_window``; a frame overtaken by a later one from the same sender on the
  same topic is then dropped as ``replayed``, exactly as it would be over MQTT);
* ``link_filter(publisher, subscriber, topic) -> bool`` — return False to cut a link
  (partitions, a mute node, a node that talks only to some peers).

Delayed deliveries wait in a per-subscriber heap served by a task in that transport's own
``TaskGroup``; undelayed ones are verified and queued synchronously inside ``publish``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

from oracle.errors import TransportClosed, TransportError
from oracle.identity import IdentityKey, NodeId, Roster
from oracle.metrics import NodeMetrics
from oracle.transport.endpoint import DEFAULT_INCOMING_LIMIT, Endpoint, EndpointBacked
from oracle.transport.envelope import (
    DEFAULT_MAX_FRAME,
    JsonValue,
    MessageType,
    Received,
    SeqCounter,
    SignedEnvelope,
)
from oracle.transport.topics import Channel, topic_matches

if TYPE_CHECKING:
    from oracle.transport.base import Transport

__all__ = ["BusStats", "Faults", "LinkFilter", "MemoryBus", "MemoryTransport"]

LinkFilter = Callable[[NodeId | None, NodeId | None, str], bool]
"""``(publisher, subscriber, topic) -> deliver?``. A ``None`` publisher is a raw
injection or a retained message replayed to a new subscriber; a ``None`` subscriber is a
read-only transport."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-delivery fault probabilities and latency (all off by default)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    reorder_window: float = 0.05

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Faults.{name} is a probability in [0, 1]")
        low, high = self.delay
        if not 0.0 <= low <= high or self.reorder_window < 0:
            raise ValueError("Faults.delay is a range 0 <= low <= high; reorder_window >= 0")

    @property
    def active(self) -> bool:
        return bool(self.drop or self.duplicate or self.reorder or self.delay[1])


@dataclass(slots=True)
class BusStats:
    """What the bus did, for simulations to report (the nodes count their own drops)."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    cut: int = 0


class MemoryBus:
    """The shared medium for :class:`MemoryTransport`s of one process (one event loop)."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        seed: int = 0,
        link_filter: LinkFilter | None = None,
    ) -> None:
        self.faults = faults if faults is not None else Faults()
        self.link_filter = link_filter
        self.stats = BusStats()
        self._rng = random.Random(seed)
        self._subscribers: list[MemoryTransport] = []
        self._retained: dict[str, bytes] = {}

    def transport(
        self,
        *,
        network: str,
        roster: Roster,
        identity: IdentityKey | None = None,
        metrics: NodeMetrics | None = None,
        channels: Collection[Channel] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> MemoryTransport:
        """A new transport on this bus (not started: use ``async with``)."""
        return MemoryTransport(
            self,
            network=network,
            roster=roster,
            identity=identity,
            metrics=metrics,
            channels=channels,
            max_frame=max_frame,
        )

    def inject(self, topic: str, frame: bytes, *, retain: bool = False) -> None:
        """Publish raw bytes from outside any transport (a forger, a broken client)."""
        self.publish(topic, frame, retain=retain, publisher=None)

    def publish(
        self,
        topic: str,
        frame: bytes,
        *,
        retain: bool = False,
        publisher: MemoryTransport | None = None,
    ) -> None:
        self.stats.published += 1
        if retain:
            # As in MQTT, an empty retained message clears the topic's retained message.
            if frame:
                self._retained[topic] = frame
            else:
                self._retained.pop(topic, None)
        publisher_id = publisher.node_id if publisher is not None else None
        for subscriber in list(self._subscribers):
            if subscriber is publisher or not subscriber.listens_to(topic):
                continue
            self._route(publisher_id, subscriber, topic, frame, retained=False)

    def attach(self, subscriber: MemoryTransport) -> None:
        """A transport starts listening (called by its ``__aenter__``)."""
        self._subscribers.append(subscriber)
        for topic, frame in list(self._retained.items()):
            if subscriber.listens_to(topic):
                self._route(None, subscriber, topic, frame, retained=True)

    def detach(self, subscriber: MemoryTransport) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def _route(
        self,
        publisher: NodeId | None,
        subscriber: MemoryTransport,
        topic: str,
        frame: bytes,
        *,
        retained: bool,
    ) -> None:
        if self.link_filter is not None and not self.link_filter(
            publisher, subscriber.node_id, topic
        ):
            self.stats.cut += 1
            return
        faults = self.faults
        if not faults.active:
            self.stats.delivered += 1
            subscriber.arrive(topic, frame, retained=retained, delay=0.0)
            return
        rng = self._rng
        if rng.random() < faults.drop:
            self.stats.dropped += 1
            return
        copies = 2 if rng.random() < faults.duplicate else 1
        self.stats.duplicated += copies - 1
        for _ in range(copies):
            delay = rng.uniform(*faults.delay)
            if rng.random() < faults.reorder:
                delay += rng.uniform(0.0, faults.reorder_window)
            if delay > 0:
                self.stats.delayed += 1
            self.stats.delivered += 1
            subscriber.arrive(topic, frame, retained=retained, delay=delay)


@dataclass(order=True, slots=True)
class _Pending:
    due: float
    order: int
    topic: str = field(compare=False)
    frame: bytes = field(compare=False)
    retained: bool = field(compare=False)


class MemoryTransport(EndpointBacked):
    """:class:`~oracle.transport.base.Transport` on a :class:`MemoryBus`."""

    def __init__(
        self,
        bus: MemoryBus,
        *,
        network: str,
        roster: Roster,
        identity: IdentityKey | None = None,
        metrics: NodeMetrics | None = None,
        channels: Collection[Channel] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        incoming_limit: int = DEFAULT_INCOMING_LIMIT,
        seq: SeqCounter | None = None,
    ) -> None:
        self._bus = bus
        self._metrics = metrics if metrics is not None else NodeMetrics()
        self._endpoint = Endpoint(
            network=network,
            roster=roster,
            identity=identity,
            metrics=self._metrics,
            channels=channels,
            max_frame=max_frame,
            incoming_limit=incoming_limit,
            seq=seq,
        )
        self._filters = self._endpoint.subscriptions()
        self._ready = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        self._pending: list[_Pending] = []
        self._pending_changed = asyncio.Event()
        self._order = itertools.count()

    # -- Transport protocol ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise TransportError("the transport is already running (not reentrant)")
        task_group = asyncio.TaskGroup()
        await task_group.__aenter__()
        self._task_group = task_group
        self._endpoint.open()
        self._delivery_task = task_group.create_task(
            self._deliver_delayed(), name=f"xon-memory-delivery-{self.node_id or 'ro'}"
        )
        self._bus.attach(self)
        self._ready.set()
        self._metrics.transport_connected.set(1)
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
        self._bus.detach(self)
        self._ready.clear()
        self._metrics.transport_connected.set(0)
        self._endpoint.close()
        if self._delivery_task is not None:
            self._delivery_task.cancel()
            self._delivery_task = None
        try:
            # Our task is cancelled above; passing the body's exception on would make the
            # TaskGroup wrap it in an ExceptionGroup. Only a crashed task of ours raises here.
            await task_group.__aexit__(None, None, None)
        finally:
            self._pending.clear()

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
        self._endpoint.published(outgoing)
        self._bus.publish(outgoing.topic, outgoing.frame, retain=outgoing.retain, publisher=self)
        # A real transport yields to the loop on I/O; so does this one, so that a node
        # publishing in a loop cannot starve the others in a simulation.
        await asyncio.sleep(0)
        return outgoing.envelope

    async def receive(self) -> Received:
        return await self._endpoint.receive()

    def receive_nowait(self) -> Received | None:
        """The next already-delivered message, or ``None``: lets a simulation step nodes
        deterministically (undelayed deliveries are complete when ``publish`` returns)."""
        return self._endpoint.receive_nowait()

    async def __aiter__(self) -> AsyncIterator[Received]:
        while True:
            try:
                yield await self._endpoint.receive()
            except TransportClosed:
                return

    # -- bus side ----------------------------------------------------------------------

    def listens_to(self, topic: str) -> bool:
        return any(topic_matches(pattern, topic) for pattern in self._filters)

    def arrive(self, topic: str, frame: bytes, *, retained: bool, delay: float) -> None:
        """Called by the bus: verify now, or after ``delay`` seconds."""
        if not self._endpoint.is_open:
            return
        if delay <= 0:
            self._endpoint.deliver(topic, frame, retained=retained)
            return
        due = asyncio.get_running_loop().time() + delay
        heapq.heappush(self._pending, _Pending(due, next(self._order), topic, frame, retained))
        self._pending_changed.set()

    async def _deliver_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._pending_changed.clear()
            if not self._pending:
                await self._pending_changed.wait()
                continue
            wait = self._pending[0].due - loop.time()
            if wait > 0:
                # Wake early if a message with an earlier due time arrives meanwhile.
                try:
                    async with asyncio.timeout(wait):
                        await self._pending_changed.wait()
                except TimeoutError:
                    pass
                continue
            item = heapq.heappop(self._pending)
            self._endpoint.deliver(item.topic, item.frame, retained=item.retained)


if TYPE_CHECKING:
    # mypy proves the structural match with the protocol here, once, for every caller.
    def _conforms(transport: MemoryTransport) -> Transport:
        return transport
