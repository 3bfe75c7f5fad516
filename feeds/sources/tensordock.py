"""TensorDock marketplace (API key), two API generations behind one kind.

``api = "v2"`` (default): ``GET /api/v2/locations`` with ``Authorization: Bearer
<token>``; ``data.locations[].gpus[]`` carry ``price_per_hr`` per GPU (GPU only: vCPU,
RAM and storage are priced separately and not included). Rate limited by TensorDock at
100 requests per minute per organisation.

``api = "v0"`` (legacy): ``GET /api/v0/client/deploy/hostnodes?api_key=..&api_token=..``
(the legacy API only accepts the key pair in the query string, so that URL is secret:
the fetcher must not log it); ``hostnodes.<id>.specs.gpu.<v0 name>`` carry ``price``
per GPU-hour and ``amount`` available.

Options (``TensorDockOptions``):

``base_url``       default ``https://dashboard.tensordock.com/api/v2/locations`` (v2) or
                   ``https://marketplace.tensordock.com/api/v0/client/deploy/hostnodes`` (v0)
``api``            ``v2`` (default) or ``v0``
``api_key_env``    env var of the v2 bearer token / v0 api_key (default ``TENSORDOCK_API_KEY``)
``api_token_env``  env var of the v0 api_token (default ``TENSORDOCK_API_TOKEN``; v0 only)

One offer per (location or host node, GPU model). Per-row outcomes: ``unavailable``
(max_count / amount 0), ``offline`` (v0 host node not listed or not online),
``unknown_gpu``, ``mig``, ``absurd_price``, ``missing_field`` / ``wrong_type``. A body
without ``data.locations`` (v2) or ``hostnodes`` (v0) is a ``ParseError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, Literal
from urllib.parse import quote, urlencode

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
    listing_id,
)

V0_BASE_URL = "https://marketplace.tensordock.com/api/v0/client/deploy/hostnodes"


class TensorDockOptions(SourceOptions):
    api: Literal["v2", "v0"] = "v2"
    api_key_env: str = Field(default="TENSORDOCK_API_KEY", min_length=1)
    api_token_env: str = Field(default="TENSORDOCK_API_TOKEN", min_length=1)

    def secret_env_vars(self) -> tuple[str, ...]:
        if self.api == "v0":
            return (self.api_key_env, self.api_token_env)
        return (self.api_key_env,)


class TensorDockSource(Adapter):
    # v2 allows 100/min per organisation; v0 asks for "e.g. 1 request per second".
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://dashboard.tensordock.com/api/v2/locations"

    def __init__(
        self, source_id: SourceId, options: TensorDockOptions, secrets: Mapping[str, str]
    ) -> None:
        default = V0_BASE_URL if options.api == "v0" else self.DEFAULT_BASE_URL
        super().__init__(source_id, options.base_url or default)
        self.options = options
        self._key = secrets[options.api_key_env]
        self._token = secrets.get(options.api_token_env, "")

    def first_request(self) -> HttpRequest:
        if self.options.api == "v0":
            query = urlencode({"api_key": self._key, "api_token": self._token}, quote_via=quote)
            return HttpRequest("GET", f"{self.base_url}?{query}", {"Accept": "application/json"})
        return HttpRequest(
            "GET",
            self.base_url,
            {"Authorization": f"Bearer {self._key}", "Accept": "application/json"},
        )

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        out = Collector(self.source_id)
        if self.options.api == "v0":
            self._parse_v0(out, doc)
        else:
            self._parse_v2(out, doc)
        return out.result()

    # --- v2 ---------------------------------------------------------------------

    def _parse_v2(self, out: Collector, doc: Mapping[str, object]) -> None:
        with out.body():
            locations = get_list(get_object(doc, "data"), "locations")
        for index, raw in enumerate(locations):
            with out.row(f"location#{index}") as scope:
                location = as_object(raw, "location")
                loc_id = listing_id(location.get("id"))
                scope.listing = loc_id
                gpus = get_list(location, "gpus")
                place = ", ".join(
                    v for k in ("city", "country") if isinstance(v := location.get(k), str)
                )
                for gpu_index, gpu_raw in enumerate(gpus):
                    with out.row(f"{loc_id}/#{gpu_index}") as gpu_scope:
                        self._gpu_v2(out, as_object(gpu_raw, "gpu"), loc_id, place, gpu_scope)

    def _gpu_v2(
        self,
        out: Collector,
        gpu: Mapping[str, object],
        loc_id: str,
        place: str,
        scope: RowScope,
    ) -> None:
        v0_name = get_opt_str(gpu, "v0Name")
        display = get_opt_str(gpu, "displayName")
        if not v0_name and not display:
            raise RowError("missing_field", "displayName/v0Name")
        scope.listing = f"{loc_id}/{(v0_name or display or '')[:60]}"
        names = [n for n in (display, v0_name) if n]
        match = out.resolve(names[0], *names[1:])
        if get_int(gpu, "max_count") <= 0:
            raise RowError("unavailable", "max_count 0")
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=get_decimal(gpu, "price_per_hr"),
            gpus=match.gpus,
            attributes={"location": place[:100]},
        )

    # --- v0 ---------------------------------------------------------------------

    def _parse_v0(self, out: Collector, doc: Mapping[str, object]) -> None:
        with out.body():
            hostnodes = get_object(doc, "hostnodes")
        for node_id, raw in hostnodes.items():
            node_label = str(node_id)[:80]
            with out.row(node_label):
                node = as_object(raw, "hostnode")
                status = get_object(node, "status")
                online = status.get("online") is True and status.get("listed") is True
                location = node.get("location")
                place = ""
                if isinstance(location, dict):
                    place = ", ".join(
                        v for k in ("city", "country") if isinstance(v := location.get(k), str)
                    )
                gpus = get_object(get_object(node, "specs"), "gpu")
                for gpu_name, gpu_raw in gpus.items():
                    with out.row(f"{node_label}/{str(gpu_name)[:60]}") as scope:
                        if not online:
                            raise RowError("offline")
                        gpu = as_object(gpu_raw, "gpu")
                        match = out.resolve(str(gpu_name))
                        if get_int(gpu, "amount") <= 0:
                            raise RowError("unavailable", "amount 0")
                        out.offer(
                            listing=scope.listing,
                            model=match.model,
                            kind=PriceKind.RENTAL_HOURLY,
                            total=get_decimal(gpu, "price"),
                            gpus=match.gpus,
                            attributes={"location": place[:100]},
                        )


KIND: SourceKind[TensorDockOptions] = SourceKind(
    name="tensordock",
    options_type=TensorDockOptions,
    adapter=TensorDockSource,
    rate_limit=TensorDockSource.RATE_LIMIT,
    default_base_url=TensorDockSource.DEFAULT_BASE_URL,
    summary="TensorDock marketplace v2 locations / v0 hostnodes (API key); $/GPU-h",
)
