"""The oracle node: the asyncio driver around the sans-io consensus core.

::

    async with FeedsSource(feeds_config, replay_dir=...) as source:
        async with OracleNode(config, keys, transport, store_path, source) as node:
            ...                       # node.status(), node.metrics, node.request_observation()

:class:`OracleNode` owns its transport and its store; inside ``async with`` six named
tasks run in one ``asyncio.TaskGroup``:

* ``receive`` — verified envelopes from the transport → ``OracleProtocol.receive``;
* ``timer`` — ``OracleProtocol.tick`` at the times the core asked for (``ScheduleTick``),
  and at least every :data:`MAX_TICK_INTERVAL` seconds;
* ``observe`` — refreshes this node's observation from its :class:`ObservationSource`
  every ``refresh_s`` (or at once on :meth:`OracleNode.request_observation`); a failed
  refresh is logged and counted and the previous observation stays in use;
* ``execute`` — the only task that performs the core's actions, in order (below);
* ``audit`` — keeps the signed observations the node received as leader in the store;
* ``link`` — notices the transport coming back after a break (every
  :data:`LINK_CHECK_INTERVAL` seconds) and calls ``OracleProtocol.resync``.

**Action semantics** (the same as the simulator's, :mod:`oracle.protocol.sim`). Every call
into the core returns a list of actions; the lists are queued in call order and executed
one after the other by ``execute``, each list in order:

* ``RecordSigning`` is written durably to the store (sign protection + consuming the nonce
  commitment, one SQLite transaction, in a worker thread) *before* the next action runs —
  that next action is the message revealing the signature share (or a leader's empty
  PROPOSE, recorded under ``EMPTY_PROPOSAL`` with no commitment). If the store refuses
  (``DoubleSignRefused``, ``CommitmentUnavailable``, an I/O error), the rest of that list
  is dropped and ``xon_sign_refusals_total{reason}`` counts it: nothing is revealed.
* ``PublishCommitments``: the ids are recorded first, then the batch is broadcast (an id
  the store does not know could never be consumed, so a failed record skips the publish).
* ``Broadcast`` / ``SendTo`` → the consensus topic / the recipient's inbox.
* ``Loopback``: sealed with our identity key and handed back to ``receive`` (queued after
  the current list, as a delivery would be).
* ``ReportFinalized``: saved in the store; the epoch's leader also publishes the FINAL on
  the retained ``reports/prices`` topic (relayers and late subscribers read it there).
* ``Misbehaviour`` → ``xon_misbehaviour_total{member,kind}`` (and
  ``xon_shares_rejected_total`` for invalid shares); ``EpochChanged`` → metrics + a log.
* ``ScheduleTick`` is taken at once when the list is queued (a hint, never dropped).

**Restart safety.** On entry the node marks every nonce commitment it published but never
consumed as invalid (their nonces died with the previous process) and hands those ids and
its latest sign-protection record to the core, which withdraws them in its first
COMMITMENTS batch and will not sign a second digest for a round it signed before. A
cancelled node stops between actions; a store write already under way completes in its
worker thread (all or nothing), so the store is consistent at any cancellation point, and a
``kill -9`` at any point can lose at most an unsent message.

**Errors.** Peers cannot make the core raise (their faults become ``Misbehaviour``);
anything the node survives — an :class:`~aggregation.errors.XonError` from the core, a
store or a source — is logged with a stable event name and counted in
``xon_node_errors_total{where}``. Any other exception is a bug: it ends the task group and
the node, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self

from prometheus_client import CollectorRegistry

from aggregation.errors import EncodingError, XonError
from aggregation.frost import KeyPackage, PublicKeyPackage, Rng
from aggregation.report import ReportKind
from feeds.config import FeedsConfig, load_config, load_default_config
from feeds.errors import FeedError
from feeds.fetch import (
    Fetcher,
    FetchMetrics,
    SourceFailure,
    Timeouts,
    env_secrets,
    http_transport,
)
from feeds.observe import Observation as FeedsObservation
from feeds.observe import observe, secret_env_vars
from feeds.snapshots import REDACTED, ReplayBook
from oracle.errors import KeystoreError, StoreError, TransportClosed
from oracle.identity import IdentityKey, NodeId
from oracle.keystore import Committee, FrostKeyShare, Passphrase
from oracle.metrics import NodeMetrics
from oracle.protocol.actions import (
    Action,
    Broadcast,
    EpochChanged,
    Loopback,
    Misbehaviour,
    PublishCommitments,
    RecordSigning,
    ReportFinalized,
    ScheduleTick,
    SendTo,
)
from oracle.protocol.config import FeedSpec, Member, ProtocolConfig, Timing
from oracle.protocol.core import OracleProtocol
from oracle.protocol.credibility import CredibilityScore
from oracle.protocol.errors import MisbehaviourKind
from oracle.protocol.messages import FinalReport, Observation, Observe
from oracle.protocol.rules import report_values
from oracle.settings import NodeSettings, SettingsError
from oracle.store import (
    AsyncNodeStore,
    CommitmentUnavailable,
    ConflictingRecord,
    DoubleSignRefused,
    NodeStore,
    ObservationRecord,
)
from oracle.transport.base import Transport
from oracle.transport.envelope import (
    Envelope,
    JsonValue,
    MessageType,
    SeqCounter,
    SignedEnvelope,
    seal,
)
from oracle.transport.mqtt import MqttSettings, MqttTransport
from oracle.transport.topics import Channel

__all__ = [
    "MAX_TICK_INTERVAL",
    "FeedsSource",
    "MemberStatus",
    "NodeKeys",
    "NodeObservation",
    "NodeSetup",
    "NodeStatus",
    "ObservationSource",
    "ObservationStatus",
    "OracleNode",
    "ReportStatus",
    "build_protocol_config",
    "feeds_source",
    "load_setup",
    "mqtt_settings",
    "node_from_setup",
    "node_observation",
]

log = logging.getLogger("xon.node")

#: Tick the core at least this often, whatever it scheduled (ticking early is harmless).
MAX_TICK_INTERVAL: Final = 0.5
#: How often the node looks at its transport's link to notice a reconnect.
LINK_CHECK_INTERVAL: Final = 0.25
#: Envelope types the consensus core understands; others (DKG, devices) are not ours.
_CONSENSUS_TYPES: Final = frozenset(
    {
        MessageType.OBSERVE,
        MessageType.OBSERVATION,
        MessageType.PROPOSE,
        MessageType.SHARE,
        MessageType.FINAL,
        MessageType.NEWEPOCH,
        MessageType.COMMITMENTS,
    }
)
_PRICES: Final = int(ReportKind.PRICES)
_MAX_SNAPSHOT_HASHES: Final = 64  # what one OBSERVATION may carry
_AUDIT_QUEUE: Final = 1_000


# -- observations ------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeObservation:
    """One refresh of this node's view: fixed-point values per feed name.

    ``failed_sources`` (source → reason) and ``missing_feeds`` (no value this time) are
    for logs and metrics; the node observes whatever feeds have a value.
    """

    values: Mapping[str, int]
    snapshot_hashes: tuple[bytes, ...] = ()
    failed_sources: Mapping[str, str] = field(default_factory=dict)
    missing_feeds: tuple[str, ...] = ()


class ObservationSource(Protocol):
    """Where a node's observations come from. Raise a ``FeedError`` (or let a timeout
    expire) on failure; the node keeps its previous observation. The caller owns the
    source's lifecycle (one source may serve several nodes in tests and devnets)."""

    async def observe(self) -> NodeObservation: ...


def _snapshot_hashes(hex_digests: Sequence[str]) -> tuple[bytes, ...]:
    hashes = sorted({bytes.fromhex(h) for h in hex_digests})
    if len(hashes) > _MAX_SNAPSHOT_HASHES:
        # An OBSERVATION carries at most 64 hashes; past that, one hash over all of them
        # (sorted) still commits to every raw response kept on disk.
        return (hashlib.sha256(b"".join(hashes)).digest(),)
    return tuple(hashes)


def node_observation(result: FeedsObservation) -> NodeObservation:
    """Map a ``feeds.observe`` result to the values the consensus core signs."""
    values = {f.feed.id: f.result.value for f in result.feeds if f.result.value is not None}
    snapshots = [s for f in result.feeds for s in f.result.snapshots]
    return NodeObservation(
        values=values,
        snapshot_hashes=_snapshot_hashes(snapshots),
        failed_sources={
            str(sid): outcome.reason
            for sid, outcome in result.outcomes.items()
            if isinstance(outcome, SourceFailure)
        },
        missing_feeds=tuple(f.feed.id for f in result.feeds if f.result.value is None),
    )


class FeedsSource:
    """:class:`ObservationSource` on ``feeds/``: live providers, or a replayed recording.

    Live: one ``aiohttp`` session for the source's lifetime (``async with``), every
    :meth:`observe` fetches every used source once. Replay: the recording holds one answer
    per request, so it is observed once (the first call) and that observation is returned
    again afterwards — the node re-stamps it at every refresh, exactly as a node would that
    keeps seeing the same market. "Now" for staleness in replay is ``replay_now`` or the end
    of the recording.
    """

    def __init__(
        self,
        config: FeedsConfig,
        *,
        replay_dir: Path | None = None,
        replay_now: datetime | None = None,
        environ: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config
        # The fetcher's counters, on the node's registry when given (its /metrics).
        self.fetch_metrics = FetchMetrics(metrics_registry)
        self._replay_dir = replay_dir
        self._replay_now = replay_now
        self._environ = dict(os.environ if environ is None else environ)
        self._timeouts = timeouts or Timeouts()
        self._stack: contextlib.AsyncExitStack | None = None
        self._fetcher: Fetcher | None = None
        self._cached: NodeObservation | None = None
        self._lock = asyncio.Lock()

    @property
    def live(self) -> bool:
        return self._replay_dir is None

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("FeedsSource is not reentrant")
        stack = contextlib.AsyncExitStack()
        if self.live:
            transport = await stack.enter_async_context(http_transport(self._timeouts))
            secret_values = env_secrets(self._environ, secret_env_vars(self.config))
            self._fetcher = Fetcher(
                transport,
                timeouts=self._timeouts,
                secrets=secret_values,
                metrics=self.fetch_metrics,
            )
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._fetcher = None
        if stack is not None:
            await stack.aclose()

    async def observe(self) -> NodeObservation:
        if self.live:
            if self._fetcher is None:
                raise RuntimeError("use `async with FeedsSource(...)` before observe()")
            return node_observation(await observe(self.config, self._fetcher, self._environ))
        async with self._lock:
            if self._cached is not None:
                return NodeObservation(self._cached.values, self._cached.snapshot_hashes)
            self._cached = await self._replay()
            return self._cached

    async def _replay(self) -> NodeObservation:
        assert self._replay_dir is not None
        book = await asyncio.to_thread(ReplayBook, self._replay_dir)
        # A recording holds REDACTED where a key was; replaying needs no real keys.
        env = {**self._environ, **dict.fromkeys(secret_env_vars(self.config), REDACTED)}
        now = self._replay_now or book.recorded_until
        if now is None:
            raise FeedError(f"replay directory {self._replay_dir} holds no responses")
        fetcher = Fetcher.for_replay(book, metrics=self.fetch_metrics)
        result = await observe(self.config, fetcher, env, now)
        return node_observation(result)


# -- status ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportStatus:
    """The last report of one kind this node saw finalized."""

    kind: str
    epoch: int
    round: int
    digest: bytes
    observations_timestamp: int
    values: Mapping[str, int]
    report: bytes
    signature: bytes
    leader: NodeId
    finalized_at: float
    latency: float | None


@dataclass(frozen=True)
class MemberStatus:
    node_id: NodeId
    frost_id: int
    credibility: CredibilityScore
    misbehaviour: Mapping[str, int]


@dataclass(frozen=True)
class ObservationStatus:
    timestamp: int
    values: Mapping[str, int]
    missing_feeds: tuple[str, ...]
    failed_sources: Mapping[str, str]


@dataclass(frozen=True)
class NodeStatus:
    """What the status API shows (a snapshot; every field is plain data)."""

    node_id: NodeId
    network: str
    running: bool
    connected: bool
    epoch: int | None
    leader: NodeId | None
    is_leader: bool
    n: int
    f: int
    t: int
    members: tuple[MemberStatus, ...]
    last_reports: Mapping[str, ReportStatus]
    observation: ObservationStatus | None
    unused_commitments: int
    rounds_finalized: int


# -- the node ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeKeys:
    """The secrets a member holds: its identity key and its FROST key package."""

    identity: IdentityKey = field(repr=False)
    key_package: KeyPackage = field(repr=False)
    public_key_package: PublicKeyPackage


class OracleNode:
    """One committee member; see the module docstring."""

    def __init__(
        self,
        config: ProtocolConfig,
        keys: NodeKeys,
        transport: Transport,
        store_path: Path,
        source: ObservationSource,
        *,
        metrics: NodeMetrics | None = None,
        refresh_s: float | None = None,
        observe_timeout: float = 120.0,
        clock: Callable[[], float] = time.time,
        rng: Rng = secrets.token_bytes,
        on_finalized: Callable[[ReportFinalized], None] | None = None,
        wrap_core: Callable[[OracleProtocol], OracleProtocol] | None = None,
    ) -> None:
        """``wrap_core`` lets a caller put a wrapper with the core's interface around it
        before it first runs (the devnet's and the tests' faulty members)."""
        if transport.node_id != keys.identity.node_id:
            raise ValueError("the transport does not carry this node's identity")
        if transport.network != config.network:
            raise ValueError("the transport is on another network")
        if keys.identity.node_id not in config.by_node:
            raise ValueError(f"{keys.identity.node_id} is not a committee member")
        self.config = config
        self.node_id = keys.identity.node_id
        self.metrics = metrics if metrics is not None else NodeMetrics()
        self._keys = keys
        self._transport = transport
        self._store_path = Path(store_path)
        self._source = source
        self._refresh_s = refresh_s if refresh_s is not None else config.timing.delta_round
        self._observe_timeout = observe_timeout
        self._clock = clock
        self._rng = rng
        self._on_finalized = on_finalized
        self._wrap_core = wrap_core
        self._seq = SeqCounter()
        self._protocol: OracleProtocol | None = None
        self._store: AsyncNodeStore | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._transport_entered = False
        self._queue: asyncio.Queue[list[Action]] = asyncio.Queue()
        self._audit: asyncio.Queue[SignedEnvelope] = asyncio.Queue(_AUDIT_QUEUE)
        self._next_tick = float("inf")
        self._tick_changed = asyncio.Event()
        self._refresh_now = asyncio.Event()
        self._observation: ObservationStatus | None = None
        self._last_reports: dict[str, ReportStatus] = {}
        self._misbehaviour: Counter[tuple[NodeId, str]] = Counter()
        self._started_rounds: set[tuple[int, int]] = set()

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def protocol(self) -> OracleProtocol:
        """The running core (read-only use: status, tests)."""
        if self._protocol is None:
            raise RuntimeError("the node is not running")
        return self._protocol

    @property
    def running(self) -> bool:
        return self._task_group is not None

    async def __aenter__(self) -> Self:
        if self._protocol is not None:
            # Its queues and core belong to that run; a restart is a new OracleNode, as a
            # restarted process would be (it then starts from what the store kept).
            raise RuntimeError("an OracleNode runs once; build a new one to restart")
        store = AsyncNodeStore(await asyncio.to_thread(NodeStore, self._store_path))
        self._store = store
        try:
            # Nonces live in memory only: whatever we published before this start and never
            # used is unusable now, and must be withdrawn before anyone picks it.
            invalidated = await store.invalidate_all_unconsumed()
            latest = await store.highest_signed(_PRICES)
            keys = self._keys
            self._protocol = OracleProtocol(
                self.config,
                self.node_id,
                keys.key_package,
                keys.public_key_package,
                self._rng,
                signed=[latest],
                invalidated_commitments=[c.commitment_id for c in invalidated],
            )
            if self._wrap_core is not None:
                self._protocol = self._wrap_core(self._protocol)
            await self._transport.__aenter__()
            self._transport_entered = True
            task_group = asyncio.TaskGroup()
            await task_group.__aenter__()
            self._task_group = task_group
        except BaseException:
            await self._close_resources(None)
            raise
        log.info(
            "node.started node=%s network=%s n=%d t=%d withdrawn=%d epoch=%d",
            self.node_id,
            self.config.network,
            self.config.n,
            self.config.t,
            len(invalidated),
            self._protocol.epoch,
        )
        self._call("start", self._protocol.start)
        for name, body in (
            ("execute", self._execute_loop),
            ("receive", self._receive_loop),
            ("timer", self._timer_loop),
            ("observe", self._observe_loop),
            ("audit", self._audit_loop),
            ("link", self._link_loop),
        ):
            short = self.node_id[2:10].lower()
            self._tasks.append(task_group.create_task(body(), name=f"xon-node-{name}-{short}"))
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
            for task in self._tasks:
                task.cancel()
            # Passing the body's exception on would make the TaskGroup wrap it in an
            # ExceptionGroup; only a crashed task of ours raises here.
            await task_group.__aexit__(None, None, None)
        finally:
            self._tasks.clear()
            await self._close_resources(exc_type)
            log.info("node.stopped node=%s", self.node_id)

    async def _close_resources(self, exc_type: type[BaseException] | None) -> None:
        try:
            if self._transport_entered:
                self._transport_entered = False
                await self._transport.__aexit__(exc_type, None, None)
        finally:
            store, self._store = self._store, None
            if store is not None:
                # close() takes the store's lock, so a write still running in a worker
                # thread (its awaiting task was cancelled) completes first.
                await store.aclose()

    def request_observation(self) -> None:
        """Refresh the observation now instead of at the next ``refresh_s``."""
        self._refresh_now.set()

    # -- calling the core ----------------------------------------------------------------
    def _call(self, where: str, step: Callable[[float], list[Action]]) -> None:
        """Run one core step at the current time and queue its actions."""
        try:
            actions = step(self._clock())
        except XonError:
            # The core raises only for its own bugs (ProtocolStateError), leaving its
            # state unchanged; one bad step must not take the node down.
            log.exception("node.protocol_error where=%s", where)
            self.metrics.node_errors.labels(where=f"protocol_{where}").inc()
            return
        self._submit(actions)

    def _submit(self, actions: list[Action]) -> None:
        work: list[Action] = []
        for action in actions:
            if isinstance(action, ScheduleTick):
                self._schedule(action.at)
            else:
                work.append(action)
        if work:
            self._queue.put_nowait(work)

    def _schedule(self, at: float) -> None:
        if at < self._next_tick:
            self._next_tick = at
            self._tick_changed.set()

    # -- tasks ---------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        protocol = self.protocol
        while True:
            try:
                received = await self._transport.receive()
            except TransportClosed:
                return
            if received.type not in _CONSENSUS_TYPES:
                log.debug("node.ignored type=%s sender=%s", received.type, received.sender)
                continue
            if received.type is MessageType.OBSERVATION and received.to == self.node_id:
                self._keep_for_audit(received)
            self._call("receive", functools.partial(protocol.receive, received))

    async def _link_loop(self) -> None:
        """Resync the core when the transport comes back after a break: what it carried
        meanwhile may be lost, and waiting for ΔResend would cost a round or more."""
        transport = self._transport
        up = ever_up = transport.connected
        while True:
            await asyncio.sleep(LINK_CHECK_INTERVAL)
            was_up, up = up, transport.connected
            if up and not was_up and not ever_up:
                ever_up = True  # the first connection: start() already announced all
            elif up and not was_up:
                log.info("node.resync reason=reconnected node=%s", self.node_id)
                self.metrics.resyncs.inc()
                self._call("resync", self.protocol.resync)

    async def _timer_loop(self) -> None:
        protocol = self.protocol
        while True:
            now = self._clock()
            due = min(self._next_tick, now + MAX_TICK_INTERVAL)
            if due > now:
                self._tick_changed.clear()
                try:
                    async with asyncio.timeout(due - now):
                        await self._tick_changed.wait()
                    continue  # an earlier tick was scheduled meanwhile
                except TimeoutError:
                    pass
            self._next_tick = float("inf")
            self._call("tick", protocol.tick)
            # Never spin: even a core that keeps asking for "now" lets the loop breathe.
            await asyncio.sleep(0)

    async def _observe_loop(self) -> None:
        while True:
            self._refresh_now.clear()
            await self._refresh()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh_s):
                    await self._refresh_now.wait()

    async def _refresh(self) -> None:
        try:
            async with asyncio.timeout(self._observe_timeout):
                result = await self._source.observe()
        except TimeoutError:
            self._observation_failed("timeout", f"no result within {self._observe_timeout} s")
            return
        except XonError as exc:  # FeedError, or a source's own error from its edge
            self._observation_failed("error", str(exc))
            return
        for source in result.failed_sources:
            self.metrics.source_failures.labels(provider=source).inc()
        feeds = self.config.feeds_by_name
        values = {name: v for name, v in result.values.items() if name in feeds}
        if len(values) != len(result.values):
            log.debug("node.unconfigured_feeds feeds=%s", sorted(set(result.values) - set(feeds)))
        if not values:
            self._observation_failed("no_values", f"missing {list(result.missing_feeds)[:5]}")
            return
        timestamp = int(self._clock())
        try:
            self.protocol.set_observation(values, timestamp, result.snapshot_hashes)
        except (ValueError, EncodingError) as exc:  # a value beyond int256, too many hashes
            self._observation_failed("invalid", str(exc))
            return
        self._observation = ObservationStatus(
            timestamp, dict(values), result.missing_feeds, dict(result.failed_sources)
        )
        log.debug("node.observed feeds=%d missing=%d", len(values), len(result.missing_feeds))

    def _observation_failed(self, reason: str, detail: str) -> None:
        self.metrics.observation_failures.labels(reason=reason).inc()
        log.warning(
            "node.observation_failed reason=%s detail=%s keeping=%s",
            reason,
            detail[:200],
            "previous" if self._observation is not None else "none",
        )

    async def _execute_loop(self) -> None:
        while True:
            actions = await self._queue.get()
            await self._execute(actions)

    async def _audit_loop(self) -> None:
        store = self._require_store()
        while True:
            envelope = await self._audit.get()
            try:
                observation = Observation.from_payload(envelope.payload)
            except EncodingError:
                continue  # the core flags it as MALFORMED; nothing to keep
            values_json = _json({name: str(value) for name, value in observation.values})
            try:
                await store.record_observation(
                    _PRICES,
                    observation.epoch,
                    observation.round,
                    sender=envelope.sender,
                    payload=envelope.body,
                    values_json=values_json,
                    snapshot_hashes=observation.snapshot_hashes,
                    signature=envelope.signature,
                )
            except ConflictingRecord as conflict:
                existing = conflict.existing
                if (
                    isinstance(existing, ObservationRecord)
                    and existing.values_json == values_json
                    and existing.snapshot_hashes == tuple(observation.snapshot_hashes)
                ):
                    # The same observation in a new envelope: the answer to a re-sent
                    # OBSERVE. The first signed copy is the one kept.
                    continue
                # The core reports the equivocation itself (CONFLICTING_OBSERVATION).
                log.info(
                    "node.audit_conflict sender=%s epoch=%d round=%d",
                    envelope.sender,
                    observation.epoch,
                    observation.round,
                )
            except StoreError:
                log.exception("node.audit_failed sender=%s", envelope.sender)
                self.metrics.node_errors.labels(where="audit").inc()

    def _keep_for_audit(self, envelope: SignedEnvelope) -> None:
        try:
            self._audit.put_nowait(envelope)
        except asyncio.QueueFull:
            # Audit is best effort: never let it hold up consensus or grow without bound.
            self.metrics.node_errors.labels(where="audit_overflow").inc()

    # -- actions -------------------------------------------------------------------------
    def _require_store(self) -> AsyncNodeStore:
        if self._store is None:
            raise RuntimeError("the node is not running")
        return self._store

    async def _execute(self, actions: list[Action]) -> None:
        for index, action in enumerate(actions):
            if isinstance(action, RecordSigning):
                if not await self._record_signing(action):
                    log.warning(
                        "node.actions_dropped count=%d after=sign_refused epoch=%d round=%d",
                        len(actions) - index - 1,
                        action.epoch,
                        action.round,
                    )
                    return
            elif isinstance(action, PublishCommitments):
                await self._publish_commitments(action)
            elif isinstance(action, Broadcast):
                if action.type is MessageType.OBSERVE:
                    self._round_started(action)
                await self._publish(Channel.CONSENSUS, action.type, action.payload)
            elif isinstance(action, SendTo):
                await self._publish(Channel.INBOX, action.type, action.payload, to=action.to)
            elif isinstance(action, Loopback):
                self._loopback(action)
            elif isinstance(action, ReportFinalized):
                await self._finalized(action)
            elif isinstance(action, Misbehaviour):
                self._misbehaved(action)
            elif isinstance(action, EpochChanged):
                self.metrics.epoch_changes.inc()
                log.info("node.epoch_changed epoch=%d leader=%s", action.epoch, action.leader)
            # ScheduleTick was taken when the list was queued (see _submit).

    async def _record_signing(self, action: RecordSigning) -> bool:
        store = self._require_store()
        try:
            await store.record_signing(
                action.kind,
                action.epoch,
                action.round,
                action.digest,
                commitment_id=action.commitment_id,
            )
        except DoubleSignRefused:
            reason = "double_sign"
        except CommitmentUnavailable:
            reason = "commitment_unavailable"
        except StoreError:
            log.exception("node.store_error op=record_signing")
            reason = "store_error"
        else:
            return True
        self.metrics.sign_refusals.labels(reason=reason).inc()
        log.warning(
            "node.sign_refused reason=%s epoch=%d round=%d commitment=%s",
            reason,
            action.epoch,
            action.round,
            "-" if action.commitment_id is None else action.commitment_id.hex(),
        )
        return False

    async def _publish_commitments(self, action: PublishCommitments) -> None:
        try:
            await self._require_store().record_commitments(action.batch, action.commitment_ids)
        except StoreError:
            # Unrecorded ids could never be consumed (RecordSigning would be refused), so
            # announcing them would only cost leaders a session timeout.
            log.exception("node.store_error op=record_commitments batch=%s", action.batch)
            self.metrics.node_errors.labels(where="record_commitments").inc()
            return
        await self._publish(Channel.CONSENSUS, MessageType.COMMITMENTS, action.payload)

    async def _publish(
        self,
        channel: Channel,
        type_: MessageType,
        payload: Mapping[str, JsonValue],
        *,
        to: NodeId | None = None,
        report_kind: str | None = None,
    ) -> None:
        try:
            await self._transport.publish(
                channel,
                type_,
                payload,
                to=to,
                report_kind=report_kind,
            )
        except TransportClosed:
            raise  # we are stopping; nothing more can leave
        except XonError:  # FrameTooLarge: our bug or a pathological configuration
            log.exception("node.publish_failed type=%s channel=%s", type_, channel)
            self.metrics.node_errors.labels(where="publish").inc()

    def _loopback(self, action: Loopback) -> None:
        envelope = seal(
            Envelope(
                net=self.config.network,
                type=action.type,
                sender=self.node_id,
                seq=self._seq.next(),
                payload=action.payload,
                to=self.node_id,
            ),
            self._keys.identity,
        )
        if envelope.type is MessageType.OBSERVATION:
            self._keep_for_audit(envelope)
        protocol = self.protocol
        self._call("loopback", functools.partial(protocol.receive, envelope))

    def _round_started(self, action: Broadcast) -> None:
        try:
            observe_message = Observe.from_payload(action.payload)
        except EncodingError:
            return
        key = (observe_message.epoch, observe_message.round)
        if key not in self._started_rounds:  # an OBSERVE may be re-broadcast once
            self._started_rounds = {k for k in self._started_rounds if k[0] >= key[0]}
            self._started_rounds.add(key)
            if len(self._started_rounds) > 64:
                self._started_rounds.remove(min(self._started_rounds))
            self.metrics.rounds_started.inc()

    async def _finalized(self, action: ReportFinalized) -> None:
        kind = ReportKind(action.report.kind).name.lower()
        self._last_reports[kind] = ReportStatus(
            kind=kind,
            epoch=action.epoch,
            round=action.round,
            digest=action.digest,
            observations_timestamp=action.report.observations_timestamp,
            values=report_values(action.report),
            report=action.report_bytes,
            signature=action.signature,
            leader=action.leader,
            finalized_at=action.finalized_at,
            latency=action.latency,
        )
        self.metrics.rounds_finalized.inc()
        if action.latency is not None:
            self.metrics.round_latency.observe(action.latency)
        for member, score in self.protocol.credibility().items():
            self.metrics.member_deviation.labels(member=member).set(score.deviation)
        log.info(
            "node.finalized epoch=%d round=%d feeds=%d leader=%s latency=%s",
            action.epoch,
            action.round,
            len(self._last_reports[kind].values),
            action.leader,
            "-" if action.latency is None else f"{action.latency:.3f}",
        )
        try:
            await self._require_store().save_report(
                int(action.report.kind),
                action.epoch,
                action.round,
                report=action.report_bytes,
                signature=action.signature,
                digest=action.digest,
            )
        except ConflictingRecord as exc:
            # Two different valid reports for one round: the committee's signing threshold
            # should make this impossible; keep the first and shout.
            log.error(
                "node.conflicting_report epoch=%d round=%d: %s", action.epoch, action.round, exc
            )
            self.metrics.node_errors.labels(where="conflicting_report").inc()
        except StoreError:
            log.exception("node.store_error op=save_report")
            self.metrics.node_errors.labels(where="save_report").inc()
        if action.is_leader:
            final = FinalReport(action.epoch, action.round, action.report_bytes, action.signature)
            await self._publish(
                Channel.REPORTS, MessageType.FINAL, final.to_payload(), report_kind=kind
            )
        if self._on_finalized is not None:
            self._on_finalized(action)

    def _misbehaved(self, action: Misbehaviour) -> None:
        # The core has logged it (protocol.misbehaviour); here it is counted.
        self._misbehaviour[(action.culprit, action.kind.value)] += 1
        self.metrics.misbehaviour.labels(member=action.culprit, kind=action.kind.value).inc()
        if action.kind is MisbehaviourKind.INVALID_SHARE:
            self.metrics.shares_rejected.labels(member=action.culprit).inc()

    # -- status --------------------------------------------------------------------------
    def status(self) -> NodeStatus:
        protocol = self._protocol
        scores = protocol.credibility() if protocol is not None else {}
        members = tuple(
            MemberStatus(
                node_id=m.node_id,
                frost_id=m.frost_id,
                credibility=scores.get(m.node_id, _NO_SCORE),
                misbehaviour={
                    kind: count
                    for (culprit, kind), count in self._misbehaviour.items()
                    if culprit == m.node_id
                },
            )
            for m in self.config.members
        )
        return NodeStatus(
            node_id=self.node_id,
            network=self.config.network,
            running=self.running,
            connected=self.running and self._transport.connected,
            epoch=protocol.epoch if protocol is not None else None,
            leader=protocol.leader if protocol is not None else None,
            is_leader=protocol.is_leader if protocol is not None else False,
            n=self.config.n,
            f=self.config.f,
            t=self.config.t,
            members=members,
            last_reports=dict(self._last_reports),
            observation=self._observation,
            unused_commitments=protocol.unused_commitments if protocol is not None else 0,
            rounds_finalized=int(self.metrics.sample("xon_rounds_finalized_total")),
        )


_NO_SCORE: Final = CredibilityScore(deviation=0.0, outlier_rate=0.0, rounds=0, outliers=0)


def _json(values: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(values.items())), separators=(",", ":"))


# -- assembly from settings --------------------------------------------------------------
@dataclass(frozen=True)
class NodeSetup:
    """Everything loaded from disk for one node (keystores decrypted, files checked)."""

    settings: NodeSettings
    keys: NodeKeys
    committee: Committee
    feeds: FeedsConfig
    config: ProtocolConfig
    mqtt: MqttSettings


@dataclass(frozen=True)
class _ChainParams:
    chain_id: int
    verifying_contract: bytes
    config_digest: bytes


def _chain_params(settings: NodeSettings) -> _ChainParams:
    chain = settings.chain
    if chain.deployment is not None:
        from contracts.deploy import Deployment
        from contracts.errors import DeployError

        try:
            deployment = Deployment.from_json(chain.deployment.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read {chain.deployment}: {exc.strerror}") from None
        except (DeployError, ValueError) as exc:
            raise SettingsError(f"{chain.deployment}: {exc}") from None
        try:
            return _ChainParams(
                deployment.chain_id,
                _hex(deployment.price_feed_store, 20, "price_feed_store"),
                _hex(deployment.config_digest, 32, "config_digest"),
            )
        except ValueError as exc:
            raise SettingsError(f"{chain.deployment}: {exc}") from None
    assert chain.chain_id is not None
    assert chain.verifying_contract is not None and chain.config_digest is not None
    return _ChainParams(
        chain.chain_id,
        _hex(chain.verifying_contract, 20, "verifying_contract"),
        _hex(chain.config_digest, 32, "config_digest"),
    )


def _hex(text: str, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ValueError(f"{what} is not hex") from None
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes")
    return raw


def build_protocol_config(
    settings: NodeSettings, committee: Committee, feeds: FeedsConfig
) -> ProtocolConfig:
    """The committee's agreed configuration from the node settings and its files."""
    if committee.network != settings.network:
        raise SettingsError(
            f"committee file is for network {committee.network!r}, settings say "
            f"{settings.network!r}"
        )
    chain = _chain_params(settings)
    overrides = settings.feeds
    specs = tuple(
        FeedSpec(
            name=feed.id,
            decimals=feed.decimals,
            deviation_bps=overrides.deviation_bps or feed.deviation_bps,
            heartbeat_s=overrides.heartbeat_s or feed.heartbeat_s,
        )
        for feed in feeds.feeds
    )
    timing: Timing = settings.timing.to_timing()
    try:
        return ProtocolConfig(
            network=settings.network,
            chain_id=chain.chain_id,
            verifying_contract=chain.verifying_contract,
            config_digest=chain.config_digest,
            members=tuple(
                Member(m.node_id, m.identifier, m.identity_public_key) for m in committee.members
            ),
            f=committee.params.f,
            t=committee.params.t,
            feeds=specs,
            timing=timing,
            commitment_batch=settings.protocol.commitment_batch,
            commitment_low_water=settings.protocol.commitment_low_water,
        )
    except ValueError as exc:
        raise SettingsError(f"inconsistent committee configuration: {exc}") from None


def _passphrase(settings: NodeSettings, environ: Mapping[str, str]) -> Passphrase:
    keys = settings.keys
    if keys.passphrase_env is not None:
        return Passphrase.from_env(keys.passphrase_env, environ)
    assert keys.passphrase_file is not None
    return Passphrase.from_file(keys.passphrase_file)


def mqtt_settings(settings: NodeSettings, environ: Mapping[str, str]) -> MqttSettings:
    broker = settings.broker
    password = None
    if broker.password_env is not None:
        password = environ.get(broker.password_env)
        if not password:
            raise SettingsError(
                f"broker.password_env: environment variable {broker.password_env} is unset"
            )
    tls_context = None
    if broker.tls:
        try:
            tls_context = ssl.create_default_context(
                cafile=str(broker.ca_file) if broker.ca_file is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"broker.ca_file: {exc}") from None
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        username=broker.username,
        password=password,
        tls_context=tls_context,
        keepalive=broker.keepalive,
    )


def load_setup(settings: NodeSettings, environ: Mapping[str, str] | None = None) -> NodeSetup:
    """Read and check every file the settings name (blocking: scrypt, file reads — call it
    with :func:`asyncio.to_thread` from async code). Raises SettingsError / KeystoreError /
    FeedError with what is wrong."""
    from oracle.keystore import read_committee, read_frost_share, read_identity_keystore

    env = os.environ if environ is None else environ
    committee = read_committee(settings.keys.committee)
    feeds = (
        load_default_config()
        if settings.feeds.config is None
        else load_config(settings.feeds.config)
    )
    if settings.feeds.replay_dir is not None and not settings.feeds.replay_dir.is_dir():
        raise SettingsError(f"feeds.replay_dir: {settings.feeds.replay_dir} is not a directory")
    config = build_protocol_config(settings, committee, feeds)
    passphrase = _passphrase(settings, env)
    identity = read_identity_keystore(settings.keys.identity, passphrase)
    share: FrostKeyShare = read_frost_share(settings.keys.frost_share, passphrase)
    member = config.by_node.get(identity.node_id)
    if member is None:
        raise KeystoreError(f"identity {identity.node_id} is not a member of the committee")
    if share.metadata.identifier != member.frost_id or share.metadata.node_id != identity.node_id:
        raise KeystoreError("the FROST share belongs to another member than the identity key")
    if share.public.group_key != committee.group_key:
        raise KeystoreError("the FROST share is for another group key than committee.json")
    if share.metadata.network != settings.network:
        raise KeystoreError(f"the FROST share is for network {share.metadata.network!r}")
    try:
        settings.store.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"store.path: cannot create its directory: {exc.strerror}") from None
    keys = NodeKeys(identity, share.key_package, committee.public_key_package)
    return NodeSetup(settings, keys, committee, feeds, config, mqtt_settings(settings, env))


def node_from_setup(
    setup: NodeSetup,
    source: ObservationSource,
    *,
    metrics: NodeMetrics | None = None,
    on_finalized: Callable[[ReportFinalized], None] | None = None,
) -> OracleNode:
    """An :class:`OracleNode` with an MQTT transport, as ``xon node run`` builds it."""
    metrics = metrics if metrics is not None else NodeMetrics()
    transport = MqttTransport(
        setup.mqtt,
        network=setup.config.network,
        roster=setup.config.roster,
        identity=setup.keys.identity,
        metrics=metrics,
    )
    return OracleNode(
        setup.config,
        setup.keys,
        transport,
        setup.settings.store.path,
        source,
        metrics=metrics,
        refresh_s=setup.settings.observation_refresh_s,
        on_finalized=on_finalized,
    )


def feeds_source(
    setup: NodeSetup,
    environ: Mapping[str, str] | None = None,
    *,
    metrics_registry: CollectorRegistry | None = None,
) -> FeedsSource:
    feeds = setup.settings.feeds
    return FeedsSource(
        setup.feeds,
        replay_dir=feeds.replay_dir,
        replay_now=feeds.replay_now,
        environ=environ,
        metrics_registry=metrics_registry,
    )
