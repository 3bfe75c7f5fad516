"""Azure Retail Prices adapter."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest

from feeds.errors import ParseError
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


def test_linux_on_demand_rows_only_divided_by_gpus_in_the_sku() -> None:
    results = replay_source("azure")
    offers = offers_of(results)
    first = offers["Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN53/0030"]
    assert (first.model, first.price, first.gpus) == ("H100-SXM", Decimal("12.29"), 8)  # 98.32/8
    assert first.attributes["region"] == "eastus2"
    a100 = offers["Standard_ND96amsr_A100_v4@eastus2#DZH318Z00002/002Z"]
    assert (a100.model, a100.price) == ("A100-SXM-80GB", Decimal("4.09625"))  # 32.77/8
    h200 = offers["Standard_ND96isr_H200_v5@eastus2#DZH318Z00004/004Z"]
    assert (h200.model, h200.price) == ("H200", Decimal("12.64"))  # 101.12/8
    nvl = offers["Standard_NC40ads_H100_v5@eastus2#DZH318Z00005/005Z"]
    assert (nvl.model, nvl.price, nvl.gpus) == ("H100-NVL", Decimal("6.98"), 1)


def test_spot_low_priority_windows_reservation_dev_test_are_rejected() -> None:
    results = replay_source("azure")
    reasons = rejections_of(results)
    assert reasons == {
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN53/002X": "spot",
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN53/002W": "low_priority",
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN52/004M": "windows",
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN53/01X8": "reservation",
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z0KN53/01X9": "reservation",
        "Standard_ND96isr_H100_v5@eastus2#DZH318Z00007/007Z": "dev_test",
        "Standard_NV6ads_A10_v5@eastus2#DZH318Z00008/008Z": "unknown_gpu",
    }
    # The reservation lump sum (551221 USD for a year) never shows up as a price.
    assert all(o.price < 100 for o in offers_of(results).values())
    assert results[1].unknown_names == ("Standard_NV6ads_A10_v5",)


def test_next_page_link_is_followed_on_the_configured_endpoint() -> None:
    base = "http://127.0.0.1:9999/azure/prices"
    source = build("azure", base_url=base)
    first = source.first_request()
    result = source.parse(respond(first, pages("azure")[0]), RECORDED_AT)
    assert result.next_request is not None
    url = result.next_request.url
    # The link names https://prices.azure.com:443; only its query is taken.
    assert url.startswith(base + "?")
    assert "$skip=100" in unquote(url)
    last = source.parse(respond(result.next_request, pages("azure")[1]), RECORDED_AT)
    assert last.next_request is None


def test_filter_names_skus_and_regions() -> None:
    source = build("azure", arm_sku_names=["Standard_ND96isr_H100_v5"], regions=["eastus2"])
    url = unquote(source.first_request().url)
    assert "serviceName eq 'Virtual Machines'" in url
    assert "armSkuName eq 'Standard_ND96isr_H100_v5'" in url
    assert "armRegionName eq 'eastus2'" in url
    assert "currencyCode=USD" in url


def _one(row_changes: dict[str, Any]) -> tuple[str, str]:
    item = json.loads(pages("azure")[0])["Items"][0]
    item.update(row_changes)
    body = {"Items": [item], "NextPageLink": None}
    source = build("azure")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    assert len(result.rejections) == 1 and not result.offers
    return result.rejections[0].reason, result.rejections[0].detail


def test_currency_unit_and_type_checks() -> None:
    assert _one({"currencyCode": "EUR"})[0] == "currency"
    assert _one({"unitOfMeasure": "1/Month"})[0] == "unit"
    assert _one({"type": "DevTestConsumption"})[0] == "dev_test"
    assert _one({"retailPrice": "98.32"})[0] == "wrong_type"  # Azure sends numbers
    assert _one({"retailPrice": 0})[0] == "absurd_price"


def test_next_page_link_without_query_is_a_parse_error() -> None:
    body = {"Items": [], "NextPageLink": "https://prices.azure.com/api/retail/prices"}
    source = build("azure")
    with pytest.raises(ParseError):
        source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)


def test_replay_with_default_options_covers_both_pages() -> None:
    results = replay(build("azure"), pages("azure"))
    assert [len(r.offers) for r in results] == [1, 6]
