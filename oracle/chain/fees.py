"""EIP-1559 fee choice and the replacement ("bump") rule — pure functions, no I/O.

A transmission pays ``maxPriorityFeePerGas`` = the suggested tip clamped to the policy's
range, and ``maxFeePerGas`` = ``base_fee_multiplier`` × next base fee + tip, but never
more than the operator's cap. The multiplier gives headroom: the base fee can rise by at
most 12.5 % per block, so 2× survives about six full blocks in a row before the
transaction becomes unincludable. When the next base fee alone is above the cap, nothing
is sent (:class:`~oracle.chain.errors.FeeCapExceeded`): the transaction could not be
mined, and waiting costs nothing while the report stays valid.

A stuck transaction is replaced at the same nonce with both fields raised by at least
``bump_bps`` (default 12.5 %): geth's pool (and reth's) require +10 % on *both* fields
for a replacement and refuse anything less as "replacement transaction underpriced";
12.5 % leaves a margin for rounding and for pools that are stricter. A bump also follows
the market when the fresh estimate is higher than the +12.5 % floor. If even the floor
would cross the cap, no replacement is possible: the old transaction keeps waiting (and
is re-broadcast), never replaced by one the pool would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from oracle.chain.errors import FeeCapExceeded
from oracle.chain.types import GWEI, FeeSnapshot, Wei

__all__ = ["DEFAULT_BUMP_BPS", "FeePolicy", "Fees", "bump_fees", "compute_fees", "gwei"]

DEFAULT_BUMP_BPS = 1_250  # +12.5 %
_BPS = 10_000
_DEFAULT_MIN_TIP: Final = Wei(10**8)  # 0.1 gwei: an idle chain suggests 0, which may sit


def gwei(amount: int | str) -> Wei:
    """Whole or decimal gwei (``"1.5"``) to wei, exactly (no float on the way)."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(str(amount)) * GWEI
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of gwei: {amount!r}") from exc
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"{amount} gwei is not a whole, non-negative number of wei")
    return Wei(int(value))


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """The operator's fee limits. All amounts in wei per gas."""

    max_fee_cap: Wei
    """Never offer more than this per gas (maxFeePerGas ≤ cap), bumps included."""
    min_priority_fee: Wei = _DEFAULT_MIN_TIP
    max_priority_fee: Wei | None = None  # None: bounded only by the cap
    base_fee_multiplier: int = 2
    bump_bps: int = DEFAULT_BUMP_BPS

    def __post_init__(self) -> None:
        if self.max_fee_cap <= 0:
            raise ValueError("the max fee cap must be positive")
        if self.min_priority_fee < 0:
            raise ValueError("the minimum priority fee must not be negative")
        if self.max_priority_fee is not None and self.max_priority_fee < self.min_priority_fee:
            raise ValueError("max_priority_fee is below min_priority_fee")
        if self.base_fee_multiplier < 1:
            raise ValueError("base_fee_multiplier must be at least 1")
        if self.bump_bps < 1_000:
            raise ValueError("a bump below 10 % is refused by geth-style pools")


@dataclass(frozen=True, slots=True, order=True)
class Fees:
    """The two EIP-1559 fee fields of one transaction."""

    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei

    def __post_init__(self) -> None:
        if not 0 <= self.max_priority_fee_per_gas <= self.max_fee_per_gas:
            raise ValueError("need 0 <= maxPriorityFeePerGas <= maxFeePerGas")


def compute_fees(snapshot: FeeSnapshot, policy: FeePolicy) -> Fees:
    """Fees for a new transaction now; raises FeeCapExceeded if the base fee is above
    the cap (the transaction could not be included)."""
    base = snapshot.next_base_fee
    cap = policy.max_fee_cap
    if base > cap:
        raise FeeCapExceeded(base, cap)
    tip = max(snapshot.suggested_priority_fee, policy.min_priority_fee)
    if policy.max_priority_fee is not None:
        tip = min(tip, policy.max_priority_fee)
    max_fee = min(cap, base * policy.base_fee_multiplier + tip)
    # Under the cap the tip shrinks first: maxFee - base is what the block producer can get.
    return Fees(Wei(max_fee), Wei(min(tip, max_fee)))


def _raised(value: int, bps: int) -> int:
    """value × (1 + bps/10000), rounded up, and at least value + 1 (a 0 tip must move)."""
    return max(-(-value * (_BPS + bps) // _BPS), value + 1)


def bump_fees(previous: Fees, snapshot: FeeSnapshot, policy: FeePolicy) -> Fees | None:
    """Fees for a same-nonce replacement of ``previous``, or None when no replacement a
    pool would accept fits under the cap (keep waiting on the old transaction)."""
    floor_max = _raised(previous.max_fee_per_gas, policy.bump_bps)
    floor_tip = _raised(previous.max_priority_fee_per_gas, policy.bump_bps)
    try:
        fresh = compute_fees(snapshot, policy)
    except FeeCapExceeded:
        return None
    max_fee = max(fresh.max_fee_per_gas, floor_max)
    tip = max(fresh.max_priority_fee_per_gas, floor_tip)
    if max_fee > policy.max_fee_cap or tip > max_fee:
        return None
    return Fees(Wei(max_fee), Wei(tip))
