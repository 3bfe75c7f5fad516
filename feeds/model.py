"""Typed values that cross the feeds package's boundaries.

Adapters are sans-io (like h11): an adapter *builds* requests and *parses* responses;
``feeds.fetch`` moves the bytes. So every adapter is testable from recorded bytes
alone, and the fetcher is the only place that knows about aiohttp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NewType, Protocol

FeedId = NewType("FeedId", str)  # e.g. "H100-SXM/USD-HR"
ModelId = NewType("ModelId", str)  # canonical GPU model id, e.g. "H100-SXM"
SourceId = NewType("SourceId", str)  # e.g. "vastai", "azure"


class PriceKind(StrEnum):
    """What a price measures; the suffix of a feed id."""

    RENTAL_HOURLY = "USD-HR"  # USD per GPU-hour
    HARDWARE_NEW = "USD"  # USD per GPU, new hardware
    HARDWARE_USED = "USD-USED"  # USD per GPU, secondary market


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class RawResponse:
    """One HTTP response exactly as received; ``body`` is what gets hashed and stored."""

    request: HttpRequest
    status: int
    headers: Mapping[str, str]
    body: bytes
    fetched_at: datetime


@dataclass(frozen=True)
class Offer:
    """One usable price point, normalised to USD per GPU(-hour)."""

    source: SourceId
    model: ModelId
    kind: PriceKind
    price: Decimal  # per GPU: USD/GPU-hour for rentals, USD/GPU for hardware
    gpus: int  # GPUs in the provider's listing (the price above is already divided)
    listing: str  # provider's listing / SKU / offer id, for audit
    observed_at: datetime | None = None  # the provider's own timestamp, if it gives one
    attributes: Mapping[str, str] = field(default_factory=dict)  # region, tier, ...


@dataclass(frozen=True)
class Rejection:
    """A listing the adapter saw and deliberately did not use, and why."""

    source: SourceId
    listing: str
    reason: str  # short stable label: "spot", "windows", "unreliable", "absurd_price", ...
    detail: str = ""


@dataclass(frozen=True)
class ParseResult:
    offers: tuple[Offer, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    unknown_names: tuple[str, ...] = ()  # provider GPU names the registry did not know
    next_request: HttpRequest | None = None  # pagination: fetch this next, then parse again


class PriceSource(Protocol):
    """A provider adapter. Pure: no I/O, no clock reads (time is passed in)."""

    @property
    def source_id(self) -> SourceId: ...

    def first_request(self) -> HttpRequest:
        """The first request to send; pagination continues via ``ParseResult.next_request``."""
        ...

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        """Parse one response. Raises ``ParseError`` for a body of the wrong shape,
        ``FetchError`` for an HTTP error status; never lets another exception out."""
        ...
