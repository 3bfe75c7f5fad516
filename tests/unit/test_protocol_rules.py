"""Report rules, configuration checks, leader rotation, credibility, transition tables."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from aggregation.report import PricesPayload, ReportKind, feed_id
from oracle.protocol import FeedSpec, ProtocolStateError, Timing, leader_index, lower_median
from oracle.protocol.credibility import CredibilityTracker, is_outlier, relative_deviation
from oracle.protocol.messages import Observation
from oracle.protocol.rules import (
    CommittedValue,
    due_feeds,
    is_due,
    make_report,
    observations_timestamp,
    quorum_medians,
    report_values,
)
from oracle.protocol.states import LEADER_TRANSITIONS, LeaderPhase, StateMachine
from tests.sim.helpers import committee


def test_lower_median() -> None:
    assert lower_median([5]) == 5
    assert lower_median([9, 1]) == 1
    assert lower_median([4, 1, 3, 2]) == 2
    assert lower_median([3, 1, 2]) == 2
    with pytest.raises(ValueError):
        lower_median([])


def _obs(*rows: dict[str, int], ts: int = 100) -> list[Observation]:
    return [Observation(1, 1, ts + i, tuple(r.items())) for i, r in enumerate(rows)]


def test_quorum_medians_report_only_feeds_with_2f_plus_1_values() -> None:
    rows = _obs({"a": 10, "b": 1}, {"a": 30}, {"a": 20, "b": 2}, {"a": 10**12})
    assert quorum_medians(rows, {"a", "b"}, 3) == {"a": 20}
    assert quorum_medians(rows, {"a", "b"}, 2) == {"a": 20, "b": 1}
    assert observations_timestamp(rows) == 101


@pytest.mark.parametrize(
    ("median", "ts", "last", "due"),
    [
        (100, 10, None, True),  # never reported
        (100, 10, CommittedValue(100, 0, 1, 1), False),
        (100, 3600, CommittedValue(100, 0, 1, 1), True),  # heartbeat
        (10050, 10, CommittedValue(10000, 0, 1, 1), True),  # exactly 50 bps
        (10049, 10, CommittedValue(10000, 0, 1, 1), False),
        (9950, 10, CommittedValue(10000, 0, 1, 1), True),
        (-10050, 10, CommittedValue(-10000, 0, 1, 1), True),
        (0, 10, CommittedValue(0, 0, 1, 1), False),
        (1, 10, CommittedValue(0, 0, 1, 1), True),
    ],
)
def test_is_due(median: int, ts: int, last: CommittedValue | None, due: bool) -> None:
    spec = FeedSpec("X", deviation_bps=50, heartbeat_s=3600)
    assert is_due(spec, median, ts, last) is due


def test_due_feeds_and_canonical_report() -> None:
    config = committee(4).config
    names = sorted(config.feeds_by_name)
    committed = {names[0]: CommittedValue(100, 0, 1, 1)}
    due = due_feeds({names[0]: 100, names[1]: 7}, 5, committed, config.feeds_by_name)
    assert due == {names[1]}
    report = make_report(config, 2, 3, 44, {names[1]: 7, names[0]: 100})
    payload = PricesPayload.decode(report.payload)
    assert list(payload.feed_ids) == sorted(feed_id(n) for n in names)
    assert report.kind is ReportKind.PRICES and report_values(report) == {
        names[0]: 100,
        names[1]: 7,
    }


def test_leader_rotation_is_deterministic_and_covers_every_member() -> None:
    config = committee(7).config
    leaders = [config.leader(e) for e in range(1, 701)]
    assert leaders == [config.leader(e) for e in range(1, 701)]
    counts = Counter(leaders)
    assert set(counts) == {m.node_id for m in config.members}
    assert min(counts.values()) > 50  # ~100 each
    assert leader_index(config.config_digest, 1, 7) == config.members.index(
        config.by_node[config.leader(1)]
    )


def test_config_validation() -> None:
    config = committee(4).config
    with pytest.raises(ValueError, match="tolerate"):
        dataclasses.replace(config, f=2)
    with pytest.raises(ValueError, match="threshold"):
        dataclasses.replace(config, t=4)  # t > n - f: one silent member stalls signing
    with pytest.raises(ValueError, match="duplicate"):
        dataclasses.replace(config, members=(*config.members, config.members[0]))
    with pytest.raises(ValueError, match="delta_progress"):
        Timing(delta_round=5, delta_grace=1, delta_progress=6, signing_timeout=1)
    with pytest.raises(ValueError):
        FeedSpec("has space")


def test_credibility_ewma_and_outliers() -> None:
    assert relative_deviation(110, 100) == pytest.approx(0.1)
    assert relative_deviation(10**9, 100) == 1  # capped
    assert relative_deviation(5, 0) == 1 and relative_deviation(0, 0) == 0
    assert not is_outlier(110, 100) and is_outlier(111, 100)
    tracker = CredibilityTracker(["good", "bad"], alpha=0.5)  # type: ignore[list-item]
    for _ in range(3):
        tracker.observe_round({"f": 100}, {"good": {"f": 101}, "bad": {"f": 200}})  # type: ignore[dict-item]
    scores = tracker.scores()
    assert scores["good"].deviation == pytest.approx(0.01)  # type: ignore[index]
    assert scores["bad"].deviation == pytest.approx(1.0) and scores["bad"].is_outlier  # type: ignore[index]
    assert scores["bad"].outliers == 3 and scores["bad"].outlier_rate == pytest.approx(0.875)  # type: ignore[index]
    assert scores["good"].outliers == 0  # type: ignore[index]


def test_leader_round_transitions_are_a_table() -> None:
    machine = StateMachine("round", LeaderPhase.OBSERVING, LEADER_TRANSITIONS)
    with pytest.raises(ProtocolStateError):
        machine.move(LeaderPhase.FINALIZED)  # no signature before observations
    before: LeaderPhase = machine.state
    assert before is LeaderPhase.OBSERVING
    machine.move(LeaderPhase.GRACE)
    machine.move(LeaderPhase.SIGNING)
    machine.move(LeaderPhase.FINALIZED)
    for phase in LeaderPhase:
        with pytest.raises(ProtocolStateError):
            machine.move(phase)  # terminal
    assert machine.state is LeaderPhase.FINALIZED
