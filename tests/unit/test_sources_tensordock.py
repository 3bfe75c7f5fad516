"""TensorDock adapter (v2 locations and legacy v0 hostnodes)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from tests.unit.sources_fixtures import build, offers_of, rejections_of, replay_source


def test_v2_locations_give_per_gpu_prices() -> None:
    results = replay_source("tensordock")
    offers = offers_of(results)
    # Shared recording: Austin H100 SXM5 at 2.2 and RTX 4090 at 0.5 per GPU-hour.
    assert offers["loc-uuid-12345/h100-sxm5-80gb"].model == "H100-SXM"
    assert offers["loc-uuid-12345/h100-sxm5-80gb"].price == Decimal("2.2")
    assert offers["loc-uuid-12345/geforcertx4090-pcie-24gb"].price == Decimal("0.5")
    assert offers["loc-uuid-23456/h100-pcie-80gb"].model == "H100-PCIE"
    assert offers["loc-uuid-23456/a100-sxm4-80gb"].model == "A100-SXM-80GB"
    assert offers["loc-uuid-34567/l40s-pcie-48gb"].price == Decimal("0.85")
    assert offers["loc-uuid-12345/h100-sxm5-80gb"].attributes["location"] == (
        "Austin, United States"
    )
    assert rejections_of(results) == {
        "loc-uuid-34567/rtxa6000-pcie-48gb": "unknown_gpu",
        "loc-uuid-34567/h100-sxm5-80gb": "unavailable",  # max_count 0
    }


def test_v0_hostnodes() -> None:
    results = replay_source("tensordock_v0")
    offers = offers_of(results)
    node = "7a1b3c5d-0000-4000-8000-000000000001"
    assert offers[f"{node}/h100-sxm5-80gb"].price == Decimal("2.4")
    assert offers[f"{node}/geforcertx4090-pcie-24gb"].model == "RTX-4090"
    assert rejections_of(results) == {
        "02c65d45-6da5-4232-a8db-ee0e5bc76110/geforcertx3080-pcie-10gb": "unknown_gpu",
        f"{node}/a100-pcie-80gb": "unavailable",  # amount 0
        "7a1b3c5d-0000-4000-8000-000000000002/h100-pcie-80gb": "offline",
    }


def test_requests_per_api_generation() -> None:
    v2 = build("tensordock").first_request()
    assert v2.url == "https://dashboard.tensordock.com/api/v2/locations"
    assert v2.headers["Authorization"] == "Bearer test-tensordock-key"
    v0 = build("tensordock_v0").first_request()
    assert v0.url.startswith("https://marketplace.tensordock.com/api/v0/client/deploy/hostnodes?")
    assert parse_qs(urlsplit(v0.url).query) == {
        "api_key": ["test-tensordock-key"],
        "api_token": ["test-tensordock-token"],
    }
