"""vast.ai marketplace bundles (keyless): ``GET /api/v0/bundles/?q=<JSON query>``.

One request returns up to ``limit`` offers; each offer rents ``num_gpus`` whole GPUs for
``dph_total`` USD/hour (GPU + disk), so the per-GPU price is ``dph_total / num_gpus``.
There is no pagination.

Options (``VastAiOptions``):

``base_url``          default ``https://console.vast.ai/api/v0/bundles/``
``gpu_names``         vast.ai ``gpu_name`` values to ask for (server-side filter)
``min_reliability``   offers below are rejected ``unreliable`` (default 0.95)
``require_verified``  reject ``verification != "verified"`` as ``unverified`` (default true)
``limit``             max offers per request, 1..5000 (default 1000)

Per-row outcomes, checked in this order: ``not_rentable`` (rentable false or rented),
``spot`` (interruptible bid offers), ``fractional`` (gpu_frac != 1), ``unverified``,
``unreliable``, then the GPU name (``unknown_gpu`` / ``mig``) and the price
(``absurd_price``). A missing field or a wrong type rejects the row (``missing_field`` /
``wrong_type``); a body without an ``offers`` list is a ``ParseError``.

vast.ai names the A100 SXM4 40 GB and 80 GB parts alike ("A100 SXM4"); the adapter
then retries the name with the memory size from ``gpu_ram`` (MiB), e.g. "A100 SXM4 80GB",
so the registry — never a guess — decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from urllib.parse import quote

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
    get_bool,
    get_decimal,
    get_int,
    get_list,
    get_opt_decimal,
    get_opt_str,
    get_str,
    listing_id,
)

DEFAULT_GPU_NAMES = (
    "H200",
    "H100 SXM",
    "H100 PCIE",
    "H100 NVL",
    "A100 SXM4",
    "A100 PCIE",
    "L40S",
    "L4",
    "A10",
    "RTX 4090",
    "RTX 5090",
)


class VastAiOptions(SourceOptions):
    gpu_names: tuple[str, ...] = Field(default=DEFAULT_GPU_NAMES, min_length=1)
    min_reliability: Decimal = Field(default=Decimal("0.95"), ge=0, le=1)
    require_verified: bool = True
    limit: int = Field(default=1000, ge=1, le=5000)


class VastAiSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=2.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://console.vast.ai/api/v0/bundles/"

    def __init__(
        self, source_id: SourceId, options: VastAiOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def first_request(self) -> HttpRequest:
        query = {
            "gpu_name": {"in": list(self.options.gpu_names)},
            "rentable": {"eq": True},
            "gpu_frac": {"eq": 1},
            "type": "on-demand",
            "limit": self.options.limit,
        }
        q = json.dumps(query, sort_keys=True, separators=(",", ":"))
        return HttpRequest(
            "GET",
            f"{self.base_url}?q={quote(q, safe='')}",
            {"Accept": "application/json"},
        )

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        with out.body():
            offers = get_list(doc, "offers")
        for index, raw in enumerate(offers):
            with out.row(f"#{index}") as scope:
                self._offer(out, as_object(raw, "offer"), scope)
        return out.result()

    def _offer(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        scope.listing = listing_id(row.get("id"))
        opts = self.options
        if not get_bool(row, "rentable") or row.get("rented") is True:
            raise RowError("not_rentable")
        if row.get("is_bid") is True:
            raise RowError("spot", "interruptible bid offer")
        frac = get_opt_decimal(row, "gpu_frac")
        if frac is not None and frac != 1:
            raise RowError("fractional", f"gpu_frac={frac}")
        verification = get_opt_str(row, "verification") or ""
        if opts.require_verified and verification != "verified":
            raise RowError("unverified", verification)
        reliability = get_decimal(row, "reliability")
        if not reliability.is_finite() or reliability < opts.min_reliability:
            raise RowError("unreliable", f"{reliability} < {opts.min_reliability}")
        name = get_str(row, "gpu_name")
        gpu_ram = row.get("gpu_ram")
        fallbacks: tuple[str, ...] = ()
        if isinstance(gpu_ram, int) and not isinstance(gpu_ram, bool) and gpu_ram > 0:
            fallbacks = (f"{name} {(gpu_ram + 512) // 1024}GB",)
        match = out.resolve(name, *fallbacks)
        num_gpus = get_int(row, "num_gpus")
        if num_gpus <= 0:
            raise RowError("wrong_type", f"num_gpus={num_gpus}")
        attributes = {"verification": verification}
        geolocation = row.get("geolocation")
        if isinstance(geolocation, str):
            attributes["location"] = geolocation[:100]
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=get_decimal(row, "dph_total"),
            gpus=num_gpus * match.gpus,
            attributes=attributes,
        )


KIND: SourceKind[VastAiOptions] = SourceKind(
    name="vastai",
    options_type=VastAiOptions,
    adapter=VastAiSource,
    rate_limit=VastAiSource.RATE_LIMIT,
    default_base_url=VastAiSource.DEFAULT_BASE_URL,
    summary="vast.ai marketplace bundles (keyless); per-GPU = dph_total / num_gpus",
)
