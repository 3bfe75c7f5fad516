"""The node store: sign protection, nonce commitments, committed reports, audit log."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oracle.errors import StoreError
from oracle.store import (
    MIGRATIONS,
    AsyncNodeStore,
    CommitmentStatus,
    CommitmentUnavailable,
    ConflictingRecord,
    DoubleSignRefused,
    NodeStore,
)

PRICES = 1
UPTIME = 4


def digest(n: int) -> bytes:
    return n.to_bytes(32, "big")


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "node.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[NodeStore]:
    with NodeStore(db_path, clock=FakeClock()) as s:
        yield s


# -- schema ----------------------------------------------------------------------------
def test_fresh_database_gets_every_migration_and_wal(store: NodeStore, db_path: Path) -> None:
    assert store.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_reopening_keeps_data_and_does_not_migrate_again(db_path: Path) -> None:
    with NodeStore(db_path) as s:
        s.record_signing(PRICES, 1, 1, digest(1))
    with NodeStore(db_path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert s.signed_digest(PRICES, 1, 1) == digest(1)


def test_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    NodeStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        NodeStore(db_path)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    s = NodeStore(db_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.record_signing(PRICES, 1, 1, digest(1))


# -- sign protection -------------------------------------------------------------------
def test_same_digest_twice_is_idempotent(store: NodeStore) -> None:
    store.record_signing(PRICES, 3, 7, digest(1))
    store.record_signing(PRICES, 3, 7, digest(1))
    assert store.signed_digest(PRICES, 3, 7) == digest(1)


def test_different_digest_for_same_round_is_refused(store: NodeStore) -> None:
    store.record_signing(PRICES, 3, 7, digest(1))
    with pytest.raises(DoubleSignRefused) as info:
        store.record_signing(PRICES, 3, 7, digest(2))
    assert info.value.existing_digest == digest(1)
    assert info.value.refused_digest == digest(2)
    assert (info.value.kind, info.value.epoch, info.value.round) == (PRICES, 3, 7)
    assert isinstance(info.value, StoreError)
    assert store.signed_digest(PRICES, 3, 7) == digest(1)


def test_rounds_kinds_and_epochs_are_independent(store: NodeStore) -> None:
    store.record_signing(PRICES, 3, 7, digest(1))
    store.record_signing(PRICES, 3, 8, digest(2))
    store.record_signing(PRICES, 4, 7, digest(3))
    store.record_signing(UPTIME, 3, 7, digest(4))
    assert store.signed_digest(PRICES, 3, 8) == digest(2)
    assert store.signed_digest(UPTIME, 3, 7) == digest(4)
    assert store.signed_digest(UPTIME, 3, 8) is None


def test_lower_round_with_new_digest_is_allowed(store: NodeStore) -> None:
    # Only exact (kind, epoch, round) equality is a double sign; ordering is the protocol's.
    store.record_signing(PRICES, 5, 5, digest(1))
    store.record_signing(PRICES, 4, 9, digest(2))
    assert store.signed_digest(PRICES, 4, 9) == digest(2)


def test_highest_signed_orders_by_epoch_then_round(store: NodeStore) -> None:
    assert store.highest_signed(PRICES) is None
    store.record_signing(PRICES, 2, 50, digest(1))
    store.record_signing(PRICES, 3, 1, digest(2))
    store.record_signing(PRICES, 3, 0, digest(3))
    store.record_signing(UPTIME, 9, 9, digest(4))
    top = store.highest_signed(PRICES)
    assert top is not None
    assert (top.epoch, top.round, top.digest) == (3, 1, digest(2))


@pytest.mark.parametrize(
    ("kind", "epoch", "round_", "value"),
    [
        (PRICES, 1, 1, b"short"),
        (PRICES, -1, 1, digest(1)),
        (PRICES, 2**32, 1, digest(1)),
        (PRICES, 1, 2**32, digest(1)),
        (256, 1, 1, digest(1)),
    ],
)
def test_bad_arguments_are_refused(
    store: NodeStore, kind: int, epoch: int, round_: int, value: bytes
) -> None:
    with pytest.raises(StoreError):
        store.record_signing(kind, epoch, round_, value)


# -- nonce commitments -----------------------------------------------------------------
def test_commitment_is_consumed_once(store: NodeStore) -> None:
    store.record_commitments("batch-1", [b"c1", b"c2"])
    store.consume_commitment(b"c1")
    assert store.commitment_status(b"c1") is CommitmentStatus.CONSUMED
    with pytest.raises(CommitmentUnavailable) as info:
        store.consume_commitment(b"c1")
    assert info.value.status is CommitmentStatus.CONSUMED
    with pytest.raises(CommitmentUnavailable) as unknown:
        store.consume_commitment(b"never-published")
    assert unknown.value.status is None


def test_restart_invalidates_unconsumed_commitments(db_path: Path) -> None:
    with NodeStore(db_path, clock=FakeClock()) as s:
        s.record_commitments("b1", [b"a", b"b"])
        s.record_commitments("b2", [b"c"])
        s.consume_commitment(b"b")
    with NodeStore(db_path) as s:
        invalid = s.invalidate_all_unconsumed()
        assert [(c.commitment_id, c.batch) for c in invalid] == [(b"a", "b1"), (b"c", "b2")]
        assert all(c.status is CommitmentStatus.INVALIDATED for c in invalid)
        with pytest.raises(CommitmentUnavailable) as info:
            s.consume_commitment(b"a")
        assert info.value.status is CommitmentStatus.INVALIDATED
        assert s.invalidate_all_unconsumed() == []
        assert s.commitment_status(b"b") is CommitmentStatus.CONSUMED


def test_recording_commitments_again_is_idempotent_but_reuse_is_refused(
    store: NodeStore,
) -> None:
    store.record_commitments("b1", [b"a"])
    store.record_commitments("b1", [b"a"])  # a retried call
    with pytest.raises(StoreError, match="already recorded"):
        store.record_commitments("b2", [b"a"])
    store.consume_commitment(b"a")
    with pytest.raises(StoreError, match="already recorded"):
        store.record_commitments("b1", [b"a"])
    with pytest.raises(StoreError, match="duplicate"):
        store.record_commitments("b3", [b"x", b"x"])
    assert store.commitment_status(b"x") is None


def test_signing_with_commitment_is_atomic(store: NodeStore) -> None:
    store.record_commitments("b1", [b"n1", b"n2"])
    store.record_signing(PRICES, 1, 1, digest(1), commitment_id=b"n1")
    assert store.commitment_status(b"n1") is CommitmentStatus.CONSUMED

    # Double sign: the commitment must stay unconsumed.
    with pytest.raises(DoubleSignRefused):
        store.record_signing(PRICES, 1, 1, digest(2), commitment_id=b"n2")
    assert store.commitment_status(b"n2") is CommitmentStatus.PUBLISHED

    # Burnt commitment: the signing promise must not be recorded either.
    with pytest.raises(CommitmentUnavailable):
        store.record_signing(PRICES, 1, 2, digest(3), commitment_id=b"n1")
    assert store.signed_digest(PRICES, 1, 2) is None

    # Same report again with another nonce (a new signer set): allowed.
    store.record_signing(PRICES, 1, 1, digest(1), commitment_id=b"n2")
    assert store.commitment_status(b"n2") is CommitmentStatus.CONSUMED


def test_prune_keeps_published_commitments(db_path: Path) -> None:
    clock = FakeClock(start=0.0)
    with NodeStore(db_path, clock=clock) as s:
        s.record_commitments("b", [b"old", b"open"])
        s.consume_commitment(b"old")
        assert s.prune_closed_commitments(closed_before=clock.now + 10) == 1
        assert s.commitment_status(b"old") is None
        assert s.commitment_status(b"open") is CommitmentStatus.PUBLISHED


# -- committed reports -----------------------------------------------------------------
def test_pending_reports_survive_a_restart(db_path: Path) -> None:
    with NodeStore(db_path, clock=FakeClock()) as s:
        s.save_report(PRICES, 1, 2, report=b"r12", signature=b"s" * 65, digest=digest(12))
        s.save_report(PRICES, 1, 1, report=b"r11", signature=b"s" * 65, digest=digest(11))
        s.save_report(UPTIME, 1, 1, report=b"u11", signature=b"s" * 65, digest=digest(99))
        s.mark_transmitted(UPTIME, 1, 1, b"\x01" * 32)
    with NodeStore(db_path) as s:
        pending = s.pending_transmission()
        assert [(r.kind, r.epoch, r.round, r.report) for r in pending] == [
            (PRICES, 1, 1, b"r11"),
            (PRICES, 1, 2, b"r12"),
        ]
        assert s.pending_transmission(kind=UPTIME) == []
        done = s.get_report(UPTIME, 1, 1)
        assert done is not None
        assert done.transmitted
        assert done.tx_hash == b"\x01" * 32
        assert done.transmitted_at is not None
        s.mark_transmitted(PRICES, 1, 1)  # included by an external relayer
        assert [r.round for r in s.pending_transmission()] == [2]


def test_saving_a_report_is_idempotent_and_conflicts_are_refused(store: NodeStore) -> None:
    first = store.save_report(PRICES, 1, 1, report=b"r", signature=b"sig-a", digest=digest(1))
    again = store.save_report(PRICES, 1, 1, report=b"r", signature=b"sig-b", digest=digest(1))
    assert again == first  # the first signature is kept
    with pytest.raises(ConflictingRecord) as info:
        store.save_report(PRICES, 1, 1, report=b"other", signature=b"s", digest=digest(2))
    assert info.value.existing == first


def test_marking_an_unknown_report_fails(store: NodeStore) -> None:
    with pytest.raises(StoreError, match="no committed report"):
        store.mark_transmitted(PRICES, 1, 1)


def test_marking_twice_keeps_the_first_tx(store: NodeStore) -> None:
    store.save_report(PRICES, 1, 1, report=b"r", signature=b"s", digest=digest(1))
    store.mark_transmitted(PRICES, 1, 1, b"\x01" * 32)
    store.mark_transmitted(PRICES, 1, 1, b"\x02" * 32)
    report = store.get_report(PRICES, 1, 1)
    assert report is not None
    assert report.tx_hash == b"\x01" * 32


# -- observations ----------------------------------------------------------------------
SENDER = "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B"
VALUES = json.dumps({"H100-SXM-80GB/USD-HR": 215000000})
HASHES = (b"\xaa" * 32, b"\xbb" * 32)


def observe(
    store: NodeStore, round_: int, *, payload: bytes = b"signed-bytes", values: str = VALUES
) -> bool:
    return store.record_observation(
        PRICES,
        2,
        round_,
        sender=SENDER,
        payload=payload,
        values_json=values,
        snapshot_hashes=HASHES,
        signature=b"\x01" * 65,
    )


def test_observations_round_trip_and_equivocation_is_caught(store: NodeStore) -> None:
    assert observe(store, 3) is True
    assert observe(store, 3) is False  # an exact repeat
    [record] = store.observations(PRICES, 2, 3)
    assert (record.sender, record.payload) == (SENDER, b"signed-bytes")
    assert record.snapshot_hashes == HASHES
    assert json.loads(record.values_json) == {"H100-SXM-80GB/USD-HR": 215000000}
    with pytest.raises(ConflictingRecord) as info:
        observe(store, 3, payload=b"other")
    assert info.value.existing == record
    assert store.observations(PRICES, 2, 3) == [record]


def test_observation_values_must_be_json(store: NodeStore) -> None:
    with pytest.raises(StoreError, match="JSON"):
        observe(store, 4, values="{oops")
    assert store.observations(PRICES, 2, 4) == []


# -- two connections -------------------------------------------------------------------
def test_second_connection_sees_a_record_at_once(db_path: Path) -> None:
    with NodeStore(db_path) as a, NodeStore(db_path) as b:
        assert b.signed_digest(PRICES, 1, 1) is None
        a.record_signing(PRICES, 1, 1, digest(1))
        assert b.signed_digest(PRICES, 1, 1) == digest(1)
        with pytest.raises(DoubleSignRefused):
            b.record_signing(PRICES, 1, 1, digest(2))


def test_two_connections_racing_never_both_sign(db_path: Path) -> None:
    rounds = 40
    stores = [NodeStore(db_path), NodeStore(db_path)]
    barrier = threading.Barrier(2)
    wins: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def worker(who: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait()
                try:
                    stores[who].record_signing(PRICES, 0, r, digest(1000 * who + r))
                except DoubleSignRefused:
                    continue
                wins[who].append(r)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(wins[0] + wins[1]) == list(range(rounds))  # exactly one per round
        for r in range(rounds):
            winner = 0 if r in wins[0] else 1
            assert stores[0].signed_digest(PRICES, 0, r) == digest(1000 * winner + r)
    finally:
        for s in stores:
            s.close()


# -- async facade and cancellation -----------------------------------------------------
async def test_async_facade_round_trip(db_path: Path) -> None:
    async with AsyncNodeStore(NodeStore(db_path)) as store:
        await store.record_commitments("b", [b"n"])
        await store.record_signing(PRICES, 1, 1, digest(1), commitment_id=b"n")
        with pytest.raises(DoubleSignRefused):
            await store.record_signing(PRICES, 1, 1, digest(2))
        top = await store.highest_signed(PRICES)
        assert top is not None
        assert top.round == 1
        await store.save_report(PRICES, 1, 1, report=b"r", signature=b"s", digest=digest(1))
        assert len(await store.pending_transmission()) == 1
        await store.mark_transmitted(PRICES, 1, 1)
        assert await store.pending_transmission() == []
        assert await store.invalidate_all_unconsumed() == []


async def test_cancelled_caller_leaves_a_complete_record(db_path: Path) -> None:
    # The clock is read inside the write transaction; blocking it holds the worker thread
    # mid-transaction while the awaiting task is cancelled.
    inside = threading.Event()
    release = threading.Event()

    def slow_clock() -> float:
        inside.set()
        release.wait(timeout=10)
        return 1.0

    sync = NodeStore(db_path, clock=slow_clock)
    store = AsyncNodeStore(sync)
    task = asyncio.create_task(store.record_signing(PRICES, 1, 1, digest(1)))
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    # The thread finishes its transaction: the promise is recorded whole.
    with NodeStore(db_path) as other:
        for _ in range(200):
            if other.signed_digest(PRICES, 1, 1) is not None:
                break
            await asyncio.sleep(0.01)
        assert other.signed_digest(PRICES, 1, 1) == digest(1)
    await store.record_signing(PRICES, 1, 1, digest(1))  # retry is a no-op
    with pytest.raises(DoubleSignRefused):
        await store.record_signing(PRICES, 1, 1, digest(2))
    await store.aclose()


def test_sign_protection_commits_with_synchronous_full(store: NodeStore) -> None:
    # A power loss must not forget a promise: FULL makes every such commit fsync the WAL.
    # The audit log may use NORMAL (survives a process crash, not a power loss).
    conn = store._conn
    assert conn is not None
    observe(store, 1)
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    store.record_signing(PRICES, 1, 1, digest(1))
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.record_commitments("b", [b"c"])
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
