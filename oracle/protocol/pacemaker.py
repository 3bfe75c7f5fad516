"""The pacemaker: which epoch we are in, and when to leave it (after OCR's pacemaker).

* A node that sees no progress from the current leader for ΔProgress broadcasts
  NEWEPOCH(e + 1) (or its earlier, higher vote again).
* Votes are per member: the highest epoch it asked for. When f + 1 members (ourselves
  included) ask for epochs above ours, we *join*: broadcast NEWEPOCH(ê) for the
  (f + 1)-th highest vote ê — at least one honest member asked for that much.
* When 2f + 1 members ask for epochs above ours, we *switch* to the (2f + 1)-th highest
  vote: at least f + 1 honest members are moving there, so the new leader gets a quorum.
* Every ΔResend each node re-broadcasts its latest vote (at least its current epoch), so
  members that lost messages or restarted catch up (they switch on 2f + 1 such votes).
* A FINAL with a valid group signature from a later epoch also moves us there: an honest
  member signs only in its current epoch, and the first honest member to enter an epoch
  did so on 2f + 1 votes.

Epochs only ever increase. Sans-io: the caller passes ``now`` and executes the actions.
"""

from __future__ import annotations

import logging

from oracle.identity import NodeId
from oracle.protocol.actions import Action, Broadcast, EpochChanged
from oracle.protocol.config import MAX_EPOCH, ProtocolConfig
from oracle.protocol.messages import NewEpoch
from oracle.protocol.states import EPOCH_TRANSITIONS, EpochPhase, StateMachine

__all__ = ["Pacemaker"]

log = logging.getLogger("xon.protocol.pacemaker")


class Pacemaker:
    def __init__(self, config: ProtocolConfig, me: NodeId, epoch: int = 1) -> None:
        if not 1 <= epoch <= MAX_EPOCH:
            raise ValueError(f"epoch {epoch} out of range")
        self._config = config
        self._me = me
        self._machine = StateMachine("pacemaker", EpochPhase.RUNNING, EPOCH_TRANSITIONS)
        self._epoch = epoch
        self._voted = epoch  # the highest epoch we asked for (our own vote)
        self._votes: dict[NodeId, int] = {me: epoch}
        self._progress_deadline = float("inf")
        self._resend_at = float("inf")
        self.epoch_changes = 0

    # -- read-only view ----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def leader(self) -> NodeId:
        return self._config.leader(self._epoch)

    @property
    def phase(self) -> EpochPhase:
        return self._machine.state

    @property
    def voted(self) -> int:
        return self._voted

    @property
    def progress_deadline(self) -> float:
        return self._progress_deadline

    def next_deadline(self) -> float:
        return min(self._progress_deadline, self._resend_at)

    # -- inputs --------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        timing = self._config.timing
        self._progress_deadline = now + timing.delta_progress
        self._resend_at = now + timing.delta_resend
        return [EpochChanged(self._epoch, self.leader)]

    def progress(self, now: float) -> None:
        """The current leader did its job: restart the ΔProgress timer."""
        self._progress_deadline = now + self._config.timing.delta_progress
        if self._machine.state is EpochPhase.CHANGING:
            self._machine.move(EpochPhase.RUNNING)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        timing = self._config.timing
        if now >= self._progress_deadline:
            target = min(max(self._voted, self._epoch + 1), MAX_EPOCH)
            log.info(
                "pacemaker.timeout epoch=%d leader=%s vote=%d", self._epoch, self.leader, target
            )
            self._progress_deadline = now + timing.delta_progress
            if target > self._epoch:
                actions += self._vote(target, now)
            actions += self._evaluate(now)
        if now >= self._resend_at:
            self._resend_at = now + timing.delta_resend
            vote = NewEpoch(max(self._voted, self._epoch))
            actions.append(Broadcast(NewEpoch.TYPE, vote.to_payload()))
        return actions

    def on_newepoch(self, sender: NodeId, epoch: int, now: float) -> list[Action]:
        if epoch > self._votes.get(sender, 0):
            self._votes[sender] = epoch
        return self._evaluate(now)

    def jump(self, epoch: int, now: float) -> list[Action]:
        """Move to a later epoch proven by a valid FINAL from it."""
        if epoch <= self._epoch:
            return []
        return self._switch(epoch, now)

    # -- internals -----------------------------------------------------------------------
    def _vote(self, epoch: int, now: float) -> list[Action]:
        self._voted = max(self._voted, epoch)
        self._votes[self._me] = self._voted
        if self._voted > self._epoch:
            self._machine.move(EpochPhase.CHANGING)
        self._resend_at = now + self._config.timing.delta_resend
        return [Broadcast(NewEpoch.TYPE, NewEpoch(self._voted).to_payload())]

    def _evaluate(self, now: float) -> list[Action]:
        f = self._config.f
        actions: list[Action] = []
        ballots = sorted(self._votes.values(), reverse=True)
        if len(ballots) >= f + 1:
            join = ballots[f]
            if join > self._epoch and join > self._voted:
                log.info("pacemaker.join epoch=%d vote=%d", self._epoch, join)
                actions += self._vote(join, now)
                ballots = sorted(self._votes.values(), reverse=True)
        if len(ballots) >= 2 * f + 1:
            switch = ballots[2 * f]
            if switch > self._epoch:
                actions += self._switch(switch, now)
        return actions

    def _switch(self, epoch: int, now: float) -> list[Action]:
        self._machine.move(EpochPhase.RUNNING)
        previous = self._epoch
        self._epoch = epoch
        self.epoch_changes += 1
        self._progress_deadline = now + self._config.timing.delta_progress
        actions: list[Action] = []
        if self._voted < epoch:
            # Tell the others we are here: it completes their 2f + 1 sooner.
            self._voted = epoch
            self._votes[self._me] = epoch
            self._resend_at = now + self._config.timing.delta_resend
            actions.append(Broadcast(NewEpoch.TYPE, NewEpoch(epoch).to_payload()))
        log.info("pacemaker.switch from=%d to=%d leader=%s", previous, epoch, self.leader)
        actions.append(EpochChanged(epoch, self.leader))
        return actions
