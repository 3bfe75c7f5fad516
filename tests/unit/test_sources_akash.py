"""Akash Console GPU prices adapter."""

from __future__ import annotations

import json
from decimal import Decimal

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


def test_median_bid_per_model() -> None:
    results = replay_source("akash")
    offers = offers_of(results)
    h100 = offers["nvidia/h100/80Gi/SXM5"]  # shared recording, price.med 2.56
    assert (h100.model, h100.price, h100.gpus) == ("H100-SXM", Decimal("2.56"), 1)
    assert h100.attributes == {"statistic": "med", "available_gpus": "15"}
    assert offers["nvidia/h100/80Gi/PCIe"].model == "H100-PCIE"
    assert offers["nvidia/a100/80Gi/SXM4"].model == "A100-SXM-80GB"
    assert (offers["nvidia/rtx4090/24Gi/PCIe"].model, offers["nvidia/rtx4090/24Gi/PCIe"].price) == (
        "RTX-4090",
        Decimal("0.42"),
    )
    assert rejections_of(results) == {"nvidia/h200/141Gi/SXM5": "no_bids"}


def test_statistic_and_bid_count_options() -> None:
    weighted = offers_of(replay(build("akash", statistic="weightedAverage"), pages("akash")))
    assert weighted["nvidia/h100/80Gi/SXM5"].price == Decimal("2.72")
    minimum = offers_of(replay(build("akash", statistic="min"), pages("akash")))
    assert minimum["nvidia/h100/80Gi/SXM5"].price == Decimal("2.04")
    picky = rejections_of(replay(build("akash", min_bid_count=500), pages("akash")))
    assert picky["nvidia/h100/80Gi/PCIe"] == "no_bids"  # 412 bids


def test_bare_model_without_interface_is_unknown_and_currency_checked() -> None:
    model = json.loads(pages("akash")[0])["models"][0]
    bare = {**model, "ram": None, "interface": None}
    euro = {**model, "interface": "SXM5", "price": {**model["price"], "currency": "EUR"}}
    source = build("akash")
    body = json.dumps({"models": [bare, euro]}).encode()
    result = source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert [r.reason for r in result.rejections] == ["unknown_gpu", "currency"]
    assert result.unknown_names == ("nvidia h100",)
