"""AWS adapters: the pricing-page JSON and the Price List GetProducts shape."""

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

# --- pricing page -------------------------------------------------------------------


def test_pricing_page_divides_instance_prices_by_gpus() -> None:
    offers = offers_of(replay_source("aws"))
    east = "US East (N. Virginia)"
    p5 = offers[f"p5.48xlarge@{east}"]
    assert (p5.model, p5.price, p5.gpus) == ("H100-SXM", Decimal("6.88"), 8)  # "55.04"/8
    assert offers[f"p5en.48xlarge@{east}"].price == Decimal("7.912")  # 63.296/8, H200
    p4d = offers[f"p4d.24xlarge@{east}"]
    assert (p4d.model, p4d.price) == ("A100-SXM-40GB", Decimal("2.74470525"))  # 21.957642/8
    p4de = offers[f"p4de.24xlarge@{east}"]
    assert (p4de.model, p4de.price) == ("A100-SXM-80GB", Decimal("3.430875"))  # 27.447/8
    assert offers[f"g6e.xlarge@{east}"].model == "L40S"
    single = offers["p5.4xlarge@US West (Oregon)"]
    assert (single.price, single.gpus) == (Decimal("6.88"), 1)
    assert p5.attributes["rate_code"] == "3D4V8UAYEMB38GU2.JRTCKXETXF.6YS6EN2CT7"


def test_pricing_page_rejections_and_silent_non_gpu_rows() -> None:
    results = replay_source("aws")
    assert rejections_of(results) == {
        "g5.xlarge@US East (N. Virginia)": "unknown_gpu",  # A10G is not our A10
        "p5.48xlarge@US East (N. Virginia)": "preinstalled_software",  # SQL Web row
    }
    listings = {o.listing for r in results for o in r.offers} | set(rejections_of(results))
    assert not any(listing.startswith("m7i") for listing in listings)  # not a GPU row


def test_pricing_page_walks_the_locations_in_order() -> None:
    source = build("aws")
    first = source.first_request()
    assert first.url == (
        "https://b0.p.awsstatic.com/pricing/2.0/meteredUnitMaps/ec2/USD/current/"
        "ec2-ondemand-without-sec-sel/US%20East%20(N.%20Virginia)/Linux/index.json"
    )
    result = source.parse(respond(first, pages("aws")[0]), RECORDED_AT)
    assert result.next_request is not None
    assert "/US%20West%20(Oregon)/Linux/index.json" in result.next_request.url
    last = source.parse(respond(result.next_request, pages("aws")[1]), RECORDED_AT)
    assert last.next_request is None


def test_pricing_page_os_mismatch_is_rejected() -> None:
    doc = json.loads(pages("aws")[0])
    row = doc["regions"]["US East (N. Virginia)"]["p5 48xlarge US East N. Virginia Linux"]
    body = {"regions": {"US East (N. Virginia)": {"x": {**row, "Operating System": "Windows"}}}}
    source = build("aws")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    assert [r.reason for r in result.rejections] == ["os"]


# --- Price List GetProducts ----------------------------------------------------------


def test_pricelist_strings_are_parsed_twice_and_divided() -> None:
    offers = offers_of(replay_source("aws_pricelist"))
    p5 = offers["p5.48xlarge#3D4V8UAYEMB38GU2"]
    assert (p5.model, p5.price, p5.gpus) == ("H100-SXM", Decimal("6.88"), 8)
    assert offers["p4d.24xlarge#H7NGEAC6UEHNTKSJ"].price == Decimal("2.74470525")
    assert offers["p5en.48xlarge#XMKUY5HX43BTVY62"].price == Decimal("7.912")
    assert rejections_of(replay_source("aws_pricelist")) == {
        "p5.48xlarge#CONSTRUCTEDRESV01": "reservation"
    }


def test_pricelist_request_and_next_token() -> None:
    source = build("aws_pricelist")
    first = source.first_request()
    assert first.method == "POST"
    assert first.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
    assert first.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert first.body is not None
    payload = json.loads(first.body)
    assert payload["ServiceCode"] == "AmazonEC2"
    assert "NextToken" not in payload
    fields = {f["Field"]: f["Value"] for f in payload["Filters"]}
    assert fields["operatingSystem"] == "Linux" and fields["capacitystatus"] == "Used"
    result = source.parse(respond(first, pages("aws_pricelist")[0]), RECORDED_AT)
    assert result.next_request is not None and result.next_request.body is not None
    assert json.loads(result.next_request.body)["NextToken"] == (
        "eyJsYXN0RXZhbHVhdGVkS2V5IjoiQ09OU1RSVUNURUQifQ=="
    )


def _entry(change: Any) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(json.loads(pages("aws_pricelist")[0])["PriceList"][0])
    change(entry)
    return entry


def _parse_entries(*entries: dict[str, Any]) -> list[tuple[str, str]]:
    body = {"PriceList": [json.dumps(e) for e in entries], "NextToken": None}
    source = build("aws_pricelist")
    result = source.parse(respond(source.first_request(), json.dumps(body).encode()), RECORDED_AT)
    return [(r.reason, r.detail) for r in result.rejections]


def test_pricelist_row_filters() -> None:
    def dedicated(e: dict[str, Any]) -> None:
        e["product"]["attributes"]["tenancy"] = "Dedicated"

    def reserved_capacity(e: dict[str, Any]) -> None:
        e["product"]["attributes"]["capacitystatus"] = "AllocatedCapacityReservation"

    def two_prices(e: dict[str, Any]) -> None:
        term = next(iter(e["terms"]["OnDemand"].values()))
        dim = next(iter(term["priceDimensions"].values()))
        term["priceDimensions"]["other"] = {**dim, "pricePerUnit": {"USD": "50.0"}}

    def weekly(e: dict[str, Any]) -> None:
        term = next(iter(e["terms"]["OnDemand"].values()))
        for dim in term["priceDimensions"].values():
            dim["unit"] = "Week"

    reasons = [r for r, _ in _parse_entries(*map(_entry, (dedicated, reserved_capacity)))]
    assert reasons == ["tenancy", "capacity_reservation"]
    assert _parse_entries(_entry(two_prices))[0][0] == "ambiguous_price"
    assert _parse_entries(_entry(weekly))[0][0] == "unit"
