"""vast.ai bundles adapter."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from feeds.model import PriceKind
from tests.unit.sources_fixtures import (
    RECORDED_AT,
    build,
    offers_of,
    pages,
    rejections_of,
    replay,
    replay_source,
    respond,
)


def test_recorded_page_normalises_to_per_gpu_prices() -> None:
    results = replay_source("vastai")
    offers = offers_of(results)
    # Shared recording: dph_total 6.935555555555556 for 4 GPUs.
    assert offers["42557070"].price == Decimal("1.733888888888889")
    assert offers["42557070"].gpus == 4
    assert offers["42557070"].model == "H100-SXM"
    assert offers["42557070"].kind is PriceKind.RENTAL_HOURLY
    assert offers["36273123"].price == Decimal("2.208828540468451")  # 1 GPU
    assert offers["44760328"].price == Decimal("1.733888888888889")
    assert offers["50000001"].price == Decimal("1.9")  # 15.2 / 8
    assert offers["50000012"].model == "H100-PCIE"
    assert offers["50000012"].price == Decimal("1.65")  # 3.3 / 2
    # "A100 SXM4" is resolved through gpu_ram: 81920 MiB -> 80GB, 40960 MiB -> 40GB.
    assert (offers["50000021"].model, offers["50000021"].price) == ("A100-SXM-80GB", Decimal("1.2"))
    assert (offers["50000024"].model, offers["50000024"].price) == ("A100-SXM-40GB", Decimal("0.8"))
    assert (offers["50000032"].model, offers["50000032"].price) == ("RTX-4090", Decimal("0.4"))
    assert offers["50000041"].model == "RTX-5090"
    assert offers["42557070"].attributes["location"] == "Washington, US"


def test_filters_reject_with_stable_reasons() -> None:
    results = replay_source("vastai")
    assert rejections_of(results) == {
        "42516714": "unverified",
        "40228016": "unverified",
        "44668103": "unverified",  # also unreliable (0.935): the first failing check wins
        "50000014": "unreliable",  # 0.9123 < 0.95
        "50000034": "unreliable",
        "50000035": "fractional",  # gpu_frac 0.5
        "50000051": "unknown_gpu",  # Tesla V100
        "50000061": "absurd_price",  # dph_total 0
    }
    assert results[0].unknown_names == ("Tesla V100",)


def test_filter_thresholds_are_configurable() -> None:
    lax = offers_of(replay(build("vastai", require_verified=False), pages("vastai")))
    assert lax["42516714"].price == Decimal("1.601111111111111")  # 6.404444444444444 / 4
    assert "44668103" not in lax  # 0.9352512 is still below 0.95
    strict = rejections_of(replay(build("vastai", min_reliability="0.99"), pages("vastai")))
    assert strict["44760328"] == "unreliable"  # 0.9782536
    assert "42557070" not in strict  # 0.9975568 passes


def test_request_carries_the_query_as_json() -> None:
    source = build("vastai", gpu_names=["H100 SXM", "RTX 4090"], limit=50)
    request = source.first_request()
    assert request.method == "GET"
    assert request.url.startswith("https://console.vast.ai/api/v0/bundles/?q=")
    query = json.loads(parse_qs(urlsplit(request.url).query)["q"][0])
    assert query["gpu_name"] == {"in": ["H100 SXM", "RTX 4090"]}
    assert query["rentable"] == {"eq": True}
    assert query["limit"] == 50
    assert query["type"] == "on-demand"


def test_unrentable_rented_and_bid_offers_are_rejected() -> None:
    row = {
        "gpu_name": "H100 SXM",
        "num_gpus": 1,
        "dph_total": 2.0,
        "reliability": 0.99,
        "verification": "verified",
        "rentable": True,
    }
    body = {
        "offers": [
            {**row, "id": 1, "rentable": False},
            {**row, "id": 2, "rented": True},
            {**row, "id": 3, "is_bid": True},
            {**row, "id": 4, "gpu_name": "H100 MIG 1g.10gb"},
            {**row, "id": 5},
        ]
    }
    source = build("vastai")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    assert {r.listing: r.reason for r in result.rejections} == {
        "1": "not_rentable",
        "2": "not_rentable",
        "3": "spot",
        "4": "mig",
    }
    assert result.unknown_names == ()  # a MIG slice is known, and refused
    assert [(o.listing, o.price) for o in result.offers] == [("5", Decimal("2.0"))]
