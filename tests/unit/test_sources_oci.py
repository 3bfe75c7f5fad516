"""Oracle Cloud price list adapter."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.unit.sources_fixtures import (
    RECORDED_AT,
    build,
    offers_of,
    pages,
    rejections_of,
    replay_source,
    respond,
)


def test_gpu_parts_are_priced_per_gpu_hour() -> None:
    results = replay_source("oci")
    offers = offers_of(results)
    assert {k: (o.model, o.price) for k, o in offers.items()} == {
        "B98415": ("H100-SXM", Decimal("10")),
        "B110519": ("H200", Decimal("10")),
        "B95907": ("A100-SXM-80GB", Decimal("4")),
        "B999901": ("A10", Decimal("2")),
    }
    # H100T is an unknown form factor; the OCPU part is not a GPU and is skipped.
    assert rejections_of(results) == {"B109480": "unknown_gpu"}
    assert results[0].unknown_names == ("OCI - Compute - GPU - H100T",)


def _parse(doc: dict[str, Any]) -> Any:
    source = build("oci")
    return source.parse(respond(source.first_request(), json.dumps(doc).encode()), RECORDED_AT)


def test_row_checks() -> None:
    item = json.loads(pages("oci")[0])["items"][0]
    monthly = {**item, "partNumber": "M", "metricName": "GPU Per Month"}
    euro = {
        **item,
        "partNumber": "E",
        "currencyCodeLocalizations": [{"currencyCode": "EUR", "prices": []}],
    }
    no_payg = {
        **item,
        "partNumber": "P",
        "currencyCodeLocalizations": [
            {"currencyCode": "USD", "prices": [{"model": "BYOL", "value": 1}]}
        ],
    }
    result = _parse({"items": [monthly, euro, no_payg]})
    assert {r.listing: r.reason for r in result.rejections} == {
        "M": "unit",
        "E": "currency",
        "P": "unavailable",
    }


def test_has_more_follows_the_next_link_on_the_configured_endpoint() -> None:
    doc = json.loads(pages("oci")[0])
    doc["hasMore"] = True
    doc["links"] = [{"rel": "next", "href": "https://apexapps.oracle.com/x/products/?offset=50"}]
    source = build("oci", base_url="http://127.0.0.1:1/oci/")
    result = source.parse(respond(source.first_request(), json.dumps(doc).encode()), RECORDED_AT)
    assert result.next_request is not None
    assert result.next_request.url == "http://127.0.0.1:1/oci/?offset=50"
