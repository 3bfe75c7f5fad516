"""Shared fixtures for the consensus-core tests: committees built once, sealed envelopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from aggregation.frost import DealerOutput
from oracle.identity import NodeId
from oracle.protocol.actions import Action, Broadcast, Loopback, SendTo
from oracle.protocol.sim import Committee, make_committee, sim_dealer
from oracle.transport.envelope import Envelope, JsonValue, MessageType, SignedEnvelope, seal

T0 = 1_700_000_000.0


@cache
def dealer(n: int, t: int) -> DealerOutput:
    """Dealer keys per (n, t), generated once per test session."""
    return sim_dealer(n, t, seed=0)


@cache
def committee(n: int, seed: int = 0) -> Committee:
    f = (n - 1) // 3
    return make_committee(n, seed=seed, dealer=dealer(n, 2 * f + 1))


class Sealer:
    """Signs envelopes with the committee's identity keys (what a transport does)."""

    def __init__(self, committee: Committee) -> None:
        self.committee = committee
        self.seq: dict[NodeId, int] = {}

    def envelope(
        self,
        sender: NodeId,
        type_: MessageType,
        payload: Mapping[str, Any],
        to: NodeId | None = None,
    ) -> SignedEnvelope:
        self.seq[sender] = self.seq.get(sender, 0) + 1
        unsigned = Envelope(
            net=self.committee.config.network,
            type=type_,
            sender=sender,
            seq=self.seq[sender],
            payload=dict(payload),
            to=to,
        )
        return seal(unsigned, self.committee.identities[sender])

    def of(self, sender: NodeId, action: Action) -> SignedEnvelope:
        """The envelope a driver would produce for ``sender``'s send action."""
        if isinstance(action, Broadcast):
            return self.envelope(sender, action.type, action.payload)
        if isinstance(action, SendTo):
            return self.envelope(sender, action.type, action.payload, to=action.to)
        if isinstance(action, Loopback):
            return self.envelope(sender, action.type, action.payload, to=sender)
        raise TypeError(f"not a send action: {action!r}")


def of_type(actions: Sequence[Action], kind: type[Any]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def sends(actions: Sequence[Action], type_: MessageType) -> list[Broadcast | SendTo | Loopback]:
    return [a for a in actions if isinstance(a, Broadcast | SendTo | Loopback) and a.type is type_]


def payload_of(action: Broadcast | SendTo | Loopback) -> dict[str, JsonValue]:
    return action.payload
