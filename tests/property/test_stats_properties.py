"""Properties of the cross-source aggregation that a single dishonest source must not break."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregation.stats import AggregationParams, SourceInput, aggregate, median, to_fixed_point

NOW = 1_800_000_000
PARAMS = AggregationParams(max_age=3600, min_sources=3)

honest_price = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("100000"), places=6, allow_nan=False
)
# An adversary may report anything finite: negative, zero, 10^12, many decimals.
any_price = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=10, allow_nan=False
)


def _inputs(prices: list[list[Decimal]]) -> list[SourceInput]:
    return [SourceInput(f"s{i:02d}", tuple(p), NOW, (f"hash{i}",)) for i, p in enumerate(prices)]


source_prices = st.lists(honest_price, min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    honest=st.lists(source_prices, min_size=2, max_size=7),
    liar=st.lists(any_price, min_size=1, max_size=4),
    position=st.integers(min_value=0, max_value=7),
)
def test_one_liar_cannot_leave_the_honest_range(
    honest: list[list[Decimal]], liar: list[Decimal], position: int
) -> None:
    prices = list(honest)
    prices.insert(position % (len(prices) + 1), liar)
    result = aggregate(_inputs(prices), PARAMS, NOW)
    assert result.value is not None and result.median is not None
    honest_medians = [median(p) for p in honest]
    assert min(honest_medians) <= result.median <= max(honest_medians)
    assert (
        to_fixed_point(min(honest_medians)) <= result.value <= to_fixed_point(max(honest_medians))
    )


@settings(max_examples=100, deadline=None)
@given(prices=st.lists(source_prices, min_size=1, max_size=8), data=st.data())
def test_permutation_invariance(prices: list[list[Decimal]], data: st.DataObject) -> None:
    inputs = _inputs(prices)
    shuffled = data.draw(st.permutations(inputs))
    # Also shuffle the offers inside each source.
    shuffled = [
        SourceInput(
            s.source, tuple(data.draw(st.permutations(s.prices))), s.observed_at, s.snapshots
        )
        for s in shuffled
    ]
    assert aggregate(shuffled, PARAMS, NOW) == aggregate(inputs, PARAMS, NOW)


@settings(max_examples=150, deadline=None)
@given(
    prices=st.lists(st.lists(any_price, min_size=1, max_size=3), min_size=3, max_size=8),
    data=st.data(),
)
def test_raising_an_input_never_lowers_the_output(
    prices: list[list[Decimal]], data: st.DataObject
) -> None:
    before = aggregate(_inputs(prices), PARAMS, NOW)
    i = data.draw(st.integers(min_value=0, max_value=len(prices) - 1))
    j = data.draw(st.integers(min_value=0, max_value=len(prices[i]) - 1))
    bump = data.draw(st.decimals(min_value=0, max_value=Decimal("1e12"), places=4))
    raised = [list(p) for p in prices]
    raised[i][j] += bump
    after = aggregate(_inputs(raised), PARAMS, NOW)
    assert before.value is not None and after.value is not None
    assert before.median is not None and after.median is not None
    assert after.median >= before.median
    assert after.value >= before.value
