"""EIP-1559 fee choice and the replacement rule (oracle.chain.fees)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.chain import FeeCapExceeded, FeePolicy, Fees, FeeSnapshot, Wei, bump_fees, gwei
from oracle.chain.fees import compute_fees

GWEI = 10**9


def snap(base: int, tip: int) -> FeeSnapshot:
    return FeeSnapshot(Wei(base), Wei(tip))


def test_gwei_is_exact() -> None:
    assert gwei("1.5") == 1_500_000_000
    assert gwei(200) == 200 * GWEI
    assert gwei("0.000000001") == 1
    for bad in ("0.0000000001", "-1", "lots"):
        with pytest.raises(ValueError):
            gwei(bad)


def test_new_transaction_fees() -> None:
    policy = FeePolicy(max_fee_cap=gwei(100))
    # 2 x base + tip, tip as suggested.
    assert compute_fees(snap(10 * GWEI, 2 * GWEI), policy) == Fees(Wei(22 * GWEI), Wei(2 * GWEI))
    # An idle chain suggests no tip: the policy's minimum applies.
    assert compute_fees(snap(GWEI, 0), policy).max_priority_fee_per_gas == policy.min_priority_fee
    # The cap binds: max fee is the cap, the tip keeps fitting under it.
    capped = compute_fees(snap(60 * GWEI, 5 * GWEI), policy)
    assert capped == Fees(Wei(100 * GWEI), Wei(5 * GWEI))
    # Max priority fee clamps a wild suggestion.
    tight = FeePolicy(max_fee_cap=gwei(100), max_priority_fee=gwei(3))
    assert compute_fees(snap(GWEI, 50 * GWEI), tight).max_priority_fee_per_gas == 3 * GWEI


def test_base_fee_above_the_cap_sends_nothing() -> None:
    policy = FeePolicy(max_fee_cap=gwei(50))
    with pytest.raises(FeeCapExceeded) as caught:
        compute_fees(snap(51 * GWEI, GWEI), policy)
    assert caught.value.base_fee == 51 * GWEI and caught.value.cap == 50 * GWEI
    # Exactly at the cap it is still includable (the producer's tip is then 0).
    assert compute_fees(snap(50 * GWEI, GWEI), policy) == Fees(Wei(50 * GWEI), Wei(GWEI))


def test_bump_raises_both_fields_by_at_least_an_eighth() -> None:
    policy = FeePolicy(max_fee_cap=gwei(100))
    previous = Fees(Wei(20 * GWEI), Wei(2 * GWEI))
    bumped = bump_fees(previous, snap(GWEI, GWEI), policy)  # the market fell: the floor rules
    assert bumped == Fees(Wei(22_500_000_000), Wei(2_250_000_000))
    # The market rose past the floor: follow the market.
    assert bump_fees(previous, snap(30 * GWEI, 4 * GWEI), policy) == Fees(
        Wei(64 * GWEI), Wei(4 * GWEI)
    )
    # A zero tip still moves (0 * 1.125 = 0 would be refused as a replacement).
    zero = bump_fees(Fees(Wei(GWEI), Wei(0)), snap(GWEI // 10, 0), FeePolicy(gwei(10), Wei(0)))
    assert zero is not None and zero.max_priority_fee_per_gas >= 1


def test_no_bump_past_the_cap() -> None:
    policy = FeePolicy(max_fee_cap=gwei(100))
    assert bump_fees(Fees(Wei(90 * GWEI), Wei(GWEI)), snap(GWEI, GWEI), policy) is None
    assert bump_fees(Fees(Wei(80 * GWEI), Wei(GWEI)), snap(101 * GWEI, GWEI), policy) is None
    # Right under: 88.9 * 1.125 = 100.0 fits.
    assert bump_fees(Fees(Wei(88_888_888_888), Wei(GWEI)), snap(GWEI, GWEI), policy) is not None


def test_policy_checks() -> None:
    with pytest.raises(ValueError):
        FeePolicy(max_fee_cap=Wei(0))
    with pytest.raises(ValueError):
        FeePolicy(max_fee_cap=gwei(1), bump_bps=500)  # below what pools accept
    with pytest.raises(ValueError):
        Fees(Wei(1), Wei(2))


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(0, 10**12),
    tip=st.integers(0, 10**11),
    prev_max=st.integers(1, 10**12),
    prev_tip_ratio=st.integers(0, 100),
    cap=st.integers(1, 10**12),
)
def test_bump_properties(base: int, tip: int, prev_max: int, prev_tip_ratio: int, cap: int) -> None:
    policy = FeePolicy(max_fee_cap=Wei(cap))
    previous = Fees(Wei(prev_max), Wei(prev_max * prev_tip_ratio // 100))
    bumped = bump_fees(previous, snap(base, tip), policy)
    if bumped is None:
        return
    # Accepted by a geth-style pool (+10 %), in fact +12.5 %, never above the cap.
    assert bumped.max_fee_per_gas * 8 >= previous.max_fee_per_gas * 9
    assert bumped.max_priority_fee_per_gas * 8 >= previous.max_priority_fee_per_gas * 9
    assert bumped.max_priority_fee_per_gas > previous.max_priority_fee_per_gas
    assert bumped.max_fee_per_gas <= cap
    assert bumped.max_priority_fee_per_gas <= bumped.max_fee_per_gas
    assert bumped.max_fee_per_gas >= base  # includable now
