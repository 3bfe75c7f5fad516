"""The pacemaker: timeouts vote, f + 1 votes make us join, 2f + 1 make us switch."""

from __future__ import annotations

import pytest

from oracle.identity import NodeId
from oracle.protocol import EpochChanged, EpochPhase, ProtocolStateError
from oracle.protocol.actions import Action, Broadcast
from oracle.protocol.messages import NewEpoch
from oracle.protocol.pacemaker import Pacemaker
from oracle.protocol.states import EPOCH_TRANSITIONS, StateMachine
from tests.sim.helpers import T0, committee


def _votes(actions: list[Action]) -> list[int]:
    return [NewEpoch.from_payload(a.payload).epoch for a in actions if isinstance(a, Broadcast)]


def _setup(n: int = 7) -> tuple[Pacemaker, list[NodeId]]:
    c = committee(n)
    nodes = [m.node_id for m in c.config.members]
    pacemaker = Pacemaker(c.config, nodes[0])
    pacemaker.start(T0)
    return pacemaker, nodes


def test_no_progress_for_delta_progress_votes_for_the_next_epoch() -> None:
    pm, _ = _setup()
    progress = pm.progress_deadline
    assert pm.tick(progress - 0.001) == []
    actions = pm.tick(progress)
    assert _votes(actions) == [2]
    assert pm.phase is EpochPhase.CHANGING and pm.epoch == 1
    # Progress after all: back to RUNNING (the vote stays cast).
    pm.progress(progress + 1)
    phase: EpochPhase = pm.phase
    assert phase is EpochPhase.RUNNING and pm.voted == 2


def test_f_plus_one_votes_join_and_two_f_plus_one_switch() -> None:
    pm, nodes = _setup(7)  # f = 2
    assert pm.on_newepoch(nodes[1], 3, T0) == []
    assert pm.on_newepoch(nodes[2], 3, T0) == []  # two votes above us: fewer than f + 1
    joined = pm.on_newepoch(nodes[3], 3, T0)  # f + 1 = 3 votes for epoch 3: join
    assert _votes(joined) == [3] and pm.epoch == 1 and pm.phase is EpochPhase.CHANGING
    switched = pm.on_newepoch(nodes[4], 3, T0)  # ours + 4 others = 5 = 2f + 1
    assert [a for a in switched if isinstance(a, EpochChanged)] == [EpochChanged(3, pm.leader)]
    phase: EpochPhase = pm.phase
    assert pm.epoch == 3 and phase is EpochPhase.RUNNING
    assert pm.progress_deadline == T0 + pm._config.timing.delta_progress


def test_the_kth_highest_vote_decides_and_repeated_votes_count_once() -> None:
    pm, nodes = _setup(7)
    for _ in range(5):
        assert pm.on_newepoch(nodes[1], 9, T0) == []  # one member, many times
    pm.on_newepoch(nodes[2], 4, T0)
    actions = pm.on_newepoch(nodes[3], 5, T0)  # votes: 9, 5, 4 -> the 3rd highest is 4
    assert _votes(actions) == [4]
    pm.on_newepoch(nodes[4], 6, T0)  # votes 9, 6, 5, 4(ours), 4 -> 5th highest: 4
    assert pm.epoch == 4


def test_stale_votes_do_nothing() -> None:
    pm, nodes = _setup(4)
    for node in nodes[1:]:
        assert pm.on_newepoch(node, 1, T0) == []
    assert pm.epoch == 1 and pm.phase is EpochPhase.RUNNING


def test_a_valid_final_from_a_later_epoch_moves_us_there() -> None:
    pm, _ = _setup(4)
    actions = pm.jump(6, T0)
    assert pm.epoch == 6 and EpochChanged(6, pm.leader) in actions
    assert pm.jump(5, T0) == [] and pm.epoch == 6  # never back


def test_votes_are_resent_every_delta_resend() -> None:
    pm, _ = _setup(4)
    resend = pm._config.timing.delta_resend
    pm.progress(T0 + resend - 1)  # the leader is fine: this is only the periodic resend
    assert _votes(pm.tick(T0 + resend)) == [1]


def test_illegal_epoch_transition_raises_and_keeps_the_state() -> None:
    machine = StateMachine("t", EpochPhase.RUNNING, {EpochPhase.RUNNING: frozenset()})
    with pytest.raises(ProtocolStateError):
        machine.move(EpochPhase.CHANGING)
    assert machine.state is EpochPhase.RUNNING
    full = StateMachine("t", EpochPhase.RUNNING, EPOCH_TRANSITIONS)
    full.move(EpochPhase.CHANGING)
    assert full.state is EpochPhase.CHANGING
