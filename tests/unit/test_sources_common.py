"""Shared adapter machinery: response decoding, price arithmetic, the factory table."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

from feeds.errors import ConfigError, FetchError, ParseError
from feeds.model import HttpRequest, PriceKind, RawResponse, SourceId
from feeds.sources import SOURCE_KINDS, rate_limit_of
from feeds.sources._common import (
    Collector,
    RowError,
    check_price,
    decode_json,
    header,
    per_gpu,
)
from tests.unit.sources_fixtures import RECORDED_AT, offers_of, replay_source

SRC = SourceId("t")
REQ = HttpRequest("GET", "https://example.test/")


def _response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(REQ, status, headers or {}, body, RECORDED_AT)


def test_numbers_decode_as_decimal_never_float() -> None:
    doc = decode_json(SRC, _response(b'{"a": 0.1, "b": 7, "c": 1e-3, "d": NaN}'))
    assert isinstance(doc, dict)
    assert doc["a"] == Decimal("0.1") and isinstance(doc["a"], Decimal)
    assert doc["b"] == 7 and isinstance(doc["b"], int)
    assert doc["c"] == Decimal("0.001")
    assert doc["d"].is_nan()


def test_byte_order_mark_is_accepted() -> None:
    assert decode_json(SRC, _response(b'\xef\xbb\xbf{"a": 1}')) == {"a": 1}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>503</body></html>", "html"),
        (b"  \n<!DOCTYPE html>", "html"),
        (b'{"a": [1, 2', "invalid_json"),
        (b"", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),  # nesting deep enough to exhaust recursion
        (b"\xff\xfe\x00garbage", "bad_encoding"),
    ],
)
def test_undecodable_bodies_are_parse_errors(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        decode_json(SRC, _response(body))
    assert (info.value.source, info.value.reason) == (SRC, reason)


def test_status_errors_carry_status_and_retry_after() -> None:
    with pytest.raises(FetchError) as info:
        decode_json(SRC, _response(b"{}", 503))
    assert (info.value.reason, info.value.detail) == ("http_status", "503")
    with pytest.raises(FetchError) as info:
        decode_json(SRC, _response(b"{}", 429, {"retry-after": "30"}))
    assert (info.value.reason, info.value.detail) == ("rate_limited", "30")
    with pytest.raises(FetchError) as info:
        decode_json(SRC, _response(b"{}", 429))
    assert (info.value.reason, info.value.detail) == ("rate_limited", "")


def test_header_lookup_is_case_insensitive() -> None:
    assert header({"Retry-After": "5"}, "retry-after") == "5"
    assert header({"RETRY-AFTER": "5"}, "Retry-After") == "5"
    assert header({}, "Retry-After") is None


def test_price_arithmetic_ignores_the_global_decimal_context() -> None:
    expected = offers_of(replay_source("vastai"))["42557070"].price
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_FLOOR
        assert offers_of(replay_source("vastai"))["42557070"].price == expected
    assert per_gpu(Decimal("1"), 3) == Decimal("0.3333333333333333333333333333")


@pytest.mark.parametrize(
    ("price", "kind", "ok"),
    [
        (Decimal("0.01"), PriceKind.RENTAL_HOURLY, True),
        (Decimal("100"), PriceKind.RENTAL_HOURLY, True),
        (Decimal("0.0099"), PriceKind.RENTAL_HOURLY, False),
        (Decimal("100.01"), PriceKind.RENTAL_HOURLY, False),
        (Decimal("0"), PriceKind.RENTAL_HOURLY, False),
        (Decimal("-2"), PriceKind.RENTAL_HOURLY, False),
        (Decimal("NaN"), PriceKind.RENTAL_HOURLY, False),
        (Decimal("Infinity"), PriceKind.HARDWARE_NEW, False),
        (Decimal("500000"), PriceKind.HARDWARE_USED, True),
        (Decimal("500000.01"), PriceKind.HARDWARE_NEW, False),
        (Decimal("25000"), PriceKind.HARDWARE_NEW, True),
        (Decimal("2.5"), PriceKind.HARDWARE_USED, False),  # a rental price in a hardware feed
    ],
)
def test_sanity_bands(price: Decimal, kind: PriceKind, ok: bool) -> None:
    if ok:
        check_price(price, kind)
    else:
        with pytest.raises(RowError) as info:
            check_price(price, kind)
        assert info.value.reason == "absurd_price"


def test_overflowing_division_is_an_absurd_price_not_a_crash() -> None:
    with pytest.raises(RowError) as info:
        per_gpu(Decimal("1e999999999"), 3)
    assert info.value.reason == "absurd_price"


def test_collector_keeps_going_after_a_bad_row() -> None:
    out = Collector(SRC)
    with out.row("a"):
        raise RowError("wrong_type", "x")
    with out.row("b") as scope:
        scope.listing = "b2"
        out.offer(listing="b2", model=out.resolve("H100 SXM").model, kind=PriceKind.RENTAL_HOURLY,
                  total=Decimal("16"), gpus=8)  # fmt: skip
    result = out.result()
    assert [(r.listing, r.reason) for r in result.rejections] == [("a", "wrong_type")]
    assert [(o.listing, o.price) for o in result.offers] == [("b2", Decimal("2"))]
    with pytest.raises(ParseError), out.body():
        raise RowError("missing_field", "offers")


def test_factory_table_describes_every_kind() -> None:
    assert set(SOURCE_KINDS) == {
        "vastai", "runpod", "azure", "aws_pricing_page", "aws_pricelist", "gcp", "oci",
        "lambda", "tensordock", "akash", "comparables",
    }  # fmt: skip
    for name, kind in SOURCE_KINDS.items():
        assert kind.name == name
        assert kind.summary
        assert kind.rate_limit.requests >= 1 and kind.rate_limit.per_seconds > 0
        assert (kind.default_base_url is None) == (name == "comparables")


def test_rate_limit_of_a_foreign_source_is_a_config_error() -> None:
    class Bare:
        source_id = SourceId("bare")

    with pytest.raises(ConfigError):
        rate_limit_of(Bare())  # type: ignore[arg-type]
