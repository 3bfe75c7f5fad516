"""The node's HTTP API (aiohttp): health, readiness, Prometheus metrics, status and feeds.

::

    async with OracleNode(...) as node, ApiServer(OracleNodeView(node, chain)) as api:
        print(api.url)                       # http://127.0.0.1:9470 (port 0 → ephemeral)

=================  ========================================================================
``GET /healthz``   200 ``{"status": "ok"}`` while the event loop serves requests (liveness)
``GET /readyz``    200 when every check passes, else 503; the body lists each check
``GET /metrics``   Prometheus text format of the node's own registry (+ process metrics)
``GET /v1/status`` committee, epoch, leader, last report per kind, credibility per member
``GET /v1/feeds``  per feed: latest observed and latest on-chain value, age, deviation
=================  ========================================================================

Every other path answers 404 with a JSON error; an exception inside a handler answers 500
with ``{"error": "internal_error", "request_id": ...}`` (the traceback goes to the log under
that request id, never to the client). Every response carries ``X-Request-Id``. The
shapes are written down, with examples, in ``docs/api.md``.

**Two layers.** The API reads the node through :class:`NodeView`, a ``Protocol`` of three
cheap synchronous methods returning plain *view* dataclasses in native types (ints, bytes,
unix seconds, :class:`Fixed` values). The API alone turns them into the JSON *wire*
models (pydantic, ``*Response``): fixed-point values as exact decimal strings with their
``decimals`` (never floats), node ids EIP-55 checksummed, hashes ``0x`` + lowercase hex,
timestamps as ``{"unix": ..., "iso": "...Z"}``. So the formatting rules live in one place,
and the wire models validate every response before it leaves (a malformed view is a 500,
not a malformed body).

**NodeView contract.** ``status()``, ``feeds()`` and ``readiness()`` run *on the event loop*
inside request handlers: they must not do I/O, must not block and should take well under a
millisecond. A node answers from state it already holds — the chain client caches its
``latestRoundData`` reads, the readiness checks read flags and timestamps the background
tasks maintain. The adapter from :class:`oracle.node.OracleNode` is a thin class mapping
``OracleNode.status()`` onto :class:`StatusView` (docs/api.md, "Implementing NodeView").

**Metrics.** ``/metrics`` serves ``NodeView.metrics_registry`` — the node's private
:class:`~prometheus_client.CollectorRegistry` (:class:`oracle.metrics.NodeMetrics`), never
the global one, so several nodes in one process each expose only their own counters.
The node's fetcher counts on the same registry (``feeds.fetch.FetchMetrics``:
``xon_feed_source_failures_total{source,reason}``,
``xon_feed_fetch_retries_total{source,reason}``). With ``ApiConfig.process_metrics``
(default on) the process-wide default registry is appended: ``process_*``/``python_*``.
Those are per *process*: a devnet that runs n nodes in one process should turn it off for
all but one node. A family name present
in both registries is served once, from the node's registry.

**Exposure.** The server binds ``127.0.0.1`` unless told otherwise; it serves only GETs and
reveals nothing secret (no key material, no config paths) but does reveal what the node is
doing — put it behind the operator's network policy before binding a public interface.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from types import TracebackType
from typing import Annotated, Final, Literal, Protocol, Self

from aiohttp import web
from eth_utils.address import to_checksum_address
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from oracle.errors import OracleError
from oracle.protocol.credibility import CredibilityScore

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ApiConfig",
    "ApiError",
    "ApiServer",
    "Check",
    "CheckModel",
    "CheckName",
    "CommitteeModel",
    "CredibilityModel",
    "ErrorResponse",
    "FeedModel",
    "FeedView",
    "FeedsResponse",
    "Fixed",
    "HealthResponse",
    "MemberModel",
    "MemberView",
    "NodeView",
    "ObservationModel",
    "ObservationView",
    "ObservedModel",
    "ObservedValue",
    "OnChainModel",
    "OnChainValue",
    "Readiness",
    "ReadinessResponse",
    "ReportModel",
    "ReportView",
    "StaticNodeView",
    "StatusResponse",
    "StatusView",
    "TimestampModel",
    "ValueModel",
    "build_app",
    "format_fixed",
    "observation_check",
    "render_feeds",
    "render_readiness",
    "render_status",
]

log = logging.getLogger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 9470
REQUEST_ID_HEADER: Final = "X-Request-Id"
_JSON: Final = "application/json"
_MAX_DECIMALS: Final = 77  # a uint256 has 78 digits; more places could only print zeros


class ApiError(OracleError):
    """The API server could not start (the address is in use, the host does not resolve)."""

    def __init__(self, message: str, *, host: str, port: int) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


# -- view types: what a NodeView returns (native types; the API formats them) ------------
def format_fixed(raw: int, decimals: int) -> str:
    """``raw / 10**decimals`` as an exact decimal string with ``decimals`` places.

    Pure string arithmetic: ``Decimal`` in the default context would round a uint256 to
    28 significant digits.
    """
    if not 0 <= decimals <= _MAX_DECIMALS:
        raise ValueError(f"decimals {decimals} out of range 0..{_MAX_DECIMALS}")
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw))
    if decimals == 0:
        return sign + digits
    digits = digits.rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


@dataclass(frozen=True)
class Fixed:
    """A fixed-point value: ``raw`` scaled by ``10**decimals`` (a feed value, an answer)."""

    raw: int
    decimals: int

    def __post_init__(self) -> None:
        if isinstance(self.raw, bool) or not isinstance(self.raw, int):
            raise TypeError("Fixed.raw must be an int")
        if not 0 <= self.decimals <= _MAX_DECIMALS:
            raise ValueError(f"decimals {self.decimals} out of range 0..{_MAX_DECIMALS}")

    def __str__(self) -> str:
        return format_fixed(self.raw, self.decimals)


@dataclass(frozen=True)
class ReportView:
    """The last report of one kind this node saw finalized."""

    kind: str  # "prices", "valuations", ... (lowercase ReportKind name)
    epoch: int
    round: int
    digest: bytes  # 32 bytes: the signed message
    observations_timestamp: int  # unix seconds, as in the report
    values: Mapping[str, Fixed]  # feed → value (PRICES); empty for other kinds
    leader: str  # node id of the epoch's leader
    finalized_at: float  # unix seconds, when this node saw it finalized
    latency: float | None  # OBSERVE → FINAL seconds, when this node led the round
    report: bytes  # the ABI-encoded report
    signature: bytes  # the FROST signature (R ‖ z)


@dataclass(frozen=True)
class MemberView:
    node_id: str
    frost_id: int
    credibility: CredibilityScore
    misbehaviour: Mapping[str, int] = field(default_factory=dict)  # kind → count


@dataclass(frozen=True)
class ObservationView:
    """This node's latest own observation."""

    timestamp: int  # unix seconds
    values: Mapping[str, Fixed]
    missing_feeds: tuple[str, ...] = ()
    failed_sources: Mapping[str, str] = field(default_factory=dict)  # source → reason


@dataclass(frozen=True)
class StatusView:
    node_id: str
    network: str
    running: bool  # the node's task group is running
    connected: bool  # the transport is connected to the broker
    n: int
    f: int
    t: int
    members: tuple[MemberView, ...]
    epoch: int | None  # None before the consensus core started
    leader: str | None
    last_reports: Mapping[str, ReportView] = field(default_factory=dict)  # kind → report
    observation: ObservationView | None = None
    unused_commitments: int = 0
    rounds_finalized: int = 0
    config_digest: bytes | None = None
    chain_id: int | None = None


@dataclass(frozen=True)
class ObservedValue:
    value: Fixed
    timestamp: int  # unix seconds of the observation
    sources: int | None = None  # live sources behind it, when known


@dataclass(frozen=True)
class OnChainValue:
    """``latestRoundData`` of the feed's proxy, as last read (and cached) by the node."""

    value: Fixed  # answer, with the proxy's decimals()
    round_id: int
    updated_at: int  # unix seconds (updatedAt)
    read_at: int  # unix seconds when the node read it
    proxy: str | None = None  # FeedProxy address
    block_number: int | None = None  # block the read was made at


@dataclass(frozen=True)
class FeedView:
    name: str  # feed id, e.g. "H100-SXM-80GB/USD-HR"
    observed: ObservedValue | None
    on_chain: OnChainValue | None
    deviation_threshold_bps: int | None = None
    heartbeat_s: int | None = None


@dataclass(frozen=True)
class Check:
    """One readiness check. ``detail`` is for humans (and must hold no secret)."""

    ok: bool
    detail: str

    @classmethod
    def passing(cls, detail: str = "ok") -> Check:
        return cls(ok=True, detail=detail)

    @classmethod
    def failing(cls, detail: str) -> Check:
        return cls(ok=False, detail=detail)


CheckName = Literal["broker", "rpc", "feeds", "committee_key"]


@dataclass(frozen=True)
class Readiness:
    """The node is ready when all four hold; a component the node runs without (no chain
    configured) is a *passing* check whose detail says so."""

    broker: Check  # transport connected and subscribed
    rpc: Check  # the chain RPC answered recently
    feeds: Check  # a recent observation from enough live sources
    committee_key: Check  # identity key and FROST key share loaded, member of the committee

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks().values())

    def checks(self) -> dict[CheckName, Check]:
        return {
            "broker": self.broker,
            "rpc": self.rpc,
            "feeds": self.feeds,
            "committee_key": self.committee_key,
        }


def observation_check(
    observed_at: int | None,
    now: float,
    max_age_s: float,
    *,
    live_sources: int | None = None,
    min_sources: int = 1,
) -> Check:
    """The usual ``feeds`` check: an observation no older than ``max_age_s``, from at least
    ``min_sources`` live sources (when the count is known)."""
    if observed_at is None:
        return Check.failing("no observation yet")
    age = now - observed_at
    if age > max_age_s:
        return Check.failing(f"last observation {age:.0f}s old (max {max_age_s:.0f}s)")
    if live_sources is not None and live_sources < min_sources:
        return Check.failing(f"{live_sources} live sources (need {min_sources})")
    sources = "" if live_sources is None else f", {live_sources} live sources"
    return Check.passing(f"last observation {max(age, 0):.0f}s old{sources}")


class NodeView(Protocol):
    """What the API reads from a node. Every method is synchronous, does no I/O and is
    cheap: it runs on the event loop inside a request handler (see the module docstring)."""

    @property
    def metrics_registry(self) -> CollectorRegistry: ...

    def status(self) -> StatusView: ...

    def feeds(self) -> Sequence[FeedView]: ...

    def readiness(self) -> Readiness: ...


@dataclass
class StaticNodeView:
    """A NodeView over fixed, replaceable values (tests, docs examples, a node stub)."""

    status_view: StatusView
    feed_views: Sequence[FeedView] = ()
    readiness_view: Readiness = field(
        default_factory=lambda: Readiness(
            broker=Check.passing(),
            rpc=Check.passing(),
            feeds=Check.passing(),
            committee_key=Check.passing(),
        )
    )
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.registry

    def status(self) -> StatusView:
        return self.status_view

    def feeds(self) -> Sequence[FeedView]:
        return self.feed_views

    def readiness(self) -> Readiness:
        return self.readiness_view


# -- wire models: the JSON shapes (docs/api.md) ------------------------------------------
def _checksummed(value: str) -> str:
    if to_checksum_address(value) != value:
        raise ValueError(f"{value} is not EIP-55 checksummed")
    return value


Address = Annotated[
    str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$"), AfterValidator(_checksummed)
]
Hash32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]
HexData = Annotated[str, StringConstraints(pattern=r"^0x(?:[0-9a-f]{2})*$")]
DecimalText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]+(?:\.[0-9]+)?$")]
IntegerText = Annotated[str, StringConstraints(pattern=r"^-?[0-9]+$")]
IsoTime = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
]
Ratio = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[int, Field(ge=0)]


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class TimestampModel(_Model):
    """A point in time, both ways: ``unix`` seconds and the same second in ISO-8601 UTC."""

    unix: NonNegative
    iso: IsoTime

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if _iso(self.unix) != self.iso:
            raise ValueError(f"iso {self.iso} is not unix {self.unix}")
        return self

    @classmethod
    def of(cls, unix: float) -> TimestampModel:
        seconds = int(unix)  # floor for the non-negative times we show
        return cls(unix=seconds, iso=_iso(seconds))


class ValueModel(_Model):
    """A fixed-point value: ``value`` is exactly ``raw / 10**decimals`` as a decimal string
    (``raw`` is a string too: an int256 does not fit a JSON consumer's double)."""

    value: DecimalText
    raw: IntegerText
    decimals: Annotated[int, Field(ge=0, le=_MAX_DECIMALS)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if format_fixed(int(self.raw), self.decimals) != self.value:
            raise ValueError(f"value {self.value} is not raw {self.raw} / 10**{self.decimals}")
        return self

    @classmethod
    def of(cls, fixed: Fixed) -> ValueModel:
        return cls(value=str(fixed), raw=str(fixed.raw), decimals=fixed.decimals)


class HealthResponse(_Model):
    status: Literal["ok"]


class ErrorResponse(_Model):
    error: str  # stable code: not_found, method_not_allowed, internal_error, ...
    message: str
    request_id: str


class CheckModel(_Model):
    ok: bool
    detail: str


class ReadinessResponse(_Model):
    ready: bool
    checks: dict[CheckName, CheckModel]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ready != all(c.ok for c in self.checks.values()) or len(self.checks) != 4:
            raise ValueError("ready must be true exactly when all four checks pass")
        return self


class CredibilityModel(_Model):
    """How far a member's observations sit from the agreed medians, as this node sees it
    (operator statistics, not signed values: plain JSON numbers, rounded to 6 places)."""

    deviation: Ratio  # mean EWMA relative deviation over feeds (0.1 = 10 %)
    outlier_rate: Ratio  # EWMA of "had an outlier value this round"
    rounds: NonNegative
    outliers: NonNegative
    is_outlier: bool  # deviation beyond the 10 % band
    signing_reliability: Ratio  # leader-side EWMA of valid, on-time shares
    invalid_shares: NonNegative
    per_feed: dict[str, Ratio]


class MemberModel(_Model):
    node_id: Address
    frost_id: Annotated[int, Field(ge=1)]
    is_self: bool
    is_leader: bool
    credibility: CredibilityModel
    misbehaviour: dict[str, NonNegative]


class CommitteeModel(_Model):
    n: Annotated[int, Field(ge=1)]
    f: NonNegative
    t: Annotated[int, Field(ge=1)]
    config_digest: Hash32 | None
    members: list[MemberModel]


class ReportModel(_Model):
    kind: str
    epoch: NonNegative
    round: NonNegative
    digest: Hash32
    observations_timestamp: TimestampModel
    values: dict[str, ValueModel]
    leader: Address
    finalized_at: TimestampModel
    latency_s: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None
    report: HexData
    signature: HexData


class ObservationModel(_Model):
    timestamp: TimestampModel
    age_s: NonNegative
    values: dict[str, ValueModel]
    missing_feeds: list[str]
    failed_sources: dict[str, str]


class StatusResponse(_Model):
    node_id: Address
    network: str
    version: str
    chain_id: Annotated[int, Field(ge=1)] | None
    running: bool
    connected: bool
    generated_at: TimestampModel
    committee: CommitteeModel
    epoch: NonNegative | None
    leader: Address | None
    is_leader: bool
    last_reports: dict[str, ReportModel]
    observation: ObservationModel | None
    unused_commitments: NonNegative
    rounds_finalized: NonNegative


class ObservedModel(_Model):
    value: ValueModel
    timestamp: TimestampModel
    age_s: NonNegative
    sources: NonNegative | None


class OnChainModel(_Model):
    value: ValueModel
    round_id: IntegerText  # uint80: beyond a JSON double's exact range
    updated_at: TimestampModel
    age_s: NonNegative  # now - updated_at
    stale: bool | None  # age_s > heartbeat_s (None when the heartbeat is unknown)
    read_at: TimestampModel
    proxy: Address | None
    block_number: NonNegative | None


class FeedModel(_Model):
    feed: str
    observed: ObservedModel | None
    on_chain: OnChainModel | None
    deviation_bps: DecimalText | None  # |observed - on_chain| / |on_chain| in bps, 2 places
    deviation_threshold_bps: NonNegative | None
    heartbeat_s: NonNegative | None


class FeedsResponse(_Model):
    generated_at: TimestampModel
    feeds: list[FeedModel]


# -- rendering: view → wire --------------------------------------------------------------
def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _address(node_id: str) -> str:
    # Accept any case from the view; the wire is always EIP-55.
    return to_checksum_address(node_id)


def _values(values: Mapping[str, Fixed]) -> dict[str, ValueModel]:
    return {name: ValueModel.of(values[name]) for name in sorted(values)}


def _age(now: float, at: int) -> int:
    return max(0, int(now) - at)


def _ratio(value: float) -> float:
    return round(value, 6)


def _credibility(score: CredibilityScore) -> CredibilityModel:
    return CredibilityModel(
        deviation=_ratio(score.deviation),
        outlier_rate=_ratio(score.outlier_rate),
        rounds=score.rounds,
        outliers=score.outliers,
        is_outlier=score.is_outlier,
        signing_reliability=_ratio(score.signing_reliability),
        invalid_shares=score.invalid_shares,
        per_feed={feed: _ratio(score.per_feed[feed]) for feed in sorted(score.per_feed)},
    )


def _report(report: ReportView) -> ReportModel:
    return ReportModel(
        kind=report.kind,
        epoch=report.epoch,
        round=report.round,
        digest=_hex(report.digest),
        observations_timestamp=TimestampModel.of(report.observations_timestamp),
        values=_values(report.values),
        leader=_address(report.leader),
        finalized_at=TimestampModel.of(report.finalized_at),
        latency_s=None if report.latency is None else round(report.latency, 3),
        report=_hex(report.report),
        signature=_hex(report.signature),
    )


def render_status(view: StatusView, now: float, version: str = "unknown") -> StatusResponse:
    node_id = _address(view.node_id)
    leader = None if view.leader is None else _address(view.leader)
    members = [
        MemberModel(
            node_id=_address(m.node_id),
            frost_id=m.frost_id,
            is_self=_address(m.node_id) == node_id,
            is_leader=_address(m.node_id) == leader,
            credibility=_credibility(m.credibility),
            misbehaviour={kind: m.misbehaviour[kind] for kind in sorted(m.misbehaviour)},
        )
        for m in sorted(view.members, key=lambda m: m.frost_id)
    ]
    observation = view.observation
    return StatusResponse(
        node_id=node_id,
        network=view.network,
        version=version,
        chain_id=view.chain_id,
        running=view.running,
        connected=view.connected,
        generated_at=TimestampModel.of(now),
        committee=CommitteeModel(
            n=view.n,
            f=view.f,
            t=view.t,
            config_digest=None if view.config_digest is None else _hex(view.config_digest),
            members=members,
        ),
        epoch=view.epoch,
        leader=leader,
        is_leader=leader is not None and leader == node_id,
        last_reports={kind: _report(view.last_reports[kind]) for kind in sorted(view.last_reports)},
        observation=None
        if observation is None
        else ObservationModel(
            timestamp=TimestampModel.of(observation.timestamp),
            age_s=_age(now, observation.timestamp),
            values=_values(observation.values),
            missing_feeds=sorted(observation.missing_feeds),
            failed_sources={
                s: observation.failed_sources[s] for s in sorted(observation.failed_sources)
            },
        ),
        unused_commitments=view.unused_commitments,
        rounds_finalized=view.rounds_finalized,
    )


def _deviation_bps(observed: Fixed, on_chain: Fixed) -> str | None:
    """Exact relative deviation in basis points, to 2 places (None if on-chain is zero)."""
    if on_chain.raw == 0:
        return None
    # Bring both to the larger scale with integers, then divide once, exactly.
    scale = max(observed.decimals, on_chain.decimals)
    a = observed.raw * 10 ** (scale - observed.decimals)
    b = on_chain.raw * 10 ** (scale - on_chain.decimals)
    # Hundredths of a bps = |a - b| * 10_000 * 100 / |b|, rounded half up, in integers
    # (a Decimal in the default context would round a uint256 to 28 digits).
    numerator, denominator = abs(a - b) * 1_000_000, abs(b)
    return format_fixed((2 * numerator + denominator) // (2 * denominator), 2)


def _feed(view: FeedView, now: float) -> FeedModel:
    observed, chain = view.observed, view.on_chain
    observed_model = on_chain_model = deviation = None
    if observed is not None:
        observed_model = ObservedModel(
            value=ValueModel.of(observed.value),
            timestamp=TimestampModel.of(observed.timestamp),
            age_s=_age(now, observed.timestamp),
            sources=observed.sources,
        )
    if chain is not None:
        age = _age(now, chain.updated_at)
        on_chain_model = OnChainModel(
            value=ValueModel.of(chain.value),
            round_id=str(chain.round_id),
            updated_at=TimestampModel.of(chain.updated_at),
            age_s=age,
            stale=None if view.heartbeat_s is None else age > view.heartbeat_s,
            read_at=TimestampModel.of(chain.read_at),
            proxy=None if chain.proxy is None else _address(chain.proxy),
            block_number=chain.block_number,
        )
    if observed is not None and chain is not None:
        deviation = _deviation_bps(observed.value, chain.value)
    return FeedModel(
        feed=view.name,
        observed=observed_model,
        on_chain=on_chain_model,
        deviation_bps=deviation,
        deviation_threshold_bps=view.deviation_threshold_bps,
        heartbeat_s=view.heartbeat_s,
    )


def render_feeds(views: Sequence[FeedView], now: float) -> FeedsResponse:
    return FeedsResponse(
        generated_at=TimestampModel.of(now),
        feeds=[_feed(v, now) for v in sorted(views, key=lambda v: v.name)],
    )


def render_readiness(readiness: Readiness) -> ReadinessResponse:
    return ReadinessResponse(
        ready=readiness.ready,
        checks={
            name: CheckModel(ok=check.ok, detail=check.detail)
            for name, check in readiness.checks().items()
        },
    )


# -- metrics ---------------------------------------------------------------------------
class _Combined:
    """The node's registry first, then others; a family name is served once (the text
    format forbids repeating a family, and the node's own metric is the one that counts)."""

    def __init__(self, primary: CollectorRegistry, others: Sequence[CollectorRegistry]) -> None:
        self._registries = (primary, *others)
        self._warned: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        seen: set[str] = set()
        for registry in self._registries:
            for metric in registry.collect():
                if metric.name in seen:
                    if metric.name not in self._warned:
                        self._warned.add(metric.name)
                        log.warning("api.metric_shadowed name=%s", metric.name)
                    continue
                seen.add(metric.name)
                yield metric


# -- the server ------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiConfig:
    """Where the API listens. ``port=0`` takes an ephemeral port (see ``ApiServer.port``);
    ``process_metrics`` appends the process-wide default registry to ``/metrics``."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    process_metrics: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"api port {self.port} out of range 0..65535")
        if not self.host:
            raise ValueError("api host must not be empty")


def _version() -> str:
    try:
        return metadata.version("xon")
    except metadata.PackageNotFoundError:
        return "unknown"


_VIEW: Final = web.AppKey[NodeView]("view")
_CLOCK: Final = web.AppKey[Callable[[], float]]("clock")
_METRICS: Final = web.AppKey[_Combined]("metrics")
_VERSION: Final = web.AppKey[str]("version")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    response = web.Response(
        body=model.model_dump_json().encode(), status=status, content_type=_JSON
    )
    # Status documents change every round; a cache in between would show an old leader.
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_ERROR_CODES: Final = {404: "not_found", 405: "method_not_allowed"}


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Request id on every response; HTTP errors as JSON; any other exception → 500 JSON.

    Catching ``Exception`` here is the one deliberate catch-all: it is the outermost edge,
    the exception is logged with its traceback under the request id, and the client learns
    only the id (a traceback would reveal code paths and local state).
    """
    request_id = secrets.token_hex(8)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _ERROR_CODES.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        headers[REQUEST_ID_HEADER] = request_id
        body = ErrorResponse(error=code, message=exc.reason, request_id=request_id)
        return _json(body, status=exc.status, headers=headers)
    except Exception:
        log.exception(
            "api.request_failed request_id=%s method=%s path=%s",
            request_id,
            request.method,
            request.path,
        )
        body = ErrorResponse(
            error="internal_error", message="internal server error", request_id=request_id
        )
        return _json(body, status=500, headers={REQUEST_ID_HEADER: request_id})
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


async def _healthz(request: web.Request) -> web.Response:
    # Answering at all is the signal: the event loop that runs the node is serving.
    return _json(HealthResponse(status="ok"))


async def _readyz(request: web.Request) -> web.Response:
    body = render_readiness(request.app[_VIEW].readiness())
    return _json(body, status=200 if body.ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    # CPU only (and a few procfs reads for the process collector): cheap enough inline.
    text = generate_latest(request.app[_METRICS])
    response = web.Response(body=text)
    # The content type carries a version parameter aiohttp's content_type= would refuse.
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _status(request: web.Request) -> web.Response:
    app = request.app
    return _json(render_status(app[_VIEW].status(), app[_CLOCK](), app[_VERSION]))


async def _feeds(request: web.Request) -> web.Response:
    app = request.app
    return _json(render_feeds(app[_VIEW].feeds(), app[_CLOCK]()))


def build_app(
    view: NodeView,
    *,
    clock: Callable[[], float] = time.time,
    process_metrics: bool = True,
) -> web.Application:
    """The aiohttp application (for embedding; :class:`ApiServer` runs it)."""
    app = web.Application(middlewares=[_errors])
    app[_VIEW] = view
    app[_CLOCK] = clock
    app[_METRICS] = _Combined(view.metrics_registry, [REGISTRY] if process_metrics else [])
    app[_VERSION] = _version()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/v1/status", _status)
    app.router.add_get("/v1/feeds", _feeds)
    return app


class ApiServer:
    """Runs the API on ``config.host:config.port`` inside ``async with``."""

    def __init__(
        self,
        view: NodeView,
        config: ApiConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else ApiConfig()
        self._view = view
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when configured with port 0)."""
        if self._port is None:
            raise RuntimeError("the API server is not running")
        return self._port

    @property
    def url(self) -> str:
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            raise RuntimeError("the API server is already running (not reentrant)")
        app = build_app(self._view, clock=self._clock, process_metrics=self.config.process_metrics)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        host, port = self.config.host, self.config.port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ApiError(f"cannot listen on {host}:{port}: {exc}", host=host, port=port) from exc
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        if host in ("0.0.0.0", "::", ""):
            log.warning("api.all_interfaces host=%s port=%d", host, self._port)
        log.info("api.listening url=%s", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner, self._port = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
