"""Crash safety of sign protection: a SIGKILLed process keeps every promise it returned."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oracle.store import CommitmentStatus, DoubleSignRefused, NodeStore

ROOT = Path(__file__).resolve().parents[2]
PRICES = 1

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def digest(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _child(code: str, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(db)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _kill(proc: subprocess.Popen[str]) -> str:
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return rest


def test_record_survives_sigkill_before_the_next_call(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    child = _child(
        """
        import sys
        from oracle.store import NodeStore
        store = NodeStore(sys.argv[1])
        store.record_signing(1, 7, 3, (42).to_bytes(32, "big"))
        print("signed", flush=True)
        sys.stdin.readline()  # the "next call" that never comes
        """,
        db,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "signed"
        # Another process's connection sees the promise while the signer is still alive...
        with NodeStore(db) as observer:
            assert observer.signed_digest(PRICES, 7, 3) == digest(42)
            with pytest.raises(DoubleSignRefused):
                observer.record_signing(PRICES, 7, 3, digest(43))
    finally:
        _kill(child)
    # ...and after it died without closing anything.
    with NodeStore(db) as restarted:
        assert restarted.signed_digest(PRICES, 7, 3) == digest(42)
        with pytest.raises(DoubleSignRefused) as info:
            restarted.record_signing(PRICES, 7, 3, digest(43))
        assert info.value.existing_digest == digest(42)


def test_sigkill_mid_stream_loses_no_returned_record(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    child = _child(
        """
        import sys
        from oracle.store import NodeStore
        store = NodeStore(sys.argv[1])
        store.record_commitments("b", [b"c%d" % i for i in range(20000)])
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            store.record_signing(1, 0, i, i.to_bytes(32, "big"), commitment_id=b"c%d" % i)
            print(i, flush=True)
        """,
        db,
    )
    printed: list[int] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # Kill at an arbitrary point of a busy write loop (often inside a transaction).
        while len(printed) < 25:
            line = child.stdout.readline()
            assert line, "child died early"
            printed.append(int(line))
    finally:
        rest = _kill(child)
    printed += [int(x) for x in rest.split()]
    with NodeStore(db) as restarted:
        assert _integrity(db) == "ok"
        for i in printed:
            assert restarted.signed_digest(PRICES, 0, i) == digest(i)
        top = restarted.highest_signed(PRICES)
        assert top is not None
        assert top.round >= printed[-1]
        # Whatever reached the disk did so whole: promise and nonce consumption together.
        for i in range(1, top.round + 1):
            assert restarted.commitment_status(b"c%d" % i) is CommitmentStatus.CONSUMED
        next_id = b"c%d" % (top.round + 1)
        assert restarted.commitment_status(next_id) is CommitmentStatus.PUBLISHED
        invalid = restarted.invalidate_all_unconsumed()
        assert len(invalid) == 20000 - top.round
