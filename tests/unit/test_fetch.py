"""The fetcher against a real aiohttp server on 127.0.0.1, with a tiny adapter of our own."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY, CollectorRegistry

from feeds.errors import FetchError, ParseError
from feeds.fetch import (
    Fetcher,
    FetchMetrics,
    HttpTransport,
    RetryPolicy,
    SourceFailure,
    SourceFetch,
    Timeouts,
    http_transport,
    parse_retry_after,
)
from feeds.model import (
    HttpRequest,
    ModelId,
    Offer,
    ParseResult,
    PriceKind,
    RawResponse,
    SourceId,
)
from feeds.snapshots import (
    ReplayBook,
    SnapshotEntry,
    SnapshotStore,
    load_manifest,
    read_body,
    sha256_hex,
)

# Small enough that timeout tests are quick, big enough that a loaded CI machine does
# not time out a local request that should succeed (delays in timeout tests are >= 1 s).
FAST = Timeouts(total=0.5, connect=0.5, sock_read=0.5, per_source=5.0)
TEST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0)


@dataclass(frozen=True)
class Limit:
    requests: int
    per_seconds: float


@dataclass
class TinySource:
    """A sans-io adapter for the test server: {"prices": [...], "next": path | null}."""

    source_id: SourceId
    base_url: str
    path: str = "/p1"
    rate_limit: Limit | None = None

    def first_request(self) -> HttpRequest:
        return HttpRequest("GET", self.base_url + self.path)

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        if response.status == 429:
            retry_after = response.headers.get("retry-after", "")
            raise FetchError(self.source_id, "rate_limited", retry_after)
        if response.status != 200:
            raise FetchError(self.source_id, "http_status", str(response.status))
        try:
            doc = json.loads(response.body)
            prices = [Decimal(str(p)) for p in doc["prices"]]
            nxt = doc.get("next")
        except (ValueError, KeyError, TypeError) as exc:
            raise ParseError(self.source_id, "bad_shape", str(exc)) from None
        offers = tuple(
            Offer(self.source_id, ModelId("H100-SXM"), PriceKind.RENTAL_HOURLY, p, 1, f"l{i}")
            for i, p in enumerate(prices)
        )
        request = None if nxt is None else HttpRequest("GET", self.base_url + nxt)
        return ParseResult(offers=offers, next_request=request)


@dataclass
class BuggySource(TinySource):
    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        raise KeyError("adapter bug")


@dataclass
class Reply:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Script:
    """Per path, the replies to serve in order (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.hits: dict[str, int] = {}

    def on(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        n = self.hits.get(path, 0)
        self.hits[path] = n + 1
        replies = self.replies.get(path)
        if not replies:
            return web.Response(status=404, text="<html>not found</html>")
        reply = replies[min(n, len(replies) - 1)]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, str | bytes) else json.dumps(reply.body)
        return web.Response(
            status=reply.status,
            body=body.encode() if isinstance(body, str) else body,
            headers={"Content-Type": "application/json", **reply.headers},
        )


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Script]]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv, script
    finally:
        await srv.close()


def base(srv: TestServer) -> str:
    return str(srv.make_url("")).rstrip("/")


class FakeTime:
    """Injected sleep + monotonic clock: records waits instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def make_fetcher(
    transport: HttpTransport,
    fake: FakeTime,
    *,
    retry: RetryPolicy = TEST_RETRY,
    store: SnapshotStore | None = None,
    rng: Callable[[], float] = lambda: 0.0,
    max_pages: int = 20,
) -> Fetcher:
    return Fetcher(
        transport,
        timeouts=FAST,
        retry=retry,
        store=store,
        sleep=fake.sleep,
        rng=rng,
        monotonic=fake.monotonic,
        max_pages=max_pages,
    )


async def test_pagination_collects_every_page_and_stores_every_body(
    server: tuple[TestServer, Script], tmp_path: Path
) -> None:
    srv, script = server
    script.on("/p1", Reply(body={"prices": ["2.5", "2.6"], "next": "/p2"}))
    script.on("/p2", Reply(body={"prices": ["2.7"], "next": "/p3"}))
    script.on("/p3", Reply(body={"prices": [], "next": None}))
    store = SnapshotStore(tmp_path / "rec")
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake, store=store).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFetch)
    assert [o.price for o in out.offers] == [Decimal("2.5"), Decimal("2.6"), Decimal("2.7")]
    assert [r.url.rsplit("/", 1)[1] for r in out.responses] == ["p1", "p2", "p3"]
    entries = load_manifest(tmp_path / "rec")
    assert [e.seq for e in entries] == [0, 1, 2]
    assert [e.body_sha256 for e in entries] == list(out.snapshots)
    for entry in entries:
        body = read_body(tmp_path / "rec", entry.body_sha256)
        assert sha256_hex(body) == entry.body_sha256
        assert entry.headers == {"content-type": "application/json"}
        assert entry.fetched_at.tzinfo is not None
    assert fake.sleeps == []


async def test_429_honours_retry_after_then_succeeds(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.on(
        "/p1",
        Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "7"}),
        Reply(body={"prices": ["3"], "next": None}),
    )
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFetch)
    assert [o.price for o in out.offers] == [Decimal(3)]
    assert fake.sleeps == [7.0]  # Retry-After beats the 0.25 s jittered backoff
    assert [r.status for r in out.responses] == [429, 200]  # the 429 is kept for audit


async def test_retry_after_beyond_the_cap_gives_up(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.on("/p1", Reply(status=429, body="{}", headers={"Retry-After": "3600"}))
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFailure)
    assert (out.reason, out.detail) == ("rate_limited", "3600")
    assert fake.sleeps == []
    assert script.hits["/p1"] == 1


async def test_5xx_retried_with_exponential_jittered_backoff(
    server: tuple[TestServer, Script],
) -> None:
    srv, script = server
    script.on("/p1", Reply(status=503, body="<html>busy</html>"))
    fake = FakeTime()
    retry = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=1.5)
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake, retry=retry, rng=lambda: 0.5).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFailure)
    assert out.reason == "http_status"
    assert script.hits["/p1"] == 4
    # ceilings 0.5, 1.0, min(2.0, cap 1.5); jitter factor 0.5 + 0.5/2 = 0.75
    assert fake.sleeps == [0.375, 0.75, 1.125]


async def test_failures_and_retries_are_counted_on_the_fetchers_own_registry(
    server: tuple[TestServer, Script],
) -> None:
    srv, script = server
    script.on("/p1", Reply(status=503, body="<html>busy</html>"))
    registry = CollectorRegistry()
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01)
    async with http_transport(FAST) as transport:
        counted = Fetcher(
            transport, timeouts=FAST, retry=retry, sleep=FakeTime().sleep,
            metrics=FetchMetrics(registry),
        )  # fmt: skip
        other = Fetcher(transport, timeouts=FAST, retry=retry, sleep=FakeTime().sleep)
        for fetcher in (counted, other):
            out = await fetcher.fetch_isolated(TinySource(SourceId("tiny"), base(srv)))
            assert isinstance(out, SourceFailure)
    labels = {"source": "tiny", "reason": "http_503"}
    assert registry.get_sample_value("xon_feed_fetch_retries_total", labels) == 2
    failure = {"source": "tiny", "reason": "http_status"}
    assert registry.get_sample_value("xon_feed_source_failures_total", failure) == 1
    # The other fetcher counted on its own private registry, not on this one or the global.
    assert other.metrics.registry is not registry
    assert other.metrics.registry.get_sample_value("xon_feed_fetch_retries_total", labels) == 2
    assert REGISTRY.get_sample_value("xon_feed_fetch_retries_total", labels) is None


def test_backoff_jitter_stays_in_half_to_full_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        assert policy.backoff(attempt, lambda: 0.0) == ceiling / 2
        assert ceiling / 2 <= policy.backoff(attempt, lambda: 0.999999) < ceiling


async def test_client_error_status_is_not_retried(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv), path="/missing")
        )
    assert isinstance(out, SourceFailure)
    assert (out.reason, out.detail) == ("http_status", "404")
    assert (script.hits["/missing"], fake.sleeps) == (1, [])


@dataclass
class LenientSource(TinySource):
    """An adapter that (wrongly) parses offers out of an error page."""

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        return super().parse(replace(response, status=200), now)


async def test_offers_from_an_error_status_are_never_used(
    server: tuple[TestServer, Script],
) -> None:
    srv, script = server
    script.on("/p1", Reply(status=404, body={"prices": ["2"], "next": None}))
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, FakeTime()).fetch_isolated(
            LenientSource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFailure)
    assert out.reason == "http_status" and "404" in out.detail


async def test_timeout_is_retried_then_reported(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.on("/p1", Reply(body={"prices": [], "next": None}, delay=2.0))
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(
            transport, fake, retry=RetryPolicy(max_attempts=2, base_delay=0.1)
        ).fetch_isolated(TinySource(SourceId("tiny"), base(srv)))
    assert isinstance(out, SourceFailure)
    assert out.reason == "timeout"
    assert script.hits["/p1"] == 2
    assert len(fake.sleeps) == 1


async def test_connection_refused_is_a_fetch_error() -> None:
    # Bind then close a socket: its port is (almost certainly) closed now.
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake).fetch_isolated(
            TinySource(SourceId("tiny"), f"http://127.0.0.1:{port}")
        )
    assert isinstance(out, SourceFailure)
    assert out.reason == "connection"
    assert len(fake.sleeps) == 2  # 3 attempts


async def test_truncated_transfer_is_a_payload_error() -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"prices": [1')
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(broken, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    fake = FakeTime()
    # The server closes mid-body at once, so no timeout is involved; FAST's short timeouts could
    # expire first on a loaded machine and turn the payload error into a timeout.
    roomy = Timeouts(total=10, connect=10, sock_read=10, per_source=20)
    try:
        async with http_transport(roomy) as transport:
            out = await make_fetcher(
                transport, fake, retry=RetryPolicy(max_attempts=1)
            ).fetch_isolated(TinySource(SourceId("tiny"), f"http://127.0.0.1:{port}"))
    finally:
        srv.close()
        await srv.wait_closed()
    assert isinstance(out, SourceFailure)
    assert out.reason == "payload"


async def test_one_failing_source_never_cancels_the_others(
    server: tuple[TestServer, Script],
) -> None:
    srv, script = server
    script.on("/ok", Reply(body={"prices": ["1.5"], "next": None}))
    script.on("/slow", Reply(body={"prices": ["1.6"], "next": None}, delay=0.05))
    script.on("/bad", Reply(body="{not json"))
    fake = FakeTime()
    sources = [
        TinySource(SourceId("bad"), base(srv), path="/bad"),
        BuggySource(SourceId("buggy"), base(srv), path="/ok"),
        TinySource(SourceId("ok"), base(srv), path="/ok"),
        TinySource(SourceId("slow"), base(srv), path="/slow"),
    ]
    async with http_transport(FAST) as transport:
        outcomes = await make_fetcher(transport, fake).fetch_all(sources)
    assert set(outcomes) == {"bad", "buggy", "ok", "slow"}
    bad, buggy = outcomes[SourceId("bad")], outcomes[SourceId("buggy")]
    assert isinstance(bad, SourceFailure) and bad.reason == "bad_shape"
    assert len(bad.snapshots) == 1  # the body it choked on is still named for audit
    assert isinstance(buggy, SourceFailure) and buggy.reason == "internal_error"
    assert isinstance(outcomes[SourceId("ok")], SourceFetch)
    assert isinstance(outcomes[SourceId("slow")], SourceFetch)


async def test_page_cap_and_pagination_loop(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    for i in range(1, 10):
        script.on(f"/p{i}", Reply(body={"prices": ["1"], "next": f"/p{i + 1}"}))
    script.on("/loop", Reply(body={"prices": ["1"], "next": "/loop"}))
    fake = FakeTime()
    async with http_transport(FAST) as transport:
        fetcher = make_fetcher(transport, fake, max_pages=3)
        capped = await fetcher.fetch_isolated(TinySource(SourceId("a"), base(srv)))
        loop = await fetcher.fetch_isolated(TinySource(SourceId("b"), base(srv), path="/loop"))
    assert isinstance(capped, SourceFailure) and capped.reason == "too_many_pages"
    assert script.hits["/p3"] == 1 and "/p4" not in script.hits
    assert isinstance(loop, SourceFailure) and loop.reason == "pagination_loop"


async def test_rate_limit_spaces_requests_to_one_host(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.on("/p1", Reply(body={"prices": ["1"], "next": "/p2"}))
    script.on("/p2", Reply(body={"prices": ["2"], "next": None}))
    fake = FakeTime()
    slow = Limit(requests=1, per_seconds=10.0)
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, fake).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv), rate_limit=slow)
        )
    assert isinstance(out, SourceFetch)
    assert fake.sleeps == [10.0]


async def test_per_source_deadline(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.on("/p1", Reply(body={"prices": [], "next": None}, delay=0.15))
    tight = Timeouts(total=1.0, connect=1.0, sock_read=1.0, per_source=0.05)
    async with http_transport(tight) as transport:
        out = await Fetcher(transport, timeouts=tight).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFailure) and out.reason == "deadline"


async def test_non_positive_offer_from_an_adapter_is_refused(
    server: tuple[TestServer, Script],
) -> None:
    srv, script = server
    script.on("/p1", Reply(body={"prices": ["0"], "next": None}))
    async with http_transport(FAST) as transport:
        out = await make_fetcher(transport, FakeTime()).fetch_isolated(
            TinySource(SourceId("tiny"), base(srv))
        )
    assert isinstance(out, SourceFailure) and out.reason == "bad_offer"


async def test_record_then_replay_gives_the_same_outcome(
    server: tuple[TestServer, Script], tmp_path: Path
) -> None:
    srv, script = server
    script.on(
        "/p1",
        Reply(status=429, body="{}", headers={"Retry-After": "1"}),
        Reply(body={"prices": ["2.5"], "next": "/p2"}),
    )
    script.on("/p2", Reply(body={"prices": ["2.9"], "next": None}))
    src = TinySource(SourceId("tiny"), base(srv))
    other = TinySource(SourceId("tiny"), base(srv), path="/p9")
    async with http_transport(FAST) as transport:
        live = await make_fetcher(
            transport, FakeTime(), store=SnapshotStore(tmp_path / "rec")
        ).fetch_isolated(src)
    assert isinstance(live, SourceFetch)
    await srv.close()  # replay must not need the server

    replayed = await Fetcher.for_replay(ReplayBook(tmp_path / "rec")).fetch_isolated(src)
    assert isinstance(replayed, SourceFetch)
    assert replayed.offers == live.offers
    assert replayed.snapshots == live.snapshots
    assert [r.fetched_at for r in replayed.responses] == [r.fetched_at for r in live.responses]

    # The recording is used up: a third run finds nothing recorded.
    book = ReplayBook(tmp_path / "rec")
    missing = await Fetcher.for_replay(book).fetch_isolated(other)
    assert isinstance(missing, SourceFailure) and missing.reason == "not_recorded"


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 10, 7, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Wed, 07 Oct 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 07 Oct 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_file_urls_are_read_from_disk(tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"prices": ["4.5"], "next": None}))
    src = TinySource(SourceId("file"), page.as_uri().removesuffix("/page.json"), path="/page.json")
    async with http_transport(FAST) as transport:
        fetcher = make_fetcher(transport, FakeTime())
        out = await fetcher.fetch_isolated(src)
        missing = await fetcher.fetch_isolated(
            TinySource(SourceId("gone"), tmp_path.as_uri(), path="/absent.json")
        )
    assert isinstance(out, SourceFetch)
    assert [o.price for o in out.offers] == [Decimal("4.5")]
    assert out.snapshots == (sha256_hex(page.read_bytes()),)
    assert isinstance(missing, SourceFailure) and missing.reason == "not_found"


async def test_api_keys_in_urls_stay_out_of_failures_and_records(
    server: tuple[TestServer, Script],
) -> None:
    srv, _ = server
    secret = "td-legacy-key-0001"
    src = TinySource(SourceId("legacy"), base(srv), path=f"/missing?api_key={secret}")
    async with http_transport(FAST) as transport:
        fetcher = Fetcher(transport, timeouts=FAST, secrets=(secret,), sleep=FakeTime().sleep)
        out = await fetcher.fetch_isolated(src)
    assert isinstance(out, SourceFailure)
    assert secret not in out.detail
    assert all(secret not in r.url for r in out.responses)
    assert out.responses[0].url.endswith("api_key=XON-REDACTED")


async def test_cancellation_leaves_a_consistent_store(
    server: tuple[TestServer, Script], tmp_path: Path
) -> None:
    srv, script = server
    script.on("/fast", Reply(body={"prices": ["1"], "next": None}))
    script.on("/slow", Reply(body={"prices": ["2"], "next": None}, delay=5.0))
    stored = asyncio.Event()
    loop = asyncio.get_running_loop()

    class SignallingStore(SnapshotStore):
        def add(self, source: SourceId, response: RawResponse) -> SnapshotEntry:
            entry = super().add(source, response)
            loop.call_soon_threadsafe(stored.set)  # add() runs in a worker thread
            return entry

    store = SignallingStore(tmp_path / "rec")
    slow_timeouts = Timeouts(total=10.0, connect=1.0, sock_read=10.0, per_source=10.0)
    async with http_transport(slow_timeouts) as transport:
        fetcher = Fetcher(transport, timeouts=slow_timeouts, store=store)
        task = asyncio.create_task(
            fetcher.fetch_all(
                [
                    TinySource(SourceId("fast"), base(srv), path="/fast"),
                    TinySource(SourceId("slow"), base(srv), path="/slow"),
                ]
            )
        )
        await stored.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # What was stored before the cancellation is a complete, verifiable recording.
    entries = load_manifest(tmp_path / "rec")
    assert [e.source for e in entries] == ["fast"]
    assert read_body(tmp_path / "rec", entries[0].body_sha256)
    assert not [p for p in (tmp_path / "rec").rglob("*.tmp")]
