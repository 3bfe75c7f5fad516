"""Staged transmission scheduling — pure, no clock of its own (``now`` is an argument).

OCR-style staging (DESIGN §5): the epoch's leader transmits a finalized report at once,
the member k places after it (``ProtocolConfig.stage_position``) only after k·ΔStage and
only if the report is still not on-chain by then. :func:`stage_delay` is that delay;
:class:`StageQueue` holds the reports waiting for their time, one entry per report (a
second submission of the same report keeps the earlier time).

**No overtaking within a lane.** A receiver accepts only increasing (epoch, round) per
report kind, so once a later report of a kind lands, every earlier one of that kind is
impossible. PRICES reports carry only the feeds that needed an update, so a skipped
earlier report can lose an update. Each entry therefore has a *lane* (the report kind)
and an *order* ((epoch, round)); when an entry is due but an earlier entry of its lane is
still queued and *blocking*, the earlier one is handed out first, even before its own
time. An entry that failed for a reason of its own (its simulation reverted, e.g. a
feed unknown to the contract) is queued as non-blocking, so it cannot starve its lane.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["StageQueue", "stage_delay"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def stage_delay(stage: int, delta_stage: float) -> float:
    """Seconds the member at ``stage`` (0 = leader) waits before transmitting."""
    if stage < 0:
        raise ValueError("a stage is a non-negative position after the leader")
    if delta_stage < 0:
        raise ValueError("ΔStage must not be negative")
    return stage * delta_stage


@dataclass(order=True)
class _Entry(Generic[K, T]):
    due: float
    order: tuple[int, ...]
    seq: int
    key: K = field(compare=False)
    item: T = field(compare=False)
    lane: Hashable = field(compare=False)
    blocking: bool = field(compare=False)
    live: bool = field(default=True, compare=False)


class StageQueue(Generic[K, T]):
    """Items keyed by ``K``, each due at a time; ties are broken by ``order`` (e.g. the
    report's (epoch, round)), then by arrival. See the module for lanes."""

    def __init__(self) -> None:
        self._heap: list[_Entry[K, T]] = []
        self._entries: dict[K, _Entry[K, T]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> Iterator[K]:
        return iter(self._entries)

    def push(
        self,
        key: K,
        item: T,
        due: float,
        order: tuple[int, ...] = (),
        *,
        lane: Hashable = None,
        blocking: bool = True,
    ) -> bool:
        """Queue ``item`` at ``due``; if ``key`` is queued already, keep whichever time is
        earlier (and the newest item). Returns True if the key was not queued before."""
        existing = self._entries.get(key)
        if existing is not None:
            existing.blocking = blocking
            if due >= existing.due:
                existing.item = item
                return False
            existing.live = False
        self._seq += 1
        entry = _Entry(due, order, self._seq, key, item, lane, blocking)
        self._entries[key] = entry
        heapq.heappush(self._heap, entry)
        return existing is None

    def discard(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.live = False

    def _prune(self) -> None:
        while self._heap and not self._heap[0].live:
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        """When the earliest item is due; None when empty."""
        self._prune()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float) -> tuple[K, T] | None:
        """The item to work on at ``now`` (removed), or None if nothing is due: the
        earliest due item, or the earliest-ordered blocking item of its lane."""
        self._prune()
        if not self._heap or self._heap[0].due > now:
            return None
        head = self._heap[0]
        chosen = head
        if head.lane is not None:
            for entry in self._entries.values():
                if entry.lane == head.lane and entry.blocking and entry.order < chosen.order:
                    chosen = entry
        if chosen is head:
            heapq.heappop(self._heap)
        else:
            chosen.live = False
        del self._entries[chosen.key]
        return chosen.key, chosen.item
