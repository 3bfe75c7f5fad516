"""Oracle Cloud price list (keyless): ``GET /pls/apex/cetools/api/v1/products/?currencyCode=USD``.

OCI prices GPU shapes per GPU-hour already (``metricName "GPU Per Hour"``), named by part
("Oracle Cloud Infrastructure - Compute - GPU - H100"); the registry maps those part names
(OCI sells one form factor per part: H100 = BM.GPU.H100.8, SXM5). The pay-as-you-go USD
price of each part is the offer.

Options (``OciOptions``):

``base_url``  default ``https://apexapps.oracle.com/pls/apex/cetools/api/v1/products/``

Items whose ``serviceCategory`` does not start with "Compute - GPU" are skipped
silently (the list holds every OCI product). Per-row outcomes: ``unit`` (metric not
"GPU Per Hour"), ``currency`` (no USD localisation), ``unavailable`` (no PAY_AS_YOU_GO
price), ``unknown_gpu`` (e.g. "H100T", whose form factor we do not know), ``absurd_price``,
``missing_field`` / ``wrong_type``. A body without an ``items`` list is a ``ParseError``.
If the answer says ``hasMore`` with a ``links`` entry ``rel: next``, its query string is
followed on the configured endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

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
    get_str,
    listing_id,
)


class OciOptions(SourceOptions):
    pass


class OciSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = (
        "https://apexapps.oracle.com/pls/apex/cetools/api/v1/products/"
    )

    def __init__(
        self, source_id: SourceId, options: OciOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def _request(self, query: str) -> HttpRequest:
        return HttpRequest("GET", f"{self.base_url}?{query}", {"Accept": "application/json"})

    def first_request(self) -> HttpRequest:
        return self._request("currencyCode=USD")

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        next_request = None
        with out.body():
            items = get_list(doc, "items")
            if doc.get("hasMore") is True:
                for link_raw in get_list(doc, "links"):
                    link = as_object(link_raw, "link")
                    if link.get("rel") == "next":
                        query = urlsplit(get_str(link, "href")).query
                        if not query:
                            raise RowError("wrong_type", "next link without a query")
                        next_request = self._request(query)
        for index, raw in enumerate(items):
            with out.row(f"#{index}") as scope:
                self._item(out, as_object(raw, "item"), scope)
        return out.result(next_request)

    def _item(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        category = row.get("serviceCategory")
        if not isinstance(category, str) or not category.startswith("Compute - GPU"):
            return  # not a GPU product
        scope.listing = listing_id(row.get("partNumber"))
        metric = get_str(row, "metricName")
        if metric != "GPU Per Hour":
            raise RowError("unit", metric[:40])
        match = out.resolve(get_str(row, "displayName"))
        usd = None
        for loc_raw in get_list(row, "currencyCodeLocalizations"):
            loc = as_object(loc_raw, "currencyCodeLocalization")
            if loc.get("currencyCode") == "USD":
                usd = loc
                break
        if usd is None:
            raise RowError("currency", "no USD price")
        price = None
        for price_raw in get_list(usd, "prices"):
            entry = as_object(price_raw, "price")
            if entry.get("model") == "PAY_AS_YOU_GO":
                price = get_decimal(entry, "value")
                break
        if price is None:
            raise RowError("unavailable", "no PAY_AS_YOU_GO price")
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=price,
            gpus=match.gpus,
            attributes={"category": category[:60]},
        )


KIND: SourceKind[OciOptions] = SourceKind(
    name="oci",
    options_type=OciOptions,
    adapter=OciSource,
    rate_limit=OciSource.RATE_LIMIT,
    default_base_url=OciSource.DEFAULT_BASE_URL,
    summary="Oracle Cloud price list (keyless); GPU parts priced per GPU-hour",
)
