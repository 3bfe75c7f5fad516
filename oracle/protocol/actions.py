"""What the consensus core asks its driver to do.

``start``, ``receive`` and ``tick`` return a list of actions; the driver executes them **in
order**:

* :class:`Broadcast` / :class:`SendTo` — seal (sign) and publish on the consensus topic /
  the recipient's inbox.
* :class:`Loopback` — seal as if sending to our own inbox and hand the signed envelope
  straight back to ``receive`` (how the leader's own OBSERVATION becomes a signed frame it
  can embed in a PROPOSE; brokers do not echo a client's own messages).
* :class:`RecordSigning` — durably record the sign-protection promise (and consume the
  nonce commitment) *before* the next action, which is the message that reveals the
  signature share (a SHARE, or the leader's PROPOSE). If the store refuses, the driver
  skips the rest of the list; the core places such a pair last (before ScheduleTick).
* :class:`PublishCommitments` — record the commitment ids, then broadcast the payload.
* :class:`ReportFinalized`, :class:`Misbehaviour`, :class:`EpochChanged` — information for
  the driver (store the report and transmit it after ``transmit_delay``, count/log the
  fault, update metrics).
* :class:`ScheduleTick` — call ``tick`` at ``at`` (a hint; ticking more often is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from aggregation.report import Report
from oracle.identity import NodeId
from oracle.protocol.errors import MisbehaviourKind
from oracle.transport.envelope import JsonValue, MessageType

__all__ = [
    "EMPTY_PROPOSAL",
    "Action",
    "Broadcast",
    "EpochChanged",
    "Loopback",
    "Misbehaviour",
    "PublishCommitments",
    "RecordSigning",
    "ReportFinalized",
    "ScheduleTick",
    "SendTo",
]


@dataclass(frozen=True)
class Broadcast:
    type: MessageType
    payload: dict[str, JsonValue] = field(hash=False)


@dataclass(frozen=True)
class SendTo:
    to: NodeId
    type: MessageType
    payload: dict[str, JsonValue] = field(hash=False)


@dataclass(frozen=True)
class Loopback:
    type: MessageType
    payload: dict[str, JsonValue] = field(hash=False)


#: The digest a leader records for a round it closed with an empty PROPOSE (nothing due).
#: No report hashes to it; recording it means a restarted leader never proposes that round
#: again, which its peers would take for equivocation.
EMPTY_PROPOSAL: Final = bytes(32)


@dataclass(frozen=True)
class RecordSigning:
    """Persist "I sign only ``digest`` for (kind, epoch, round)" and consume the nonce
    commitment ``commitment_id``, before the following message leaves the node.

    ``commitment_id`` is None with :data:`EMPTY_PROPOSAL`: a leader's promise that it
    proposed nothing for the round (there is no share, so no nonce to consume)."""

    kind: int
    epoch: int
    round: int
    digest: bytes
    commitment_id: bytes | None


@dataclass(frozen=True)
class PublishCommitments:
    """Record ``commitment_ids`` under ``batch`` in the store, then broadcast ``payload``
    (a COMMITMENTS message, which also withdraws ``invalidated``)."""

    batch: str
    commitment_ids: tuple[bytes, ...]
    invalidated: tuple[bytes, ...]
    payload: dict[str, JsonValue] = field(hash=False)


@dataclass(frozen=True)
class ReportFinalized:
    """A report with a valid committee signature, emitted once per (epoch, round).

    ``transmit_delay``: staged transmission (DESIGN §5): 0 for the epoch's leader, k·ΔStage
    for the k-th member after it — submit only if the report is not on-chain by then.
    ``latency``: seconds from the round's start (leader) or from the OBSERVE (follower)
    to now; None when this node never saw the round start.
    """

    report: Report
    report_bytes: bytes
    signature: bytes
    digest: bytes
    epoch: int
    round: int
    leader: NodeId
    is_leader: bool
    transmit_delay: float
    finalized_at: float
    latency: float | None
    sessions: int | None = None
    signers: tuple[NodeId, ...] = ()


@dataclass(frozen=True)
class Misbehaviour:
    """A member's provable fault. ``evidence`` holds what proves it (signed frames etc.)."""

    culprit: NodeId
    kind: MisbehaviourKind
    detail: str
    epoch: int | None = None
    round: int | None = None
    evidence: Any = field(default=None, hash=False, compare=False, repr=False)


@dataclass(frozen=True)
class EpochChanged:
    epoch: int
    leader: NodeId


@dataclass(frozen=True)
class ScheduleTick:
    at: float


Action: TypeAlias = (
    Broadcast
    | SendTo
    | Loopback
    | RecordSigning
    | PublishCommitments
    | ReportFinalized
    | Misbehaviour
    | EpochChanged
    | ScheduleTick
)
