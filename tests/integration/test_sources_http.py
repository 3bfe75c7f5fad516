"""HTTP-level conformance of every adapter: a real aiohttp server on 127.0.0.1 replays the
recorded bodies, and the real fetcher (retries, pagination, snapshot store) talks to it.

One suite, parametrised over every recorded source (and so over every adapter kind of
the factory): the recorded pages, every bad case of ``tests/fixtures/prices/_bad``
(``expectations.json``), and transport trouble (429 + Retry-After, 5xx, timeouts) plus
mutated bodies (prices ×1000, negated, of the wrong type, missing). Every outcome must be
a typed failure or offers inside the sanity band — never an escaped exception
(``internal_error``) and never a silently wrong number.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from aggregation.stats import median
from feeds.fetch import (
    Fetcher,
    RetryPolicy,
    SourceFailure,
    SourceFetch,
    SourceOutcome,
    Timeouts,
    http_transport,
)
from feeds.model import HttpRequest, PriceSource
from feeds.snapshots import load_manifest
from feeds.sources import SANITY_BANDS, SOURCE_KINDS
from tests.unit.sources_fixtures import (
    BAD,
    DEFAULT_SOURCES,
    RECORDED_AT,
    build,
    pages,
    replay_source,
    respond,
)

# Small enough that timeout tests are quick, big enough that a loaded CI machine does
# not time out a local request that should succeed (timeout tests delay 1 s).
FAST = Timeouts(total=0.5, connect=0.5, sock_read=0.5, per_source=10.0)
RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=60.0)
SOURCE_IDS = sorted(DEFAULT_SOURCES)
TYPED_ERRORS = {"FetchError", "ParseError", "ConfigError", "SourceConfigError"}


@dataclass
class Served:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Replayer:
    """Serves, per first path segment (the source id), queued answers in order; the last
    queued answer repeats. Records what was asked."""

    queues: dict[str, list[Served]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sid = request.path.strip("/").split("/", 1)[0]
        body = await request.read()
        self.requests.append((sid, request.method, request.raw_path, body))
        queue = self.queues.get(sid)
        if not queue:
            return web.Response(status=404, text="<html>nothing queued</html>")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Replayer]]:
    replayer = Replayer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", replayer.handle)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv, replayer
    finally:
        await srv.close()


class FakeTime:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _content_type(path: Path) -> str:
    return {".csv": "text/csv", ".json": "application/json", ".html": "text/html"}.get(
        path.suffix, "application/octet-stream"
    )


def source_at(srv: TestServer, sid: str) -> PriceSource:
    return build(sid, base_url=str(srv.make_url(f"/{sid}")))


async def fetch(
    srv: TestServer, sid: str, fake: FakeTime | None = None, retry: RetryPolicy = RETRY
) -> SourceOutcome:
    fake = fake or FakeTime()
    async with http_transport(FAST, clock=lambda: RECORDED_AT) as transport:
        fetcher = Fetcher(
            transport,
            timeouts=FAST,
            retry=retry,
            sleep=fake.sleep,
            monotonic=fake.monotonic,
            rng=lambda: 0.0,
        )
        return await fetcher.fetch_isolated(source_at(srv, sid))


def queue_pages(replayer: Replayer, sid: str) -> list[bytes]:
    files = sorted(
        (Path(__file__).resolve().parents[1] / "fixtures" / "prices" / sid).glob("page-*")
    )
    replayer.queues[sid] = [
        Served(200, f.read_bytes(), {"Content-Type": _content_type(f)}) for f in files
    ]
    # After the last page, anything else is a bug in the pagination: answer 404 loudly.
    replayer.queues[sid].append(Served(404, b"<html>no more pages</html>"))
    return [f.read_bytes() for f in files]


def assert_sane(sid: str, outcome: SourceOutcome) -> None:
    """The conformance invariant: typed failure, or offers inside the sanity band."""
    if isinstance(outcome, SourceFailure):
        assert outcome.error in TYPED_ERRORS, (outcome.error, outcome.reason, outcome.detail)
        assert outcome.reason not in {"internal_error", "bad_offer"}
        return
    for offer in outcome.offers:
        low, high = SANITY_BANDS[offer.kind]
        assert offer.source == sid
        assert offer.price.is_finite() and low <= offer.price <= high, offer
        assert offer.gpus >= 1


def test_every_adapter_kind_is_covered() -> None:
    assert {kind for kind, _ in DEFAULT_SOURCES.values()} == set(SOURCE_KINDS)


# --- recorded pages ------------------------------------------------------------------


@pytest.mark.parametrize("sid", SOURCE_IDS)
async def test_recorded_pages(server: tuple[TestServer, Replayer], sid: str) -> None:
    srv, replayer = server
    bodies = queue_pages(replayer, sid)
    outcome = await fetch(srv, sid)
    assert isinstance(outcome, SourceFetch), outcome
    assert_sane(sid, outcome)
    # Same result as feeding the bytes to the adapter directly: the fetcher moved them intact.
    direct = replay_source(sid)
    assert outcome.offers == tuple(o for r in direct for o in r.offers)
    assert outcome.rejections == tuple(j for r in direct for j in r.rejections)
    assert outcome.offers, "every recording yields offers"
    # Exactly one request per recorded page, in pagination order, none after the last.
    asked = [r for r in replayer.requests if r[0] == sid]
    assert len(asked) == len(bodies) == len(outcome.responses)
    # The requests the adapter makes when pointed at this server, page by page.
    expected: list[HttpRequest] = []
    source = source_at(srv, sid)
    request: HttpRequest | None = source.first_request()
    for body in bodies:
        assert request is not None
        expected.append(request)
        request = source.parse(respond(request, body), RECORDED_AT).next_request
    assert request is None
    assert [(m, p) for _, m, p, _ in asked] == [
        (r.method, URL(r.url).raw_path_qs) for r in expected
    ]
    assert [b for *_, b in asked] == [r.body or b"" for r in expected]


@pytest.mark.parametrize("sid", SOURCE_IDS)
async def test_429_with_retry_after_then_pages(
    server: tuple[TestServer, Replayer], sid: str
) -> None:
    srv, replayer = server
    queue_pages(replayer, sid)
    replayer.queues[sid].insert(0, Served(429, b"{}", {"Retry-After": "2"}))
    replayer.queues[sid].insert(1, Served(503, b"<html>busy</html>"))
    fake = FakeTime()
    outcome = await fetch(srv, sid, fake)
    assert isinstance(outcome, SourceFetch), outcome
    # Retry-After first; then the 503's backoff: min(0.05, 0.01 * 2) * jitter 0.5.
    assert fake.sleeps[0] == 2.0
    assert 0.01 in fake.sleeps
    assert outcome.offers == tuple(o for r in replay_source(sid) for o in r.offers)
    assert [r.status for r in outcome.responses][:2] == [429, 503]


@pytest.mark.parametrize("sid", SOURCE_IDS)
async def test_timeout_is_a_typed_failure(server: tuple[TestServer, Replayer], sid: str) -> None:
    srv, replayer = server
    replayer.queues[sid] = [Served(200, pages(sid)[0], delay=1.0)]
    # One try: retrying timeouts is the fetcher's business, tested in tests/unit.
    outcome = await fetch(srv, sid, retry=RetryPolicy(max_attempts=1))
    assert isinstance(outcome, SourceFailure)
    assert (outcome.error, outcome.reason) == ("FetchError", "timeout")


# --- bad cases from tests/fixtures/prices/_bad/expectations.json -----------------------


def _bad_cases() -> list[Any]:
    doc = json.loads((BAD / "expectations.json").read_text())
    params = []
    for n, case in enumerate(doc["cases"]):
        ids = case["source_ids"]
        if ids == ["*"]:
            ids = [s for s in SOURCE_IDS if s not in case.get("except", [])]
        for sid in ids:
            label = f"{case['file']}-{case.get('status', 200)}-{sid}-{n}"
            params.append(pytest.param(sid, case, id=label))
    return params


@pytest.mark.parametrize(("sid", "case"), _bad_cases())
async def test_bad_case(
    server: tuple[TestServer, Replayer], sid: str, case: dict[str, Any]
) -> None:
    srv, replayer = server
    path = BAD / case["file"]
    headers = {"Content-Type": _content_type(path), **case.get("headers", {})}
    replayer.queues[sid] = [Served(case.get("status", 200), path.read_bytes(), headers)]
    outcome = await fetch(srv, sid)
    assert_sane(sid, outcome)
    expect = case["expect"]
    if "error" in expect:
        assert isinstance(outcome, SourceFailure), outcome
        assert outcome.reason == expect["reason"], outcome
        error = "SourceConfigError" if expect["error"] == "ConfigError" else expect["error"]
        assert outcome.error == error
        if "detail" in expect:
            assert outcome.detail == expect["detail"]
        # The body that caused it is stored for audit all the same.
        assert outcome.snapshots
    else:
        assert isinstance(outcome, SourceFetch), outcome
        assert len(outcome.offers) == expect["offers"]
        assert Counter(r.reason for r in outcome.rejections) == Counter(expect["rejections"])


# --- mutated recordings: absurd, negative, wrong-type and missing prices ---------------

PRICE_KEY = re.compile(r"price|dph|^value$|^units$|^med$", re.IGNORECASE)


def _mutate(node: Any, fn: Callable[[Any], Any], inside: bool = False) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            hit = inside or bool(PRICE_KEY.search(key))
            if hit and not isinstance(value, dict | list):
                replaced = fn(value)
                if replaced is not _DROP:
                    out[key] = replaced
            else:
                out[key] = _mutate(value, fn, hit)
        return out
    if isinstance(node, list):
        return [_mutate(v, fn, inside) for v in node]
    if isinstance(node, str) and node.lstrip().startswith("{"):
        # AWS PriceList entries are JSON documents inside strings.
        try:
            inner = json.loads(node)
        except ValueError:
            return node
        return json.dumps(_mutate(inner, fn, inside))
    return node


_DROP = object()


def _scale(factor: int) -> Callable[[Any], Any]:
    def fn(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | Decimal):
            return value * factor
        if isinstance(value, str):
            try:
                return str(Decimal(value) * factor)
            except ArithmeticError:
                return value
        return value

    return fn


MUTATIONS: dict[str, Callable[[Any], Any]] = {
    "x1000": _scale(1000),
    "negated": _scale(-1),
    "wrong_type": lambda v: [v] if not isinstance(v, bool) else v,
    "missing": lambda v: _DROP,
}


def _json_sids() -> list[str]:
    return [s for s in SOURCE_IDS if all(p.lstrip()[:1] in (b"{", b"[") for p in pages(s))]


def _to_json(doc: Any) -> bytes:
    # Decimals go back out as JSON numbers (shortest round-trip float repr keeps the digits).
    return json.dumps(doc, default=float).encode()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("sid", _json_sids())
async def test_mutated_prices(server: tuple[TestServer, Replayer], sid: str, mutation: str) -> None:
    srv, replayer = server
    bodies = []
    for body in pages(sid):
        doc = json.loads(body, parse_float=Decimal)
        mutated = _mutate(doc, MUTATIONS[mutation])
        bodies.append(_to_json(mutated))
    replayer.queues[sid] = [Served(200, b, {"Content-Type": "application/json"}) for b in bodies]
    outcome = await fetch(srv, sid)
    assert_sane(sid, outcome)
    baseline = [o for r in replay_source(sid) for o in r.offers]
    if isinstance(outcome, SourceFetch) and mutation in ("x1000", "negated"):
        # A listing that was an offer keeps its price or is rejected: a scaled or negated
        # price is never passed off as real. (A listing that was absurd before may land
        # in the band after scaling, e.g. a $1 sale x1000: the adapter cannot know.)
        known = {o.listing for o in baseline}
        pairs = {(o.listing, o.price) for o in baseline}
        assert {(o.listing, o.price) for o in outcome.offers if o.listing in known} <= pairs
        assert len(outcome.offers) < len(baseline)


# --- record -> replay round trip through the CLI ---------------------------------------


async def _run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, Any]:
    """``xon ...`` in a subprocess (its own event loop and stdout) while this loop serves."""
    xon = Path(sys.executable).parent / "xon"
    cmd = [str(xon)] if xon.exists() else [sys.executable, "-m", "oracle.cli"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    if proc.returncode:
        print(stderr.decode())
    return proc.returncode, json.loads(stdout)


async def test_record_then_replay_round_trip(
    server: tuple[TestServer, Replayer], tmp_path: Path
) -> None:
    srv, replayer = server
    sids = ["akash", "runpod", "tensordock", "vastai"]
    config = tmp_path / "feeds.toml"
    config.write_text(
        "".join(
            f'[sources.{sid}]\nkind = "{DEFAULT_SOURCES[sid][0]}"\n'
            f'options = {{ base_url = "{srv.make_url("/" + sid)}" }}\n'
            for sid in sids
        )
        + '[[feeds]]\nid = "RTX-4090/USD-HR"\nmodel = "RTX-4090"\nkind = "USD-HR"\n'
        + f"sources = {json.dumps(sids)}\n"
    )
    for sid in sids:
        queue_pages(replayer, sid)
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_API_TOKEN"))}
    keys = {"RUNPOD_API_KEY": "rp-secret-key-123", "TENSORDOCK_API_KEY": "td-secret-key-456"}
    rec = tmp_path / "rec"
    argv = ["feeds", "record", str(rec), "--config", str(config), "--json"]
    code, live_doc = await _run_cli(argv, {**env, **keys})
    assert code == 0
    entries = load_manifest(rec)
    assert sorted(e.source for e in entries) == sids
    assert "secret-key" not in (rec / "manifest.json").read_text()
    await srv.close()  # replay must not touch the network

    argv = ["feeds", "check", "--replay", str(rec), "--config", str(config), "--json"]
    code, replay_doc = await _run_cli(argv, env)  # no keys needed to replay
    assert code == 0
    live, replayed = live_doc["RTX-4090/USD-HR"], replay_doc["RTX-4090/USD-HR"]
    assert replayed == live
    assert replayed["sources_used"] == sids
    assert set(replayed["snapshots"]) == {e.body_sha256 for e in entries}
    # And the values are what the recorded bytes give when fed to the adapters directly.
    expected = {
        sid: median(o.price for r in replay_source(sid) for o in r.offers if o.model == "RTX-4090")
        for sid in sids
    }
    assert {k: Decimal(v) for k, v in replayed["source_values"].items()} == expected
