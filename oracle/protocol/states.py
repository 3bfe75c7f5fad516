"""State enums of the consensus core and their transition tables (transitions as data).

Every state-holding object of the core owns a :class:`StateMachine`; a move that its
table does not allow raises :class:`~oracle.protocol.errors.ProtocolStateError` and leaves
the state unchanged. Peers cannot trigger that error: their messages are validated first,
and a message that does not fit the current state is ignored (or reported as
misbehaviour), never forced through.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final, Generic, TypeVar

from oracle.protocol.errors import ProtocolStateError

__all__ = [
    "EPOCH_TRANSITIONS",
    "FOLLOWER_TRANSITIONS",
    "LEADER_TRANSITIONS",
    "EpochPhase",
    "FollowerPhase",
    "LeaderPhase",
    "StateMachine",
]

S = TypeVar("S", bound=Enum)


class StateMachine(Generic[S]):
    def __init__(self, name: str, initial: S, table: Mapping[S, frozenset[S]]) -> None:
        self._name = name
        self._state = initial
        self._table = table

    @property
    def state(self) -> S:
        return self._state

    def can(self, new: S) -> bool:
        return new in self._table.get(self._state, frozenset())

    def move(self, new: S) -> None:
        if not self.can(new):
            raise ProtocolStateError(
                f"{self._name}: illegal transition {self._state.name} -> {new.name}"
            )
        self._state = new

    def __repr__(self) -> str:
        return f"StateMachine({self._name}, {self._state.name})"


class EpochPhase(Enum):
    """The pacemaker: working in the current epoch, or voting to leave it."""

    RUNNING = "running"
    CHANGING = "changing"  # sent NEWEPOCH(e' > e), waiting for 2f + 1 votes


EPOCH_TRANSITIONS: Final[Mapping[EpochPhase, frozenset[EpochPhase]]] = {
    # RUNNING -> RUNNING: a switch straight from votes or a valid FINAL of a later epoch.
    EpochPhase.RUNNING: frozenset({EpochPhase.CHANGING, EpochPhase.RUNNING}),
    # CHANGING -> CHANGING: joining an even later epoch; -> RUNNING: switch, or progress
    # in the current epoch after all (the vote stays cast, votes are not retractable).
    EpochPhase.CHANGING: frozenset({EpochPhase.RUNNING, EpochPhase.CHANGING}),
}


class LeaderPhase(Enum):
    """One round as its leader runs it."""

    OBSERVING = "observing"  # OBSERVE sent, collecting OBSERVATIONs
    GRACE = "grace"  # 2f + 1 observations in, waiting ΔGrace for stragglers
    SIGNING = "signing"  # PROPOSE sent, collecting SHAREs (one or more sessions)
    FINALIZED = "finalized"  # FINAL broadcast
    EMPTY = "empty"  # nothing due: an empty PROPOSE closed the round
    ABANDONED = "abandoned"  # no quorum in time, or the epoch ended


_LEADER_END: Final = frozenset({LeaderPhase.FINALIZED, LeaderPhase.EMPTY, LeaderPhase.ABANDONED})
LEADER_TRANSITIONS: Final[Mapping[LeaderPhase, frozenset[LeaderPhase]]] = {
    LeaderPhase.OBSERVING: frozenset({LeaderPhase.GRACE, LeaderPhase.ABANDONED}),
    LeaderPhase.GRACE: frozenset({LeaderPhase.SIGNING, LeaderPhase.EMPTY, LeaderPhase.ABANDONED}),
    LeaderPhase.SIGNING: frozenset({LeaderPhase.FINALIZED, LeaderPhase.ABANDONED}),
    LeaderPhase.FINALIZED: frozenset(),
    LeaderPhase.EMPTY: frozenset(),
    LeaderPhase.ABANDONED: frozenset(),
}


class FollowerPhase(Enum):
    """One (epoch, round) as a member (the leader included) sees it."""

    NEW = "new"
    OBSERVED = "observed"  # answered OBSERVE with our OBSERVATION
    ACCEPTED = "accepted"  # a valid PROPOSE: the report is f(observations)
    SIGNED = "signed"  # sent a share for at least one session
    REJECTED = "rejected"  # invalid or equivocating proposal: never sign in this round
    FINALIZED = "finalized"  # a FINAL with a valid group signature


FOLLOWER_TRANSITIONS: Final[Mapping[FollowerPhase, frozenset[FollowerPhase]]] = {
    FollowerPhase.NEW: frozenset(
        {
            FollowerPhase.OBSERVED,
            FollowerPhase.ACCEPTED,
            FollowerPhase.REJECTED,
            FollowerPhase.FINALIZED,
        }
    ),
    FollowerPhase.OBSERVED: frozenset(
        {FollowerPhase.ACCEPTED, FollowerPhase.REJECTED, FollowerPhase.FINALIZED}
    ),
    FollowerPhase.ACCEPTED: frozenset(
        {FollowerPhase.SIGNED, FollowerPhase.REJECTED, FollowerPhase.FINALIZED}
    ),
    # SIGNED -> SIGNED: another session (ROAST retry) of the same report.
    FollowerPhase.SIGNED: frozenset(
        {FollowerPhase.SIGNED, FollowerPhase.REJECTED, FollowerPhase.FINALIZED}
    ),
    FollowerPhase.REJECTED: frozenset({FollowerPhase.FINALIZED}),
    FollowerPhase.FINALIZED: frozenset(),
}

LEADER_END_STATES: Final = _LEADER_END
