"""Azure Retail Prices API (keyless): ``GET /api/retail/prices?$filter=...``.

Rows are priced per VM-hour (``unitOfMeasure "1 Hour"``); the per-GPU price is
``retailPrice / GPUs in the armSkuName`` (from the registry: Standard_ND96isr_H100_v5 = 8).
Pages continue via ``NextPageLink``. Only its *query string* is followed, re-applied to the
configured endpoint: the link names the public host, and a local replay server or a
proxy given as ``base_url`` must keep receiving the follow-up requests (it also means a
response can never steer us to another host).

Options (``AzureOptions``):

``base_url``        default ``https://prices.azure.com/api/retail/prices``
``arm_sku_names``   VM sizes to ask for (default: the GPU sizes the registry knows)
``regions``         ``armRegionName`` values; empty (default) = every region

Only Linux on-demand rows become offers. Per-row outcomes: ``reservation`` (type
Reservation — its retailPrice is the lump sum for the whole term, not an hourly price),
``dev_test`` (DevTestConsumption), ``windows`` (productName contains Windows), ``spot``,
``low_priority`` (meter/sku name), ``currency`` (not USD), ``unit`` (not "1 Hour"),
``unknown_gpu``, ``absurd_price``; ``missing_field`` / ``wrong_type`` for a bad row.
A body without an ``Items`` list, or a ``NextPageLink`` that is not a string/null, is a
``ParseError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar
from urllib.parse import quote, urlencode, urlsplit

from pydantic import Field

from feeds.errors import ParseError
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
    get_list,
    get_opt_str,
    get_str,
)

DEFAULT_ARM_SKUS = (
    "Standard_ND96isr_H100_v5",
    "Standard_ND96isr_H200_v5",
    "Standard_NC40ads_H100_v5",
    "Standard_NC80adis_H100_v5",
    "Standard_ND96asr_v4",
    "Standard_ND96amsr_A100_v4",
    "Standard_NC24ads_A100_v4",
    "Standard_NC48ads_A100_v4",
    "Standard_NC96ads_A100_v4",
    "Standard_ND96is_MI300X_v5",
    "Standard_NV36ads_A10_v5",
    "Standard_NV72ads_A10_v5",
)


def _odata_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class AzureOptions(SourceOptions):
    arm_sku_names: tuple[str, ...] = Field(default=DEFAULT_ARM_SKUS, min_length=1)
    regions: tuple[str, ...] = ()


class AzureSource(Adapter):
    # The API is unauthenticated and unmetered but throttles bursts (HTTP 429).
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=2, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://prices.azure.com/api/retail/prices"

    def __init__(
        self, source_id: SourceId, options: AzureOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def _filter(self) -> str:
        skus = " or ".join(f"armSkuName eq {_odata_literal(s)}" for s in self.options.arm_sku_names)
        clauses = [
            "serviceName eq 'Virtual Machines'",
            "priceType eq 'Consumption'",
            f"({skus})",
        ]
        if self.options.regions:
            regions = " or ".join(
                f"armRegionName eq {_odata_literal(r)}" for r in self.options.regions
            )
            clauses.append(f"({regions})")
        return " and ".join(clauses)

    def _request(self, query: str) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}?{query}", {"Accept": "application/json"})

    def first_request(self) -> HttpRequest:
        query = urlencode({"currencyCode": "USD", "$filter": self._filter()}, quote_via=quote)
        return self._request(query)

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            items = get_list(doc, "Items")
            link = get_opt_str(doc, "NextPageLink")
        for index, raw in enumerate(items):
            with out.row(f"#{index}") as scope:
                self._item(out, as_object(raw, "item"), scope)
        next_request = None
        if link:
            query = urlsplit(link).query
            if not query:  # a next link that cannot advance would loop forever
                raise ParseError(
                    self.source_id, "bad_shape", f"NextPageLink without query: {link[:80]}"
                )
            next_request = self._request(query)
        return out.result(next_request)

    def _item(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        sku = get_str(row, "armSkuName")
        region = get_str(row, "armRegionName")
        scope.listing = f"{sku}@{region}#{get_str(row, 'skuId')[:80]}"
        price_type = get_str(row, "type")
        if price_type == "Reservation":
            raise RowError("reservation", get_opt_str(row, "reservationTerm") or "")
        if price_type == "DevTestConsumption":
            raise RowError("dev_test")
        if price_type != "Consumption":
            raise RowError("price_type", price_type[:40])
        if "windows" in get_str(row, "productName").lower():
            raise RowError("windows")
        meter = f"{get_str(row, 'meterName')} {get_opt_str(row, 'skuName') or ''}".lower()
        if "spot" in meter:
            raise RowError("spot")
        if "low priority" in meter:
            raise RowError("low_priority")
        currency = get_str(row, "currencyCode")
        if currency != "USD":
            raise RowError("currency", currency[:10])
        unit = get_str(row, "unitOfMeasure")
        if unit != "1 Hour":
            raise RowError("unit", unit[:20])
        match = out.resolve(sku)
        attributes = {"region": region[:40]}
        start = get_opt_str(row, "effectiveStartDate")
        if start:
            attributes["effective_start"] = start[:40]
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=get_decimal(row, "retailPrice"),
            gpus=match.gpus,
            attributes=attributes,
        )


KIND: SourceKind[AzureOptions] = SourceKind(
    name="azure",
    options_type=AzureOptions,
    adapter=AzureSource,
    rate_limit=AzureSource.RATE_LIMIT,
    default_base_url=AzureSource.DEFAULT_BASE_URL,
    summary="Azure Retail Prices (keyless); Linux on-demand, per-GPU = retailPrice / GPUs in SKU",
)
