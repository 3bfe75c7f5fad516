"""The leader's side of one round's signing: ROAST-style sessions over one report.

One report, many sessions. Each session is a FROST signing package: t signers, each with a
pre-published commitment. Sessions stay open until the round ends, so whichever collects
t valid shares first finishes the round (a late share still counts). Shares are verified
on arrival, so a bad one is attributed at once. A new session starts — with signers that
are *ready*: not caught cheating this round, and not owing a share to a session that is
still running — when a share turns out invalid or the newest session times out
(``signing_timeout``). A signer that answers becomes ready again; one that let a session
time out is tried again only after every signer with a clean record this round. So f faulty signers
cost at most f extra sessions as long as t ≤ n − f; the number of sessions per round is
capped (``ProtocolConfig.session_cap``) so a round cannot burn every commitment.

Signer choice is deterministic given this leader's state: the leader itself first (it is
always responsive), then by signing reliability (EWMA, highest first), then by FROST id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aggregation.frost import SignatureShare, SigningContext, SigningPackage
from aggregation.report import Report
from oracle.identity import NodeId
from oracle.protocol.config import ProtocolConfig
from oracle.protocol.messages import SignerEntry

__all__ = ["Session", "SigningRound"]


@dataclass
class Session:
    index: int
    signers: tuple[SignerEntry, ...]
    package: SigningPackage
    context: SigningContext
    started_at: float
    deadline: float
    shares: dict[NodeId, SignatureShare] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return tuple(s.node for s in self.signers)

    @property
    def complete(self) -> bool:
        return len(self.shares) == len(self.signers)

    def silent(self) -> tuple[NodeId, ...]:
        return tuple(node for node in self.nodes if node not in self.shares)


@dataclass
class SigningRound:
    report: Report
    report_bytes: bytes
    message: bytes  # the 32-byte FROST message (signing_message of the report)
    frames: tuple[bytes, ...]  # the signed observations, for every PROPOSE of the round
    finals: tuple[tuple[bytes, bytes], ...]  # justifying FINALs, for every PROPOSE
    sessions: list[Session] = field(default_factory=list)
    bad: set[NodeId] = field(default_factory=set)  # sent an invalid share this round
    pending: dict[NodeId, int] = field(default_factory=dict)  # owes a share to session i
    silent: dict[NodeId, int] = field(default_factory=dict)  # sessions it let time out
    want_session: bool = False  # a new session is wanted as soon as t signers are ready

    def choose(
        self,
        config: ProtocolConfig,
        me: NodeId,
        has_commitment: Callable[[NodeId], bool],
        reliability: Mapping[NodeId, float],
    ) -> list[NodeId] | None:
        """t ready signers in preference order, or None if fewer than t are ready.

        Ready: not caught cheating this round, not owing a share to a session that is still
        running, and with a commitment to use. Signers that let a session of this round time
        out stay eligible (a lost PROPOSE looks exactly like a faulty signer) but come
        last, so f silent signers cost at most f extra sessions while t ≤ n - f.
        """
        if len(self.sessions) >= config.session_cap:
            return None
        running = {i for i, s in enumerate(self.sessions) if not s.timed_out}
        ready = [
            m.node_id
            for m in config.members
            if m.node_id not in self.bad
            and self.pending.get(m.node_id) not in running
            and has_commitment(m.node_id)
        ]
        if len(ready) < config.t:
            return None
        by_id = config.by_node
        ready.sort(
            key=lambda node: (
                node != me,
                self.silent.get(node, 0),
                -reliability.get(node, 1.0),
                by_id[node].frost_id,
            )
        )
        return ready[: config.t]

    def timed_out(self, session: Session) -> tuple[NodeId, ...]:
        """Mark ``session`` timed out; returns its silent signers."""
        session.timed_out = True
        quiet = session.silent()
        for node in quiet:
            self.silent[node] = self.silent.get(node, 0) + 1
        return quiet

    def open_session(self, session: Session, me: NodeId) -> None:
        if session.index != len(self.sessions):
            raise ValueError("sessions are numbered consecutively")
        self.sessions.append(session)
        for node in session.nodes:
            if node != me:
                self.pending[node] = session.index
        self.want_session = False

    def answered(self, node: NodeId, session: Session) -> None:
        if self.pending.get(node) == session.index:
            del self.pending[node]

    def caught(self, node: NodeId) -> None:
        self.bad.add(node)
        self.pending.pop(node, None)
