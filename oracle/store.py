"""Durable node state: sign protection, nonce-commitment bookkeeping, reports, audit log.

One SQLite database per node (stdlib :mod:`sqlite3`, WAL mode), one connection per
:class:`NodeStore`. Four tables:

* ``sign_protection`` — the digest this node signed for each (kind, epoch, round). A second,
  *different* digest for the same key is refused with :class:`DoubleSignRefused`; the same
  digest again is a no-op (a ROAST-style retry signs the same report with another signer
  set). The row is committed with ``synchronous=FULL`` (the WAL is fsync'd) before
  :meth:`NodeStore.record_signing` returns, so the protocol driver calls it *before* a
  signature share leaves the node: a crash after the call cannot forget the promise.
* ``nonce_commitments`` — ids of the FROST nonce commitments this node published, with the
  batch they were published in, and whether each was consumed (used for one signature) or
  invalidated. **The nonces themselves are never stored**: they live in memory only
  (:class:`aggregation.frost.signing.SigningNonces`), are consumed before a share is sent,
  and die with the process. A restarted node therefore calls
  :meth:`NodeStore.invalidate_all_unconsumed` once at start and announces the returned ids
  as invalid, then publishes fresh commitments.
* ``committed_reports`` — finalized reports with their signature and on-chain status;
  :meth:`NodeStore.pending_transmission` lists those not yet on-chain, so a restart does not
  drop them.
* ``observations`` — the signed observations a round was built from, kept for audit.

Every write is a single ``BEGIN IMMEDIATE … COMMIT`` transaction, so a crash or a cancelled
caller leaves either all of a write or none of it. Sign protection, commitments and reports
are written with ``synchronous=FULL`` (survive power loss); the audit log uses ``NORMAL``
(survives a process crash, may lose the last rows on power loss) because it is the only
high-volume table and losing its tail endangers nothing.

Threads and asyncio: :class:`NodeStore` is synchronous and thread-safe (one lock around the
connection). Async code uses :class:`AsyncNodeStore`, whose methods run the same calls in
:func:`asyncio.to_thread`. If the awaiting task is cancelled, the worker thread still finishes
its transaction: the write then either happened completely or not at all. Every write is
idempotent for identical arguments, so the caller can simply retry — except consuming a
commitment, which a retry reports as unavailable: the safe outcome, as that nonce is then
simply never used.

The schema is versioned through ``PRAGMA user_version`` and the :data:`MIGRATIONS` list;
opening a database applies the missing migrations, and refuses one written by a newer XON.

Errors (all :class:`oracle.errors.StoreError`)::

    StoreError                  I/O failure, closed store, bad argument, newer schema
    ├── DoubleSignRefused       a different digest is already recorded for (kind, epoch, round)
    ├── CommitmentUnavailable   a commitment that is unknown, consumed or invalidated
    └── ConflictingRecord       a second, different report / observation for the same key
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from oracle.errors import StoreError

__all__ = [
    "MIGRATIONS",
    "AsyncNodeStore",
    "CommitmentStatus",
    "CommitmentUnavailable",
    "CommittedReport",
    "ConflictingRecord",
    "DoubleSignRefused",
    "NodeStore",
    "ObservationRecord",
    "PublishedCommitment",
    "SignedRound",
]

log = logging.getLogger(__name__)

_U8: Final = 2**8
_U32: Final = 2**32
DIGEST_SIZE: Final = 32

#: Schema migrations; entry i (0-based) moves the database from user_version i to i + 1.
#: Append only: never edit a released entry.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE sign_protection (
            kind      INTEGER NOT NULL,
            epoch     INTEGER NOT NULL,
            round     INTEGER NOT NULL,
            digest    BLOB    NOT NULL CHECK (length(digest) = 32),
            signed_at REAL    NOT NULL,
            PRIMARY KEY (kind, epoch, round)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE nonce_commitments (
            commitment_id BLOB PRIMARY KEY,
            batch         TEXT NOT NULL,
            status        TEXT NOT NULL
                          CHECK (status IN ('published', 'consumed', 'invalidated')),
            published_at  REAL NOT NULL,
            closed_at     REAL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX nonce_commitments_published ON nonce_commitments (status)",
        """
        CREATE TABLE committed_reports (
            kind           INTEGER NOT NULL,
            epoch          INTEGER NOT NULL,
            round          INTEGER NOT NULL,
            report         BLOB    NOT NULL,
            signature      BLOB    NOT NULL,
            digest         BLOB    NOT NULL CHECK (length(digest) = 32),
            committed_at   REAL    NOT NULL,
            transmitted    INTEGER NOT NULL DEFAULT 0 CHECK (transmitted IN (0, 1)),
            tx_hash        BLOB,
            transmitted_at REAL,
            PRIMARY KEY (kind, epoch, round)
        )
        """,
        """
        CREATE INDEX committed_reports_pending
            ON committed_reports (epoch, round) WHERE transmitted = 0
        """,
        """
        CREATE TABLE observations (
            kind            INTEGER NOT NULL,
            epoch           INTEGER NOT NULL,
            round           INTEGER NOT NULL,
            sender          TEXT    NOT NULL,
            payload         BLOB    NOT NULL,
            values_json     TEXT    NOT NULL,
            snapshot_hashes TEXT    NOT NULL,
            signature       BLOB    NOT NULL,
            received_at     REAL    NOT NULL,
            PRIMARY KEY (kind, epoch, round, sender)
        )
        """,
    ),
)


# -- errors ------------------------------------------------------------------------------
class DoubleSignRefused(StoreError):
    """This node already signed a different report digest for (kind, epoch, round)."""

    def __init__(
        self, *, kind: int, epoch: int, round: int, existing_digest: bytes, refused_digest: bytes
    ) -> None:
        super().__init__(
            f"refusing to sign digest {refused_digest.hex()} for kind {kind} epoch {epoch} "
            f"round {round}: digest {existing_digest.hex()} was already signed"
        )
        self.kind = kind
        self.epoch = epoch
        self.round = round
        self.existing_digest = existing_digest
        self.refused_digest = refused_digest


class CommitmentStatus(StrEnum):
    PUBLISHED = "published"
    CONSUMED = "consumed"
    INVALIDATED = "invalidated"


class CommitmentUnavailable(StoreError):
    """A nonce commitment that cannot be consumed: ``status`` is None when it is unknown."""

    def __init__(self, commitment_id: bytes, status: CommitmentStatus | None) -> None:
        what = "unknown" if status is None else status.value
        super().__init__(f"nonce commitment {commitment_id.hex()} is {what}")
        self.commitment_id = commitment_id
        self.status = status


class ConflictingRecord(StoreError):
    """A second, different record for a key that already holds one; ``existing`` is it."""

    def __init__(self, message: str, existing: CommittedReport | ObservationRecord) -> None:
        super().__init__(message)
        self.existing = existing


# -- records -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedRound:
    kind: int
    epoch: int
    round: int
    digest: bytes
    signed_at: float


@dataclass(frozen=True)
class PublishedCommitment:
    commitment_id: bytes
    batch: str
    status: CommitmentStatus
    published_at: float


@dataclass(frozen=True)
class CommittedReport:
    kind: int
    epoch: int
    round: int
    report: bytes
    signature: bytes
    digest: bytes
    committed_at: float
    transmitted: bool
    tx_hash: bytes | None
    transmitted_at: float | None


@dataclass(frozen=True)
class ObservationRecord:
    """A signed observation as received: ``payload`` is the exact signed bytes, so the
    ``signature`` can be re-checked later without re-serialising anything."""

    kind: int
    epoch: int
    round: int
    sender: str
    payload: bytes
    values_json: str
    snapshot_hashes: tuple[bytes, ...]
    signature: bytes
    received_at: float


# -- argument checks ---------------------------------------------------------------------
def _check_round_key(kind: int, epoch: int, round: int) -> None:
    if not 0 <= kind < _U8:
        raise StoreError(f"kind {kind} is not a uint8")
    if not 0 <= epoch < _U32:
        raise StoreError(f"epoch {epoch} is not a uint32")
    if not 0 <= round < _U32:
        raise StoreError(f"round {round} is not a uint32")


def _check_digest(digest: bytes) -> bytes:
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise StoreError("a report digest is 32 bytes")
    return digest


def _check_blob(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or not value:
        raise StoreError(f"{what} must be non-empty bytes")
    return value


# -- the store ---------------------------------------------------------------------------
class NodeStore:
    """The node's database. Synchronous and thread-safe; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._synchronous: str | None = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is
            # exactly one public call. check_same_thread=False: asyncio.to_thread may use
            # any worker thread; self._lock serialises them.
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the node store at {self.path}: {exc}") from exc
        try:
            self._configure(busy_timeout_s)
            self._migrate()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _configure(self, busy_timeout_s: float) -> None:
        conn = self._require_conn()
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the node store at {self.path} cannot use WAL (got {mode})")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            self._set_synchronous(conn, durable=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot configure the node store at {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        latest = len(MIGRATIONS)
        with self._write(durable=True) as conn:
            # Read the version inside the write transaction: two processes opening a fresh
            # file at once must not both apply migration 1.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > latest:
                raise StoreError(
                    f"the node store at {self.path} has schema version {version}; "
                    f"this XON knows only up to {latest}"
                )
            for target in range(version + 1, latest + 1):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
                log.info("store.migrated path=%s version=%d", self.path, target)

    # -- transactions ------------------------------------------------------------------
    def _require_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the node store is closed")
        return self._conn

    def _set_synchronous(self, conn: sqlite3.Connection, *, durable: bool) -> None:
        # synchronous is a per-connection setting, not per table; switching it before each
        # transaction costs nothing and gives the critical tables FULL (fsync per commit)
        # while the audit log stays on NORMAL.
        wanted = "FULL" if durable else "NORMAL"
        if self._synchronous != wanted:
            conn.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous = wanted

    @contextmanager
    def _write(self, *, durable: bool) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so that two connections never
        deadlock upgrading read locks; everything inside commits or nothing does."""
        with self._lock:
            conn = self._require_conn()
            try:
                self._set_synchronous(conn, durable=durable)
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a transaction on {self.path}: {exc}") from exc
            try:
                yield conn
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"node store write failed: {exc}") from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise StoreError(f"node store commit failed: {exc}") from exc

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # Called while another exception propagates: a failing ROLLBACK must not mask it.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("store.rollback_failed path=%s", self.path)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require_conn()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"node store read failed: {exc}") from exc

    # -- sign protection ---------------------------------------------------------------
    def record_signing(
        self,
        kind: int,
        epoch: int,
        round: int,
        report_digest: bytes,
        *,
        commitment_id: bytes | None = None,
    ) -> None:
        """Promise, durably, that this node signs only ``report_digest`` for the round.

        Returns once the promise is on disk; call it before the signature share is sent.
        Raises :class:`DoubleSignRefused` if another digest was recorded for the same
        (kind, epoch, round); recording the same digest again is a no-op.

        With ``commitment_id`` the nonce commitment the share will use is consumed in the
        same transaction (see :meth:`consume_commitment`): both happen or neither does.
        """
        _check_round_key(kind, epoch, round)
        _check_digest(report_digest)
        with self._write(durable=True) as conn:
            row = conn.execute(
                "SELECT digest FROM sign_protection WHERE kind = ? AND epoch = ? AND round = ?",
                (kind, epoch, round),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO sign_protection (kind, epoch, round, digest, signed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (kind, epoch, round, report_digest, self._clock()),
                )
            elif bytes(row[0]) != report_digest:
                log.warning(
                    "store.double_sign_refused kind=%d epoch=%d round=%d existing=%s refused=%s",
                    kind,
                    epoch,
                    round,
                    bytes(row[0]).hex(),
                    report_digest.hex(),
                )
                raise DoubleSignRefused(
                    kind=kind,
                    epoch=epoch,
                    round=round,
                    existing_digest=bytes(row[0]),
                    refused_digest=report_digest,
                )
            if commitment_id is not None:
                self._consume(conn, commitment_id)

    def signed_digest(self, kind: int, epoch: int, round: int) -> bytes | None:
        """The digest recorded for (kind, epoch, round), if any."""
        _check_round_key(kind, epoch, round)
        with self._read() as conn:
            row = conn.execute(
                "SELECT digest FROM sign_protection WHERE kind = ? AND epoch = ? AND round = ?",
                (kind, epoch, round),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def highest_signed(self, kind: int) -> SignedRound | None:
        """The latest (epoch, round) this node signed for ``kind``, or None."""
        _check_round_key(kind, 0, 0)
        with self._read() as conn:
            row = conn.execute(
                "SELECT kind, epoch, round, digest, signed_at FROM sign_protection "
                "WHERE kind = ? ORDER BY epoch DESC, round DESC LIMIT 1",
                (kind,),
            ).fetchone()
        if row is None:
            return None
        return SignedRound(int(row[0]), int(row[1]), int(row[2]), bytes(row[3]), float(row[4]))

    # -- nonce commitments -------------------------------------------------------------
    def record_commitments(self, batch: str, commitment_ids: Iterable[bytes]) -> None:
        """Remember that the commitments ``commitment_ids`` were published in ``batch``.

        Call it before publishing. Re-recording an id that is still published in the same
        batch is a no-op (a retried call); any other reuse of an id is refused, since a
        commitment id names one nonce pair and must never come back.
        """
        if not batch:
            raise StoreError("a commitment batch needs a name")
        ids = [_check_blob(c, "a commitment id") for c in commitment_ids]
        if len(set(ids)) != len(ids):
            raise StoreError("duplicate commitment id in one batch")
        now = self._clock()
        with self._write(durable=True) as conn:
            for cid in ids:
                row = conn.execute(
                    "SELECT batch, status FROM nonce_commitments WHERE commitment_id = ?", (cid,)
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO nonce_commitments (commitment_id, batch, status, "
                        "published_at) VALUES (?, ?, 'published', ?)",
                        (cid, batch, now),
                    )
                elif row[0] != batch or row[1] != CommitmentStatus.PUBLISHED:
                    raise StoreError(
                        f"nonce commitment {cid.hex()} was already recorded "
                        f"(batch {row[0]!r}, {row[1]})"
                    )

    def consume_commitment(self, commitment_id: bytes) -> None:
        """Mark a published commitment as used by one signature.

        Raises :class:`CommitmentUnavailable` if it is unknown, already consumed or
        invalidated: the caller must then not sign with it.
        """
        _check_blob(commitment_id, "a commitment id")
        with self._write(durable=True) as conn:
            self._consume(conn, commitment_id)

    def _consume(self, conn: sqlite3.Connection, commitment_id: bytes) -> None:
        row = conn.execute(
            "SELECT status FROM nonce_commitments WHERE commitment_id = ?", (commitment_id,)
        ).fetchone()
        if row is None:
            raise CommitmentUnavailable(commitment_id, None)
        status = CommitmentStatus(row[0])
        if status is not CommitmentStatus.PUBLISHED:
            raise CommitmentUnavailable(commitment_id, status)
        conn.execute(
            "UPDATE nonce_commitments SET status = 'consumed', closed_at = ? "
            "WHERE commitment_id = ?",
            (self._clock(), commitment_id),
        )

    def commitment_status(self, commitment_id: bytes) -> CommitmentStatus | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT status FROM nonce_commitments WHERE commitment_id = ?", (commitment_id,)
            ).fetchone()
        return None if row is None else CommitmentStatus(row[0])

    def invalidate_all_unconsumed(self) -> list[PublishedCommitment]:
        """At start: mark every published-but-unconsumed commitment invalid, return them.

        Their nonces died with the previous process, so the node must announce these ids
        as invalid; signing with them is impossible and is refused from now on.
        """
        now = self._clock()
        with self._write(durable=True) as conn:
            rows = conn.execute(
                "SELECT commitment_id, batch, published_at FROM nonce_commitments "
                "WHERE status = 'published' ORDER BY published_at, commitment_id"
            ).fetchall()
            conn.execute(
                "UPDATE nonce_commitments SET status = 'invalidated', closed_at = ? "
                "WHERE status = 'published'",
                (now,),
            )
        if rows:
            log.info("store.commitments_invalidated count=%d", len(rows))
        return [
            PublishedCommitment(bytes(r[0]), str(r[1]), CommitmentStatus.INVALIDATED, float(r[2]))
            for r in rows
        ]

    def prune_closed_commitments(self, closed_before: float) -> int:
        """Delete consumed/invalidated commitment rows closed before a time; returns the
        count. Published ones are never pruned (they still need announcing if we crash)."""
        with self._write(durable=True) as conn:
            cursor = conn.execute(
                "DELETE FROM nonce_commitments WHERE status != 'published' AND closed_at < ?",
                (closed_before,),
            )
            return int(cursor.rowcount)

    # -- committed reports -------------------------------------------------------------
    def save_report(
        self,
        kind: int,
        epoch: int,
        round: int,
        *,
        report: bytes,
        signature: bytes,
        digest: bytes,
    ) -> CommittedReport:
        """Store a finalized report; returns the stored row.

        Saving the same digest again keeps the first row (another signer set yields another
        valid signature for the same report). A different digest for the same round raises
        :class:`ConflictingRecord`: two different reports finalized for one round.
        """
        _check_round_key(kind, epoch, round)
        _check_digest(digest)
        _check_blob(report, "a report")
        _check_blob(signature, "a signature")
        with self._write(durable=True) as conn:
            existing = self._get_report(conn, kind, epoch, round)
            if existing is not None:
                if existing.digest != digest:
                    raise ConflictingRecord(
                        f"a different report is already committed for kind {kind} "
                        f"epoch {epoch} round {round}",
                        existing,
                    )
                return existing
            now = self._clock()
            conn.execute(
                "INSERT INTO committed_reports (kind, epoch, round, report, signature, digest, "
                "committed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, epoch, round, report, signature, digest, now),
            )
        return CommittedReport(
            kind, epoch, round, report, signature, digest, now, False, None, None
        )

    def mark_transmitted(
        self, kind: int, epoch: int, round: int, tx_hash: bytes | None = None
    ) -> None:
        """The report is on-chain (``tx_hash`` None: included by someone else's tx).
        Marking it again keeps the first tx hash."""
        _check_round_key(kind, epoch, round)
        if tx_hash is not None and (not isinstance(tx_hash, bytes) or len(tx_hash) != 32):
            raise StoreError("a transaction hash is 32 bytes")
        with self._write(durable=True) as conn:
            cursor = conn.execute(
                "UPDATE committed_reports SET transmitted = 1, tx_hash = ?, transmitted_at = ? "
                "WHERE kind = ? AND epoch = ? AND round = ? AND transmitted = 0",
                (tx_hash, self._clock(), kind, epoch, round),
            )
            if cursor.rowcount == 0 and self._get_report(conn, kind, epoch, round) is None:
                raise StoreError(f"no committed report for kind {kind} epoch {epoch} round {round}")

    def get_report(self, kind: int, epoch: int, round: int) -> CommittedReport | None:
        _check_round_key(kind, epoch, round)
        with self._read() as conn:
            return self._get_report(conn, kind, epoch, round)

    def pending_transmission(self, kind: int | None = None) -> list[CommittedReport]:
        """Committed reports not yet on-chain, oldest (epoch, round) first."""
        query = f"SELECT {_REPORT_COLUMNS} FROM committed_reports WHERE transmitted = 0"
        params: tuple[Any, ...] = ()
        if kind is not None:
            _check_round_key(kind, 0, 0)
            query += " AND kind = ?"
            params = (kind,)
        query += " ORDER BY epoch, round, kind"
        with self._read() as conn:
            return [_report_from_row(r) for r in conn.execute(query, params).fetchall()]

    @staticmethod
    def _get_report(
        conn: sqlite3.Connection, kind: int, epoch: int, round: int
    ) -> CommittedReport | None:
        row = conn.execute(
            f"SELECT {_REPORT_COLUMNS} FROM committed_reports "
            "WHERE kind = ? AND epoch = ? AND round = ?",
            (kind, epoch, round),
        ).fetchone()
        return None if row is None else _report_from_row(row)

    # -- observations (audit) ----------------------------------------------------------
    def record_observation(
        self,
        kind: int,
        epoch: int,
        round: int,
        *,
        sender: str,
        payload: bytes,
        values_json: str,
        snapshot_hashes: Sequence[bytes],
        signature: bytes,
    ) -> bool:
        """Keep a received signed observation; True if new, False for an exact repeat.

        A different payload from the same sender for the same round raises
        :class:`ConflictingRecord` carrying the first one: evidence of equivocation.
        """
        _check_round_key(kind, epoch, round)
        if not sender:
            raise StoreError("an observation needs a sender")
        _check_blob(payload, "an observation payload")
        _check_blob(signature, "an observation signature")
        try:
            json.loads(values_json)
        except (TypeError, ValueError) as exc:
            raise StoreError("observation values must be a JSON document") from exc
        hashes = json.dumps([_check_blob(h, "a snapshot hash").hex() for h in snapshot_hashes])
        with self._write(durable=False) as conn:
            row = conn.execute(
                f"SELECT {_OBSERVATION_COLUMNS} FROM observations "
                "WHERE kind = ? AND epoch = ? AND round = ? AND sender = ?",
                (kind, epoch, round, sender),
            ).fetchone()
            if row is not None:
                existing = _observation_from_row(row)
                if existing.payload != payload or existing.signature != signature:
                    raise ConflictingRecord(
                        f"{sender} sent two different observations for kind {kind} "
                        f"epoch {epoch} round {round}",
                        existing,
                    )
                return False
            conn.execute(
                f"INSERT INTO observations ({_OBSERVATION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    epoch,
                    round,
                    sender,
                    payload,
                    values_json,
                    hashes,
                    signature,
                    self._clock(),
                ),
            )
            return True

    def observations(self, kind: int, epoch: int, round: int) -> list[ObservationRecord]:
        _check_round_key(kind, epoch, round)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_OBSERVATION_COLUMNS} FROM observations "
                "WHERE kind = ? AND epoch = ? AND round = ? ORDER BY sender",
                (kind, epoch, round),
            ).fetchall()
        return [_observation_from_row(r) for r in rows]


_REPORT_COLUMNS: Final = (
    "kind, epoch, round, report, signature, digest, committed_at, transmitted, tx_hash, "
    "transmitted_at"
)
_OBSERVATION_COLUMNS: Final = (
    "kind, epoch, round, sender, payload, values_json, snapshot_hashes, signature, received_at"
)


def _report_from_row(row: Sequence[Any]) -> CommittedReport:
    return CommittedReport(
        kind=int(row[0]),
        epoch=int(row[1]),
        round=int(row[2]),
        report=bytes(row[3]),
        signature=bytes(row[4]),
        digest=bytes(row[5]),
        committed_at=float(row[6]),
        transmitted=bool(row[7]),
        tx_hash=None if row[8] is None else bytes(row[8]),
        transmitted_at=None if row[9] is None else float(row[9]),
    )


def _observation_from_row(row: Sequence[Any]) -> ObservationRecord:
    return ObservationRecord(
        kind=int(row[0]),
        epoch=int(row[1]),
        round=int(row[2]),
        sender=str(row[3]),
        payload=bytes(row[4]),
        values_json=str(row[5]),
        snapshot_hashes=tuple(bytes.fromhex(h) for h in json.loads(row[6])),
        signature=bytes(row[7]),
        received_at=float(row[8]),
    )


# -- async facade ------------------------------------------------------------------------
class AsyncNodeStore:
    """The same operations for asyncio code: each runs in :func:`asyncio.to_thread`.

    Cancelling the awaiting task does not cancel the write (see the module docstring);
    retrying with the same arguments is safe.
    """

    def __init__(self, store: NodeStore) -> None:
        self.sync = store

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def record_signing(
        self,
        kind: int,
        epoch: int,
        round: int,
        report_digest: bytes,
        *,
        commitment_id: bytes | None = None,
    ) -> None:
        await asyncio.to_thread(
            self.sync.record_signing, kind, epoch, round, report_digest, commitment_id=commitment_id
        )

    async def signed_digest(self, kind: int, epoch: int, round: int) -> bytes | None:
        return await asyncio.to_thread(self.sync.signed_digest, kind, epoch, round)

    async def highest_signed(self, kind: int) -> SignedRound | None:
        return await asyncio.to_thread(self.sync.highest_signed, kind)

    async def record_commitments(self, batch: str, commitment_ids: Iterable[bytes]) -> None:
        await asyncio.to_thread(self.sync.record_commitments, batch, list(commitment_ids))

    async def consume_commitment(self, commitment_id: bytes) -> None:
        await asyncio.to_thread(self.sync.consume_commitment, commitment_id)

    async def commitment_status(self, commitment_id: bytes) -> CommitmentStatus | None:
        return await asyncio.to_thread(self.sync.commitment_status, commitment_id)

    async def invalidate_all_unconsumed(self) -> list[PublishedCommitment]:
        return await asyncio.to_thread(self.sync.invalidate_all_unconsumed)

    async def prune_closed_commitments(self, closed_before: float) -> int:
        return await asyncio.to_thread(self.sync.prune_closed_commitments, closed_before)

    async def save_report(
        self, kind: int, epoch: int, round: int, *, report: bytes, signature: bytes, digest: bytes
    ) -> CommittedReport:
        return await asyncio.to_thread(
            self.sync.save_report,
            kind,
            epoch,
            round,
            report=report,
            signature=signature,
            digest=digest,
        )

    async def mark_transmitted(
        self, kind: int, epoch: int, round: int, tx_hash: bytes | None = None
    ) -> None:
        await asyncio.to_thread(self.sync.mark_transmitted, kind, epoch, round, tx_hash)

    async def get_report(self, kind: int, epoch: int, round: int) -> CommittedReport | None:
        return await asyncio.to_thread(self.sync.get_report, kind, epoch, round)

    async def pending_transmission(self, kind: int | None = None) -> list[CommittedReport]:
        return await asyncio.to_thread(self.sync.pending_transmission, kind)

    async def record_observation(
        self,
        kind: int,
        epoch: int,
        round: int,
        *,
        sender: str,
        payload: bytes,
        values_json: str,
        snapshot_hashes: Sequence[bytes],
        signature: bytes,
    ) -> bool:
        return await asyncio.to_thread(
            self.sync.record_observation,
            kind,
            epoch,
            round,
            sender=sender,
            payload=payload,
            values_json=values_json,
            snapshot_hashes=list(snapshot_hashes),
            signature=signature,
        )

    async def observations(self, kind: int, epoch: int, round: int) -> list[ObservationRecord]:
        return await asyncio.to_thread(self.sync.observations, kind, epoch, round)
