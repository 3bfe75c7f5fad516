"""Faulty members for simulations: wrappers around an honest :class:`OracleProtocol`.

A faulty member still holds a real identity key and a real key share; it can send anything
it can sign, but it cannot forge other members' frames. Each wrapper changes one aspect of
an honest node's behaviour, so a test names exactly the fault it exercises:

* :class:`ExtremeObserver` — observes absurd values (×100, ÷100 or random).
* :class:`EquivocatingLeader` — as leader, sends one report to half of the members and a
  different (valid) report to the other half, and both to one member.
* :class:`InvalidSharer` — sends random signature shares.
* :class:`ShareWithholder` — never sends its signature shares.
* :class:`Silent` — a crashed member: sends nothing at all.
* :class:`Replayer` — re-sends its own old messages (re-sealed, so the transport passes
  them) at random later times.

Broker-level replays of *other* members' frames are a link fault of the simulator
(:attr:`~oracle.protocol.sim.LinkModel.replay`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from aggregation.frost import N, encode_scalar
from aggregation.report import Report
from oracle.identity import NodeId
from oracle.protocol.actions import Action, Broadcast, SendTo
from oracle.protocol.core import OracleProtocol
from oracle.protocol.messages import Propose, Share
from oracle.protocol.rules import make_report, report_values
from oracle.transport.envelope import MessageType, SignedEnvelope

__all__ = [
    "EquivocatingLeader",
    "ExtremeObserver",
    "Faulty",
    "InvalidSharer",
    "Replayer",
    "ShareWithholder",
    "Silent",
]


class Faulty:
    """Delegates to an honest core; subclasses rewrite its inputs or outputs."""

    def __init__(self, inner: OracleProtocol) -> None:
        self.inner = inner

    @property
    def node_id(self) -> NodeId:
        return self.inner.node_id

    def start(self, now: float) -> list[Action]:
        return self.outgoing(self.inner.start(now), now)

    def receive(self, envelope: SignedEnvelope, now: float) -> list[Action]:
        return self.outgoing(self.inner.receive(envelope, now), now)

    def tick(self, now: float) -> list[Action]:
        return self.outgoing(self.inner.tick(now), now)

    def set_observation(
        self, values: Mapping[str, int], timestamp: int, snapshot_hashes: Sequence[bytes] = ()
    ) -> None:
        self.inner.set_observation(self.observe(values), timestamp, snapshot_hashes)

    def observe(self, values: Mapping[str, int]) -> Mapping[str, int]:
        return values

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        return actions


class ExtremeObserver(Faulty):
    """Lies about prices: ``mode`` is "high" (×100), "low" (÷100) or "random"."""

    def __init__(self, inner: OracleProtocol, mode: str = "high", seed: int = 0) -> None:
        super().__init__(inner)
        if mode not in ("high", "low", "random"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self._rng = random.Random(f"extreme/{seed}/{inner.node_id}")

    def observe(self, values: Mapping[str, int]) -> Mapping[str, int]:
        if self.mode == "high":
            return {name: value * 100 for name, value in values.items()}
        if self.mode == "low":
            return {name: value // 100 for name, value in values.items()}
        return {name: self._rng.randint(1, 10**14) for name in values}


class InvalidSharer(Faulty):
    """Replaces every signature share it sends with a random scalar."""

    def __init__(self, inner: OracleProtocol, seed: int = 0) -> None:
        super().__init__(inner)
        self._rng = random.Random(f"badshare/{seed}/{inner.node_id}")

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        result: list[Action] = []
        for action in actions:
            if isinstance(action, SendTo) and action.type is MessageType.SHARE:
                share = Share.from_payload(action.payload)
                bogus = Share(
                    share.epoch,
                    share.round,
                    share.session,
                    encode_scalar(self._rng.randrange(1, N)),
                )
                result.append(SendTo(action.to, action.type, bogus.to_payload()))
            else:
                result.append(action)
        return result


class ShareWithholder(Faulty):
    """Takes part in everything but never sends a signature share."""

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        return [a for a in actions if not (isinstance(a, SendTo) and a.type is MessageType.SHARE)]


class Silent(Faulty):
    """A crashed member: processes nothing, sends nothing."""

    def start(self, now: float) -> list[Action]:
        return []

    def receive(self, envelope: SignedEnvelope, now: float) -> list[Action]:
        return []

    def tick(self, now: float) -> list[Action]:
        return []


class EquivocatingLeader(Faulty):
    """As leader, proposes report A to one half and a different report B to the other.

    B is a *valid* alternative: the same observations with one feed fewer (or, with a
    single feed, an empty proposal), so only the comparison of the two PROPOSEs exposes
    the leader. The first member of the A half receives both, in that order.
    """

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        result: list[Action] = []
        for action in actions:
            if isinstance(action, Broadcast) and action.type is MessageType.PROPOSE:
                result += self._split(Propose.from_payload(action.payload))
            else:
                result.append(action)
        return result

    def _split(self, a: Propose) -> list[Action]:
        config = self.inner.config
        if a.report is None:
            return [Broadcast(Propose.TYPE, a.to_payload())]
        report = Report.decode(a.report)
        values = report_values(report)
        if len(values) >= 2:
            del values[max(values)]
            alt = make_report(
                config, report.epoch, report.round, report.observations_timestamp, values
            )
            b = Propose(a.epoch, a.round, a.session, alt.encode(), a.observations, a.signers)
        else:
            b = Propose(a.epoch, a.round, 0, None, a.observations, ())
        others = [m.node_id for m in config.members if m.node_id != self.node_id]
        half = len(others) // 2
        first, second = others[:half], others[half:]
        sends: list[Action] = [SendTo(node, Propose.TYPE, a.to_payload()) for node in first]
        sends += [SendTo(node, Propose.TYPE, b.to_payload()) for node in second]
        if first:
            sends.append(SendTo(first[0], Propose.TYPE, b.to_payload()))
        return sends


class Replayer(Faulty):
    """Re-sends random old messages of its own (fresh envelopes, old payloads)."""

    def __init__(self, inner: OracleProtocol, seed: int = 0, rate: float = 0.3) -> None:
        super().__init__(inner)
        self._rng = random.Random(f"replayer/{seed}/{inner.node_id}")
        self._rate = rate
        self._history: list[Action] = []

    def outgoing(self, actions: list[Action], now: float) -> list[Action]:
        for action in actions:
            if isinstance(action, Broadcast | SendTo):
                self._history.append(action)
                if len(self._history) > 500:
                    self._history.pop(0)
        if self._history and self._rng.random() < self._rate:
            old = self._history[self._rng.randrange(len(self._history))]
            actions = [*actions, old]
            if isinstance(old, Broadcast):
                # And the same payload straight to one member, on its inbox topic.
                member = self._rng.choice(self.inner.config.members).node_id
                if member != self.node_id:
                    actions.append(SendTo(member, old.type, old.payload))
        return actions
