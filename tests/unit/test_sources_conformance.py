"""One conformance suite over every adapter the factory builds.

Each adapter must: build a well-formed first request aimed at its (overridable) base
URL, declare a rate limit, replay its recorded pages into sane offers, turn every bad-case
body of ``tests/fixtures/prices/_bad`` into the typed outcome listed in its
``expectations.json``, and never let anything but ParseError / FetchError / ConfigError
out of ``parse`` — for random bytes, random JSON and randomly mutated recordings alike.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.errors import ConfigError, FetchError, MissingApiKey, ParseError
from feeds.model import HttpRequest, ParseResult, PriceSource, SourceId
from feeds.sources import SANITY_BANDS, SOURCE_KINDS, build_source, rate_limit_of
from tests.unit.sources_fixtures import (
    BAD,
    DEFAULT_SOURCES,
    FIXTURES,
    RECORDED_AT,
    TEST_ENV,
    build,
    pages,
    replay_source,
    respond,
)

SOURCE_IDS = sorted(DEFAULT_SOURCES)
TYPED = (ParseError, FetchError, ConfigError)


def assert_sane(source: PriceSource, result: ParseResult) -> None:
    for offer in result.offers:
        low, high = SANITY_BANDS[offer.kind]
        assert isinstance(offer.price, Decimal)
        assert offer.price.is_finite()
        assert low <= offer.price <= high, offer
        assert offer.source == source.source_id
        assert offer.gpus >= 1
        assert offer.listing
    for rejection in result.rejections:
        assert rejection.source == source.source_id
        assert rejection.reason and rejection.reason == rejection.reason.strip()


def test_every_kind_has_a_recorded_default_source() -> None:
    assert {kind for kind, _ in DEFAULT_SOURCES.values()} == set(SOURCE_KINDS)
    recorded = {p.name for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert recorded == set(DEFAULT_SOURCES)


@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_first_request_is_well_formed(source_id: str) -> None:
    source = build(source_id)
    request = source.first_request()
    assert isinstance(request, HttpRequest)
    assert request.method in ("GET", "POST")
    parts = urlsplit(request.url)
    assert parts.scheme in ("http", "https", "file")
    assert request.url.startswith(source.base_url)  # type: ignore[attr-defined]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.headers.items())
    if request.method == "POST":
        assert isinstance(request.body, bytes)
        json.loads(request.body)
    else:
        assert request.body is None
    # The same adapter asked twice builds the same request (replay and snapshots rely on it).
    assert source.first_request() == request
    limit = rate_limit_of(source)
    assert limit.requests >= 1 and limit.per_seconds > 0
    assert SOURCE_KINDS[DEFAULT_SOURCES[source_id][0]].rate_limit == limit


@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_base_url_override_redirects_every_request(source_id: str) -> None:
    base = f"http://127.0.0.1:8123/{source_id}/endpoint"
    source = build(source_id, base_url=base)
    assert source.first_request().url.startswith(base)
    request: HttpRequest | None = source.first_request()
    for body in pages(source_id):
        assert request is not None
        assert request.url.startswith(base), request.url
        request = source.parse(respond(request, body), RECORDED_AT).next_request


@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_secrets_never_appear_in_the_url_or_repr(source_id: str) -> None:
    source = build(source_id)
    secrets = set(TEST_ENV.values())
    assert not any(s in repr(source) for s in secrets)
    if source_id != "tensordock_v0":  # the legacy v0 API only takes the key in the query
        assert not any(s in source.first_request().url for s in secrets)


@pytest.mark.parametrize("source_id", SOURCE_IDS)
def test_recorded_pages_replay_to_sane_offers(source_id: str) -> None:
    source = build(source_id)
    results = replay_source(source_id)
    assert sum(len(r.offers) for r in results) >= 1
    for result in results:
        assert_sane(source, result)


def test_unknown_kind_and_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown kind"):
        build_source("nope", SourceId("x"), {}, {})
    with pytest.raises(ConfigError, match="bad options"):
        build_source("vastai", SourceId("x"), {"min_reliabilty": 0.9}, {})  # typo
    with pytest.raises(ConfigError, match="bad options"):
        build_source("vastai", SourceId("x"), {"min_reliability": 2}, {})
    with pytest.raises(ConfigError, match="bad options"):
        build_source("azure", SourceId("x"), {"base_url": "ftp://example.com/"}, {})
    with pytest.raises(ConfigError, match="bad options"):
        build_source("comparables", SourceId("x"), {}, {})  # base_url is required


@pytest.mark.parametrize(
    ("kind", "options", "env_var"),
    [
        ("runpod", {}, "RUNPOD_API_KEY"),
        ("gcp", {"api_key_env": "MY_GCP_KEY"}, "MY_GCP_KEY"),
        ("lambda", {}, "LAMBDA_API_KEY"),
        ("tensordock", {}, "TENSORDOCK_API_KEY"),
        ("tensordock", {"api": "v0"}, "TENSORDOCK_API_TOKEN"),
    ],
)
def test_missing_api_key_names_the_env_var(
    kind: str, options: dict[str, object], env_var: str
) -> None:
    env = {k: v for k, v in TEST_ENV.items() if k != env_var}
    with pytest.raises(MissingApiKey) as info:
        build_source(kind, SourceId("s"), options, env)
    assert info.value.env_var == env_var
    with pytest.raises(MissingApiKey):  # an empty value is as good as none
        build_source(kind, SourceId("s"), options, {**env, env_var: "  "})


# --- the bad cases ----------------------------------------------------------------

_EXPECTATIONS = json.loads((BAD / "expectations.json").read_text())["cases"]
_ERRORS = {"ParseError": ParseError, "FetchError": FetchError, "ConfigError": ConfigError}


def _expand() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for case in _EXPECTATIONS:
        ids = SOURCE_IDS if case["source_ids"] == ["*"] else case["source_ids"]
        for source_id in ids:
            if source_id not in case.get("except", ()):
                out.append((source_id, case))
    return out


@pytest.mark.parametrize(
    ("source_id", "case"),
    _expand(),
    ids=lambda v: v if isinstance(v, str) else f"{v['file']}@{v.get('status', 200)}",
)
def test_bad_cases_become_typed_outcomes(source_id: str, case: dict[str, Any]) -> None:
    source = build(source_id)
    response = respond(
        source.first_request(),
        (BAD / case["file"]).read_bytes(),
        case.get("status", 200),
        case.get("headers"),
    )
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(_ERRORS[expect["error"]]) as info:
            source.parse(response, RECORDED_AT)
        error = info.value
        assert getattr(error, "reason", None) == expect["reason"]
        assert getattr(error, "source", None) == source_id
        if "detail" in expect:
            assert getattr(error, "detail", None) == expect["detail"]
    else:
        result = source.parse(response, RECORDED_AT)
        assert len(result.offers) == expect["offers"]
        assert Counter(r.reason for r in result.rejections) == Counter(expect["rejections"])
        assert_sane(source, result)


def test_every_bad_file_is_used() -> None:
    used = {case["file"] for case in _EXPECTATIONS}
    assert used == {p.name for p in BAD.iterdir() if p.name != "expectations.json"}


# --- garbage in, typed errors out ---------------------------------------------------

_SOURCES = {sid: build(sid) for sid in SOURCE_IDS}


def _parse_or_typed_error(source: PriceSource, body: bytes, status: int = 200) -> None:
    try:
        result = source.parse(respond(source.first_request(), body, status), RECORDED_AT)
    except TYPED:
        return
    assert_sane(source, result)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCE_IDS), st.binary(max_size=400))
def test_random_bytes_never_escape_as_untyped_errors(source_id: str, body: bytes) -> None:
    _parse_or_typed_error(_SOURCES[source_id], body)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCE_IDS), JSON_VALUES)
def test_random_json_never_escapes_as_untyped_errors(source_id: str, value: object) -> None:
    _parse_or_typed_error(_SOURCES[source_id], json.dumps(value).encode())


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += _paths(child, (*prefix, index))
    return out


def _replace(node: Any, path: tuple[Any, ...], value: object) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[head] = _replace(node[head], rest, value)
    return copy


_JSON_PAGES = {
    sid: json.loads(pages(sid)[0]) for sid in SOURCE_IDS if pages(sid)[0].lstrip()[:1] == b"{"
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_recordings_yield_typed_errors_or_sane_offers(data: st.DataObject) -> None:
    """Replace one random node of a real recording with random JSON: the adapter either
    fails with a typed error or rejects/keeps rows, and every kept offer stays sane."""
    source_id = data.draw(st.sampled_from(sorted(_JSON_PAGES)))
    doc = _JSON_PAGES[source_id]
    path = data.draw(st.sampled_from(_paths(doc)))
    value = data.draw(JSON_VALUES)
    _parse_or_typed_error(_SOURCES[source_id], json.dumps(_replace(doc, path, value)).encode())


@settings(max_examples=60)
@given(st.sampled_from(SOURCE_IDS), st.integers(min_value=100, max_value=599))
def test_non_2xx_statuses_are_fetch_errors(source_id: str, status: int) -> None:
    source = _SOURCES[source_id]
    body = pages(source_id)[0]
    if 200 <= status < 300:
        source.parse(respond(source.first_request(), body, status), RECORDED_AT)
        return
    with pytest.raises(FetchError) as info:
        source.parse(respond(source.first_request(), body, status), RECORDED_AT)
    if status == 429:
        assert info.value.reason == "rate_limited"
    else:
        assert (info.value.reason, info.value.detail) == ("http_status", str(status))
