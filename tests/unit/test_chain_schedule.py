"""Staged transmission scheduling (oracle.chain.schedule), driven by an explicit clock."""

from __future__ import annotations

import pytest

from oracle.chain import StageQueue, stage_delay


def test_stage_delay() -> None:
    assert stage_delay(0, 30.0) == 0.0  # the leader transmits at once
    assert stage_delay(3, 30.0) == 90.0
    with pytest.raises(ValueError):
        stage_delay(-1, 30.0)


def drain(queue: StageQueue[str, str], now: float) -> list[str]:
    out = []
    while (popped := queue.pop_due(now)) is not None:
        out.append(popped[1])
    return out


def test_items_wait_for_their_time() -> None:
    queue: StageQueue[str, str] = StageQueue()
    finalized = 1_000.0
    for name, stage in (("leader", 0), ("second", 1), ("third", 2)):
        queue.push(name, name, finalized + stage_delay(stage, 30.0))
    assert drain(queue, finalized) == ["leader"]
    assert queue.next_due() == 1_030.0
    assert drain(queue, 1_029.9) == []
    assert drain(queue, 1_030.0) == ["second"]
    assert drain(queue, 2_000.0) == ["third"]
    assert queue.next_due() is None and len(queue) == 0


def test_a_second_submission_keeps_the_earlier_time() -> None:
    queue: StageQueue[str, str] = StageQueue()
    assert queue.push("r", "v1", 50.0)
    assert not queue.push("r", "v2", 80.0)  # later: keeps 50, takes the newest item
    assert queue.next_due() == 50.0
    assert not queue.push("r", "v3", 10.0)  # earlier: moves forward
    assert queue.next_due() == 10.0
    assert drain(queue, 100.0) == ["v3"]
    assert len(queue) == 0


def test_ties_go_by_order_then_arrival() -> None:
    queue: StageQueue[str, str] = StageQueue()
    queue.push("b", "e1r2", 5.0, (1, 2))
    queue.push("a", "e1r1", 5.0, (1, 1))
    queue.push("c", "e1r1-again", 5.0, (1, 1))
    assert drain(queue, 5.0) == ["e1r1", "e1r1-again", "e1r2"]


def test_no_overtaking_within_a_lane() -> None:
    """A later report of a kind that is due first still waits for an earlier blocking one
    of the same kind; other kinds are independent."""
    queue: StageQueue[str, str] = StageQueue()
    queue.push("old", "prices e1r1", 60.0, (1, 1), lane=1)  # we are stage 2 for it
    queue.push("new", "prices e2r1", 0.0, (2, 1), lane=1)  # and leader for this one
    queue.push("other", "uptime e1r1", 90.0, (1, 1), lane=4)
    assert queue.pop_due(0.0) == ("old", "prices e1r1")
    assert queue.pop_due(0.0) == ("new", "prices e2r1")
    assert queue.pop_due(0.0) is None  # the uptime report is not pulled forward
    assert queue.pop_due(90.0) == ("other", "uptime e1r1")


def test_non_blocking_items_do_not_hold_their_lane() -> None:
    queue: StageQueue[str, str] = StageQueue()
    queue.push("stuck", "e1r1", 30.0, (1, 1), lane=1, blocking=False)
    queue.push("next", "e1r2", 0.0, (1, 2), lane=1)
    assert queue.pop_due(0.0) == ("next", "e1r2")
    assert queue.pop_due(0.0) is None
    assert queue.pop_due(30.0) == ("stuck", "e1r1")


def test_discard() -> None:
    queue: StageQueue[str, str] = StageQueue()
    queue.push("a", "a", 1.0)
    queue.push("b", "b", 2.0)
    queue.discard("a")
    queue.discard("missing")
    assert "a" not in queue and "b" in queue
    assert queue.next_due() == 2.0
    assert drain(queue, 10.0) == ["b"]
