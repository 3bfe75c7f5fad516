"""FROST preprocessing: our own nonce pool, and the book of everyone else's commitments.

**Own pool.** Nonces are drawn in batches (``commit`` per RFC 9591, hedged with the secret
share), held in memory only, and published as commitments with content-derived ids
(:func:`~oracle.protocol.messages.commitment_id`). A nonce leaves the pool when a signing
session uses it (and ``sign`` consumes it) or when any PROPOSE names its id, so the pool
mirrors what the leaders believe is still available. When fewer than ``low_water`` remain,
or when even the newest batch is half a ``commitment_ttl`` old, the pool publishes a fresh
batch; nonces older than the TTL are withdrawn (ids named in a PROPOSE we never received
would otherwise linger as "available" here while every leader thinks them spent). A
restarted node withdraws every id it had published before (they are passed in).

**Book.** Per member, the commitments it published, oldest first, capped at
``2 · batch`` per member (a flood evicts the sender's own oldest entries, nobody else's).
A leader takes the oldest one when it puts the member in a signer set; every node drops
ids named in any PROPOSE or withdrawn by their owner. Every ΔResend each member
re-announces the ids it still holds (and withdraws those it recently stopped holding), so
books converge to the owners' pools whatever the broker lost.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from aggregation.frost import KeyPackage, Rng, SigningCommitments, SigningNonces, commit
from oracle.identity import NodeId
from oracle.protocol.actions import PublishCommitments
from oracle.protocol.config import ProtocolConfig
from oracle.protocol.messages import CommitmentEntry, Commitments

__all__ = ["CommitmentBook", "NoncePool"]

log = logging.getLogger("xon.protocol.nonces")

_RETIRED_MEMORY = 64
_SPENT_MEMORY = 256


@dataclass
class _OwnNonce:
    nonces: SigningNonces
    batch: str
    published_at: float


class NoncePool:
    def __init__(self, config: ProtocolConfig, key_package: KeyPackage, rng: Rng) -> None:
        self._config = config
        self._key_package = key_package
        self._rng = rng
        self._pool: OrderedDict[bytes, _OwnNonce] = OrderedDict()
        self._announce_at = float("inf")
        # Ids we stopped holding (used, named in a PROPOSE, expired): re-announced as
        # withdrawn, so a leader that missed the PROPOSE stops offering them to us.
        self._retired: deque[bytes] = deque(maxlen=_RETIRED_MEMORY)

    def __len__(self) -> int:
        return len(self._pool)

    def __contains__(self, cid: object) -> bool:
        return cid in self._pool

    def publish(self, now: float, invalidate: Iterable[bytes] = ()) -> PublishCommitments:
        """Draw a batch of nonces and the action that records and publishes them."""
        batch = self._rng(8).hex()
        entries: list[CommitmentEntry] = []
        for _ in range(self._config.commitment_batch):
            nonces, commitments = commit(self._key_package, self._rng)
            entry = CommitmentEntry.of(commitments)
            self._pool[entry.commitment_id] = _OwnNonce(nonces, batch, now)
            entries.append(entry)
        withdrawn = tuple(invalidate)
        message = Commitments(batch, tuple(entries), withdrawn)
        self._announce_at = now + self._config.timing.delta_resend
        log.debug(
            "nonces.publish batch=%s count=%d withdrawn=%d", batch, len(entries), len(withdrawn)
        )
        return PublishCommitments(
            batch=batch,
            commitment_ids=tuple(e.commitment_id for e in entries),
            invalidated=withdrawn,
            payload=message.to_payload(),
        )

    def oldest(self) -> tuple[bytes, SigningCommitments] | None:
        for cid, own in self._pool.items():
            return cid, own.nonces.commitments
        return None

    def take(self, cid: bytes) -> SigningNonces | None:
        """Remove and return the nonces of ``cid`` (None if unknown or already gone)."""
        own = self._pool.pop(cid, None)
        if own is None:
            return None
        self._retired.append(cid)
        return own.nonces

    def discard(self, cid: bytes) -> None:
        if self._pool.pop(cid, None) is not None:
            self._retired.append(cid)

    def announce_soon(self, now: float) -> None:
        """A leader offered us a commitment we no longer hold: re-announce at once."""
        self._announce_at = min(self._announce_at, now)

    def announcements(self, now: float) -> list[Commitments]:
        """Every ΔResend: our unused commitments again, one message per batch.

        A broker may drop any message, and a leader that never saw a member's commitments
        cannot put it in a signer set; re-announcing (same ids, nothing new to record) heals
        that. Receivers ignore ids they know or have seen spent. The first message also
        withdraws the ids we recently stopped holding.
        """
        if now < self._announce_at:
            return []
        self._announce_at = now + self._config.timing.delta_resend
        batches: dict[str, list[CommitmentEntry]] = {}
        for cid, own in self._pool.items():
            batches.setdefault(own.batch, []).append(CommitmentEntry(cid, own.nonces.commitments))
        messages = [Commitments(batch, tuple(entries)) for batch, entries in batches.items()]
        if self._retired:
            retired = tuple(self._retired)
            if messages:
                messages[0] = Commitments(messages[0].batch, messages[0].entries, retired)
            else:
                messages.append(Commitments("withdrawn", (), retired))
        return messages

    def maintain(self, now: float, *, signing: bool = False) -> PublishCommitments | None:
        """Retire nonces older than the TTL; publish a batch below low water, or when even
        the newest batch is half a TTL old (so that fresh ids exist before old ones go).

        ``signing``: a share of ours is on its way to a leader that is still collecting. A
        top-up for low water alone then waits (unless the pool is empty): every signer of
        a round crosses low water in the same round, and n batches landing on every member
        while the leader collects shares would delay the round for everybody.
        """
        ttl = self._config.timing.commitment_ttl
        expired = [cid for cid, own in self._pool.items() if now - own.published_at >= ttl]
        for cid in expired:
            self._pool.pop(cid)
            self._retired.append(cid)
        newest = max((own.published_at for own in self._pool.values()), default=None)
        low = len(self._pool) < self._config.commitment_low_water
        if low and signing and self._pool and not expired:
            low = False
        if expired or low or (newest is not None and now - newest >= ttl / 2):
            return self.publish(now, invalidate=expired)
        return None

    def next_deadline(self) -> float:
        times = [own.published_at for own in self._pool.values()]
        if not times:
            return float("inf")
        ttl = self._config.timing.commitment_ttl
        return min(min(times) + ttl, max(times) + ttl / 2, self._announce_at)


class CommitmentBook:
    def __init__(self, config: ProtocolConfig) -> None:
        self._config = config
        self._cap = 2 * config.commitment_batch
        self._book: dict[NodeId, OrderedDict[bytes, tuple[SigningCommitments, float]]] = {
            m.node_id: OrderedDict() for m in config.members
        }
        # When we saw an id used: an announcement may have crossed that PROPOSE in flight.
        self._spent: dict[NodeId, OrderedDict[bytes, float]] = {
            m.node_id: OrderedDict() for m in config.members
        }

    def available(self, member: NodeId) -> int:
        return len(self._book.get(member, ()))

    def add(self, member: NodeId, message: Commitments, now: float) -> None:
        """Entries must already be checked to belong to ``member``'s FROST identifier.

        The owner is the authority on its own nonces: an id it (re-)announces is one it
        still holds, so it is available again even if we saw it named in a PROPOSE the
        owner never received — but only once a whole ΔResend has passed since we saw it
        used, as an announcement sent just before the owner got that PROPOSE is stale. An
        id it withdraws is gone. A stale announcement that still slips through (delayed or
        replayed) can only make a leader offer an id the owner refuses: that costs one
        session timeout, after which the owner re-announces its withdrawals at once.
        """
        entries = self._book[member]
        spent = self._spent[member]
        settle = self._config.timing.delta_resend
        for cid in message.invalidated:
            entries.pop(cid, None)
        for entry in message.entries:
            cid = entry.commitment_id
            used_at = spent.get(cid)
            if used_at is not None and now - used_at < settle:
                continue
            if cid not in entries:
                entries[cid] = (entry.commitments, now)
        while len(entries) > self._cap:
            entries.popitem(last=False)

    def take_oldest(self, member: NodeId, now: float) -> tuple[bytes, SigningCommitments] | None:
        entries = self._book.get(member)
        if not entries:
            return None
        cid, (commitments, _) = next(iter(entries.items()))
        self.mark_spent(member, cid, now)
        return cid, commitments

    def mark_spent(self, member: NodeId, cid: bytes, now: float) -> None:
        book = self._book.get(member)
        if book is None:
            return
        book.pop(cid, None)
        spent = self._spent[member]
        spent[cid] = now
        spent.move_to_end(cid)
        while len(spent) > _SPENT_MEMORY:
            spent.popitem(last=False)

    def expire(self, now: float) -> None:
        # A little before the owner retires them, so a leader does not pick ids that are
        # about to be withdrawn (the owner publishes fresh ones half a TTL earlier).
        ttl = 0.9 * self._config.timing.commitment_ttl
        for entries in self._book.values():
            while entries:
                _, (_, received_at) = next(iter(entries.items()))
                if now - received_at < ttl:
                    break
                entries.popitem(last=False)
