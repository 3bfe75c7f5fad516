"""Lambda Cloud instance-types adapter."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest

from feeds.errors import FetchError
from tests.unit.sources_fixtures import (
    BAD,
    RECORDED_AT,
    build,
    offers_of,
    pages,
    rejections_of,
    replay,
    replay_source,
    respond,
)


def test_cents_per_instance_become_dollars_per_gpu() -> None:
    results = replay_source("lambda")
    offers = offers_of(results)
    # Shared recording: gpu_8x_h100_sxm5gdr at 3592 cents for 8 GPUs.
    gdr = offers["gpu_8x_h100_sxm5gdr"]
    assert (gdr.model, gdr.price, gdr.gpus) == ("H100-SXM", Decimal("4.49"), 8)
    assert gdr.attributes["capacity"] == "sold_out"
    assert offers["gpu_8x_h100_sxm5"].price == Decimal("2.99")  # 2392 / 100 / 8
    assert offers["gpu_1x_h100_pcie"].model == "H100-PCIE"
    assert offers["gpu_1x_h100_pcie"].price == Decimal("2.49")
    assert offers["gpu_8x_a100_80gb_sxm4"].price == Decimal("1.79")  # 1432 / 100 / 8
    assert offers["gpu_8x_a100_80gb_sxm4"].model == "A100-SXM-80GB"
    assert rejections_of(results) == {
        "gpu_8x_example": "unknown_gpu",
        "gpu_1x_gh200": "unknown_gpu",
    }


def test_require_capacity_rejects_sold_out_types() -> None:
    results = replay(build("lambda", require_capacity=True), pages("lambda"))
    reasons = rejections_of(results)
    assert reasons["gpu_8x_h100_sxm5gdr"] == "sold_out"
    assert reasons["gpu_1x_a10"] == "sold_out"
    assert "gpu_8x_h100_sxm5" in offers_of(results)


def test_bearer_and_basic_auth() -> None:
    assert build("lambda").first_request().headers["Authorization"] == "Bearer test-lambda-key"
    basic = build("lambda", auth="basic").first_request().headers["Authorization"]
    assert basic == "Basic " + base64.b64encode(b"test-lambda-key:").decode()


def test_error_body_is_a_fetch_error() -> None:
    source = build("lambda")
    body = (BAD / "lambda_error.json").read_bytes()
    with pytest.raises(FetchError) as info:
        source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert info.value.reason == "api_error"


def test_instance_name_fallback_must_agree_with_specs() -> None:
    def entry(name: str, gpus: int) -> dict[str, object]:
        return {
            "instance_type": {
                "name": name,
                "gpu_description": "Mystery GPU",
                "price_cents_per_hour": 2392,
                "specs": {"gpus": gpus},
            },
            "regions_with_capacity_available": [],
        }

    body = {"data": {"a": entry("gpu_8x_h100_sxm5", 4), "b": entry("gpu_8x_h100_sxm5", 8)}}
    source = build("lambda")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    assert [(r.listing, r.reason) for r in result.rejections] == [
        ("gpu_8x_h100_sxm5", "gpu_count_mismatch")
    ]
    assert [(o.model, o.price) for o in result.offers] == [("H100-SXM", Decimal("2.99"))]
