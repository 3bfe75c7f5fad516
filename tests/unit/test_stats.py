from __future__ import annotations

from decimal import Decimal as D

import pytest

from aggregation.stats import (
    AggregationParams,
    Dropped,
    SourceInput,
    StatisticsError,
    aggregate,
    from_fixed_point,
    mad,
    median,
    outlier_band,
    to_fixed_point,
)

NOW = 1_800_000_000
PARAMS = AggregationParams(max_age=3600)


def src(name: str, *prices: str, age: int = 0, snaps: tuple[str, ...] = ()) -> SourceInput:
    return SourceInput(name, tuple(D(p) for p in prices), NOW - age, snaps or (f"h-{name}",))


def test_median_odd_and_even_is_exact() -> None:
    assert median([D(3), D(1), D(2)]) == D(2)
    assert median([D("1.1"), D("1.2")]) == D("1.15")
    # Beyond the default 28-digit context: must still be exact.
    zeros = "0" * 40
    low, high = D(f"1{zeros}.000000001"), D(f"1{zeros}.000000002")
    assert median([low, high]) == D(f"1{zeros}.0000000015")


def test_median_rejects_empty_and_nan() -> None:
    with pytest.raises(StatisticsError):
        median([])
    with pytest.raises(StatisticsError):
        median([D("NaN")])


def test_mad() -> None:
    assert mad([D(1), D(2), D(3), D(4), D(100)]) == D(1)
    assert mad([D(5), D(5), D(5), D(9)]) == D(0)


def test_band_uses_mad_times_consistency_times_k() -> None:
    band = outlier_band([D(10), D(11), D(12), D(13), D(14)])
    assert band.center == D(12)
    assert band.mad == D(1)
    assert band.scale == D("1.4826")
    assert (band.low, band.high) == (D(12) - D("4.4478"), D(12) + D("4.4478"))


def test_band_floor_when_mad_is_zero() -> None:
    # Three of four quote exactly 2.00: MAD = 0, so the 1 % floor applies: band = 2 ± 0.06.
    band = outlier_band([D(2), D(2), D(2), D("2.05")])
    assert band.mad == 0
    assert (band.low, band.high) == (D("1.94"), D("2.06"))
    assert band.contains(D("2.05"))
    assert not band.contains(D("2.07"))


def test_fixed_point_rounds_half_even() -> None:
    assert to_fixed_point(D("1.000000005")) == 100000000
    assert to_fixed_point(D("1.000000015")) == 100000002
    assert to_fixed_point(D("2.5"), 0) == 2
    assert to_fixed_point(D("3.5"), 0) == 4
    assert to_fixed_point(D("-0.000000015")) == -2
    assert to_fixed_point(D("2.69"), 6) == 2_690_000
    assert from_fixed_point(269_000_000) == D("2.69")


def test_aggregate_median_of_per_source_medians() -> None:
    result = aggregate(
        [src("a", "1", "2", "3"), src("b", "2.5"), src("c", "2", "4"), src("d", "2.2")],
        PARAMS,
        NOW,
    )
    # per-source medians: a=2, b=2.5, c=3, d=2.2 -> median 2.35
    assert result.median == D("2.35")
    assert result.value == 235_000_000
    assert result.decimals == 8
    assert result.sources_used == ("a", "b", "c", "d")
    assert result.sources_dropped == ()
    assert result.snapshots == ("h-a", "h-b", "h-c", "h-d")
    assert result.reason is None
    # MAD of {2, 2.2, 2.5, 3} around 2.35 = median{0.35, 0.15, 0.15, 0.65} = 0.25
    assert result.dispersion == (D("0.25") / D("2.35")).quantize(D("1e-8"))


def test_outlier_is_reported_and_winsorised() -> None:
    result = aggregate(
        [src("a", "2.0"), src("b", "2.1"), src("c", "2.2"), src("d", "2.3"), src("azure", "12.29")],
        PARAMS,
        NOW,
    )
    assert result.median == D("2.2")
    assert result.sources_used == ("a", "b", "c", "d")
    assert [d.source for d in result.sources_dropped] == ["azure"]
    assert result.sources_dropped[0].reason == "outlier"
    # The outlier's snapshot still backs the value: its rank entered the median.
    assert "h-azure" in result.snapshots


def test_stale_and_empty_sources_are_dropped_before_min_sources() -> None:
    result = aggregate(
        [src("a", "1"), src("b", "2"), src("old", "3", age=3601), src("none")],
        PARAMS,
        NOW,
    )
    assert result.value is None
    assert result.reason is not None and result.reason.startswith("insufficient_sources")
    assert result.sources_dropped == (
        Dropped("none", "no_offers"),
        Dropped("old", "stale", "age 3601s > max_age 3600s"),
    )
    # exactly max_age old is still fresh
    fresh = aggregate([src("a", "1"), src("b", "2"), src("c", "3", age=3600)], PARAMS, NOW)
    assert fresh.value == 200_000_000


def test_min_sources_is_configurable() -> None:
    inputs = [src("a", "1"), src("b", "3")]
    assert aggregate(inputs, PARAMS, NOW).value is None
    two = aggregate(inputs, AggregationParams(max_age=3600, min_sources=2), NOW)
    assert two.value == 200_000_000


def test_dispersion_zero_when_sources_agree() -> None:
    result = aggregate([src("a", "5"), src("b", "5"), src("c", "5")], PARAMS, NOW)
    assert result.dispersion == 0
    assert result.sources_used == ("a", "b", "c")


def test_duplicate_sources_rejected() -> None:
    with pytest.raises(StatisticsError):
        aggregate([src("a", "1"), src("a", "2"), src("b", "3")], PARAMS, NOW)


def test_params_validation() -> None:
    with pytest.raises(StatisticsError):
        AggregationParams(max_age=10, min_sources=0)
    with pytest.raises(StatisticsError):
        AggregationParams(max_age=-1)
    with pytest.raises(StatisticsError):
        AggregationParams(max_age=1, decimals=40)
