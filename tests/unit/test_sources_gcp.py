"""GCP Cloud Billing catalog adapter."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from feeds.errors import ConfigError
from feeds.sources import SourceConfigError
from tests.unit.sources_fixtures import (
    RECORDED_AT,
    build,
    offers_of,
    pages,
    rejections_of,
    replay_source,
    respond,
)


def test_units_plus_nanos_per_gpu_hour() -> None:
    offers = offers_of(replay_source("gcp"))
    # Shared recording: units "2", nanos 933908000 -> 2.933908 for the A100 40GB.
    a100 = offers["039F-D0DA-4055"]
    assert (a100.model, a100.price, a100.gpus) == ("A100-SXM-40GB", Decimal("2.933908"), 1)
    assert a100.attributes["regions"] == "us-central1,us-east1,us-west1"
    assert offers["C0N5-H100-0001"].price == Decimal("9.796")
    assert offers["C0N5-H100-0001"].model == "H100-SXM"
    assert offers["C0N5-A180-0005"].price == Decimal("3.92808")
    assert offers["C0N5-A180-0005"].model == "A100-SXM-80GB"
    assert offers["C0N5-H100-0006"].price == Decimal("10.775")
    assert offers["C0N5-L400-0007"].price == Decimal("0.560931")


def test_spot_commitment_and_unknown_skus_are_rejected_cpu_skus_skipped() -> None:
    results = replay_source("gcp")
    assert rejections_of(results) == {
        "C0N5-H100-0002": "spot",
        "C0N5-H100-0003": "commitment",
        "C0N5-T400-0008": "unknown_gpu",
    }
    assert "C0N5-CPU0-0004" not in offers_of(results)


def test_page_token_follows_and_key_stays_in_a_header() -> None:
    source = build("gcp")
    first = source.first_request()
    assert first.headers["X-Goog-Api-Key"] == "test-gcp-key"
    assert "test-gcp-key" not in first.url
    assert "pageToken" not in first.url
    result = source.parse(respond(first, pages("gcp")[0]), RECORDED_AT)
    assert result.next_request is not None
    token = json.loads(pages("gcp")[0])["nextPageToken"]
    assert "pageToken=" + token.replace("=", "%3D") in result.next_request.url
    assert result.next_request.headers["X-Goog-Api-Key"] == "test-gcp-key"


@pytest.mark.parametrize("body", [b"{}", b'{"skus": []}', b'{"skus": [], "nextPageToken": ""}'])
def test_empty_catalog_on_the_first_page_is_a_configuration_error(body: bytes) -> None:
    source = build("gcp")
    with pytest.raises(ConfigError) as info:
        source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert isinstance(info.value, SourceConfigError)
    assert info.value.reason == "empty_catalog"
    assert "configuration error" in str(info.value)


def test_empty_last_page_is_just_the_end() -> None:
    source = build("gcp")
    first = source.parse(respond(source.first_request(), pages("gcp")[0]), RECORDED_AT)
    assert first.next_request is not None
    last = source.parse(respond(first.next_request, b'{"skus": []}'), RECORDED_AT)
    assert last.offers == () and last.next_request is None


def _reject(change: Any) -> str:
    sku = json.loads(pages("gcp")[0])["skus"][0]
    change(sku)
    source = build("gcp")
    body = json.dumps({"skus": [sku]}).encode()
    result = source.parse(respond(source.first_request(), body), RECORDED_AT)
    assert not result.offers
    return result.rejections[0].reason


def _price(sku: dict[str, Any]) -> dict[str, Any]:
    rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]
    return rate["unitPrice"]  # type: ignore[no-any-return]


def test_row_checks() -> None:
    assert _reject(lambda s: _price(s).update(currencyCode="EUR")) == "currency"
    assert (
        _reject(lambda s: s["pricingInfo"][0]["pricingExpression"].update(usageUnit="mo")) == "unit"
    )
    assert _reject(lambda s: _price(s).update(nanos=1_000_000_000)) == "wrong_type"
    assert _reject(lambda s: _price(s).update(units="2.5")) == "wrong_type"
    assert _reject(lambda s: _price(s).update(units="0", nanos=0)) == "absurd_price"
    assert _reject(lambda s: s.update(pricingInfo=[])) == "missing_field"
