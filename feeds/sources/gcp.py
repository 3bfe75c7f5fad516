"""Google Cloud Billing Catalog (API key): ``GET /v1/services/<Compute Engine>/skus``.

GCP prices GPUs per GPU-hour as separate SKUs ("Nvidia H100 80GB GPU running in
Americas", category.resourceGroup "GPU"), so no division by an instance size is needed.
A price is ``units + nanos / 10^9`` of the first tiered rate (``startUsageAmount`` 0) of
the first ``pricingInfo``; ``units`` is an int64 sent as a string. Pages continue via
``nextPageToken``. The API key travels in the ``X-Goog-Api-Key`` header rather than the
``key=`` query parameter, so it never appears in a logged or stored URL.

Options (``GcpOptions``):

``base_url``     default ``https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus``
``api_key_env``  env var holding the API key (default ``GCP_API_KEY``; required)
``page_size``    1..5000 (default 5000)

Rows whose resourceGroup is not ``GPU`` are skipped silently (the catalog lists every
Compute Engine SKU). Per-row outcomes: ``spot`` (usageType Preemptible), ``commitment``
(Commit1Yr / Commit3Yr), ``usage_type`` (anything else not OnDemand), ``unit`` (usage
unit not hours, or display quantity not 1), ``currency``, ``unknown_gpu``,
``absurd_price``, ``missing_field`` / ``wrong_type``.

An empty 200 answer (``{}`` or no SKUs and no next page) to the *first* request is what
the API returns for a wrong service id or a key without the catalog enabled: it raises
``SourceConfigError`` (a ``ConfigError``, reason ``empty_catalog``), not "no offers".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import Field

from feeds.model import HttpRequest, ParseResult, PriceKind, RawResponse, SourceId
from feeds.sources._common import (
    PRICE_CONTEXT,
    Adapter,
    Collector,
    RateLimit,
    RowError,
    RowScope,
    SourceConfigError,
    SourceKind,
    SourceOptions,
    add_prices,
    as_list,
    as_object,
    decode_object,
    get_int,
    get_list,
    get_object,
    get_opt_str,
    get_str,
    to_decimal,
)

_NANOS = 1_000_000_000


class GcpOptions(SourceOptions):
    api_key_env: str = Field(default="GCP_API_KEY", min_length=1)
    page_size: int = Field(default=5000, ge=1, le=5000)

    def secret_env_vars(self) -> tuple[str, ...]:
        return (self.api_key_env,)


class GcpSource(Adapter):
    # Cloud Billing API default quota: 300 catalog reads per minute per project.
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=2, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = (
        "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus"
    )

    def __init__(
        self, source_id: SourceId, options: GcpOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options
        self._api_key = secrets[options.api_key_env]

    def _request(self, page_token: str | None) -> HttpRequest:
        params = {"currencyCode": "USD", "pageSize": str(self.options.page_size)}
        if page_token:
            params["pageToken"] = page_token
        return HttpRequest(
            "GET",
            f"{self.base_url}?{urlencode(params, quote_via=quote)}",
            {"X-Goog-Api-Key": self._api_key, "Accept": "application/json"},
        )

    def first_request(self) -> HttpRequest:
        return self._request(None)

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            skus = as_list(doc.get("skus", []), "skus")
            token = get_opt_str(doc, "nextPageToken")
        first_page = "pageToken" not in parse_qs(urlsplit(response.request.url).query)
        if not skus and not token and first_page:
            raise SourceConfigError(
                self.source_id, "empty_catalog", "no SKUs: check the service id and API key"
            )
        for index, raw in enumerate(skus):
            with out.row(f"#{index}") as scope:
                self._sku(out, as_object(raw, "sku"), scope)
        return out.result(self._request(token) if token else None)

    def _sku(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        category = get_object(row, "category")
        if category.get("resourceGroup") != "GPU":
            return  # CPU, RAM, disk, network SKUs: not GPU listings
        scope.listing = get_str(row, "skuId")[:80]
        usage = get_str(category, "usageType")
        if usage == "Preemptible":
            raise RowError("spot")
        if usage in ("Commit1Yr", "Commit3Yr"):
            raise RowError("commitment", usage)
        if usage != "OnDemand":
            raise RowError("usage_type", usage[:40])
        match = out.resolve(get_str(row, "description"))
        infos = get_list(row, "pricingInfo")
        if not infos:
            raise RowError("missing_field", "pricingInfo is empty")
        info = as_object(infos[0], "pricingInfo[0]")
        expression = get_object(info, "pricingExpression")
        unit = get_str(expression, "usageUnit")
        quantity = expression.get("displayQuantity", 1)
        if unit != "h" or quantity != 1:
            raise RowError("unit", f"{quantity} {unit[:20]}")
        base_tier = None
        for tier_raw in get_list(expression, "tieredRates"):
            tier = as_object(tier_raw, "tieredRate")
            if to_decimal(tier.get("startUsageAmount", 0), "startUsageAmount") == 0:
                base_tier = tier
                break
        if base_tier is None:
            raise RowError("missing_field", "no tieredRate starting at 0")
        money = get_object(base_tier, "unitPrice")
        currency = get_str(money, "currencyCode")
        if currency != "USD":
            raise RowError("currency", currency[:10])
        units = to_decimal(money.get("units", "0"), "units", allow_str=True)
        nanos = get_int(money, "nanos") if "nanos" in money else 0
        if not units.is_finite() or units != units.to_integral_value() or abs(nanos) >= _NANOS:
            raise RowError("wrong_type", f"units={units} nanos={nanos}")
        attributes = {}
        regions = row.get("serviceRegions")
        if isinstance(regions, list):
            attributes["regions"] = ",".join(r for r in regions if isinstance(r, str))[:200]
        effective = info.get("effectiveTime")
        if isinstance(effective, str):
            attributes["effective_time"] = effective[:40]
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=add_prices(units, Decimal(nanos).scaleb(-9, PRICE_CONTEXT)),
            gpus=match.gpus,
            attributes=attributes,
        )


KIND: SourceKind[GcpOptions] = SourceKind(
    name="gcp",
    options_type=GcpOptions,
    adapter=GcpSource,
    rate_limit=GcpSource.RATE_LIMIT,
    default_base_url=GcpSource.DEFAULT_BASE_URL,
    summary="GCP Cloud Billing catalog GPU SKUs (API key); $/GPU-h = units + nanos/1e9",
)
