"""``xon devnet``: the whole network on one machine, in one process (plus two children).

::

    result = await run_devnet(DevnetOptions(nodes=7, byzantine=2, rounds=5))
    result.summary        # the JSON document of docs/devnet.md
    result.ok             # every attempted round finalized, every finalized report posted

What it starts, in order, each step announced on stderr (``progress``):

1. ``anvil`` from the project's npm install on a free port (child process);
2. a broker: ``mosquitto`` on a free port if the binary is installed (child process),
   else the in-process :class:`~oracle.transport.MemoryBus` — the progress line says which;
3. the contract suite (``contracts.deploy.deploy_all``) with a dealer-keyed committee
   (``oracle.keystore.deal_committee``: n members, f = ⌊(n−1)/3⌋, t = 2f+1);
4. n :class:`~oracle.node.OracleNode` s, each with its own transport, store (temporary
   directory), a :class:`~oracle.chain.transmitter.Transmitter` with its own funded anvil
   account (staged: the leader sends, the others find it on-chain), and its observations
   from the recorded provider responses (default) or the live providers (``live``);
   ``byzantine`` members wrap their core in a fault of :mod:`oracle.protocol.byzantine`.

Then it runs until ``rounds`` PRICES reports are finalized *and* posted, or ``duration``
seconds passed, or it is cancelled (Ctrl-C / SIGTERM in the CLI); stops the nodes, waits
(bounded) for reports finalized before the stop to be posted, reads every feed back through
its ``FeedProxy.latestRoundData`` and returns the summary. Child processes run in their own
session with output captured to files in the devnet's temporary directory, and are
terminated on every way out (async context managers), errors and cancellation included.

**Replay and "now".** A recording is observed once (``FeedsSource``) and the node stamps
every refresh with the current time, so reports pass the contracts' maximum report age.
Every honest node adds a fixed per-node offset of at most ±20 bps to the recorded values, so
the committee's median is a real median of different views; and the devnet's feeds use a
1-second heartbeat in the committee configuration, so every round is due although a
recording never moves.

**Watched and Byzantine cores**: each node's core is wrapped through OracleNode's
``wrap_core`` hook (see :func:`_wrap_core`) before it first runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

import feeds as feeds_package
from aggregation.errors import EncodingError, XonError
from aggregation.report import ReportKind
from feeds.config import FeedsConfig, load_default_config
from oracle.chain import FeePolicy, TransmitRequest, Transmitter, TransmitTiming, gwei
from oracle.chain.client import Web3ChainClient
from oracle.chain.transmitter import Outcome, TransmitResult
from oracle.identity import NodeId
from oracle.keystore import DealtCommittee, committee_params, deal_committee
from oracle.metrics import NodeMetrics
from oracle.node import FeedsSource, NodeKeys, NodeObservation, ObservationSource, OracleNode
from oracle.protocol.actions import Action, Broadcast, ReportFinalized
from oracle.protocol.byzantine import (
    EquivocatingLeader,
    ExtremeObserver,
    Faulty,
    InvalidSharer,
    Replayer,
    ShareWithholder,
    Silent,
)
from oracle.protocol.config import FeedSpec, Member, ProtocolConfig, Timing
from oracle.protocol.core import OracleProtocol
from oracle.protocol.messages import Observe, Propose
from oracle.protocol.rules import report_values
from oracle.transport import Backoff, MemoryBus, MessageType, MqttSettings, MqttTransport
from oracle.transport.base import Transport

__all__ = [
    "BYZANTINE_KINDS",
    "DevnetError",
    "DevnetOptions",
    "DevnetResult",
    "run_devnet",
]

log = logging.getLogger("xon.devnet")

ROOT: Final = Path(__file__).resolve().parent.parent
ANVIL_BIN: Final = ROOT / "node_modules" / ".bin" / "anvil"
DEFAULT_REPLAY: Final = Path(feeds_package.__file__).resolve().parent / "replay" / "default"
NETWORK: Final = "devnet"
CHAIN_ID: Final = 31337
# anvil's first development account (its well-known public mnemonic); never a real key.
_DEV_OWNER_KEY: Final = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
_FUND_WEI: Final = 10**21
_POST_WAIT_S: Final = 15.0  # after the nodes stop: how long finalized reports may take to land
_CHILD_STOP_S: Final = 5.0
_HONEST_SPREAD_BPS: Final = (-20, -10, 0, 10, 20)
#: The nodes' clocks run this far behind: a report stamped "now" would be in the future of
#: anvil's latest block (up to a block interval old) and fail simulation with FutureReport.
CLOCK_LAG_S: Final = 2.0

#: Faults given to Byzantine members, in this order (``--byzantine 2`` → the first two).
BYZANTINE_KINDS: Final[tuple[str, ...]] = (
    "extreme_observer",
    "invalid_sharer",
    "equivocating_leader",
    "share_withholder",
    "silent",
    "replayer",
)


class DevnetError(XonError):
    """The devnet could not start (a missing binary, a child that died, a bad option)."""


# -- options and result ------------------------------------------------------------------
@dataclass(frozen=True)
class DevnetOptions:
    nodes: int = 7
    byzantine: int = 0
    rounds: int | None = None  # stop after this many finalized-and-posted PRICES reports
    duration: float | None = None  # ... or after this many seconds (both None: until cancelled)
    live: bool = False
    replay_dir: Path | None = None  # default: feeds/replay/default
    round_interval: float = 1.0  # ΔRound
    broker: str = "auto"  # "auto": mosquitto if installed, else in-process; or "memory"
    seed: int | None = None  # which members are Byzantine (None: random)

    def __post_init__(self) -> None:
        if self.nodes < 4:
            raise DevnetError("a devnet needs at least 4 nodes (n >= 3f + 1 with f >= 1)")
        f = (self.nodes - 1) // 3
        if not 0 <= self.byzantine <= f:
            raise DevnetError(f"--byzantine must be in [0, f] = [0, {f}] for {self.nodes} nodes")
        if self.rounds is not None and self.rounds < 1:
            raise DevnetError("--rounds must be at least 1")
        if self.duration is not None and self.duration <= 0:
            raise DevnetError("--duration must be positive")
        if self.round_interval < 0.3:
            raise DevnetError("--round-interval must be at least 0.3 s")
        if self.broker not in ("auto", "memory"):
            raise DevnetError("broker must be 'auto' or 'memory'")

    def timing(self) -> Timing:
        delta = self.round_interval
        signing = max(1.0, delta)
        return Timing(
            delta_round=delta,
            delta_grace=min(0.1, delta / 4),
            delta_progress=max(5.0, 2 * (delta + signing) + 1.0),
            delta_resend=2.0,
            delta_stage=2.0,
            signing_timeout=signing,
            commitment_ttl=300.0,
            max_observation_age=max(30.0, 10 * delta),
            max_clock_skew=5.0,
        )


@dataclass(frozen=True)
class DevnetResult:
    summary: Mapping[str, Any]
    interrupted: bool
    ok: bool
    problems: tuple[str, ...]
    child_pids: tuple[int, ...]  # anvil's and mosquitto's, all stopped by now


Progress = Callable[[str], None]


def _log_progress(message: str) -> None:
    log.info("devnet.step %s", message)


# -- child processes ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the devnet process dies, even
    by SIGKILL, which no ``finally`` can see. A single libc call (safe after fork)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class ChildProcess:
    """A child process that listens on ``port``; terminated (then killed) on exit."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, port: int) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> Self:
        self._log = await asyncio.to_thread(self.log_path.open, "wb")
        try:
            # Own session: a Ctrl-C in the terminal reaches us, not the children; we stop
            # them in order (nodes first, then the broker and the chain).
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=self._log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            await self._wait_listening(20.0)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _wait_listening(self, within: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise DevnetError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise DevnetError(f"{self.name} does not listen on port {self.port} after {within} s")

    async def stop(self) -> None:
        process = self.process
        try:
            if process is not None and process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), _CHILD_STOP_S)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        except BaseException:
            # Cancelled (a second Ctrl-C) while waiting: never leave it running.
            if process is not None and process.returncode is None:
                process.kill()
            raise
        finally:
            logfile, self._log = self._log, None
            if logfile is not None:
                logfile.close()


def _anvil(log_dir: Path) -> ChildProcess:
    if not ANVIL_BIN.exists():
        raise DevnetError(f"anvil not found at {ANVIL_BIN}: run scripts/setup")
    port = free_port()
    argv = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port)]
    # Mixed mining: transactions are mined at once, and an empty block every second keeps
    # the latest block's timestamp (what eth_call simulates against) close to now.
    argv += ["--chain-id", str(CHAIN_ID), "--silent", "--block-time", "1", "--mixed-mining"]
    return ChildProcess("anvil", argv, log_dir, port)


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
        found = "/usr/sbin/mosquitto"
    return found


def _mosquitto(binary: str, log_dir: Path) -> ChildProcess:
    port = free_port()
    config = log_dir / "mosquitto.conf"
    text = (
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 100000\n"
    )
    if os.geteuid() == 0:
        # Started as root, mosquitto switches to its own user, and a change of user clears
        # the parent-death signal (_die_with_parent): stay the user we already are.
        text += "user root\n"
    config.write_text(text, encoding="utf-8")
    return ChildProcess("mosquitto", [binary, "-c", str(config)], log_dir, port)


# -- observations ------------------------------------------------------------------------
class _SharedSource:
    """One fetch serves every node for ``ttl`` seconds (live providers are not hammered n
    times per refresh); replay is observed once by ``FeedsSource`` itself."""

    def __init__(self, inner: FeedsSource, ttl: float) -> None:
        self._inner = inner
        self._ttl = ttl
        self._cached: tuple[float, NodeObservation] | None = None
        self._lock = asyncio.Lock()

    async def observe(self) -> NodeObservation:
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._ttl:
                self._cached = (now, await self._inner.observe())
            return self._cached[1]


class _OffsetSource:
    """A member's own view: the shared observation moved by a fixed ``offset_bps``."""

    def __init__(self, inner: ObservationSource, offset_bps: int) -> None:
        self._inner = inner
        self._offset_bps = offset_bps

    async def observe(self) -> NodeObservation:
        base = await self._inner.observe()
        values = {k: v + v * self._offset_bps // 10_000 for k, v in base.values.items()}
        return NodeObservation(
            values, base.snapshot_hashes, base.failed_sources, base.missing_feeds
        )


# -- tracking rounds and reports ---------------------------------------------------------
@dataclass
class _Round:
    epoch: int
    round: int
    leader: NodeId
    honest_leader: bool
    started_at: float
    empty: bool = False  # the leader found no feed due and proposed no report
    finalized: ReportFinalized | None = None
    posted: TransmitResult | None = None
    posted_at: float | None = None


@dataclass
class _Tracker:
    """What happened, as seen from every node's callbacks (one event loop: no locks)."""

    honest: frozenset[NodeId]
    clock: Callable[[], float] = time.time
    rounds: dict[tuple[int, int], _Round] = field(default_factory=dict)
    outcomes: dict[tuple[int, int], set[Outcome]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    on_posted: Callable[[_Round], None] | None = None

    def started(self, epoch: int, round_: int, leader: NodeId) -> None:
        key = (epoch, round_)
        if key not in self.rounds:
            self.rounds[key] = _Round(epoch, round_, leader, leader in self.honest, self.clock())

    def empty(self, epoch: int, round_: int) -> None:
        record = self.rounds.get((epoch, round_))
        if record is not None:
            record.empty = True
            self.changed.set()

    def finalized(self, action: ReportFinalized) -> None:
        if action.report.kind is not ReportKind.PRICES:
            return
        key = (action.epoch, action.round)
        record = self.rounds.get(key)
        if record is None:  # the leader's OBSERVE was never seen (should not happen)
            started = action.finalized_at - (action.latency or 0.0)
            record = _Round(
                action.epoch, action.round, action.leader, action.leader in self.honest, started
            )
            self.rounds[key] = record
        if record.finalized is None or action.is_leader:
            record.finalized = action
        self.changed.set()

    def transmitted(self, result: TransmitResult) -> None:
        if result.key.kind != int(ReportKind.PRICES):
            return
        key = (result.key.epoch, result.key.round)
        self.outcomes.setdefault(key, set()).add(result.outcome)
        record = self.rounds.get(key)
        if result.outcome is Outcome.SENT and record is not None and record.posted is None:
            record.posted = result
            record.posted_at = self.clock()
            if self.on_posted is not None:
                self.on_posted(record)
        self.changed.set()

    def posted(self) -> list[_Round]:
        return sorted(
            (r for r in self.rounds.values() if r.posted is not None),
            key=lambda r: (r.epoch, r.round),
        )

    def finalized_rounds(self) -> list[_Round]:
        return sorted(
            (r for r in self.rounds.values() if r.finalized is not None),
            key=lambda r: (r.epoch, r.round),
        )


# -- cores: watched and faulty -----------------------------------------------------------
class _Watch(Faulty):
    """Outermost wrapper of every devnet core: reports round starts (the OBSERVEs this
    member broadcasts as leader) and delegates everything else to the honest core."""

    def __init__(self, inner: OracleProtocol | Faulty, tracker: _Tracker, node: NodeId) -> None:
        super().__init__(cast(OracleProtocol, inner))
        self._tracker = tracker
        self._node = node
        core: Any = inner
        while isinstance(core, Faulty):
            core = core.inner
        self._core: OracleProtocol = core

    def __getattr__(self, name: str) -> Any:
        # status(), credibility(), epoch, leader, ...: the honest core's answers.
        return getattr(self._core, name)

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        for action in actions:
            if isinstance(action, Broadcast) and action.type is MessageType.OBSERVE:
                try:
                    observe = Observe.from_payload(action.payload)
                except EncodingError:
                    continue
                self._tracker.started(observe.epoch, observe.round, self._node)
            elif isinstance(action, Broadcast) and action.type is MessageType.PROPOSE:
                try:
                    propose = Propose.from_payload(action.payload)
                except EncodingError:
                    continue
                if propose.report is None:  # nothing was due: no report to make
                    self._tracker.empty(propose.epoch, propose.round)
        return actions


def _fault(kind: str, core: OracleProtocol, seed: int) -> Faulty:
    if kind == "extreme_observer":
        return ExtremeObserver(core, mode="high", seed=seed)
    if kind == "invalid_sharer":
        return InvalidSharer(core, seed=seed)
    if kind == "equivocating_leader":
        return EquivocatingLeader(core)
    if kind == "share_withholder":
        return ShareWithholder(core)
    if kind == "silent":
        return Silent(core)
    if kind == "replayer":
        return Replayer(core, seed=seed)
    raise DevnetError(f"unknown Byzantine kind {kind!r}")


# -- the devnet --------------------------------------------------------------------------
@dataclass
class _Member:
    index: int
    node_id: NodeId
    kind: str | None  # None: honest
    node: OracleNode
    transmitter: Transmitter
    account: LocalAccount


def _lagging_clock() -> float:
    return time.time() - CLOCK_LAG_S


def _decimal(value: int, decimals: int) -> str:
    return f"{Decimal(value).scaleb(-decimals):f}"


def _percentile(values: Sequence[int], p: float) -> int | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _protocol_config(
    dealt: DealtCommittee, deployment: Any, feeds: FeedsConfig, timing: Timing
) -> ProtocolConfig:
    committee = dealt.committee
    return ProtocolConfig(
        network=NETWORK,
        chain_id=deployment.chain_id,
        verifying_contract=bytes.fromhex(deployment.price_feed_store.removeprefix("0x")),
        config_digest=bytes.fromhex(deployment.config_digest.removeprefix("0x")),
        members=tuple(
            Member(m.node_id, m.identifier, m.identity_public_key) for m in committee.members
        ),
        f=committee.params.f,
        t=committee.params.t,
        # Heartbeat 1 s: every round is due, so a replayed (constant) market still posts.
        feeds=tuple(
            FeedSpec(name=f.id, decimals=f.decimals, deviation_bps=f.deviation_bps, heartbeat_s=1)
            for f in feeds.feeds
        ),
        timing=timing,
    )


def _fund(w3: Web3, accounts: Sequence[LocalAccount]) -> None:
    for account in accounts:
        w3.provider.make_request(
            "anvil_setBalance",  # type: ignore[arg-type]
            [account.address, hex(_FUND_WEI)],
        )


def _read_feeds(w3: Web3, proxies: Mapping[str, str]) -> dict[str, tuple[int, int, int, int]]:
    """Feed → (roundId, answer, startedAt, updatedAt) from FeedProxy.latestRoundData."""
    from web3.exceptions import ContractLogicError

    from contracts.deploy import contract_at

    out: dict[str, tuple[int, int, int, int]] = {}
    for name, proxy in proxies.items():
        try:
            data = contract_at(w3, "FeedProxy", proxy).functions.latestRoundData().call()
        except ContractLogicError:
            continue  # never written: the proxy reverts (NoData)
        out[name] = (int(data[0]), int(data[1]), int(data[2]), int(data[3]))
    return out


def _blocks(w3: Web3, tx_hashes: Sequence[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for tx in tx_hashes:
        receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
        block = w3.eth.get_block(receipt["blockNumber"])
        out[tx] = (int(receipt["blockNumber"]), int(block["timestamp"]))
    return out


def _hex(value: bytes | str) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value if value.startswith("0x") else "0x" + value


class Devnet:
    """The running devnet; built and torn down by :func:`run_devnet`."""

    def __init__(self, options: DevnetOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.feeds_config = load_default_config()
        self.decimals = {f.id: f.decimals for f in self.feeds_config.feeds}
        self.children: list[ChildProcess] = []
        self.members: list[_Member] = []
        self.tracker: _Tracker | None = None
        self.w3: Web3 | None = None
        self.deployment: Any = None
        self.broker_kind = ""
        self.onchain: dict[str, int] = {}
        self.honest_obs: dict[NodeId, Mapping[str, int]] = {}
        self.stopped_at: float | None = None
        self.decided_at: float | None = None
        self.stop_requested = asyncio.Event()  # Ctrl-C / SIGTERM: stop as if the target was met
        self.interrupted = False
        self.line_sink: Callable[[str], None] | None = None
        self.started_at = time.time()
        self.settle_s = options.timing().delta_progress

    # -- startup -------------------------------------------------------------------------
    async def start(self, stack: contextlib.AsyncExitStack, workdir: Path) -> None:
        options = self.options
        say = self.progress
        say("starting anvil")
        anvil = await stack.enter_async_context(_anvil(workdir))
        self.children.append(anvil)
        url = f"http://127.0.0.1:{anvil.port}"
        say(f"anvil ready: {url} (pid {anvil.pid})")

        binary = mosquitto_binary() if options.broker == "auto" else None
        bus: MemoryBus | None = None
        mqtt: MqttSettings | None = None
        if binary is not None:
            broker = await stack.enter_async_context(_mosquitto(binary, workdir))
            self.children.append(broker)
            mqtt = MqttSettings(
                host="127.0.0.1",
                port=broker.port,
                keepalive=5,
                timeout=2.0,
                backoff=Backoff(initial=0.05, maximum=0.5),
                close_flush_timeout=0.5,
            )
            self.broker_kind = f"mosquitto 127.0.0.1:{broker.port}"
            say(f"broker: mosquitto on 127.0.0.1:{broker.port} (pid {broker.pid})")
        else:
            bus = MemoryBus(seed=0)
            self.broker_kind = "in-process"
            why = "forced" if options.broker == "memory" else "mosquitto not on PATH"
            say(f"broker: in-process transport ({why})")

        n = options.nodes
        params = committee_params(n)
        dealt = await asyncio.to_thread(deal_committee, params, network=NETWORK)
        say(f"committee dealt: n={n} f={params.f} t={params.t}")
        self.w3 = w3 = Web3(Web3.HTTPProvider(url))
        deployment = await asyncio.to_thread(self._deploy, w3, dealt)
        self.deployment = deployment
        say(
            f"contracts deployed: PriceFeedStore {deployment.price_feed_store}, "
            f"{len(deployment.feed_proxies)} feed proxies"
        )

        timing = options.timing()
        config = _protocol_config(dealt, deployment, self.feeds_config, timing)
        rng = random.Random(options.seed)
        order = list(range(n))
        rng.shuffle(order)
        faulty = {
            index: BYZANTINE_KINDS[i % 6] for i, index in enumerate(order[: options.byzantine])
        }
        honest = frozenset(
            m.identity.node_id for i, m in enumerate(dealt.members) if i not in faulty
        )
        tracker = _Tracker(honest)
        tracker.on_posted = self._report_line
        self.tracker = tracker

        source: FeedsSource
        if options.live:
            source = FeedsSource(self.feeds_config)
            say("feeds: live providers")
        else:
            replay = options.replay_dir or DEFAULT_REPLAY
            if not replay.is_dir():
                raise DevnetError(f"replay directory {replay} does not exist")
            source = FeedsSource(self.feeds_config, replay_dir=replay)
            say(f"feeds: replaying {replay}")
        await stack.enter_async_context(source)
        shared = _SharedSource(source, ttl=60.0 if options.live else math.inf)

        accounts = [Account.create() for _ in range(n)]
        await asyncio.to_thread(_fund, w3, accounts)
        store_dir = workdir / "stores"
        store_dir.mkdir()
        fee_policy = FeePolicy(max_fee_cap=gwei(100))
        tx_timing = TransmitTiming(
            poll_interval=0.1,
            bump_after=5.0,
            retry_initial=0.2,
            retry_max=2.0,
            fee_retry=1.0,
            rescan_interval=30.0,
        )
        for index, dealt_member in enumerate(dealt.members):
            identity = dealt_member.identity
            kind = faulty.get(index)
            metrics = NodeMetrics()
            transport: Transport
            if mqtt is not None:
                transport = MqttTransport(
                    mqtt, network=NETWORK, roster=config.roster, identity=identity, metrics=metrics
                )
            else:
                assert bus is not None
                transport = bus.transport(
                    network=NETWORK, roster=config.roster, identity=identity, metrics=metrics
                )
            client = await stack.enter_async_context(
                Web3ChainClient([url], chain_id=deployment.chain_id)
            )
            transmitter = Transmitter(
                client,
                accounts[index],
                chain_id=deployment.chain_id,
                receivers=deployment.receiver_for_kind(),
                group_key_x=dealt.committee.chain_key.x,
                fee_policy=fee_policy,
                timing=tx_timing,
                metrics=metrics,
                on_result=tracker.transmitted,
            )
            node_source: ObservationSource = (
                shared
                if kind is not None
                else _OffsetSource(shared, _HONEST_SPREAD_BPS[index % len(_HONEST_SPREAD_BPS)])
            )
            node = OracleNode(
                config,
                NodeKeys(
                    identity, dealt_member.share.key_package, dealt.committee.public_key_package
                ),
                transport,
                store_dir / f"node-{index + 1}.sqlite",
                node_source,
                metrics=metrics,
                refresh_s=options.round_interval,
                clock=_lagging_clock,
                on_finalized=self._on_finalized(tracker, transmitter),
                wrap_core=self._wrapper(tracker, identity.node_id, kind, seed=index),
            )
            self.members.append(
                _Member(index, identity.node_id, kind, node, transmitter, accounts[index])
            )
        for member in self.members:
            await stack.enter_async_context(member.transmitter)
        bad = ", ".join(f"node-{m.index + 1}={m.kind}" for m in self.members if m.kind) or "none"
        say(f"starting {n} nodes (byzantine: {bad}), ΔRound {options.round_interval:g} s")

    def _deploy(self, w3: Web3, dealt: DealtCommittee) -> Any:
        from contracts.deploy import deploy_all
        from oracle.contracts_cli import committee_spec, feed_specs

        owner = Account.from_key(_DEV_OWNER_KEY)
        return deploy_all(
            w3, owner, committee_spec(dealt.committee), feed_specs(self.feeds_config),
            progress=lambda step: log.debug("devnet.deploy %s", step),
        )  # fmt: skip

    @staticmethod
    def _on_finalized(
        tracker: _Tracker, transmitter: Transmitter
    ) -> Callable[[ReportFinalized], None]:
        def on_finalized(action: ReportFinalized) -> None:
            tracker.finalized(action)
            transmitter.submit(TransmitRequest.from_finalized(action))

        return on_finalized

    @staticmethod
    def _wrapper(
        tracker: _Tracker, node: NodeId, kind: str | None, seed: int
    ) -> Callable[[OracleProtocol], OracleProtocol]:
        def wrap(core: OracleProtocol) -> OracleProtocol:
            inner: OracleProtocol | Faulty = core if kind is None else _fault(kind, core, seed)
            # A Faulty forwards every attribute it does not override to the core it wraps,
            # so the node can drive it exactly like the core itself.
            return cast(OracleProtocol, _Watch(inner, tracker, node))

        return wrap

    # -- running -------------------------------------------------------------------------
    async def run_nodes(self, render: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        """Run the nodes until the target; returns with the nodes stopped."""
        options = self.options
        tracker = self.tracker
        assert tracker is not None
        deadline = None if options.duration is None else time.monotonic() + options.duration
        async with contextlib.AsyncExitStack() as nodes, asyncio.TaskGroup() as group:
            for member in self.members:
                await nodes.enter_async_context(member.node)
            self.progress("nodes running")
            reader = group.create_task(self._read_onchain_loop(), name="devnet-onchain")
            painter = group.create_task(render(), name="devnet-table") if render else None
            try:
                while True:
                    if options.rounds is not None and len(tracker.posted()) >= options.rounds:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    if self.stop_requested.is_set():
                        self.interrupted = True
                        break
                    tracker.changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await tracker.changed.wait()
                self.decided_at = time.time()
                await self._settle()
            finally:
                self._snapshot_observations()
                self.stopped_at = time.time()
                reader.cancel()
                if painter is not None:
                    painter.cancel()
                await nodes.aclose()

    async def _settle(self) -> None:
        """Let the rounds attempted before the stop decision finish (bounded)."""
        tracker = self.tracker
        assert tracker is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settle_s):
                while any(r.finalized is None for r in self.attempted()):
                    tracker.changed.clear()
                    await tracker.changed.wait()

    def _snapshot_observations(self) -> None:
        for member in self.members:
            if member.kind is None:
                observation = member.node.status().observation
                if observation is not None:
                    self.honest_obs[member.node_id] = dict(observation.values)

    async def wait_posted(self) -> None:
        """Wait (bounded) until every report finalized before the stop is on-chain."""
        tracker = self.tracker
        assert tracker is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_POST_WAIT_S):
                while any(r.posted is None for r in tracker.finalized_rounds()):
                    tracker.changed.clear()
                    await tracker.changed.wait()

    async def _read_onchain_loop(self) -> None:
        assert self.w3 is not None
        while True:
            values = await asyncio.to_thread(_read_feeds, self.w3, self.deployment.feed_proxies)
            self.onchain = {name: data[1] for name, data in values.items()}
            await asyncio.sleep(1.0)

    def _report_line(self, record: _Round) -> None:
        if self.line_sink is None:
            return
        assert record.finalized is not None and record.posted is not None
        values = report_values(record.finalized.report)
        feeds = " ".join(
            f"{k}={_decimal(v, self.decimals.get(k, 8))}" for k, v in sorted(values.items())
        )
        self.line_sink(
            f"report epoch={record.epoch} round={record.round} leader={record.leader[:10]} "
            f"gas={record.posted.gas_used} latency_ms={self._latency_ms(record)} {feeds}"
        )

    @staticmethod
    def _latency_ms(record: _Round) -> int:
        assert record.posted_at is not None
        return round((record.posted_at - record.started_at) * 1000)

    # -- the summary ---------------------------------------------------------------------
    def attempted(self) -> list[_Round]:
        """Non-empty rounds started before the devnet decided to stop, led by an honest
        member — or by a Byzantine one that got its report finalized all the same (a
        Byzantine leader's round failing is the fault the protocol routes around)."""
        tracker = self.tracker
        assert tracker is not None
        cutoff = self.decided_at if self.decided_at is not None else time.time()
        return [
            r
            for r in tracker.rounds.values()
            if not r.empty
            and r.started_at <= cutoff
            and (r.honest_leader or r.finalized is not None)
        ]

    def byzantine_failed(self) -> int:
        tracker = self.tracker
        assert tracker is not None
        return sum(
            1
            for r in tracker.rounds.values()
            if not r.honest_leader and not r.empty and r.finalized is None
        )

    async def summary(self) -> tuple[dict[str, Any], list[str]]:
        tracker = self.tracker
        assert tracker is not None and self.w3 is not None
        w3 = self.w3
        finalized = tracker.finalized_rounds()
        posted = tracker.posted()
        chain = await asyncio.to_thread(_read_feeds, w3, self.deployment.feed_proxies)
        blocks = await asyncio.to_thread(
            _blocks, w3, [_hex(r.posted.tx_hash) for r in posted if r.posted and r.posted.tx_hash]
        )
        reports = []
        last_value: dict[str, tuple[int, _Round]] = {}
        for record in finalized:
            assert record.finalized is not None
            values = report_values(record.finalized.report)
            for name, value in values.items():
                last_value[name] = (value, record)
            entry: dict[str, Any] = {
                "epoch": record.epoch,
                "round": record.round,
                "leader": record.leader,
                "observations_timestamp": record.finalized.report.observations_timestamp,
                "values": {
                    k: _decimal(v, self.decimals.get(k, 8)) for k, v in sorted(values.items())
                },
                "posted": record.posted is not None,
                "gas_used": None,
                "tx_hash": None,
                "latency_ms": None,
                "block_number": None,
                "block_timestamp": None,
            }
            if record.posted is not None and record.posted.tx_hash is not None:
                tx = _hex(record.posted.tx_hash)
                number, stamp = blocks[tx]
                entry.update(
                    gas_used=record.posted.gas_used,
                    tx_hash=tx,
                    latency_ms=self._latency_ms(record),
                    block_number=number,
                    block_timestamp=stamp,
                )
            reports.append(entry)
        latencies = [e["latency_ms"] for e in reports if e["latency_ms"] is not None]
        feeds: dict[str, Any] = {}
        for spec in self.feeds_config.feeds:
            name, decimals = spec.id, spec.decimals
            observed = [obs[name] for obs in self.honest_obs.values() if name in obs]
            onchain = chain.get(name)
            last = last_value.get(name)
            feeds[name] = {
                "proxy": self.deployment.feed_proxies.get(name),
                "decimals": decimals,
                "onchain": None if onchain is None else _decimal(onchain[1], decimals),
                "round_id": None if onchain is None else onchain[0],
                "started_at": None if onchain is None else onchain[2],
                "updated_at": None if onchain is None else onchain[3],
                "last_report": None
                if last is None
                else {
                    "epoch": last[1].epoch,
                    "round": last[1].round,
                    "value": _decimal(last[0], decimals),
                },
                "honest_min": _decimal(min(observed), decimals) if observed else None,
                "honest_max": _decimal(max(observed), decimals) if observed else None,
            }
        attempted = self.attempted()
        attempted_finalized = [r for r in attempted if r.finalized is not None]
        problems: list[str] = []
        if len(attempted_finalized) != len(attempted):
            missing = sorted((r.epoch, r.round) for r in attempted if r.finalized is None)
            problems.append(f"attempted rounds not finalized: {missing}")
        unposted = [(r.epoch, r.round) for r in finalized if r.posted is None]
        if unposted:
            problems.append(f"finalized reports not posted: {unposted}")
        if self.options.rounds is not None and len(posted) < self.options.rounds:
            problems.append(f"only {len(posted)} of {self.options.rounds} reports posted")
        for name, (value, _) in last_value.items():
            onchain = chain.get(name)
            if onchain is None or onchain[1] != value:
                problems.append(f"{name}: on-chain value differs from the last FINAL report")
        summary: dict[str, Any] = {
            "format": "xon-devnet-summary/1",
            "network": NETWORK,
            "chain_id": self.deployment.chain_id,
            "broker": self.broker_kind,
            "mode": "live" if self.options.live else "replay",
            "nodes": self.options.nodes,
            "f": (self.options.nodes - 1) // 3,
            "t": 2 * ((self.options.nodes - 1) // 3) + 1,
            "byzantine": {m.node_id: m.kind for m in self.members if m.kind is not None},
            "duration_s": round((self.stopped_at or time.time()) - self.started_at, 3),
            "deployment": {
                "price_feed_store": self.deployment.price_feed_store,
                "config_digest": self.deployment.config_digest,
            },
            "rounds": {
                "started": len(tracker.rounds),
                "empty": sum(1 for r in tracker.rounds.values() if r.empty),
                "attempted": len(attempted),
                "byzantine_failed": self.byzantine_failed(),
                "finalized": len(attempted_finalized),
                "finalized_total": len(finalized),
                "posted": len(posted),
            },
            "reports": reports,
            "latency_ms": {
                "p50": _percentile(latencies, 0.50),
                "p99": _percentile(latencies, 0.99),
                "max": max(latencies) if latencies else None,
            },
            "gas_used": {
                "total": sum(r.posted.gas_used for r in posted if r.posted),
                "per_report_max": max(
                    (r.posted.gas_used for r in posted if r.posted), default=None
                ),
            },
            "feeds": feeds,
            "interrupted": self.interrupted,
            "ok": not problems,
            "problems": problems,
        }
        return summary, problems


# -- the live table ----------------------------------------------------------------------
def _table(devnet: Devnet) -> Any:
    from rich.table import Table

    tracker = devnet.tracker
    assert tracker is not None
    posted = tracker.posted()
    last = posted[-1] if posted else None
    title = (
        f"xon devnet — {devnet.options.nodes} nodes, broker {devnet.broker_kind}, "
        f"{len(posted)} reports posted"
    )
    caption = "waiting for the first report..."
    if last is not None and last.posted is not None:
        caption = (
            f"last: epoch {last.epoch} round {last.round}, leader {last.leader[:10]}, "
            f"gas {last.posted.gas_used}, latency {Devnet._latency_ms(last)} ms"
        )
    table = Table(title=title, caption=caption)
    for column in ("feed", "observed median (last report)", "on-chain"):
        table.add_column(column, justify="right" if column != "feed" else "left")
    values = report_values(last.finalized.report) if last and last.finalized else {}
    for spec in devnet.feeds_config.feeds:
        median = values.get(spec.id)
        onchain = devnet.onchain.get(spec.id)
        table.add_row(
            spec.id,
            "-" if median is None else _decimal(median, spec.decimals),
            "-" if onchain is None else _decimal(onchain, spec.decimals),
        )
    return table


def _live_renderer(devnet: Devnet) -> Callable[[], Coroutine[Any, Any, None]]:
    async def render() -> None:
        from rich.console import Console
        from rich.live import Live

        with Live(_table(devnet), console=Console(), refresh_per_second=2) as live:
            try:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(_table(devnet))
            finally:
                live.update(_table(devnet), refresh=True)  # the final state stays on screen

    return render


# -- entry point -------------------------------------------------------------------------
async def run_devnet(
    options: DevnetOptions,
    *,
    progress: Progress = _log_progress,
    table: bool = False,
    lines: Callable[[str], None] | None = None,
    inspect: Callable[[Devnet], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> DevnetResult:
    """Start everything, run to the target, tear everything down; see the module doc.

    ``table``: show the rich live table (a TTY); ``lines``: called with one line per posted
    report otherwise; ``inspect``: awaited with the devnet after the summary is made and
    before anything is stopped (tests read the chain there). Raises :class:`DevnetError`
    when it cannot start. ``stop``: once set, the devnet stops at the next check as if its
    target was met (startup is finished first) and the summary says ``"interrupted": true``.
    """
    devnet = Devnet(options, progress)
    if stop is not None:
        devnet.stop_requested = stop
    devnet.line_sink = None if table else lines
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="xon-devnet-"))
    keep = True
    try:
        async with contextlib.AsyncExitStack() as stack:
            await devnet.start(stack, workdir)
            await devnet.run_nodes(_live_renderer(devnet) if table else None)
            progress("nodes stopped; waiting for the last reports to land")
            await devnet.wait_posted()
            summary, problems = await devnet.summary()
            if inspect is not None:
                await inspect(devnet)
            progress("stopping transmitters, broker and anvil")
        keep = False
    finally:
        pids = tuple(child.process.pid for child in devnet.children if child.process)
        if not keep:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
    return DevnetResult(summary, devnet.interrupted, not problems, tuple(problems), pids)


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
