"""Comparable hardware sales adapter (CSV and JSON)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from feeds.errors import ParseError
from feeds.model import PriceKind
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

NEW, USED = PriceKind.HARDWARE_NEW, PriceKind.HARDWARE_USED


def test_broker_csv() -> None:
    results = replay_source("comparables_broker")
    offers = offers_of(results)
    new = offers["BRK-26-0912-01"]
    assert (new.model, new.kind, new.price, new.gpus) == ("H100-SXM", NEW, Decimal("27400"), 8)
    assert new.observed_at == datetime(2026, 9, 12, tzinfo=UTC)
    assert new.attributes["venue"] == "Atlas Compute Brokers"
    assert (offers["BRK-26-0918-02"].kind, offers["BRK-26-0918-02"].price) == (
        USED,
        Decimal("18900"),
    )
    assert offers["BRK-26-1002-04"].model == "H100-SXM"  # "NVIDIA H100 80GB HBM3"
    assert offers["BRK-26-1006-06"].model == "H100-PCIE"
    assert rejections_of(results) == {
        "BRK-26-0520-07": "stale",  # 2026-05-20 is 145 days before the recording
        "BRK-26-1008-08": "unknown_gpu",  # bare "H100": SXM or PCIe?
    }


def test_marketplace_json() -> None:
    results = replay_source("comparables_marketplace")
    offers = offers_of(results)
    assert (offers["MKT-8841201"].kind, offers["MKT-8841201"].price) == (USED, Decimal("17900"))
    assert offers["MKT-8841377"].price == Decimal("19250.00")  # a decimal string
    assert offers["MKT-8841377"].observed_at == datetime(2026, 9, 29, 14, 3, tzinfo=UTC)
    assert offers["MKT-8842301"].kind is USED  # refurbished counts as used
    assert offers["MKT-8842255"].gpus == 2
    assert offers["MKT-8842255"].price == Decimal("26800")  # per unit
    assert rejections_of(results) == {
        "MKT-8842601": "absurd_price",  # $1 for an H100
        "MKT-8842777": "condition",  # "for parts"
    }


def test_auction_lot_totals_are_divided_by_quantity() -> None:
    results = replay_source("comparables_auction")
    offers = offers_of(results)
    assert offers["LOT-2026-1141"].price == Decimal("18800")  # 150400 / 8
    assert offers["LOT-2026-1187"].price == Decimal("27000")  # 108000 / 4, new
    assert offers["LOT-2026-1203"].price == Decimal("16800")  # 268800 / 16
    assert offers["LOT-2026-1220"].model == "A100-SXM-80GB"
    assert rejections_of(results) == {
        "LOT-2026-1301": "future_date",
        "LOT-2026-1230": "currency",
    }
    per_unit = offers_of(
        replay(build("comparables_auction", price_basis="per_unit"), pages("comparables_auction"))
    )
    assert per_unit["LOT-2026-1141"].price == Decimal("150400")


def test_window_follows_now() -> None:
    narrow = rejections_of(
        replay(build("comparables_broker", max_age_days=10), pages("comparables_broker"))
    )
    assert narrow["BRK-26-0918-02"] == "stale"  # 24 days old
    assert "BRK-26-1006-06" not in narrow  # 6 days old
    later = RECORDED_AT + timedelta(days=365)
    source = build("comparables_broker")
    result = source.parse(respond(source.first_request(), pages("comparables_broker")[0]), later)
    assert result.offers == ()
    naive = RECORDED_AT.replace(tzinfo=None)
    assert source.parse(
        respond(source.first_request(), pages("comparables_broker")[0]), naive
    ).offers


def test_bad_rows_and_bad_headers() -> None:
    source = build("comparables_broker")
    rows = source.parse(
        respond(source.first_request(), (BAD / "comparables_bad_rows.csv").read_bytes()),
        RECORDED_AT,
    )
    assert {r.listing: r.reason for r in rows.rejections} == {
        "BAD-1": "wrong_type",  # date
        "BAD-2": "wrong_type",  # quantity
        "BAD-3": "wrong_type",  # price
        "BAD-4": "absurd_price",  # 900000 per GPU
        "BAD-5": "wrong_type",  # an extra cell
        "BAD-6": "mig",
    }
    assert [o.listing for o in rows.offers] == ["GOOD-1"]
    with pytest.raises(ParseError) as info:
        source.parse(
            respond(source.first_request(), (BAD / "comparables_bad_header.csv").read_bytes()),
            RECORDED_AT,
        )
    assert info.value.reason == "bad_shape"
    forced = build("comparables_broker", format="json")
    with pytest.raises(ParseError):
        forced.parse(respond(forced.first_request(), pages("comparables_broker")[0]), RECORDED_AT)


def test_base_url_schemes() -> None:
    assert (
        build("comparables_broker").first_request().url
        == "file:///var/lib/xon/comparables/broker.csv"
    )
    assert build("comparables_marketplace").first_request().url.startswith("https://")
