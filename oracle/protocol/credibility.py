"""How far each member's observations sit from the agreed medians (DESIGN §5).

Per member and feed, an exponentially weighted moving average of the relative deviation
``|observation - median| / |median|`` (capped at 1.0, i.e. 100 %, so that one absurd value
cannot swamp the average for ever), updated once per round whose observations this node
validated (a PROPOSE it checked), with ``ALPHA = 0.1``: a new value weighs 10 %, the
effective memory is about 2/α - 1 = 19 rounds (half-life ≈ 6.6 rounds). A value more than
10 % away from the median (exactly: ``|obs - median| · 10 > |median|``) is an *outlier*.

These are metrics for operators and for the status API, never signed or posted on-chain,
so floats are fine here (the decisions themselves use exact integer comparisons).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from oracle.identity import NodeId

__all__ = ["ALPHA", "CredibilityScore", "CredibilityTracker", "is_outlier", "relative_deviation"]

ALPHA: Final = 0.1
_CAP: Final = Fraction(1)


def relative_deviation(value: int, median: int) -> Fraction:
    """``|value - median| / |median|`` capped at 1 (median 0: 0 if equal, else 1)."""
    if median == 0:
        return Fraction(0) if value == 0 else _CAP
    return min(Fraction(abs(value - median), abs(median)), _CAP)


def is_outlier(value: int, median: int) -> bool:
    """More than 10 % from the median (exact integer test)."""
    return abs(value - median) * 10 > abs(median)


@dataclass(frozen=True)
class CredibilityScore:
    """One member's standing as this node sees it."""

    deviation: float  # mean over feeds of the per-feed EWMA relative deviation
    outlier_rate: float  # EWMA of "this round had an outlier value" (0..1)
    rounds: int  # rounds scored
    outliers: int  # outlier values seen
    per_feed: Mapping[str, float] = field(default_factory=dict)
    signing_reliability: float = 1.0  # leader-side EWMA of on-time valid shares
    invalid_shares: int = 0

    @property
    def is_outlier(self) -> bool:
        """The member's average deviation is itself beyond the 10 % outlier band."""
        return self.deviation > 0.1


@dataclass
class _Member:
    per_feed: dict[str, float] = field(default_factory=dict)
    outlier_rate: float = 0.0
    rounds: int = 0
    outliers: int = 0


class CredibilityTracker:
    def __init__(self, members: Iterable[NodeId], alpha: float = ALPHA) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self._alpha = alpha
        self._members = {m: _Member() for m in members}

    def observe_round(
        self, medians: Mapping[str, int], observations: Mapping[NodeId, Mapping[str, int]]
    ) -> list[tuple[NodeId, str, int, int]]:
        """Score one round; returns the outliers as (member, feed, value, median)."""
        found: list[tuple[NodeId, str, int, int]] = []
        a = self._alpha
        for member, values in observations.items():
            state = self._members.get(member)
            if state is None:
                continue
            had_outlier = False
            scored = False
            for name, median in medians.items():
                if name not in values:
                    continue
                value = values[name]
                scored = True
                deviation = float(relative_deviation(value, median))
                previous = state.per_feed.get(name)
                state.per_feed[name] = (
                    deviation if previous is None else (1 - a) * previous + a * deviation
                )
                if is_outlier(value, median):
                    had_outlier = True
                    state.outliers += 1
                    found.append((member, name, value, median))
            if scored:
                state.rounds += 1
                state.outlier_rate = (1 - a) * state.outlier_rate + a * (
                    1.0 if had_outlier else 0.0
                )
        return found

    def scores(
        self, signing: Mapping[NodeId, tuple[float, int]] | None = None
    ) -> dict[NodeId, CredibilityScore]:
        signing = signing or {}
        result: dict[NodeId, CredibilityScore] = {}
        for member, state in self._members.items():
            per_feed = dict(state.per_feed)
            reliability, invalid = signing.get(member, (1.0, 0))
            result[member] = CredibilityScore(
                deviation=sum(per_feed.values()) / len(per_feed) if per_feed else 0.0,
                outlier_rate=state.outlier_rate,
                rounds=state.rounds,
                outliers=state.outliers,
                per_feed=MappingProxyType(per_feed),
                signing_reliability=reliability,
                invalid_shares=invalid,
            )
        return result
