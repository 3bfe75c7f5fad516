"""AWS EC2 on-demand prices, in two shapes (two source kinds).

Both price whole instances per hour; the per-GPU price is ``instance price / GPUs in the
instance type`` (from the registry: p5.48xlarge = 8 × H100-SXM, p4d.24xlarge = 8 ×
A100-SXM-40GB). Only Linux, shared-tenancy, no-preinstalled-software, on-demand rows are
used. Instance families other than "GPU instance" are skipped silently (they are not GPU
listings); GPU instance types the registry does not know (g5 = A10G, p6 = B200, ...)
are reported as ``unknown_gpu`` so the table can be extended on purpose.

Kind ``aws_pricing_page`` — the keyless JSON behind the EC2 pricing page
(``.../ec2-ondemand-without-sec-sel/<location>/<os>/index.json``). One request per
location; the next location is the ``next_request`` of the previous one. Options
(``AwsPricingPageOptions``):

``base_url``          default ``https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/ec2/USD/current/ec2-ondemand-without-sec-sel``
``locations``         AWS location names (default US East (N. Virginia), US West (Oregon))
``operating_system``  path segment and row filter (default ``Linux``)

Rows: ``price`` is a decimal STRING in USD per instance-hour. Outcomes: ``os``,
``preinstalled_software``, ``unknown_gpu``, ``absurd_price``, ``missing_field`` /
``wrong_type``. A body without a ``regions`` object is a ``ParseError``. The parser
finds its place in the location list from ``response.request.url``, so the fetcher must
hand back the request it sent.

Kind ``aws_pricelist`` — the documented Price List Query API ``GetProducts``
(``POST`` JSON 1.1, ``X-Amz-Target: AWSPriceListService.GetProducts``). ``PriceList``
holds JSON *strings*, each parsed a second time (with Decimal numbers). Paginated with
``NextToken``. Options (``AwsPriceListOptions``):

``base_url``     default ``https://api.pricing.us-east-1.amazonaws.com/``
``location``     TERM_MATCH on ``location`` (default ``US East (N. Virginia)``)
``max_results``  1..100 (default 100)

Outcomes: ``invalid_json`` (one PriceList string that does not parse), ``os``,
``tenancy``, ``preinstalled_software``, ``capacity_reservation`` (capacitystatus other
than Used), ``reservation`` (no OnDemand term), ``unit`` (no hourly dimension),
``ambiguous_price`` (several different hourly prices), ``unknown_gpu``,
``absurd_price``. NOTE: the real endpoint requires AWS SigV4 signing, which needs
credentials and the current time; this sans-io adapter emits the *unsigned* request, so
it must be sent through a signing proxy given as ``base_url`` (or a signing fetcher).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from urllib.parse import quote

from pydantic import Field

from aggregation import jsonsafe
from aggregation.errors import EncodingError
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
    get_object,
    get_opt_str,
    get_str,
    json_body,
)

# --- the pricing-page JSON -----------------------------------------------------------


class AwsPricingPageOptions(SourceOptions):
    locations: tuple[str, ...] = Field(
        default=("US East (N. Virginia)", "US West (Oregon)"), min_length=1
    )
    operating_system: str = Field(default="Linux", pattern=r"^[A-Za-z0-9 ]{1,40}$")


def _quote_segment(value: str) -> str:
    # The pricing site keeps parentheses literal: ".../US%20East%20(N.%20Virginia)/...".
    return quote(value, safe="()")


class AwsPricingPageSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = (
        "https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/ec2/USD/current/"
        "ec2-ondemand-without-sec-sel"
    )

    def __init__(
        self, source_id: SourceId, options: AwsPricingPageOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options
        base = self.base_url.rstrip("/")
        os_name = _quote_segment(options.operating_system)
        self._requests = tuple(
            HttpRequest(
                "GET",
                f"{base}/{_quote_segment(loc)}/{os_name}/index.json",
                {"Accept": "application/json"},
            )
            for loc in options.locations
        )

    def first_request(self) -> HttpRequest:
        return self._requests[0]

    def _next_after(self, request: HttpRequest) -> HttpRequest | None:
        urls = [r.url for r in self._requests]
        if request.url in urls:
            index = urls.index(request.url) + 1
            if index < len(self._requests):
                return self._requests[index]
        return None

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            regions = get_object(doc, "regions")
            locations = [(str(k), as_object(v, f"regions.{k}")) for k, v in regions.items()]
        for location, rows in locations:
            for key, raw in rows.items():
                with out.row(f"{str(key)[:80]}@{location[:40]}") as scope:
                    self._row(out, as_object(raw, "row"), location, scope)
        return out.result(self._next_after(response.request))

    def _row(
        self, out: Collector, row: Mapping[str, object], location: str, scope: RowScope
    ) -> None:
        if row.get("Instance Family") != "GPU instance":
            return  # not a GPU listing: nothing to price, nothing to reject
        instance = get_str(row, "Instance Type")
        scope.listing = f"{instance[:60]}@{location[:40]}"
        os_name = get_str(row, "Operating System")
        if os_name != self.options.operating_system:
            raise RowError("os", os_name[:40])
        software = get_opt_str(row, "Pre Installed S/W") or "NA"
        if software != "NA":
            raise RowError("preinstalled_software", software[:40])
        match = out.resolve(instance)
        attributes = {"location": location[:60]}
        rate_code = row.get("rateCode")
        if isinstance(rate_code, str):
            attributes["rate_code"] = rate_code[:80]
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=get_decimal(row, "price", allow_str=True),
            gpus=match.gpus,
            attributes=attributes,
        )


# --- the Price List Query API (GetProducts) -------------------------------------------


class AwsPriceListOptions(SourceOptions):
    location: str = Field(default="US East (N. Virginia)", min_length=1)
    max_results: int = Field(default=100, ge=1, le=100)


class AwsPriceListSource(Adapter):
    # GetProducts is throttled per account (a few TPS); stay well below.
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.pricing.us-east-1.amazonaws.com/"

    def __init__(
        self, source_id: SourceId, options: AwsPriceListOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def _request(self, next_token: str | None) -> HttpRequest:
        filters = [
            {"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in (
                ("productFamily", "Compute Instance"),
                ("instanceFamily", "GPU instance"),
                ("location", self.options.location),
                ("operatingSystem", "Linux"),
                ("tenancy", "Shared"),
                ("preInstalledSw", "NA"),
                ("capacitystatus", "Used"),
            )
        ]
        payload: dict[str, object] = {
            "ServiceCode": "AmazonEC2",
            "FormatVersion": "aws_v1",
            "MaxResults": self.options.max_results,
            "Filters": filters,
        }
        if next_token:
            payload["NextToken"] = next_token
        return HttpRequest(
            "POST",
            self.base_url,
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AWSPriceListService.GetProducts",
                "Accept": "application/json",
            },
            json_body(payload),
        )

    def first_request(self) -> HttpRequest:
        return self._request(None)

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            entries = get_list(doc, "PriceList")
            token = get_opt_str(doc, "NextToken")
        for index, raw in enumerate(entries):
            with out.row(f"#{index}") as scope:
                self._entry(out, raw, scope)
        return out.result(self._request(token) if token else None)

    def _entry(self, out: Collector, raw: object, scope: RowScope) -> None:
        if not isinstance(raw, str):
            raise RowError("wrong_type", "PriceList entry is not a JSON string")
        try:
            decoded = jsonsafe.loads(raw, parse_float=Decimal, parse_constant=Decimal)
        except (ValueError, RecursionError, EncodingError) as exc:
            raise RowError("invalid_json", str(exc)[:120]) from None
        item = as_object(decoded, "PriceList entry")
        product = get_object(item, "product")
        scope.listing = get_str(product, "sku")[:80]
        attrs = get_object(product, "attributes")
        instance = get_str(attrs, "instanceType")
        scope.listing = f"{instance[:60]}#{scope.listing}"
        for field, wanted, reason in (
            ("operatingSystem", "Linux", "os"),
            ("tenancy", "Shared", "tenancy"),
            ("preInstalledSw", "NA", "preinstalled_software"),
            ("capacitystatus", "Used", "capacity_reservation"),
        ):
            value = get_str(attrs, field)
            if value != wanted:
                raise RowError(reason, value[:40])
        terms = get_object(item, "terms")
        on_demand = terms.get("OnDemand")
        if not on_demand:
            raise RowError("reservation", "no OnDemand term")
        prices: set[Decimal] = set()
        for term in as_object(on_demand, "terms.OnDemand").values():
            dims = get_object(as_object(term, "term"), "priceDimensions")
            for dim_raw in dims.values():
                dim = as_object(dim_raw, "priceDimension")
                if get_str(dim, "unit") != "Hrs":
                    continue
                begin = get_opt_str(dim, "beginRange") or "0"
                if begin != "0":
                    continue  # a volume tier, not the list price
                prices.add(get_decimal(get_object(dim, "pricePerUnit"), "USD", allow_str=True))
        if not prices:
            raise RowError("unit", "no hourly USD price dimension")
        if len(prices) > 1:
            raise RowError("ambiguous_price", ", ".join(sorted(map(str, prices)))[:120])
        match = out.resolve(instance)
        location = get_opt_str(attrs, "location") or ""
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=prices.pop(),
            gpus=match.gpus,
            attributes={"location": location[:60]},
        )


PRICING_PAGE_KIND: SourceKind[AwsPricingPageOptions] = SourceKind(
    name="aws_pricing_page",
    options_type=AwsPricingPageOptions,
    adapter=AwsPricingPageSource,
    rate_limit=AwsPricingPageSource.RATE_LIMIT,
    default_base_url=AwsPricingPageSource.DEFAULT_BASE_URL,
    summary="AWS EC2 pricing-page JSON (keyless); per-GPU = instance price / GPUs",
)

PRICE_LIST_KIND: SourceKind[AwsPriceListOptions] = SourceKind(
    name="aws_pricelist",
    options_type=AwsPriceListOptions,
    adapter=AwsPriceListSource,
    rate_limit=AwsPriceListSource.RATE_LIMIT,
    default_base_url=AwsPriceListSource.DEFAULT_BASE_URL,
    summary="AWS Price List GetProducts (needs SigV4 via a signing proxy); per-GPU = price / GPUs",
)
