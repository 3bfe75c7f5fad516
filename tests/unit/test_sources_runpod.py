"""RunPod GraphQL gpuTypes adapter."""

from __future__ import annotations

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


def test_each_tier_becomes_a_per_gpu_offer() -> None:
    offers = offers_of(replay_source("runpod"))
    # The shared recording, verbatim: securePrice 1.89, communityPrice 1.59.
    a100 = offers["NVIDIA A100 80GB PCIe/secure"]
    assert (a100.model, a100.price, a100.gpus) == ("A100-PCIE-80GB", Decimal("1.89"), 1)
    assert offers["NVIDIA A100 80GB PCIe/community"].price == Decimal("1.59")
    assert offers["NVIDIA H100 80GB HBM3/secure"].model == "H100-SXM"
    assert offers["NVIDIA H100 80GB HBM3/secure"].price == Decimal("2.69")
    assert offers["NVIDIA H100 80GB HBM3/community"].price == Decimal("1.99")
    assert offers["NVIDIA H100 PCIe/secure"].model == "H100-PCIE"
    assert offers["NVIDIA H100 NVL/secure"].model == "H100-NVL"
    assert offers["NVIDIA A100-SXM4-80GB/community"].price == Decimal("1.19")
    assert offers["NVIDIA GeForce RTX 4090/community"].price == Decimal("0.34")
    assert offers["AMD Instinct MI300X OAM/secure"].model == "MI300X"
    assert offers["NVIDIA H100 80GB HBM3/community"].attributes["tier"] == "community"
    # Spot prices (secureSpotPrice 1.75 for the H100) are never offered.
    assert Decimal("1.75") not in {o.price for o in offers.values()}


def test_unavailable_tiers_and_unknown_types_are_rejected() -> None:
    results = replay_source("runpod")
    assert rejections_of(results) == {
        "NVIDIA H100 NVL/community": "unavailable",
        "NVIDIA H200/community": "unavailable",
        "AMD Instinct MI300X OAM/community": "unavailable",
        "NVIDIA A40": "unknown_gpu",
    }
    assert results[0].unknown_names == ("NVIDIA A40",)


def test_tiers_option_limits_the_listings() -> None:
    offers = offers_of(replay(build("runpod", tiers=["community"]), pages("runpod")))
    assert offers and all(listing.endswith("/community") for listing in offers)


def test_request_is_a_graphql_post_with_a_bearer_key() -> None:
    request = build("runpod").first_request()
    assert request.method == "POST"
    assert request.url == "https://api.runpod.io/graphql"
    assert request.headers["Authorization"] == "Bearer test-runpod-key"
    assert request.body is not None
    query = json.loads(request.body)["query"]
    assert "securePrice" in query and "communityPrice" in query
    assert "test-runpod-key" not in request.url


def test_mig_types_are_excluded() -> None:
    body = {
        "data": {
            "gpuTypes": [
                {
                    "id": "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
                    "securePrice": 0.3,
                    "communityPrice": 0.2,
                },
            ]
        }
    }
    source = build("runpod")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    assert result.offers == ()
    assert [(r.listing, r.reason) for r in result.rejections] == [
        ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "mig")
    ]


def test_graphql_errors_are_fetch_errors() -> None:
    source = build("runpod")
    body = (BAD / "runpod_graphql_error.json").read_bytes()
    with pytest.raises(FetchError) as info:
        source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert info.value.reason == "api_error"
    assert "Unauthorized" in info.value.detail


def test_absurd_prices_are_rejected_not_offered() -> None:
    source = build("runpod")
    body = (BAD / "runpod_absurd_prices.json").read_bytes()
    result = source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert {r.listing: r.reason for r in result.rejections} == {
        "NVIDIA H100 80GB HBM3/secure": "absurd_price",  # 0
        "NVIDIA H100 80GB HBM3/community": "absurd_price",  # 1500/GPU-h
        "NVIDIA GeForce RTX 4090/secure": "absurd_price",  # 0.005 < 0.01
    }
    assert [o.price for o in result.offers] == [Decimal("0.34")]
