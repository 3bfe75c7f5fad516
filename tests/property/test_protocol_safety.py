"""Whatever the network does — delay, drop, duplicate, reorder, replay — and whichever f
members misbehave, the consensus core never breaks safety.

Liveness is not asserted here (a network that drops everything is allowed); the
benign-network simulations in tests/sim assert it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.protocol import byzantine as bz
from oracle.protocol.sim import LinkModel, PriceWalk, Simulation, default_nodes, honest_nodes
from tests.sim.helpers import committee

WRAPPERS = {
    "none": None,
    "silent": bz.Silent,
    "equivocation": bz.EquivocatingLeader,
    "invalid_shares": bz.InvalidSharer,
    "withheld_shares": bz.ShareWithholder,
    "extreme": lambda core: bz.ExtremeObserver(core, "random"),
    "replayer": bz.Replayer,
}

links = st.builds(
    LinkModel,
    delay=st.tuples(st.floats(0, 0.05), st.floats(0.05, 1.5)),
    drop=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.3),
    reorder=st.floats(0, 0.3),
    reorder_window=st.floats(0, 1.0),
    replay=st.floats(0, 0.1),
    replay_delay=st.just((0.5, 10.0)),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(0, 2**16),
    link=links,
    fault=st.sampled_from(sorted(WRAPPERS)),
    leaders_faulty=st.booleans(),
)
def test_no_network_schedule_breaks_safety(
    n: int, seed: int, link: LinkModel, fault: str, leaders_faulty: bool
) -> None:
    c = committee(n)
    config = c.config
    wrapper = WRAPPERS[fault]
    if wrapper is None:
        faulty = []
    elif leaders_faulty:
        faulty = list(dict.fromkeys(config.leader(e) for e in range(1, 20)))[: config.f]
    else:
        faulty = [m.node_id for m in config.members if m.node_id != config.leader(1)][: config.f]
    nodes = default_nodes(
        c, seed=seed, wrap={node: wrapper for node in faulty} if wrapper else None
    )
    walk = PriceWalk(config.feeds_by_name, seed=seed, step_bps=80)
    sim = Simulation(c, nodes, seed=seed, link=link, walk=walk)
    sim.run(15.0)
    honest = honest_nodes(c, faulty)
    assert sim.safety_violations(honest) == []
    # No honest member accuses another honest member, whatever the network did.
    accused = {m.culprit for reporter, m in sim.misbehaviour if reporter in honest}
    assert accused <= set(faulty)
