"""Akash Console GPU prices (keyless): ``GET /v1/gpu-prices``.

Akash is a reverse-auction market; the console indexes the bids of about the last 31
days per GPU model and publishes statistics in USD per GPU-hour (``price.min``, ``max``,
``avg``, ``weightedAverage``, ``med``). One offer per model, using the configured
statistic. The GPU name is built from ``model``, ``ram`` ("80Gi" → "80GB") and
``interface`` ("SXM5"), e.g. "h100 80GB SXM5", falling back to "h100 SXM5"; a bare model
("h100") is never enough, since it does not say SXM or PCIe. The console is cached for
300 s by Cloudflare and cold misses are slow, so the polite rate is low.

Options (``AkashOptions``):

``base_url``       default ``https://console-api.akash.network/v1/gpu-prices``
``statistic``      ``med`` (default), ``weightedAverage``, ``avg``, ``min`` or ``max``
``min_bid_count``  models with fewer bids are rejected ``no_bids`` (default 1)

Per-row outcomes: ``no_bids``, ``currency`` (price.currency not USD), ``unknown_gpu``,
``absurd_price``, ``missing_field`` / ``wrong_type``. A body without a ``models`` list is a
``ParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from feeds.model import HttpRequest, ParseResult, PriceKind, RawResponse, SourceId
from feeds.sources._common import (
    Adapter,
    Collector,
    RateLimit,
    RowError,
    RowScope,
    SourceKind,
    SourceOptions,
    as_object,
    decode_object,
    get_decimal,
    get_int,
    get_list,
    get_object,
    get_opt_str,
    get_str,
)

_RAM = re.compile(r"^\s*([0-9]{1,4})\s*(?:gi|gib|gb|g)\s*$", re.IGNORECASE)


class AkashOptions(SourceOptions):
    statistic: Literal["med", "weightedAverage", "avg", "min", "max"] = "med"
    min_bid_count: int = Field(default=1, ge=0)


class AkashSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=10.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://console-api.akash.network/v1/gpu-prices"

    def __init__(
        self, source_id: SourceId, options: AkashOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def first_request(self) -> HttpRequest:
        return HttpRequest("GET", self.base_url, {"Accept": "application/json"})

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            models = get_list(doc, "models")
        for index, raw in enumerate(models):
            with out.row(f"#{index}") as scope:
                self._model(out, as_object(raw, "model"), scope)
        return out.result()

    def _model(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        vendor = get_str(row, "vendor")
        model = get_str(row, "model")
        ram = get_opt_str(row, "ram") or ""
        interface = get_opt_str(row, "interface") or ""
        scope.listing = "/".join(p[:30] for p in (vendor, model, ram, interface))
        if get_int(row, "bidCount") < self.options.min_bid_count:
            raise RowError("no_bids")
        size = _RAM.match(ram)
        name = " ".join(p for p in (vendor, model, f"{size[1]}GB" if size else "", interface) if p)
        short = " ".join(p for p in (vendor, model, interface) if p)
        match = out.resolve(name, short)
        price = get_object(row, "price")
        currency = get_str(price, "currency")
        if currency != "USD":
            raise RowError("currency", currency[:10])
        value = price.get(self.options.statistic)
        if value is None:
            raise RowError("no_bids", f"price.{self.options.statistic} is null")
        attributes: dict[str, str] = {"statistic": self.options.statistic}
        availability = row.get("availability")
        if isinstance(availability, dict):
            available = availability.get("available")
            if isinstance(available, int) and not isinstance(available, bool):
                attributes["available_gpus"] = str(available)
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=get_decimal(price, self.options.statistic),
            gpus=match.gpus,
            attributes=attributes,
        )


KIND: SourceKind[AkashOptions] = SourceKind(
    name="akash",
    options_type=AkashOptions,
    adapter=AkashSource,
    rate_limit=AkashSource.RATE_LIMIT,
    default_base_url=AkashSource.DEFAULT_BASE_URL,
    summary="Akash Console GPU bid statistics (keyless); $/GPU-h, median by default",
)
