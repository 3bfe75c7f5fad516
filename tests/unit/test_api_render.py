"""The API's formatting rules: exact fixed-point text, timestamps, addresses, deviation."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from pydantic import ValidationError

from oracle.api import (
    ApiConfig,
    Check,
    FeedView,
    Fixed,
    MemberModel,
    ObservedValue,
    OnChainValue,
    Readiness,
    ReadinessResponse,
    TimestampModel,
    ValueModel,
    format_fixed,
    observation_check,
    render_feeds,
    render_readiness,
)
from oracle.identity import IdentityKey

NOW = 1_750_000_000


@pytest.mark.parametrize(
    ("raw", "decimals", "text"),
    [
        (245_000_000, 8, "2.45000000"),
        (5, 8, "0.00000005"),
        (0, 8, "0.00000000"),
        (-150, 2, "-1.50"),
        (-5, 3, "-0.005"),
        (42, 0, "42"),
        (-42, 0, "-42"),
        (10**8, 8, "1.00000000"),
    ],
)
def test_format_fixed(raw: int, decimals: int, text: str) -> None:
    assert format_fixed(raw, decimals) == text
    assert str(Fixed(raw, decimals)) == text


def test_format_fixed_is_exact_for_uint256() -> None:
    raw = 2**256 - 1
    text = format_fixed(raw, 18)
    with localcontext() as ctx:
        ctx.prec = 100
        assert Decimal(text) * 10**18 == raw
    assert text.endswith(str(raw)[-18:])


def test_fixed_rejects_floats_bools_and_bad_decimals() -> None:
    with pytest.raises(TypeError):
        Fixed(2.45, 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Fixed(True, 8)
    with pytest.raises(ValueError):
        Fixed(1, -1)
    with pytest.raises(ValueError):
        Fixed(1, 78)


def test_value_model_rejects_inconsistent_value() -> None:
    assert ValueModel.of(Fixed(245, 2)).value == "2.45"
    with pytest.raises(ValidationError):
        ValueModel(value="2.46", raw="245", decimals=2)
    with pytest.raises(ValidationError):
        ValueModel.model_validate_json('{"value": 2.45, "raw": "245", "decimals": 2}')


def test_timestamp_model() -> None:
    assert TimestampModel.of(0).iso == "1970-01-01T00:00:00Z"
    assert TimestampModel.of(NOW + 0.999).model_dump() == {
        "unix": NOW,
        "iso": "2025-06-15T15:06:40Z",
    }
    with pytest.raises(ValidationError):
        TimestampModel(unix=NOW, iso="2025-06-15T15:06:41Z")
    with pytest.raises(ValidationError):
        TimestampModel.of(-1)


def _feed(observed: Fixed | None, on_chain: Fixed | None) -> FeedView:
    return FeedView(
        name="H100-SXM-80GB/USD-HR",
        observed=None if observed is None else ObservedValue(observed, NOW),
        on_chain=None if on_chain is None else OnChainValue(on_chain, 1, NOW, NOW),
    )


@pytest.mark.parametrize(
    ("observed", "on_chain", "bps"),
    [
        (Fixed(246, 2), Fixed(245, 2), "40.82"),
        (Fixed(244, 2), Fixed(245, 2), "40.82"),  # absolute deviation
        (Fixed(2_460_000_000, 9), Fixed(245_000_000, 8), "40.82"),  # decimals differ
        (Fixed(245, 2), Fixed(245, 2), "0.00"),
        (Fixed(1, 0), Fixed(3, 0), "6666.67"),  # half up at the hundredth
        (Fixed(1, 0), Fixed(0, 0), None),  # no relative deviation from zero
        (Fixed(10**70 + 1, 18), Fixed(10**70, 18), "0.00"),  # no float, no 28-digit cap
    ],
)
def test_deviation_bps(observed: Fixed, on_chain: Fixed, bps: str | None) -> None:
    [feed] = render_feeds([_feed(observed, on_chain)], NOW).feeds
    assert feed.deviation_bps == bps


def test_feed_without_heartbeat_has_unknown_staleness() -> None:
    [feed] = render_feeds([_feed(None, Fixed(1, 0))], NOW + 10**6).feeds
    assert feed.on_chain is not None
    assert feed.on_chain.age_s == 10**6
    assert feed.on_chain.stale is None
    assert feed.deviation_bps is None


def test_observation_check() -> None:
    assert observation_check(None, NOW, 60) == Check.failing("no observation yet")
    assert observation_check(NOW - 30, NOW, 60).ok
    old = observation_check(NOW - 61, NOW, 60)
    assert not old.ok and "61s old" in old.detail
    few = observation_check(NOW - 1, NOW, 60, live_sources=2, min_sources=3)
    assert not few.ok and "2 live sources (need 3)" in few.detail
    assert observation_check(NOW - 1, NOW, 60, live_sources=3, min_sources=3).ok


def test_readiness_response_invariant() -> None:
    ok, bad = Check.passing(), Check.failing("broker down")
    body = render_readiness(Readiness(broker=bad, rpc=ok, feeds=ok, committee_key=ok))
    assert not body.ready
    data = body.model_dump()
    data["ready"] = True  # a body claiming ready with a failing check is not valid
    with pytest.raises(ValidationError):
        ReadinessResponse.model_validate(data)


def test_addresses_must_be_checksummed_on_the_wire() -> None:
    node = IdentityKey((7).to_bytes(32, "big")).node_id
    assert node != node.lower()
    member = {
        "node_id": node,
        "frost_id": 1,
        "is_self": True,
        "is_leader": False,
        "credibility": {
            "deviation": 0,
            "outlier_rate": 0,
            "rounds": 0,
            "outliers": 0,
            "is_outlier": False,
            "signing_reliability": 1,
            "invalid_shares": 0,
            "per_feed": {},
        },
        "misbehaviour": {},
    }
    MemberModel.model_validate(member)
    with pytest.raises(ValidationError):
        MemberModel.model_validate({**member, "node_id": node.lower()})


def test_api_config_validates() -> None:
    with pytest.raises(ValueError):
        ApiConfig(port=70_000)
    with pytest.raises(ValueError):
        ApiConfig(host="")
