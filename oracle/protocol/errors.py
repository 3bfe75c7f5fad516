"""Errors and misbehaviour kinds of the consensus core.

::

    XonError (aggregation.errors)
    ├── LocalProtocolError ─┐
    └── OracleError         │
        └── ProtocolError   │
            └── ProtocolStateError   an illegal state transition: a bug on our side
    PeerMisbehaviour (aggregation.errors)
    └── ProtocolFault                a peer's provable fault, with a MisbehaviourKind

The core never raises on a peer's input: a bad message becomes a
:class:`~oracle.protocol.actions.Misbehaviour` action (counted, logged, later slashed) and is
otherwise ignored. :class:`ProtocolFault` is what the validation helpers raise internally
and what tests can catch; :class:`ProtocolStateError` escapes only for our own bugs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from aggregation.errors import LocalProtocolError, PeerMisbehaviour
from oracle.errors import ProtocolError


class ProtocolStateError(ProtocolError, LocalProtocolError):
    """A state machine of the core was driven into a move its transition table forbids."""


class MisbehaviourKind(StrEnum):
    """Label values for ``Misbehaviour.kind`` (and a metric's ``reason`` label)."""

    MALFORMED = "malformed"  # payload does not decode / violates the message schema
    NOT_LEADER = "not_leader"  # a leader-only message from a member that is not leader(e)
    EQUIVOCATION = "equivocation"  # two different PROPOSEs for one (epoch, round)
    CONFLICTING_SESSION = "conflicting_session"  # one session id, two signer sets
    INVALID_PROPOSAL = "invalid_proposal"  # report != f(observations), bad embedded frames
    CONFLICTING_OBSERVATION = "conflicting_observation"  # two observations for one round
    INVALID_SHARE = "invalid_share"  # a FROST signature share that does not verify
    INVALID_FINAL = "invalid_final"  # a FINAL whose group signature does not verify
    INVALID_COMMITMENTS = "invalid_commitments"  # commitments of another signer, bad points


class ProtocolFault(PeerMisbehaviour):
    """A peer's provable fault: who (``culprit``), what (``kind``) and the ``evidence``."""

    def __init__(
        self, message: str, *, culprit: Any, kind: MisbehaviourKind, evidence: Any = None
    ) -> None:
        super().__init__(message, culprit=culprit, evidence=evidence)
        self.kind = kind
