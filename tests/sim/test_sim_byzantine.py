"""N-node simulations with f faulty members of each kind, over a benign (reliable) network.

Every run checks the safety invariants (each FINAL verifies under the group key, every
value lies within the honest observations' range, no honest node signs two digests for
one round) and liveness: rounds keep finalizing, and the only epochs the honest members
leave are epochs whose leader is faulty — a leader failure costs one epoch change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from oracle.identity import NodeId
from oracle.protocol import MisbehaviourKind, OracleProtocol
from oracle.protocol import byzantine as bz
from oracle.protocol.sim import (
    Committee,
    PriceWalk,
    ProtocolNode,
    Simulation,
    default_nodes,
    honest_nodes,
)
from tests.sim.helpers import committee

DURATION = 30.0  # virtual seconds of rounds with an honest leader, per run


@dataclass(frozen=True)
class Fault:
    make: Callable[[OracleProtocol], ProtocolNode]
    who: str  # "leaders": the first f leaders; "followers": f members that never lead here


FAULTS: dict[str, Fault] = {
    "silent": Fault(bz.Silent, "leaders"),
    "equivocation": Fault(bz.EquivocatingLeader, "leaders"),
    "withheld_shares": Fault(bz.ShareWithholder, "followers"),
    "invalid_shares": Fault(bz.InvalidSharer, "followers"),
    "extreme_observations": Fault(lambda core: bz.ExtremeObserver(core, "random"), "leaders"),
    "replayer": Fault(bz.Replayer, "followers"),
}


def faulty_members(c: Committee, who: str) -> list[NodeId]:
    f = c.config.f
    if who == "leaders":
        chosen: list[NodeId] = []
        epoch = 1
        while len(chosen) < f:
            leader = c.config.leader(epoch)
            if leader not in chosen:
                chosen.append(leader)
            epoch += 1
        return chosen
    # Followers of epoch 1 that lead none of the first epochs either.
    early = {c.config.leader(e) for e in range(1, 4)}
    return [m.node_id for m in c.config.members if m.node_id not in early][:f]


@dataclass
class Outcome:
    sim: Simulation
    faulty: list[NodeId]
    honest: list[NodeId]

    @property
    def rounds(self) -> int:
        return len(self.sim.finalized_rounds())

    @property
    def epochs(self) -> int:
        return self.sim.epochs_reached(self.honest)


def run(n: int, kind: str, seed: int = 0) -> Outcome:
    c = committee(n)
    fault = FAULTS[kind]
    faulty = faulty_members(c, fault.who)
    nodes = default_nodes(c, seed=seed, wrap={node: fault.make for node in faulty})
    walk = PriceWalk(c.config.feeds_by_name, seed=seed, step_bps=80)
    sim = Simulation(c, nodes, seed=seed, walk=walk)
    # Each epoch with a faulty leader costs ΔProgress (plus a little); the leader of an
    # epoch is a hash, so the same faulty member may lead several epochs in a row.
    faulty_epochs = next(e for e in range(1, 100) if c.config.leader(e) not in faulty) - 1
    sim.run(DURATION + faulty_epochs * (c.config.timing.delta_progress + 0.5))
    return Outcome(sim, faulty, honest_nodes(c, faulty))


CASES = [(n, kind) for n in (4, 7) for kind in FAULTS] + [
    (10, "silent"),
    (10, "invalid_shares"),
    (10, "equivocation"),
]


@pytest.mark.parametrize(("n", "kind"), CASES, ids=[f"n{n}-{k}" for n, k in CASES])
def test_f_faulty_members_break_neither_safety_nor_liveness(n: int, kind: str) -> None:
    out = run(n, kind)
    sim, config = out.sim, out.sim.config
    assert out.faulty and len(out.faulty) == config.f
    assert sim.safety_violations(out.honest) == []

    # Liveness: only faulty leaders' epochs end (one epoch change per faulty leader at most),
    # and the rounds in between finalize.
    first_honest = next(e for e in range(1, 100) if config.leader(e) not in out.faulty)
    leader_faults = FAULTS[kind].who == "leaders" and kind != "extreme_observations"
    if leader_faults:
        # Exactly one epoch change per epoch with a faulty leader, then it settles.
        assert out.epochs == first_honest
    else:
        assert out.epochs == 1
    assert out.rounds >= (8 if leader_faults else 20), f"{out.rounds} rounds finalized"
    per_member = {node for node, _ in sim.finals}
    assert set(out.honest) <= per_member, "an honest member never saw a FINAL"

    # No honest member is ever accused by an honest member.
    accused = {m.culprit for reporter, m in sim.misbehaviour if reporter in out.honest}
    assert accused <= set(out.faulty)


def test_invalid_shares_are_attributed_and_routed_around() -> None:
    out = run(7, "invalid_shares")
    blamed = {
        m.culprit
        for reporter, m in out.sim.misbehaviour
        if reporter in out.honest and m.kind is MisbehaviourKind.INVALID_SHARE
    }
    assert blamed and blamed <= set(out.faulty)
    leader_view = out.sim.nodes[out.sim.config.leader(1)]
    assert isinstance(leader_view, OracleProtocol)
    scores = leader_view.credibility()
    for node in blamed:
        assert scores[node].invalid_shares >= 1 and scores[node].signing_reliability < 0.5
    for _, final in out.sim.finals:
        assert not set(final.signers) & set(out.faulty)


def test_withheld_shares_never_end_up_in_a_signature() -> None:
    out = run(7, "withheld_shares")
    leader_finals = [a for node, a in out.sim.finals if a.is_leader]
    assert leader_finals
    for final in leader_finals:
        assert not set(final.signers) & set(out.faulty)
    # The leader learns: later rounds need a single session.
    assert leader_finals[-1].sessions == 1


def test_an_equivocating_leader_is_caught_by_the_member_that_sees_both() -> None:
    out = run(7, "equivocation")
    caught = [
        (reporter, m)
        for reporter, m in out.sim.misbehaviour
        if reporter in out.honest and m.kind is MisbehaviourKind.EQUIVOCATION
    ]
    assert caught
    assert {m.culprit for _, m in caught} <= set(out.faulty)
    assert all(isinstance(m.evidence, tuple) and len(m.evidence) == 2 for _, m in caught)


def test_extreme_observers_lose_credibility_but_not_the_median() -> None:
    out = run(7, "extreme_observations")
    observer = out.sim.nodes[out.honest[0]]
    assert isinstance(observer, OracleProtocol)
    scores = observer.credibility()
    for node in out.faulty:
        assert scores[node].outliers > 0 and scores[node].deviation > 0.1, scores[node]
    for node in out.honest:
        assert scores[node].deviation < 0.01 and scores[node].outliers == 0, scores[node]


def test_a_restarted_member_withdraws_its_nonces_and_signs_again() -> None:
    c = committee(4)
    nodes = default_nodes(c)
    sim = Simulation(c, nodes, walk=PriceWalk(c.config.feeds_by_name, step_bps=80))
    sim.run(8.0)
    victim = next(m.node_id for m in c.config.members if m.node_id != c.config.leader(1))
    before = {e.digest for e in sim.signings if e.node == victim}
    assert before
    restart_at = sim.now
    sim.restart(victim)
    sim.run(15.0)
    assert sim.safety_violations(nodes) == []
    after = [e for e in sim.signings if e.node == victim and e.at > restart_at]
    assert after, "the restarted member never signed again"
    assert any(node == victim and a.finalized_at > restart_at for node, a in sim.finals)


def test_a_restarted_leader_never_signs_a_second_report_for_its_round() -> None:
    c = committee(4)
    nodes = default_nodes(c)
    sim = Simulation(c, nodes, walk=PriceWalk(c.config.feeds_by_name, step_bps=80))
    sim.run(5.3)  # mid-round, most likely
    sim.restart(c.config.leader(1))
    sim.run(20.0)
    assert sim.safety_violations(nodes) == []
    assert len(sim.finalized_rounds()) >= 10


def test_the_checks_catch_a_median_rule_that_lets_a_liar_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The invariants are not vacuous: with max() instead of the median, the extreme
    observer's values reach signed reports, and the range check says so."""
    import oracle.protocol.core as core_module
    from oracle.protocol import rules

    def highest(observations: object, feeds: object, quorum: int) -> dict[str, int]:
        medians = rules.quorum_medians(observations, feeds, quorum)  # type: ignore[arg-type]
        columns: dict[str, list[int]] = {}
        for obs in observations:  # type: ignore[attr-defined]
            for name, value in obs.values:
                columns.setdefault(name, []).append(value)
        return {name: max(columns[name]) for name in medians}

    monkeypatch.setattr(core_module, "quorum_medians", highest)
    out = run(4, "extreme_observations")
    problems = out.sim.safety_violations(out.honest)
    assert problems and all("outside honest" in p for p in problems)
