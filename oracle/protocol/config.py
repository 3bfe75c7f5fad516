"""Static configuration of one committee for the consensus core: who, how many, which feeds,
and how long to wait.

Everything here is agreed by every member (it is what the on-chain config digest commits
to); a node whose configuration differs from the others' will refuse their reports and be
refused in turn, so :class:`ProtocolConfig` validates eagerly and loudly.

Leader of an epoch (DESIGN §5)::

    leader(e) = members[ uint256(keccak256(configDigest ‖ uint32_be(e))) mod n ]

with ``members`` ordered by FROST identifier (ascending). Hashing the epoch makes the
rotation unpredictable before the config is fixed, yet every node computes it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Final

from eth_utils.crypto import keccak

from aggregation.errors import EncodingError
from aggregation.report import feed_id
from oracle.identity import NodeId, Roster, address_of
from oracle.transport.topics import validate_network

__all__ = [
    "MAX_EPOCH",
    "MAX_ROUND",
    "FeedSpec",
    "Member",
    "ProtocolConfig",
    "Timing",
    "leader_index",
]

MAX_EPOCH: Final = 2**32 - 1  # uint32 in the report
MAX_ROUND: Final = 2**32 - 1


# Memoised: every message and timer asks who leads the current epoch (a keccak each time).
@lru_cache(maxsize=1024)
def leader_index(config_digest: bytes, epoch: int, n: int) -> int:
    """Index (into the frost-id-ordered member list) of the leader of ``epoch``."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch {epoch} is not a uint32")
    digest = keccak(config_digest + epoch.to_bytes(4, "big"))
    return int.from_bytes(digest, "big") % n


@dataclass(frozen=True)
class Member:
    """One committee member: its identity (transport) and its FROST participant id."""

    node_id: NodeId
    frost_id: int
    identity_key: bytes  # compressed secp256k1 public key of the identity key (33 bytes)

    def __post_init__(self) -> None:
        if not 1 <= self.frost_id < 2**16:
            raise ValueError(f"FROST identifier {self.frost_id} out of range")
        if address_of(self.identity_key) != self.node_id:
            raise ValueError(f"identity key does not belong to {self.node_id}")


@dataclass(frozen=True)
class FeedSpec:
    """A price feed and when it needs an on-chain update.

    ``deviation_bps``: update when the new median moved by at least this many basis points
    from the last committed value; ``heartbeat_s``: update when the last committed value is
    at least this old (observation timestamps, seconds). Values are fixed-point integers
    with ``decimals`` places (the core never rescales them; the number is informative).
    """

    name: str
    decimals: int = 8
    deviation_bps: int = 50
    heartbeat_s: int = 86_400

    def __post_init__(self) -> None:
        try:
            feed_id(self.name)
        except EncodingError as exc:
            raise ValueError(str(exc)) from None
        if not 0 <= self.decimals <= 36:
            raise ValueError(f"feed {self.name}: decimals {self.decimals} out of range")
        if not 1 <= self.deviation_bps <= 10_000:
            raise ValueError(f"feed {self.name}: deviation_bps must be in [1, 10000]")
        if self.heartbeat_s < 1:
            raise ValueError(f"feed {self.name}: heartbeat_s must be positive")

    @property
    def feed_id(self) -> bytes:
        return feed_id(self.name)


@dataclass(frozen=True)
class Timing:
    """Protocol timers, in seconds (see docs/protocol.md §6 for how to choose them).

    * ``delta_round``: the leader starts a round at most this often; also the bound on the
      observation phase of one round (no 2f+1 observations by then: the round is dropped).
    * ``delta_grace``: after 2f+1 observations, how long the leader waits for stragglers.
    * ``delta_progress``: a follower that sees no progress from the leader for this long
      votes for the next epoch (NEWEPOCH).
    * ``delta_resend``: how often a node re-broadcasts its latest NEWEPOCH (helps members
      that restarted or lost messages to catch up).
    * ``delta_stage``: transmission staging; member k after the leader transmits a finalized
      report only after k·delta_stage (the driver's job, see ``ReportFinalized``).
    * ``signing_timeout``: a signing session without t valid shares after this long makes
      the leader start another session with other signers (ROAST-style).
    * ``commitment_ttl``: published nonce commitments older than this are retired
      (invalidated and replaced), so ids that were lost in transit do not accumulate.
    * ``max_observation_age`` / ``max_clock_skew``: the leader uses an observation only if
      its timestamp lies in [now - max_observation_age, now + max_clock_skew].
    """

    delta_round: float = 5.0
    delta_grace: float = 0.5
    delta_progress: float = 30.0
    delta_resend: float = 30.0
    delta_stage: float = 30.0
    signing_timeout: float = 2.0
    commitment_ttl: float = 900.0
    max_observation_age: float = 300.0
    max_clock_skew: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "delta_round",
            "delta_grace",
            "delta_progress",
            "delta_resend",
            "delta_stage",
            "signing_timeout",
            "commitment_ttl",
            "max_observation_age",
            "max_clock_skew",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"Timing.{name} must be positive")
        if self.delta_grace >= self.delta_round:
            raise ValueError("delta_grace must be shorter than delta_round")
        # An honest leader needs at least one full round (observe, grace, one signing
        # session) to show progress before the followers give up on it.
        if self.delta_progress <= self.delta_round + self.delta_grace + self.signing_timeout:
            raise ValueError(
                "delta_progress must exceed delta_round + delta_grace + signing_timeout"
            )


@dataclass(frozen=True)
class ProtocolConfig:
    """What every member of one committee agrees on."""

    network: str
    chain_id: int
    verifying_contract: bytes  # the PRICES receiver (PriceFeedStore), 20 bytes
    config_digest: bytes  # 32 bytes, as installed in XonCommittee
    members: tuple[Member, ...]
    f: int
    t: int
    feeds: tuple[FeedSpec, ...]
    timing: Timing = field(default_factory=Timing)
    commitment_batch: int = 16  # commitments published per batch
    commitment_low_water: int = 8  # publish a new batch when fewer remain unused
    max_sessions_per_round: int = 0  # 0: 2n

    def __post_init__(self) -> None:
        validate_network(self.network)
        if not isinstance(self.verifying_contract, bytes) or len(self.verifying_contract) != 20:
            raise ValueError("verifying_contract must be a 20-byte address")
        if not isinstance(self.config_digest, bytes) or len(self.config_digest) != 32:
            raise ValueError("config_digest must be 32 bytes")
        if not 0 < self.chain_id < 2**256:
            raise ValueError("chain_id out of range")
        members = tuple(sorted(self.members, key=lambda m: m.frost_id))
        object.__setattr__(self, "members", members)
        n = len(members)
        if len({m.node_id for m in members}) != n or len({m.frost_id for m in members}) != n:
            raise ValueError("duplicate member node id or FROST identifier")
        if self.f < 0 or n < 3 * self.f + 1:
            raise ValueError(f"n = {n} members cannot tolerate f = {self.f} (need n >= 3f + 1)")
        if not (max(2, self.f + 1) <= self.t <= n - self.f):
            raise ValueError(
                f"threshold t = {self.t} must be in [max(2, f + 1), n - f] = "
                f"[{max(2, self.f + 1)}, {n - self.f}]"
            )
        if not self.feeds:
            raise ValueError("at least one feed is required")
        if len({spec.name for spec in self.feeds}) != len(self.feeds):
            raise ValueError("duplicate feed name")
        if self.commitment_batch < 1 or not 0 <= self.commitment_low_water < self.commitment_batch:
            raise ValueError("need commitment_batch >= 1 and 0 <= low_water < batch")
        if self.max_sessions_per_round < 0:
            raise ValueError("max_sessions_per_round must be >= 0")

    # -- derived ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def quorum(self) -> int:
        """Observations a report needs (and per-feed values a median needs): 2f + 1."""
        return 2 * self.f + 1

    @property
    def session_cap(self) -> int:
        return self.max_sessions_per_round or 2 * self.n

    @cached_property
    def roster(self) -> Roster:
        return Roster(m.identity_key for m in self.members)

    @cached_property
    def by_node(self) -> Mapping[NodeId, Member]:
        return MappingProxyType({m.node_id: m for m in self.members})

    @cached_property
    def by_frost_id(self) -> Mapping[int, Member]:
        return MappingProxyType({m.frost_id: m for m in self.members})

    @cached_property
    def feeds_by_name(self) -> Mapping[str, FeedSpec]:
        return MappingProxyType({spec.name: spec for spec in self.feeds})

    def leader(self, epoch: int) -> NodeId:
        return self.members[leader_index(self.config_digest, epoch, self.n)].node_id

    def stage_position(self, epoch: int, node: NodeId) -> int:
        """0 for leader(epoch), then 1, 2, ... following the member order (transmission)."""
        start = leader_index(self.config_digest, epoch, self.n)
        index = next(i for i, m in enumerate(self.members) if m.node_id == node)
        return (index - start) % self.n
