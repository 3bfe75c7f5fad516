"""Provider adapters (sans-io) and the factory that builds them from configuration.

Each module here implements :class:`feeds.model.PriceSource` for one provider: it builds
:class:`~feeds.model.HttpRequest` values and parses :class:`~feeds.model.RawResponse`
bytes into a :class:`~feeds.model.ParseResult`; ``feeds.fetch`` moves the bytes.

Usage::

    source = build_source("vastai", SourceId("vastai"), {"min_reliability": 0.97}, os.environ)
    request = source.first_request()
    while request is not None:
        result = source.parse(send(request), now)   # send(): the fetcher's job
        request = result.next_request

``SOURCE_KINDS[kind]`` also tells the fetcher the polite ``rate_limit`` of each kind and
its ``default_base_url``; a built adapter exposes the same as ``source.rate_limit`` and
``source.base_url`` (see :func:`rate_limit_of`).

Errors: :func:`build_source` raises ``ConfigError`` for an unknown kind or bad options and
``MissingApiKey`` when an env var named in the options is unset or empty (the caller skips
that source with a log line). ``parse`` raises ``FetchError`` (HTTP status; 429 →
``rate_limited`` with Retry-After in ``detail``), ``ParseError`` (body not the expected
shape) or ``SourceConfigError`` (a ``ConfigError``: a response only a wrong configuration
explains, e.g. GCP's empty catalog), and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from feeds.errors import ConfigError
from feeds.model import PriceSource, SourceId
from feeds.sources import (
    akash,
    aws,
    azure,
    comparables,
    gcp,
    lambdalabs,
    oci,
    runpod,
    tensordock,
    vastai,
)
from feeds.sources._common import (
    PRICE_CONTEXT,
    SANITY_BANDS,
    RateLimit,
    SourceConfigError,
    SourceKind,
    SourceOptions,
)

__all__ = [
    "PRICE_CONTEXT",
    "SANITY_BANDS",
    "SOURCE_KINDS",
    "RateLimit",
    "SourceConfigError",
    "SourceKind",
    "SourceOptions",
    "build_source",
    "rate_limit_of",
]

SOURCE_KINDS: Mapping[str, SourceKind[Any]] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            vastai.KIND,
            runpod.KIND,
            azure.KIND,
            aws.PRICING_PAGE_KIND,
            aws.PRICE_LIST_KIND,
            gcp.KIND,
            oci.KIND,
            lambdalabs.KIND,
            tensordock.KIND,
            akash.KIND,
            comparables.KIND,
        )
    }
)


def build_source(
    kind: str, source_id: SourceId, options: Mapping[str, object], env: Mapping[str, str]
) -> PriceSource:
    """Build one adapter. ``options`` is the source's table from the feed config (without
    ``kind``); ``env`` is where API keys are read from, by the env var names in options."""
    try:
        entry = SOURCE_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(SOURCE_KINDS))
        raise ConfigError(f"source {source_id!r}: unknown kind {kind!r} (known: {known})") from None
    return entry.build(source_id, options, env)


def rate_limit_of(source: PriceSource) -> RateLimit:
    """The polite rate limit of a built adapter (every adapter here declares one)."""
    limit = getattr(source, "rate_limit", None)
    if not isinstance(limit, RateLimit):
        raise ConfigError(f"source {source.source_id!r} declares no rate limit")
    return limit
