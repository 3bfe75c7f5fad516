"""Nonce allocation and the write-ahead journal (oracle.chain.nonces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from oracle.chain import Fees, NonceError, NonceManager, ReportKey, Wei, address
from oracle.chain.memory import MemoryChain
from oracle.chain.nonces import Attempt, InFlight
from oracle.chain.types import TxHash

ACCOUNT = address(Account.create().address)
RECEIVER = address("0x" + "11" * 20)


def attempt(n: int, cancel: bool = False) -> Attempt:
    return Attempt(
        TxHash(bytes([n]) * 32), bytes([n]) * 100, Fees(Wei(10 + n), Wei(n)), cancel, 1.5 * n
    )


def inflight(nonce: int) -> InFlight:
    return InFlight(nonce, RECEIVER, b"\x01\x02", 60_000, Wei(0), ReportKey(1, 2, 3), (attempt(1),))


async def test_next_nonce_is_the_larger_of_chain_and_journal(tmp_path: Path) -> None:
    chain = MemoryChain()
    manager = NonceManager(chain, ACCOUNT, 31337, path=tmp_path / "j.json")
    await manager.load()
    assert await manager.allocate() == 0  # fresh account, fresh journal
    await manager.begin(inflight(0))
    with pytest.raises(NonceError):
        await manager.allocate()  # one in flight at a time
    await manager.settle()
    # The chain (e.g. a lagging endpoint after failover) still says 0: the journal wins.
    assert await manager.allocate() == 1
    # Someone else used the key: the chain is ahead, the chain wins.
    chain._nonces[ACCOUNT] = 7
    assert await manager.allocate() == 7


async def test_journal_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    chain = MemoryChain()
    first = NonceManager(chain, ACCOUNT, 31337, path=path)
    await first.load()
    await first.begin(inflight(4))
    bumped = await first.add_attempt(attempt(2, cancel=True), to=ACCOUNT, data=b"", gas=21_000)
    assert [a.tx_hash for a in bumped.attempts] == [attempt(1).tx_hash, attempt(2).tx_hash]

    second = NonceManager(chain, ACCOUNT, 31337, path=path)
    await second.load()
    restored = second.inflight
    assert restored is not None
    assert restored == InFlight(
        4, ACCOUNT, b"", 21_000, Wei(0), ReportKey(1, 2, 3), (attempt(1), attempt(2, cancel=True))
    )
    await second.settle()
    third = NonceManager(chain, ACCOUNT, 31337, path=path)
    await third.load()
    assert third.inflight is None and third.last_nonce == 4
    assert await third.allocate() == 5


async def test_abandon_frees_the_nonce(tmp_path: Path) -> None:
    manager = NonceManager(MemoryChain(), ACCOUNT, 31337, path=tmp_path / "j.json")
    await manager.load()
    await manager.begin(inflight(0))
    await manager.abandon()
    assert manager.inflight is None and manager.last_nonce is None
    assert await manager.allocate() == 0


async def test_foreign_or_broken_journals_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    manager = NonceManager(MemoryChain(), ACCOUNT, 31337, path=path)
    await manager.load()
    await manager.begin(inflight(0))
    other_account = NonceManager(MemoryChain(), address(Account.create().address), 31337, path=path)
    with pytest.raises(NonceError, match="belongs to"):
        await other_account.load()
    with pytest.raises(NonceError, match="chain"):
        await NonceManager(MemoryChain(), ACCOUNT, 1, path=path).load()
    document = json.loads(path.read_text())
    document["inflight"]["attempts"][0]["raw"] = "not hex"
    path.write_text(json.dumps(document))
    with pytest.raises(NonceError, match="raw"):
        await NonceManager(MemoryChain(), ACCOUNT, 31337, path=path).load()
    path.write_text("{")
    with pytest.raises(NonceError, match="not JSON"):
        await NonceManager(MemoryChain(), ACCOUNT, 31337, path=path).load()


async def test_memory_only_journal() -> None:
    manager = NonceManager(MemoryChain(), ACCOUNT, 31337)
    with pytest.raises(NonceError):
        await manager.allocate()  # load() first
    await manager.load()
    await manager.begin(inflight(0))
    await manager.settle()
    assert await manager.allocate() == 1
