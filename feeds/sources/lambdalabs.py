"""Lambda Cloud instance types (API key): ``GET /api/v1/instance-types``.

``price_cents_per_hour`` is per *instance*; the per-GPU price is
``price_cents_per_hour / 100 / specs.gpus``. The GPU model comes from
``gpu_description`` ("H100 (80 GB SXM5)"), falling back to the instance type name
("gpu_8x_h100_sxm5"), whose GPU count must then agree with ``specs.gpus``. Lambda
documents both ``Authorization: Bearer <key>`` and HTTP Basic with the key as user name
and an empty password; ``auth`` picks one. Lambda asks for about one request per second.

Options (``LambdaOptions``):

``base_url``          default ``https://cloud.lambda.ai/api/v1/instance-types``
``api_key_env``       env var holding the API key (default ``LAMBDA_API_KEY``; required)
``auth``              ``bearer`` (default) or ``basic``
``require_capacity``  reject types with no region with capacity as ``sold_out``
                      (default false: a list price is a price even while sold out)

Per-row outcomes: ``sold_out``, ``unknown_gpu``, ``gpu_count_mismatch``,
``absurd_price``, ``missing_field`` / ``wrong_type``. An ``{"error": ...}`` body is a
``FetchError`` (reason ``api_error``); a body without a ``data`` object is a
``ParseError``.
"""

from __future__ import annotations

import base64
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
    get_decimal,
    get_int,
    get_list,
    get_object,
    get_str,
    scaled,
)


class LambdaOptions(SourceOptions):
    api_key_env: str = Field(default="LAMBDA_API_KEY", min_length=1)
    auth: Literal["bearer", "basic"] = "bearer"
    require_capacity: bool = False

    def secret_env_vars(self) -> tuple[str, ...]:
        return (self.api_key_env,)


class LambdaSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = "https://cloud.lambda.ai/api/v1/instance-types"

    def __init__(
        self, source_id: SourceId, options: LambdaOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options
        key = secrets[options.api_key_env]
        if options.auth == "bearer":
            self._authorization = f"Bearer {key}"
        else:
            token = base64.b64encode(f"{key}:".encode()).decode("ascii")
            self._authorization = f"Basic {token}"

    def first_request(self) -> HttpRequest:
        return HttpRequest(
            "GET",
            self.base_url,
            {"Authorization": self._authorization, "Accept": "application/json"},
        )

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        doc = decode_object(self.source_id, response)
        error = doc.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            raise FetchError(self.source_id, "api_error", str(message)[:200])
        out = Collector(self.source_id)
        with out.body():
            data = get_object(doc, "data")
        for key, raw in data.items():
            with out.row(str(key)[:80]) as scope:
                self._type(out, as_object(raw, "instance type"), scope)
        return out.result()

    def _type(self, out: Collector, row: Mapping[str, object], scope: RowScope) -> None:
        instance = get_object(row, "instance_type")
        name = get_str(instance, "name")
        scope.listing = name[:80]
        regions = get_list(row, "regions_with_capacity_available")
        if self.options.require_capacity and not regions:
            raise RowError("sold_out")
        gpus = get_int(get_object(instance, "specs"), "gpus")
        if gpus <= 0:
            raise RowError("wrong_type", f"specs.gpus={gpus}")
        match = out.resolve(get_str(instance, "gpu_description"), name)
        if match.gpus not in (1, gpus):
            raise RowError("gpu_count_mismatch", f"{name} names {match.gpus}, specs say {gpus}")
        cents = get_decimal(instance, "price_cents_per_hour")
        region_names = [
            r["name"] for r in regions if isinstance(r, dict) and isinstance(r.get("name"), str)
        ]
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=PriceKind.RENTAL_HOURLY,
            total=scaled(cents, -2),
            gpus=gpus,
            attributes={
                "regions": ",".join(region_names)[:200],
                "capacity": "yes" if regions else "sold_out",
            },
        )


KIND: SourceKind[LambdaOptions] = SourceKind(
    name="lambda",
    options_type=LambdaOptions,
    adapter=LambdaSource,
    rate_limit=LambdaSource.RATE_LIMIT,
    default_base_url=LambdaSource.DEFAULT_BASE_URL,
    summary="Lambda Cloud instance types (API key); per-GPU = cents / 100 / specs.gpus",
)
