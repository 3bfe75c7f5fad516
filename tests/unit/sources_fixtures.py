"""Shared test helpers for the provider adapters: recorded pages, a fixed clock, replay.

The recorded-shape bodies live in ``tests/fixtures/prices/<source_id>/page-NN.<ext>``
(see the README there); ``DEFAULT_SOURCES`` is the source table those recordings answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from feeds.model import HttpRequest, Offer, ParseResult, PriceSource, RawResponse, SourceId
from feeds.sources import build_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
BAD = FIXTURES / "_bad"

# The instant the recordings stand for: replay with this `now` (comparables are dated
# relative to it; a later clock would age the sales out of the 90-day window).
RECORDED_AT = datetime(2026, 10, 12, 12, 0, tzinfo=UTC)

# Fake secrets for the sources that need one (never real keys).
TEST_ENV: Mapping[str, str] = {
    "RUNPOD_API_KEY": "test-runpod-key",
    "GCP_API_KEY": "test-gcp-key",
    "LAMBDA_API_KEY": "test-lambda-key",
    "TENSORDOCK_API_KEY": "test-tensordock-key",
    "TENSORDOCK_API_TOKEN": "test-tensordock-token",
}

# source id -> (kind, options): the default source table the recordings answer.
DEFAULT_SOURCES: Mapping[str, tuple[str, Mapping[str, object]]] = {
    "vastai": ("vastai", {}),
    "runpod": ("runpod", {}),
    "azure": ("azure", {}),
    "aws": ("aws_pricing_page", {}),
    "aws_pricelist": ("aws_pricelist", {}),
    "gcp": ("gcp", {}),
    "oci": ("oci", {}),
    "lambda": ("lambda", {}),
    "tensordock": ("tensordock", {}),
    "tensordock_v0": ("tensordock", {"api": "v0"}),
    "akash": ("akash", {}),
    "comparables_broker": (
        "comparables",
        {"base_url": "file:///var/lib/xon/comparables/broker.csv"},
    ),
    "comparables_marketplace": (
        "comparables",
        {"base_url": "https://comparables.example/marketplace.json"},
    ),
    "comparables_auction": (
        "comparables",
        {"base_url": "file:///var/lib/xon/comparables/auction.csv", "price_basis": "lot_total"},
    ),
}


def build(source_id: str, **overrides: object) -> PriceSource:
    kind, options = DEFAULT_SOURCES[source_id]
    return build_source(kind, SourceId(source_id), {**options, **overrides}, TEST_ENV)


def pages(source_id: str) -> list[bytes]:
    files = sorted((FIXTURES / source_id).glob("page-*"))
    assert files, f"no recorded pages for {source_id}"
    return [f.read_bytes() for f in files]


def respond(
    request: HttpRequest,
    body: bytes,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    return RawResponse(request, status, dict(headers or {}), body, RECORDED_AT)


def replay(
    source: PriceSource, bodies: Sequence[bytes], now: datetime = RECORDED_AT
) -> list[ParseResult]:
    """Feed recorded bodies in request order; the pages must exactly cover the pagination."""
    results: list[ParseResult] = []
    request: HttpRequest | None = source.first_request()
    for body in bodies:
        assert request is not None, "more recorded pages than requests"
        result = source.parse(respond(request, body), now)
        results.append(result)
        request = result.next_request
    assert request is None, f"pagination continues past the recorded pages: {request}"
    return results


def replay_source(source_id: str, **overrides: object) -> list[ParseResult]:
    return replay(build(source_id, **overrides), pages(source_id))


def offers_of(results: Sequence[ParseResult]) -> dict[str, Offer]:
    """Offers of all pages by listing (listings are unique per source)."""
    out: dict[str, Offer] = {}
    for result in results:
        for offer in result.offers:
            assert offer.listing not in out, f"duplicate listing {offer.listing}"
            out[offer.listing] = offer
    return out


def rejections_of(results: Sequence[ParseResult]) -> dict[str, str]:
    """Rejection reason by listing, over all pages."""
    return {r.listing: r.reason for result in results for r in result.rejections}
