"""Robust statistics for one node's price observation (pure: Decimals and ints in, values out).

The method, in the order it is applied (docs/methodology.md explains it for auditors):

1. **Per source**: the median of the source's filtered offers (:func:`median`).
2. **Live sources**: a source is live when it produced at least one offer and its snapshot
   is not older than ``max_age`` seconds at ``now``. Sources that are not live are dropped
   with a reason (``no_offers``, ``stale``); the caller adds its own (fetch errors, ...).
3. **Minimum sources**: fewer than ``min_sources`` live sources -> no value, reason
   ``insufficient_sources``.
4. **Outlier band** (MAD rule): with ``m`` the median of the live sources' values and
   ``MAD`` the median of ``|x - m|``, the scale is
   ``s = max(1.4826 * MAD, min_relative_scale * |m|)`` and a source is an *outlier* when
   ``|x - m| > k * s`` (``k = 3`` by default). 1.4826 makes ``1.4826 * MAD`` a consistent
   estimator of the standard deviation for normal data, so ``k = 3`` is the familiar
   "three sigma" cut, computed robustly. ``MAD = 0`` happens when more than half of the
   sources quote the very same price; without a floor every other source would be an
   outlier, so the scale never falls below ``min_relative_scale`` (1 %) of the median,
   i.e. sources within 3 % of the median are never outliers. (Only when ``m = 0`` as
   well is the band empty, and then anything that is not exactly 0 is an outlier.)
5. **Winsorising, not deleting**: an outlier's value is replaced by the nearest edge of the
   band ``[m - k*s, m + k*s]``; the value published is the median of the winsorised set.
   Deleting outliers from one side of a median would let a single source *lower* the
   result by *raising* its own price far enough to be deleted (and vice versa), i.e. the
   index would not be monotone and one liar could steer it. Winsorising keeps the outlier's
   vote on its side of the median but discards its magnitude, and since clamping preserves
   order, the median of the winsorised set equals the median of the live values (checked
   at run time). Outliers do not count as *used* sources and do not raise the
   dispersion; they are reported as dropped with reason ``outlier``.
6. **Output**: the value as a fixed-point integer with ``decimals`` places (default 8),
   rounded ROUND_HALF_EVEN (banker's rounding, no upward or downward bias over many
   rounds); the dispersion ``MAD / |m|`` (a relative, robust spread; 0 when every live
   source agrees), quantised to 8 places, ROUND_HALF_EVEN; the sources used; the sources
   dropped with reasons; and the SHA-256 of every raw snapshot behind a live source.

Guarantees (property-tested in tests/property/test_stats_properties.py): the result does
not depend on the order of the inputs; raising any input never lowers the value; and
with at least three live sources, one arbitrarily wrong source cannot move the value
outside the range of the honest sources' values.

All arithmetic on prices is exact: sums, differences, products and halving of finite
decimals are exact in a context with enough digits, and :data:`EXACT` traps any
``Inexact`` so a precision problem raises instead of rounding silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation, localcontext

from aggregation.errors import XonError

__all__ = [
    "DEFAULT_DECIMALS",
    "DEFAULT_MAD_K",
    "DEFAULT_MIN_RELATIVE_SCALE",
    "DEFAULT_MIN_SOURCES",
    "DISPERSION_DECIMALS",
    "EXACT",
    "MAD_CONSISTENCY",
    "AggregationParams",
    "Dropped",
    "FeedAggregate",
    "OutlierBand",
    "SourceInput",
    "StatisticsError",
    "aggregate",
    "from_fixed_point",
    "mad",
    "median",
    "outlier_band",
    "to_fixed_point",
]

MAD_CONSISTENCY = Decimal("1.4826")  # 1 / Phi^-1(3/4): sigma ~= 1.4826 * MAD for normal data
DEFAULT_MAD_K = Decimal(3)
DEFAULT_MIN_RELATIVE_SCALE = Decimal("0.01")  # scale floor as a fraction of |median|
DEFAULT_MIN_SOURCES = 3
DEFAULT_DECIMALS = 8
DISPERSION_DECIMALS = 8

# Exact arithmetic: 120 significant digits is far beyond any price, and Inexact is trapped,
# so a computation that would round raises instead of silently changing a signed number.
EXACT = Context(prec=120, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation])
# For the two deliberate roundings (fixed-point output, dispersion ratio).
_ROUNDING = Context(prec=120, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])

REASON_NO_OFFERS = "no_offers"
REASON_STALE = "stale"
REASON_OUTLIER = "outlier"
REASON_INSUFFICIENT = "insufficient_sources"


class StatisticsError(XonError, ValueError):
    """Invalid input to a statistic (empty data, duplicate sources, a non-finite number)."""


def _check_finite(values: Iterable[Decimal]) -> list[Decimal]:
    out = list(values)
    for v in out:
        if not v.is_finite():
            raise StatisticsError(f"non-finite value {v!r}")
    return out


def median(values: Iterable[Decimal]) -> Decimal:
    """The median; for an even count, the exact mean of the two middle values."""
    data = sorted(_check_finite(values))
    n = len(data)
    if n == 0:
        raise StatisticsError("median of no values")
    mid = n // 2
    if n % 2:
        return data[mid]
    with localcontext(EXACT):
        return (data[mid - 1] + data[mid]) / 2


def mad(values: Iterable[Decimal], center: Decimal | None = None) -> Decimal:
    """Median absolute deviation from ``center`` (default: the median). Not scaled."""
    data = _check_finite(values)
    m = median(data) if center is None else center
    with localcontext(EXACT):
        return median(abs(x - m) for x in data)


@dataclass(frozen=True)
class OutlierBand:
    """``[low, high]``: values outside are outliers. ``center`` is the median."""

    center: Decimal
    mad: Decimal
    scale: Decimal  # max(1.4826 * MAD, min_relative_scale * |center|)
    low: Decimal
    high: Decimal

    def contains(self, x: Decimal) -> bool:
        return self.low <= x <= self.high

    def clamp(self, x: Decimal) -> Decimal:
        return min(max(x, self.low), self.high)


def outlier_band(
    values: Sequence[Decimal],
    k: Decimal = DEFAULT_MAD_K,
    min_relative_scale: Decimal = DEFAULT_MIN_RELATIVE_SCALE,
) -> OutlierBand:
    """The MAD band around the median (see the module docstring for the rule)."""
    if k < 0 or min_relative_scale < 0:
        raise StatisticsError("k and min_relative_scale must be >= 0")
    m = median(values)
    d = mad(values, m)
    with localcontext(EXACT):
        scale = max(MAD_CONSISTENCY * d, min_relative_scale * abs(m))
        half_width = k * scale
        return OutlierBand(center=m, mad=d, scale=scale, low=m - half_width, high=m + half_width)


def to_fixed_point(value: Decimal, decimals: int = DEFAULT_DECIMALS) -> int:
    """``value * 10**decimals`` rounded ROUND_HALF_EVEN to an integer."""
    if not 0 <= decimals <= 36:
        raise StatisticsError(f"decimals {decimals} out of range 0..36")
    (v,) = _check_finite([value])
    with localcontext(_ROUNDING):
        return int(v.scaleb(decimals).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_fixed_point(value: int, decimals: int = DEFAULT_DECIMALS) -> Decimal:
    """Exact inverse of :func:`to_fixed_point` for representable values."""
    return Decimal(value).scaleb(-decimals)


@dataclass(frozen=True)
class SourceInput:
    """One source's contribution: its filtered offer prices and the snapshots behind them."""

    source: str
    prices: tuple[Decimal, ...]  # filtered, normalised offer prices (may be empty)
    observed_at: int  # unix seconds: fetch time of the source's oldest snapshot
    snapshots: tuple[str, ...] = ()  # SHA-256 (hex) of the raw response bodies, in fetch order


@dataclass(frozen=True)
class AggregationParams:
    max_age: int  # seconds; a snapshot older than this at ``now`` is stale
    min_sources: int = DEFAULT_MIN_SOURCES
    decimals: int = DEFAULT_DECIMALS
    mad_k: Decimal = DEFAULT_MAD_K
    min_relative_scale: Decimal = DEFAULT_MIN_RELATIVE_SCALE

    def __post_init__(self) -> None:
        if self.min_sources < 1:
            raise StatisticsError("min_sources must be >= 1")
        if self.max_age < 0:
            raise StatisticsError("max_age must be >= 0")
        if not 0 <= self.decimals <= 36:
            raise StatisticsError("decimals must be in 0..36")
        if self.mad_k < 0 or self.min_relative_scale < 0:
            raise StatisticsError("mad_k and min_relative_scale must be >= 0")


@dataclass(frozen=True)
class Dropped:
    source: str
    reason: str  # stable label: no_offers, stale, outlier (plus the caller's fetch reasons)
    detail: str = ""


@dataclass(frozen=True)
class FeedAggregate:
    """The node's observation of one feed. ``value is None`` means no value, see ``reason``."""

    value: int | None  # fixed point, ``decimals`` places
    decimals: int
    median: Decimal | None  # exact median of the live source values, before rounding
    dispersion: Decimal | None  # MAD / |median| over the live sources
    band: OutlierBand | None
    source_values: tuple[tuple[str, Decimal], ...]  # per-source medians of the live sources
    sources_used: tuple[str, ...]  # live and inside the band
    sources_dropped: tuple[Dropped, ...]
    snapshots: tuple[str, ...]  # hashes behind every live source (outliers included)
    reason: str | None = None  # why there is no value


def aggregate(inputs: Sequence[SourceInput], params: AggregationParams, now: int) -> FeedAggregate:
    """Aggregate one feed across sources (the method in the module docstring)."""
    names = [i.source for i in inputs]
    if len(set(names)) != len(names):
        raise StatisticsError(f"duplicate source ids in {sorted(names)}")
    dropped: list[Dropped] = []
    live: list[tuple[SourceInput, Decimal]] = []
    # Sorted by source id so that the result (incl. list orders) is permutation invariant.
    for item in sorted(inputs, key=lambda i: i.source):
        if not item.prices:
            dropped.append(Dropped(item.source, REASON_NO_OFFERS))
            continue
        age = now - item.observed_at
        if age > params.max_age:
            dropped.append(
                Dropped(item.source, REASON_STALE, f"age {age}s > max_age {params.max_age}s")
            )
            continue
        live.append((item, median(item.prices)))

    if len(live) < params.min_sources:
        return FeedAggregate(
            value=None,
            decimals=params.decimals,
            median=None,
            dispersion=None,
            band=None,
            source_values=tuple((i.source, v) for i, v in live),
            sources_used=tuple(i.source for i, _ in live),
            sources_dropped=tuple(dropped),
            snapshots=tuple(h for i, _ in live for h in i.snapshots),
            reason=f"{REASON_INSUFFICIENT}: {len(live)} live < min_sources {params.min_sources}",
        )

    values = [v for _, v in live]
    band = outlier_band(values, params.mad_k, params.min_relative_scale)
    used: list[str] = []
    for item, v in live:
        if band.contains(v):
            used.append(item.source)
        else:
            dropped.append(
                Dropped(
                    item.source,
                    REASON_OUTLIER,
                    f"{v} outside [{band.low}, {band.high}]; winsorised",
                )
            )
    center = median(band.clamp(v) for v in values)
    if center != band.center:  # clamping preserves order, so this cannot happen
        raise StatisticsError("winsorised median differs from the median")
    if band.center == 0:
        dispersion = Decimal(0) if band.mad == 0 else None
    else:
        with localcontext(_ROUNDING):
            dispersion = (band.mad / abs(band.center)).quantize(
                Decimal(1).scaleb(-DISPERSION_DECIMALS)
            )
    return FeedAggregate(
        value=to_fixed_point(center, params.decimals),
        decimals=params.decimals,
        median=center,
        dispersion=dispersion,
        band=band,
        source_values=tuple((i.source, v) for i, v in live),
        sources_used=tuple(used),
        sources_dropped=tuple(sorted(dropped, key=lambda d: d.source)),
        snapshots=tuple(h for i, _ in live for h in i.snapshots),
    )
