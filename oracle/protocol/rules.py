"""The deterministic report rules every member applies: medians, due feeds, report bytes.

Pure functions of their arguments, shared by the leader (to build a report) and the
followers (to re-derive it from the signed observations and refuse anything else).

**Median.** For k values the *lower median* ``sorted(values)[(k - 1) // 2]``: always one of
the observed integers (no rounding rule to agree on). With k ≥ 2f + 1 values of which at
most f are from faulty members, at least f values lie on each side of that position among
the rest, so the result lies within the range of the honest values.

**Report timestamp.** The lower median of the included observations' timestamps (the
same argument bounds it by honest clocks).

**Due feeds.** A feed with a quorum of values (≥ 2f + 1) is *due* when it has never been
committed, when ``timestamp - last.timestamp ≥ heartbeat_s``, or when
``|median - last.value| · 10 000 ≥ deviation_bps · |last.value|`` (for a last value of 0:
any non-zero median). Feed order in the report: ascending feed id (bytes32).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aggregation.errors import EncodingError
from aggregation.report import PricesPayload, Report, ReportKind, feed_id, feed_name
from oracle.protocol.config import FeedSpec, ProtocolConfig
from oracle.protocol.messages import Observation

__all__ = [
    "CommittedValue",
    "due_feeds",
    "is_due",
    "lower_median",
    "make_report",
    "observations_timestamp",
    "quorum_medians",
    "report_values",
]


def lower_median(values: Sequence[int]) -> int:
    """``sorted(values)[(len(values) - 1) // 2]``; raises ValueError for no values."""
    if not values:
        raise ValueError("median of no values")
    return sorted(values)[(len(values) - 1) // 2]


@dataclass(frozen=True)
class CommittedValue:
    """The last committed (finalized) value of one feed, as this node knows it."""

    value: int
    timestamp: int
    epoch: int
    round: int

    def older_than(self, epoch: int, round: int) -> bool:
        return (self.epoch, self.round) < (epoch, round)


def observations_timestamp(observations: Iterable[Observation]) -> int:
    return lower_median([o.timestamp for o in observations])


def quorum_medians(
    observations: Iterable[Observation], feeds: Iterable[str], quorum: int
) -> dict[str, int]:
    """Per feed with at least ``quorum`` values among ``observations``: the lower median."""
    wanted = set(feeds)
    columns: dict[str, list[int]] = {}
    for observation in observations:
        for name, value in observation.values:
            if name in wanted:
                columns.setdefault(name, []).append(value)
    return {name: lower_median(column) for name, column in columns.items() if len(column) >= quorum}


def is_due(spec: FeedSpec, median: int, timestamp: int, last: CommittedValue | None) -> bool:
    if last is None:
        return True
    if timestamp - last.timestamp >= spec.heartbeat_s:
        return True
    if last.value == 0:
        return median != 0
    return abs(median - last.value) * 10_000 >= spec.deviation_bps * abs(last.value)


def due_feeds(
    medians: Mapping[str, int],
    timestamp: int,
    committed: Mapping[str, CommittedValue],
    feeds: Mapping[str, FeedSpec],
) -> set[str]:
    return {
        name
        for name, median in medians.items()
        if is_due(feeds[name], median, timestamp, committed.get(name))
    }


def make_report(
    config: ProtocolConfig, epoch: int, round: int, timestamp: int, values: Mapping[str, int]
) -> Report:
    """The PRICES report for ``values`` (feed name → fixed-point value), canonical order."""
    pairs = sorted((feed_id(name), value) for name, value in values.items())
    payload = PricesPayload(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
    return Report(
        config_digest=config.config_digest,
        epoch=epoch,
        round=round,
        observations_timestamp=timestamp,
        kind=ReportKind.PRICES,
        payload=payload.encode(),
    )


def report_values(report: Report) -> dict[str, int]:
    """Feed name → value of a PRICES report; EncodingError for another kind or bad ids."""
    if report.kind is not ReportKind.PRICES:
        raise EncodingError(f"not a PRICES report: {report.kind!r}")
    payload = PricesPayload.decode(report.payload)
    pairs = zip(payload.feed_ids, payload.values, strict=True)
    return {feed_name(fid): value for fid, value in pairs}
