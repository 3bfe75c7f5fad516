"""RunPod GraphQL ``gpuTypes`` (API key): ``POST /graphql`` with a ``{"query": ...}`` body.

RunPod prices are already USD per GPU-hour. Each GPU type yields one listing per cloud
tier: ``securePrice`` (Secure Cloud, on-demand) and ``communityPrice`` (Community Cloud,
on-demand). Spot prices (``secureSpotPrice`` / ``communitySpotPrice``) are interruptible
and are never used. The API key goes in ``Authorization: Bearer`` (as runpod-python does),
not in the URL, so it never ends up in logs or stored request lines.

Options (``RunPodOptions``):

``base_url``     default ``https://api.runpod.io/graphql``
``api_key_env``  env var holding the API key (default ``RUNPOD_API_KEY``; required)
``tiers``        which tiers become listings: ``secure``, ``community`` (default both)

Per-listing outcomes: ``unavailable`` (tier flag false or price null), ``mig``,
``unknown_gpu``, ``absurd_price`` (incl. the 0 RunPod sends for types without stock);
``missing_field`` / ``wrong_type`` for a bad row. A GraphQL ``errors`` answer without
data is a ``FetchError`` (reason ``api_error``); a body without ``data.gpuTypes`` is a
``ParseError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from feeds.errors import FetchError
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
    get_list,
    get_object,
    get_opt_decimal,
    get_str,
    json_body,
    listing_id,
)

QUERY = (
    "query GpuTypes { gpuTypes { id displayName manufacturer memoryInGb secureCloud "
    "communityCloud securePrice communityPrice secureSpotPrice communitySpotPrice } }"
)

Tier = Literal["secure", "community"]


class RunPodOptions(SourceOptions):
    api_key_env: str = Field(default="RUNPOD_API_KEY", min_length=1)
    tiers: tuple[Tier, ...] = Field(default=("secure", "community"), min_length=1)

    def secret_env_vars(self) -> tuple[str, ...]:
        return (self.api_key_env,)


class RunPodSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.runpod.io/graphql"

    def __init__(
        self, source_id: SourceId, options: RunPodOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options
        self._api_key = secrets[options.api_key_env]

    def first_request(self) -> HttpRequest:
        return HttpRequest(
            "POST",
            self.base_url,
            {
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json_body({"query": QUERY}),
        )

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        errors = doc.get("errors")
        if errors and not doc.get("data"):
            first = errors[0] if isinstance(errors, list) and errors else errors
            message = first.get("message") if isinstance(first, dict) else first
            raise FetchError(self.source_id, "api_error", str(message)[:200])
        out = Collector(self.source_id)
        with out.body():
            types = get_list(get_object(doc, "data"), "gpuTypes")
        for index, raw in enumerate(types):
            with out.row(f"#{index}") as scope:
                self._gpu_type(out, as_object(raw, "gpuType"), scope)
        return out.result()

    def _gpu_type(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        gpu_id = listing_id(row.get("id"))
        scope.listing = gpu_id
        match = out.resolve(get_str(row, "id"))
        for tier in self.options.tiers:
            with out.row(f"{gpu_id}/{tier}") as listing:
                available = row.get(f"{tier}Cloud")
                price = get_opt_decimal(row, f"{tier}Price")
                if available is False or price is None:
                    raise RowError("unavailable", f"{tier} cloud")
                out.offer(
                    listing=listing.listing,
                    model=match.model,
                    kind=PriceKind.RENTAL_HOURLY,
                    total=price,
                    gpus=match.gpus,
                    attributes={"tier": tier},
                )


KIND: SourceKind[RunPodOptions] = SourceKind(
    name="runpod",
    options_type=RunPodOptions,
    adapter=RunPodSource,
    rate_limit=RunPodSource.RATE_LIMIT,
    default_base_url=RunPodSource.DEFAULT_BASE_URL,
    summary="RunPod GraphQL gpuTypes (API key); secure/community on-demand $/GPU-h",
)
