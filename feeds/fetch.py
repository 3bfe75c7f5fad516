"""Moving bytes for the sans-io adapters: the only module of ``feeds`` that knows aiohttp.

Layers, dependencies one way (like httpcore under httpx)::

    Fetcher            pagination, retries with jittered backoff, rate limits, page cap,
      │                snapshot storage, one task per source in a TaskGroup
      ▼
    Transport          send one HttpRequest, get one RawResponse or a FetchError
      ├── HttpTransport    aiohttp: one ClientSession per run, explicit Timeouts
      └── ReplayTransport  a recorded snapshot directory (feeds.snapshots.ReplayBook)

Failure isolation: each source runs in its own task and every failure becomes a
:class:`SourceFailure` value, so one failing source never cancels the others.

Retry rule: a request is retried on HTTP 429 / 500 / 502 / 503 / 504, on a timeout and on
a connection error, at most ``RetryPolicy.max_attempts`` tries in all. The wait before
try ``n+1`` is ``min(max_delay, base_delay * 2**(n-1))`` scaled by a jitter factor drawn
uniformly from ``[0.5, 1)`` ("equal jitter", so nodes never retry in lockstep yet always
back off). A ``Retry-After`` header (seconds or an HTTP date) raises the wait to what the
server asked for; when the server asks for more than ``max_retry_after`` we give up at
once rather than hammer it early. The final response, whatever its status, goes to the
adapter, which raises the typed error (429 → ``rate_limited``, other statuses →
``http_status``, with the provider's details); an adapter that does not is overruled
(``http_status``), so an error page never yields offers. The randomness (``rng``), the
sleep and the clocks are injectable, so tests run instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import mimetypes
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from feeds.errors import ConfigError, FetchError, SourceError
from feeds.model import HttpRequest, Offer, PriceSource, RawResponse, Rejection, SourceId
from feeds.snapshots import ReplayBook, SnapshotStore, redact, sha256_hex

__all__ = [
    "RETRY_STATUSES",
    "FetchMetrics",
    "Fetcher",
    "HttpTransport",
    "RateLimit",
    "ReplayTransport",
    "RetryPolicy",
    "SourceFailure",
    "SourceFetch",
    "SourceOutcome",
    "StoredResponse",
    "Timeouts",
    "Transport",
    "env_secrets",
    "http_transport",
    "parse_retry_after",
]

log = logging.getLogger(__name__)


class FetchMetrics:
    """The fetcher's counters, on ``registry`` (a node passes its own, so they appear on
    its ``/metrics``; by default a private registry, so that several fetchers or nodes in
    one process never share or collide on counters)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.source_failures = Counter(
            "xon_feed_source_failures_total",
            "Sources that failed in a fetch run",
            ["source", "reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            "xon_feed_fetch_retries_total",
            "Requests retried by the fetcher",
            ["source", "reason"],
            registry=self.registry,
        )


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRYABLE_REASONS = frozenset({"timeout", "connection", "payload"})

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Timeouts:
    """Explicit timeouts, in seconds. ``per_source`` bounds a whole source (all pages, all
    retries, all rate-limit waits), so one slow provider cannot hold up a round."""

    total: float = 30.0  # one request, connect to last body byte
    connect: float = 10.0  # getting a connection (pool wait + TCP + TLS)
    sock_read: float = 15.0  # silence between two reads
    per_source: float = 120.0

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, connect=self.connect, sock_read=self.sock_read
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # tries per request, the first included
    base_delay: float = 0.5
    max_delay: float = 20.0  # cap on the exponential backoff
    max_retry_after: float = 60.0  # a longer Retry-After is a failure, not a wait

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Wait after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        jitter: float = 0.5 + rng() / 2
        return ceiling * jitter


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` request starts per ``per_seconds`` towards one provider."""

    requests: int
    per_seconds: float

    @property
    def interval(self) -> float:
        return self.per_seconds / self.requests


@runtime_checkable
class _DeclaresRateLimit(Protocol):
    @property
    def rate_limit(self) -> object: ...


def _rate_limit_of(source: PriceSource) -> RateLimit | None:
    """The adapter's declared limit, if any (read as data: requests / per_seconds)."""
    if not isinstance(source, _DeclaresRateLimit):
        return None
    declared = source.rate_limit
    requests = getattr(declared, "requests", None)
    per_seconds = getattr(declared, "per_seconds", None)
    if isinstance(requests, int) and requests > 0 and isinstance(per_seconds, int | float):
        return RateLimit(requests, float(per_seconds))
    return None


def _no_query(url: str) -> str:
    """The URL without query or fragment: safe to log even when a key sits in the query."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent
    or unparseable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Transport(Protocol):
    """Sends one request. Raises ``FetchError`` (reason: timeout, connection, payload,
    body_too_large, invalid_url, not_recorded, ...) and nothing else."""

    async def send(self, source: SourceId, request: HttpRequest) -> RawResponse: ...


class HttpTransport:
    """aiohttp transport over a session owned by the caller (see :func:`http_transport`);
    ``file://`` URLs are read from disk (off the event loop)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_body_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self._session = session
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    async def send(self, source: SourceId, request: HttpRequest) -> RawResponse:
        if urlsplit(request.url).scheme == "file":
            return await self._send_file(source, request)
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.body,
                allow_redirects=True,
            ) as resp:
                body = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > self._max_body_bytes:
                        raise FetchError(
                            source, "body_too_large", f"> {self._max_body_bytes} bytes"
                        )
                return RawResponse(
                    request=request,
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=bytes(body),
                    fetched_at=self._clock(),
                )
        # Translate at the edge: nothing aiohttp-specific travels upward.
        except TimeoutError as exc:  # aiohttp's timeouts subclass TimeoutError
            raise FetchError(source, "timeout", type(exc).__name__) from exc
        except aiohttp.InvalidURL as exc:
            raise FetchError(source, "invalid_url", _no_query(request.url)) from exc
        except aiohttp.ClientPayloadError as exc:
            raise FetchError(source, "payload", str(exc)) from exc
        except aiohttp.ClientConnectionError as exc:
            raise FetchError(source, "connection", f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise FetchError(source, "http_client", f"{type(exc).__name__}: {exc}") from exc

    async def _send_file(self, source: SourceId, request: HttpRequest) -> RawResponse:
        """``file://`` URLs (e.g. a comparables CSV kept by the operator): read like a GET."""
        if request.method.upper() != "GET":
            raise FetchError(source, "invalid_url", f"{request.method} on a file URL")
        parts = urlsplit(request.url)
        if parts.netloc not in ("", "localhost"):
            raise FetchError(source, "invalid_url", "file URL with a remote host")
        path = Path(url2pathname(parts.path))
        try:
            body = await asyncio.to_thread(_read_file, path, self._max_body_bytes)
        except FileNotFoundError as exc:
            raise FetchError(source, "not_found", str(path)) from exc
        except OSError as exc:
            raise FetchError(source, "file_error", f"{path}: {exc.strerror}") from exc
        if body is None:
            raise FetchError(source, "body_too_large", f"> {self._max_body_bytes} bytes")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return RawResponse(
            request=request,
            status=200,
            headers={"content-type": content_type},
            body=body,
            fetched_at=self._clock(),
        )


def _read_file(path: Path, limit: int) -> bytes | None:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    return None if len(data) > limit else data


@asynccontextmanager
async def http_transport(
    timeouts: Timeouts = Timeouts(),
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    user_agent: str = "xon-feeds/0.1",
) -> AsyncIterator[HttpTransport]:
    """One ``aiohttp.ClientSession`` for the whole run, closed on exit."""
    async with aiohttp.ClientSession(
        timeout=timeouts.client_timeout(),
        headers={"User-Agent": user_agent},
        raise_for_status=False,
    ) as session:
        yield HttpTransport(session, clock=clock)


class ReplayTransport:
    """Serves a recorded snapshot directory; unrecorded requests fail with ``not_recorded``."""

    def __init__(self, book: ReplayBook) -> None:
        self.book = book

    async def send(self, source: SourceId, request: HttpRequest) -> RawResponse:
        # Reading and gunzipping is blocking file I/O: keep it off the event loop.
        return await asyncio.to_thread(self.book.next_response, source, request)


@dataclass(frozen=True)
class StoredResponse:
    """What an observation keeps of one raw response (the bytes live in the store)."""

    url: str
    status: int
    body_sha256: str
    fetched_at: datetime


@dataclass(frozen=True)
class SourceFetch:
    """A source fetched and parsed completely (every page)."""

    source: SourceId
    responses: tuple[StoredResponse, ...]
    offers: tuple[Offer, ...]
    rejections: tuple[Rejection, ...]
    unknown_names: tuple[str, ...]

    @property
    def snapshots(self) -> tuple[str, ...]:
        return tuple(r.body_sha256 for r in self.responses)

    @property
    def observed_at(self) -> datetime:
        """The oldest fetch time: the source is as fresh as its oldest page."""
        return min(r.fetched_at for r in self.responses)


@dataclass(frozen=True)
class SourceFailure:
    source: SourceId
    reason: str  # stable label, e.g. timeout, http_status, rate_limited, parse, internal_error
    detail: str = ""
    responses: tuple[StoredResponse, ...] = ()  # what was received before it failed
    error: str = ""  # the error class: FetchError, ParseError, ConfigError, MissingApiKey, ...

    @property
    def snapshots(self) -> tuple[str, ...]:
        return tuple(r.body_sha256 for r in self.responses)


SourceOutcome = SourceFetch | SourceFailure


def _failure(
    sid: SourceId, exc: BaseException, reason: str, detail: str, received: list[StoredResponse]
) -> SourceFailure:
    return SourceFailure(sid, reason, detail, tuple(received), type(exc).__name__)


async def _no_sleep(_: float) -> None:
    return None


@dataclass
class _HostLimiter:
    """Spaces request starts to one provider by ``RateLimit.interval`` (no bursts)."""

    limit: RateLimit
    next_start: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Fetcher:
    """Fetches sources through a :class:`Transport`; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        max_pages: int = 20,
        store: SnapshotStore | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        respect_rate_limits: bool = True,
        secrets: Sequence[str] = (),
        metrics: FetchMetrics | None = None,
    ) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        self._transport = transport
        self._timeouts = timeouts
        self._retry = retry
        self._max_pages = max_pages
        self._store = store
        self._sleep = sleep
        self._rng = rng
        self._monotonic = monotonic
        self._respect_rate_limits = respect_rate_limits
        # API keys some providers insist on in the URL: kept out of logs and failures.
        self._secrets = tuple(secrets)
        self._limiters: dict[tuple[str, str], _HostLimiter] = {}
        self.metrics = metrics if metrics is not None else FetchMetrics()

    @classmethod
    def for_replay(
        cls,
        book: ReplayBook,
        *,
        store: SnapshotStore | None = None,
        metrics: FetchMetrics | None = None,
    ) -> Fetcher:
        """Replay: no real waits (recorded 429s are replayed, their Retry-After is not slept)."""
        return cls(
            ReplayTransport(book),
            store=store,
            sleep=_no_sleep,
            respect_rate_limits=False,
            metrics=metrics,
        )

    async def fetch_all(self, sources: Sequence[PriceSource]) -> dict[SourceId, SourceOutcome]:
        """Every source concurrently; each ends as a SourceFetch or a SourceFailure."""
        ids = [s.source_id for s in sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate source ids: {sorted(ids)}")
        tasks: dict[SourceId, asyncio.Task[SourceOutcome]] = {}
        async with asyncio.TaskGroup() as group:
            for source in sources:
                tasks[source.source_id] = group.create_task(
                    self.fetch_isolated(source), name=f"fetch:{source.source_id}"
                )
        return {sid: task.result() for sid, task in tasks.items()}

    async def fetch_isolated(self, source: PriceSource) -> SourceOutcome:
        """:meth:`fetch_source`, with every failure turned into a :class:`SourceFailure`."""
        received: list[StoredResponse] = []
        sid = source.source_id
        try:
            async with asyncio.timeout(self._timeouts.per_source):
                return await self.fetch_source(source, received)
        except SourceError as exc:
            failure = _failure(sid, exc, exc.reason, exc.detail, received)
        except ConfigError as exc:
            # e.g. GCP's empty catalog: only a wrong configuration explains the answer.
            # Adapters' SourceConfigError carries a stable ``reason`` like a SourceError.
            reason = getattr(exc, "reason", None)
            detail = getattr(exc, "detail", str(exc))
            failure = _failure(
                sid,
                exc,
                reason if isinstance(reason, str) else "config_error",
                detail if isinstance(detail, str) else str(exc),
                received,
            )
        except TimeoutError as exc:
            detail = f"> {self._timeouts.per_source}s in all"
            failure = _failure(sid, exc, "deadline", detail, received)
        except Exception as exc:
            # An adapter bug must not take the other sources down with it; it is logged
            # with its traceback and surfaces as this source's failure, never swallowed.
            log.exception("source.internal_error source=%s", sid)
            detail = f"{type(exc).__name__}: {exc}"
            failure = _failure(sid, exc, "internal_error", detail, received)
        failure = replace(failure, detail=redact(failure.detail, self._secrets))
        self.metrics.source_failures.labels(sid, failure.reason).inc()
        log.warning(
            "source.failed source=%s reason=%s detail=%s", sid, failure.reason, failure.detail
        )
        return failure

    async def fetch_source(
        self, source: PriceSource, received: list[StoredResponse] | None = None
    ) -> SourceFetch:
        """All pages of one source. Raises ``SourceError``; ``received`` collects every
        response as it arrives (so a failure still names the snapshots behind it)."""
        sid = source.source_id
        got: list[StoredResponse] = [] if received is None else received
        offers: list[Offer] = []
        rejections: list[Rejection] = []
        unknown: list[str] = []
        request: HttpRequest | None = source.first_request()
        seen: set[tuple[str, str, bytes | None]] = set()
        pages = 0
        while request is not None:
            key = (request.method, request.url, request.body)
            if key in seen:
                raise FetchError(sid, "pagination_loop", _no_query(request.url))
            seen.add(key)
            pages += 1
            if pages > self._max_pages:
                raise FetchError(sid, "too_many_pages", f"more than {self._max_pages} pages")
            response = await self._send_with_retries(source, request, got)
            # An error status goes to the adapter too: it raises the typed error (with
            # the provider's own error details) ...
            result = source.parse(response, response.fetched_at)
            if not 200 <= response.status < 300:
                # ... and if it does not, no offer parsed from an error page is used.
                raise FetchError(
                    sid, "http_status", f"HTTP {response.status} {_no_query(request.url)}"
                )
            offers.extend(result.offers)
            rejections.extend(result.rejections)
            unknown.extend(result.unknown_names)
            request = result.next_request
        for offer in offers:
            # Defence in depth: an adapter must never hand over a non-positive price.
            if offer.source != sid or not offer.price.is_finite() or offer.price <= Decimal(0):
                raise FetchError(sid, "bad_offer", f"{offer.listing}: {offer.price}")
        log.info(
            "source.fetched source=%s pages=%d offers=%d rejections=%d unknown=%d",
            sid, pages, len(offers), len(rejections), len(unknown),
        )  # fmt: skip
        return SourceFetch(sid, tuple(got), tuple(offers), tuple(rejections), tuple(unknown))

    async def _send_with_retries(
        self, source: PriceSource, request: HttpRequest, got: list[StoredResponse]
    ) -> RawResponse:
        """The response once it is final: a success, an error status that is not worth
        retrying, or the last one when the tries are used up (or Retry-After exceeds the
        cap). Transport errors that outlast the tries are raised."""
        sid = source.source_id
        attempt = 0
        while True:
            attempt += 1
            await self._wait_rate_limit(source, request)
            try:
                response = await self._transport.send(sid, request)
            except FetchError as exc:
                if exc.reason not in _RETRYABLE_REASONS or attempt >= self._retry.max_attempts:
                    raise
                delay = self._retry.backoff(attempt, self._rng)
                self.metrics.retries.labels(sid, exc.reason).inc()
                log.info(
                    "fetch.retry source=%s attempt=%d reason=%s delay=%.3f",
                    sid, attempt, exc.reason, delay,
                )  # fmt: skip
                await self._sleep(delay)
                continue
            got.append(await self._record(sid, response))
            if response.status not in RETRY_STATUSES:
                return response
            retry_after = parse_retry_after(
                response.headers.get("retry-after"), response.fetched_at
            )
            if retry_after is not None and retry_after > self._retry.max_retry_after:
                # Waiting less than asked would hammer the provider; give up this round.
                log.warning(
                    "fetch.retry_after_too_long source=%s status=%d retry_after=%.0f cap=%.0f",
                    sid, response.status, retry_after, self._retry.max_retry_after,
                )  # fmt: skip
                return response
            if attempt >= self._retry.max_attempts:
                return response
            delay = self._retry.backoff(attempt, self._rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            self.metrics.retries.labels(sid, f"http_{response.status}").inc()
            log.info(
                "fetch.retry source=%s attempt=%d status=%d delay=%.3f",
                sid, attempt, response.status, delay,
            )  # fmt: skip
            await self._sleep(delay)

    async def _record(self, sid: SourceId, response: RawResponse) -> StoredResponse:
        if self._store is not None:
            entry = await asyncio.to_thread(self._store.add, sid, response)
            digest = entry.body_sha256
        else:
            digest = sha256_hex(response.body)
        url = redact(response.request.url, self._secrets)
        return StoredResponse(url, response.status, digest, response.fetched_at)

    async def _wait_rate_limit(self, source: PriceSource, request: HttpRequest) -> None:
        if not self._respect_rate_limits:
            return
        limit = _rate_limit_of(source)
        if limit is None:
            return
        # A provider is an adapter at a host: sources of one kind against one host share
        # the budget; different adapters (or the same adapter at another host) do not.
        key = (urlsplit(request.url).netloc, type(source).__qualname__)
        limiter = self._limiters.setdefault(key, _HostLimiter(limit))
        async with limiter.lock:
            now = self._monotonic()
            wait = limiter.next_start - now
            if wait > 0:
                await self._sleep(wait)
                now += wait
            limiter.next_start = now + limiter.limit.interval


def env_secrets(env: Mapping[str, str], names: Sequence[str]) -> tuple[str, ...]:
    """The values of the given env vars that are set: what the snapshot store redacts."""
    return tuple(env[n] for n in names if env.get(n))
