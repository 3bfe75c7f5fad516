"""The transmitter against a real anvil with the deployed XON suite.

(a) N PRICES reports signed by a Python FROST committee all land, read back through the
FeedProxy; (b) RPC endpoints killed and restored mid-run (and a lost answer to
eth_sendRawTransaction) lose no report, send none twice and leave no nonce gap;
(c) a node-style transmitter restarted over the same store and journal transmits what was
pending, and resumes an in-flight transaction without sending it again; plus fee bumping
of a stuck transaction, the fee cap, simulation-based skipping and a forged signature.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from oracle.chain import (
    FeePolicy,
    Outcome,
    RpcTimeouts,
    TransmitRequest,
    TransmitResult,
    Transmitter,
    Web3ChainClient,
    gwei,
)
from oracle.chain.client import Backoff
from oracle.metrics import NodeMetrics
from oracle.store import AsyncNodeStore, NodeStore
from tests.conftest import free_port
from tests.integration.test_chain_fixtures import (
    FAST,
    FEEDS,
    POLICY,
    ChainNet,
    RpcProxy,
    chain_net,
)

pytestmark = pytest.mark.integration

__all__ = ["chain_net"]  # the fixture, re-exported for pytest

QUICK_RPC = RpcTimeouts(request=2.0, unavailable_after=1.0)
QUICK_BACKOFF = Backoff(initial=0.05, maximum=0.3)


def _transmitter(
    net: ChainNet,
    client: Web3ChainClient,
    account: object,
    results: list[TransmitResult],
    **kwargs: object,
) -> Transmitter:
    return Transmitter(
        client,
        account,  # type: ignore[arg-type]
        chain_id=net.deployment.chain_id,
        receivers=net.deployment.receiver_for_kind(),
        group_key_x=net.group_key_x,
        fee_policy=kwargs.pop("fee_policy", POLICY),  # type: ignore[arg-type]
        timing=FAST,
        on_result=results.append,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_reports_land_and_read_back(chain_net: ChainNet) -> None:
    net = chain_net
    account = net.funded_account()
    results: list[TransmitResult] = []
    requests = [net.request(1, r) for r in range(1, 6)]
    async with (
        Web3ChainClient([net.anvil.url], chain_id=net.deployment.chain_id) as client,
        _transmitter(net, client, account, results) as transmitter,
    ):
        for request in requests:
            transmitter.submit(request)
        await asyncio.wait_for(transmitter.wait_idle(), 30)
        spend = transmitter.spend
    assert [r.outcome for r in results] == [Outcome.SENT] * 5
    assert [r.key.round for r in results] == [1, 2, 3, 4, 5]
    assert net.latest_epoch_and_round() == (1, 5)
    assert net.feed_answer(FEEDS[0].name) == 2_00000005
    assert net.feed_answer(FEEDS[1].name) == 40_000001
    txs = await asyncio.to_thread(net.transactions_from, account.address)
    assert [tx["nonce"] for tx in txs] == [0, 1, 2, 3, 4]
    assert spend.mined == 5 and spend.reverted == 0
    assert spend.gas_used == sum(r.gas_used for r in results) > 5 * 40_000
    # Already on-chain: a second transmitter only looks, never sends.
    other = net.funded_account()
    again: list[TransmitResult] = []
    async with (
        Web3ChainClient([net.anvil.url]) as client,
        _transmitter(net, client, other, again) as transmitter,
    ):
        for request in requests:
            transmitter.submit(request)
        await asyncio.wait_for(transmitter.wait_idle(), 10)
    assert {r.outcome for r in again} == {Outcome.ONCHAIN, Outcome.SUPERSEDED}
    assert await asyncio.to_thread(net.transactions_from, other.address) == []


async def _until(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Poll a condition on the test's own state (what it checks has no event to wait on)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_rpc_outage_and_lost_answer_lose_nothing(chain_net: ChainNet, tmp_path: Path) -> None:
    """Two endpoints: the first loses the answer to a broadcast (the tx is mined anyway),
    then dies (failover to the second), then both are down, then the first comes back.
    Every report lands exactly once, in order, with contiguous nonces."""
    net = chain_net
    first = RpcProxy(net.anvil.port, free_port())
    second = RpcProxy(net.anvil.port, free_port())
    await first.start()
    await second.start()
    account = net.funded_account()
    results: list[TransmitResult] = []
    requests = [net.request(2, r) for r in range(1, 10)]
    metrics = NodeMetrics()
    client = Web3ChainClient(
        [first.url, second.url],
        chain_id=net.deployment.chain_id,
        timeouts=QUICK_RPC,
        backoff=QUICK_BACKOFF,
        metrics=metrics,
    )
    try:
        async with (
            client,
            _transmitter(
                net,
                client,
                account,
                results,
                journal_path=tmp_path / "journal.json",
                metrics=metrics,
            ) as transmitter,
        ):
            first.drop_responses("eth_sendRawTransaction", 1)
            for request in requests[:3]:
                transmitter.submit(request)
            await _until(lambda: len(results) >= 2)
            await first.stop()
            for request in requests[3:6]:
                transmitter.submit(request)
            await _until(lambda: len(results) >= 5)
            await second.stop()
            for request in requests[6:]:
                transmitter.submit(request)
            await asyncio.sleep(1.5)  # a full outage: calls fail, reports wait
            during_outage = len(results)
            await first.start()
            await asyncio.wait_for(transmitter.wait_idle(), 30)
    finally:
        await first.stop()
        await second.stop()
    assert first.dropped == 1
    assert during_outage < len(requests)
    assert [r.outcome for r in results] == [Outcome.SENT] * len(requests)
    assert sorted(r.key.round for r in results) == list(range(1, 10))
    txs = await asyncio.to_thread(net.transactions_from, account.address)
    assert [tx["nonce"] for tx in txs] == list(range(len(requests)))  # once each, no gap
    assert net.latest_epoch_and_round() == (2, 9)
    assert metrics.sample("xon_tx_sent_total") == len(requests)  # lost answer counted once
    assert metrics.sample("xon_tx_confirmation_seconds_count") == len(requests)
    assert metrics.sample("xon_rpc_failures_total", {"endpoint": "0"}) >= 1
    assert metrics.sample("xon_rpc_failures_total", {"endpoint": "1"}) >= 1


async def test_restart_transmits_pending_and_resumes_in_flight(
    chain_net: ChainNet, tmp_path: Path
) -> None:
    """A node stops while its transaction for report 1 is in the mempool and reports 2, 3
    are pending in the store. After the restart (new objects, same files) report 1's
    transaction is found and not sent again, and 2 and 3 are transmitted."""
    net = chain_net
    account = net.funded_account()
    store_path, journal = tmp_path / "node.db", tmp_path / "journal.json"
    requests = [net.request(3, r) for r in (1, 2, 3)]
    store = AsyncNodeStore(NodeStore(store_path))
    for request in requests:
        key = request.key
        digest = signing_message_digest(net, request.report)
        await store.save_report(
            key.kind,
            key.epoch,
            key.round,
            report=request.report,
            signature=request.signature,
            digest=digest,
        )
    net.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    first_run: list[TransmitResult] = []
    async with (
        Web3ChainClient([net.anvil.url]) as client,
        _transmitter(
            net,
            client,
            account,
            first_run,
            store=store,
            journal_path=journal,
            fee_policy=FeePolicy(gwei(100)),
        ),
    ):
        await _until(lambda: journal.exists() and '"nonce": 0' in journal.read_text())
        # stopped (cancelled) while waiting for the receipt
    await store.aclose()
    assert first_run == []
    assert len(await asyncio.to_thread(NodeStore(store_path).pending_transmission)) == 3
    in_flight_hash = _journal_hashes(journal)[0]

    store = AsyncNodeStore(NodeStore(store_path))
    second_run: list[TransmitResult] = []
    async with Web3ChainClient([net.anvil.url]) as client:
        async with _transmitter(
            net, client, account, second_run, store=store, journal_path=journal
        ) as transmitter:
            await asyncio.sleep(0.2)
            net.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            net.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
            await _until(lambda: len(second_run) == 3)
            await asyncio.wait_for(transmitter.wait_idle(), 20)
        assert await store.pending_transmission() == []
        record = await store.get_report(1, 3, 1)
        await store.aclose()
    assert record is not None and record.tx_hash == in_flight_hash
    assert [(r.key.round, r.outcome) for r in second_run] == [
        (1, Outcome.SENT),
        (2, Outcome.SENT),
        (3, Outcome.SENT),
    ]
    assert second_run[0].tx_hash == in_flight_hash
    txs = await asyncio.to_thread(net.transactions_from, account.address)
    assert [tx["nonce"] for tx in txs] == [0, 1, 2]
    assert net.latest_epoch_and_round() == (3, 3)


def signing_message_digest(net: ChainNet, report: bytes) -> bytes:
    from aggregation.report import signing_message

    return signing_message(net.deployment.chain_id, net.store_address, report)


def _journal_hashes(path: Path) -> list[bytes]:
    inflight = json.loads(path.read_text())["inflight"]
    return [bytes.fromhex(a["tx_hash"][2:]) for a in inflight["attempts"]]


async def test_stuck_transaction_is_bumped_and_fee_cap_respected(
    chain_net: ChainNet, tmp_path: Path
) -> None:
    """With mining paused, the transaction is replaced at the same nonce with ≥ 12.5 %
    higher fees; only the replacement is mined. With the base fee above the cap nothing
    is sent until it falls below."""
    net = chain_net
    rpc = net.w3.provider
    account = net.funded_account()
    results: list[TransmitResult] = []
    metrics = NodeMetrics()
    journal = tmp_path / "journal.json"
    rpc.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    async with (
        Web3ChainClient([net.anvil.url]) as client,
        _transmitter(
            net, client, account, results, metrics=metrics, journal_path=journal
        ) as transmitter,
    ):
        transmitter.submit(net.request(4, 1))
        # The replacement is in anvil's pool once the node took it (counted as sent).
        await _until(lambda: metrics.sample("xon_tx_sent_total") >= 2)
        assert metrics.sample("xon_tx_bumped_total") == 1
        attempts = json.loads(journal.read_text())["inflight"]["attempts"]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        await _until(lambda: len(results) == 1)
        # Base fee far above the cap: the next report waits instead of being sent.
        rpc.make_request("anvil_setNextBlockBaseFeePerGas", [hex(gwei(400))])  # type: ignore[arg-type]
        rpc.make_request("evm_mine", [])  # type: ignore[arg-type]
        rpc.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        transmitter.submit(net.request(4, 2))
        await _until(lambda: metrics.sample("xon_tx_skipped_total", {"reason": "fee_cap"}) >= 2)
        assert len(await asyncio.to_thread(net.transactions_from, account.address)) == 1
        rpc.make_request("anvil_mine", [hex(12)])  # type: ignore[arg-type]  # base fee decays
        await asyncio.wait_for(transmitter.wait_idle(), 20)
    txs = await asyncio.to_thread(net.transactions_from, account.address)
    assert [tx["nonce"] for tx in txs] == [0, 1]
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    first, replacement = attempts[0], attempts[1]
    assert results[0].tx_hash == bytes(txs[0]["hash"]) == bytes.fromhex(replacement["tx_hash"][2:])
    for field in ("max_fee_per_gas", "max_priority_fee_per_gas"):
        assert replacement[field] * 1000 >= first[field] * 1125
    assert txs[0]["maxFeePerGas"] == replacement["max_fee_per_gas"]
    assert txs[1]["maxFeePerGas"] <= POLICY.max_fee_cap


async def test_simulation_skips_what_would_revert(chain_net: ChainNet) -> None:
    """A forged signature, a report for another configuration and a stale report are
    refused by simulation: settled as rejected, no transaction sent."""
    net = chain_net
    account = net.funded_account()
    good = net.request(5, 2)
    forged = TransmitRequest.create(good.report, net.sign(b"other report"), 0.0)
    other_config = net.prices_report(5, 3, (1, 2))
    other_config = b"\x11" * 32 + other_config[32:]
    stale = net.prices_report(5, 4, (1, 2))
    stale = stale[:96] + (net.now() - 7_200).to_bytes(32, "big") + stale[128:]
    requests = [
        forged,
        TransmitRequest.create(other_config, net.sign(other_config), 0.0),
        TransmitRequest.create(stale, net.sign(stale), 0.0),
    ]
    results: list[TransmitResult] = []
    async with (
        Web3ChainClient([net.anvil.url]) as client,
        _transmitter(net, client, account, results) as transmitter,
    ):
        for request in requests:
            transmitter.submit(request)
        await asyncio.wait_for(transmitter.wait_idle(), 10)
    details = {r.key.round: (r.outcome, r.detail.split("(")[0]) for r in results}
    assert details == {
        2: (Outcome.REJECTED, "simulation: BadSignature"),
        3: (Outcome.REJECTED, "simulation: WrongConfigDigest"),
        4: (Outcome.REJECTED, "simulation: StaleReport"),
    }
    assert await asyncio.to_thread(net.transactions_from, account.address) == []
