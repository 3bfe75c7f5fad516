"""The consensus core (sans-io): OCR-style rounds, a pacemaker, FROST signing with retries.

Layers (each imports only the ones above it)::

    errors, states          exception kinds, state enums + transition tables
    config                  ProtocolConfig (members, f, t, timing, feeds), leader(e)
    messages, actions       wire payload codecs; what the core asks the driver to do
    rules, credibility      medians, due feeds, report bytes; member scores
    pacemaker, nonces, roast   epochs; nonce pool + commitment book; signing sessions
    core                    OracleProtocol: start / receive / tick / set_observation
    sim, byzantine          deterministic N-node simulator and faulty-member wrappers

See docs/protocol.md for the protocol, the fault model and the timing parameters.
"""

from oracle.protocol.actions import (
    EMPTY_PROPOSAL,
    Action,
    Broadcast,
    EpochChanged,
    Loopback,
    Misbehaviour,
    PublishCommitments,
    RecordSigning,
    ReportFinalized,
    ScheduleTick,
    SendTo,
)
from oracle.protocol.config import FeedSpec, Member, ProtocolConfig, Timing, leader_index
from oracle.protocol.core import OracleProtocol, SigningRecord
from oracle.protocol.credibility import CredibilityScore
from oracle.protocol.errors import MisbehaviourKind, ProtocolFault, ProtocolStateError
from oracle.protocol.rules import CommittedValue, lower_median
from oracle.protocol.states import EpochPhase, FollowerPhase, LeaderPhase

__all__ = [
    "EMPTY_PROPOSAL",
    "Action",
    "Broadcast",
    "CommittedValue",
    "CredibilityScore",
    "EpochChanged",
    "EpochPhase",
    "FeedSpec",
    "FollowerPhase",
    "LeaderPhase",
    "Loopback",
    "Member",
    "Misbehaviour",
    "MisbehaviourKind",
    "OracleProtocol",
    "ProtocolConfig",
    "ProtocolFault",
    "ProtocolStateError",
    "PublishCommitments",
    "RecordSigning",
    "ReportFinalized",
    "ScheduleTick",
    "SendTo",
    "SigningRecord",
    "Timing",
    "leader_index",
    "lower_median",
]
