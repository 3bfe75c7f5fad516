"""Web3ChainClient against real in-process JSON-RPC servers (aiohttp): failover, health,
chain-id checks, error translation and revert decoding. Plus the revert classification."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from oracle.chain import (
    Backoff,
    CallRequest,
    ChainError,
    ExecutionReverted,
    RpcError,
    RpcTimeouts,
    RpcUnavailable,
    TxHash,
    TxRejected,
    TxRejection,
    Web3ChainClient,
    address,
)
from oracle.chain.client import classify_rejection
from oracle.chain.receivers import RevertClass, classify_revert
from oracle.metrics import NodeMetrics
from tests.conftest import free_port

ACCOUNT = address("0x" + "ab" * 20)
CONTRACT = address("0x" + "cd" * 20)
TX_HASH = "0x" + "77" * 32
NOT_INCREASING = keccak(b"NotIncreasing(uint32,uint32,uint32,uint32)")[:4] + abi_encode(
    ["uint32", "uint32", "uint32", "uint32"], [3, 9, 3, 7]
)

Handler = Callable[[dict[str, Any]], Any]


def _null_result(_: dict[str, Any]) -> Any:
    return {"result": None}


class FakeNode:
    """A JSON-RPC endpoint whose answers a test sets per method."""

    def __init__(self, chain_id: int = 31337) -> None:
        self.port = free_port()
        self.chain_id = chain_id
        self.http_status = 200
        self.delay = 0.0
        self.methods: list[str] = []
        self.answers: dict[str, Handler] = {
            "eth_chainId": lambda _: {"result": hex(self.chain_id)},
            "eth_getTransactionCount": lambda _: {"result": "0x5"},
        }
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.methods.append(body["method"])
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.http_status != 200:
            return web.Response(status=self.http_status, text="unavailable")
        handler = self.answers.get(body["method"], _null_result)
        answer = handler(body)
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], **answer})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[FakeNode, FakeNode]]:
    a, b = FakeNode(), FakeNode()
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


def client(*urls: str, metrics: NodeMetrics | None = None, **kwargs: Any) -> Web3ChainClient:
    return Web3ChainClient(
        list(urls),
        chain_id=kwargs.pop("chain_id", 31337),
        timeouts=kwargs.pop("timeouts", RpcTimeouts(request=0.5, unavailable_after=0.4)),
        backoff=Backoff(initial=0.05, maximum=0.1),
        metrics=metrics,
        rng=random.Random(1),
    )


async def test_failover_to_the_next_endpoint_and_stay_there(
    nodes: tuple[FakeNode, FakeNode],
) -> None:
    a, b = nodes
    a.http_status = 503
    metrics = NodeMetrics()
    async with client(a.url, b.url, metrics=metrics) as rpc:
        assert await rpc.nonce(ACCOUNT) == 5
        a_calls = len(a.methods)
        assert await rpc.nonce(ACCOUNT, "latest") == 5
        assert len(a.methods) == a_calls  # the working endpoint is preferred now
    assert metrics.sample("xon_rpc_failures_total", {"endpoint": "0"}) == 1
    assert metrics.sample("xon_rpc_endpoint_up", {"endpoint": "0"}) == 0
    assert metrics.sample("xon_rpc_endpoint_up", {"endpoint": "1"}) == 1


async def test_all_down_then_unavailable_then_back(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, b = nodes
    await a.stop()
    b.http_status = 502
    async with client(a.url, b.url) as rpc:
        with pytest.raises(RpcUnavailable) as caught:
            await rpc.nonce(ACCOUNT)
        assert caught.value.method == "eth_getTransactionCount"
        b.http_status = 200  # restored: the next call goes through after the backoff
        assert await rpc.nonce(ACCOUNT) == 5


async def test_a_slow_endpoint_times_out_and_fails_over(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, b = nodes
    a.delay = 0.6
    async with client(a.url, b.url, timeouts=RpcTimeouts(request=0.2, unavailable_after=1)) as rpc:
        assert await rpc.nonce(ACCOUNT) == 5
    assert "eth_getTransactionCount" in b.methods


async def test_an_endpoint_on_another_chain_is_never_used(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, b = nodes
    a.chain_id = 1
    async with client(a.url, b.url) as rpc:
        assert await rpc.nonce(ACCOUNT) == 5
        assert await rpc.nonce(ACCOUNT) == 5
    assert a.methods == ["eth_chainId"]  # checked once, then disabled
    b.chain_id = 5
    async with client(a.url, b.url) as rpc:
        with pytest.raises(ChainError, match="disabled"):
            await rpc.nonce(ACCOUNT)


async def test_reverts_are_decoded_to_custom_errors(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, _ = nodes
    a.answers["eth_call"] = lambda _: {
        "error": {"code": 3, "message": "execution reverted", "data": "0x" + NOT_INCREASING.hex()}
    }
    async with client(a.url) as rpc:
        with pytest.raises(ExecutionReverted) as caught:
            await rpc.call(CallRequest(ACCOUNT, CONTRACT, b"\x12\x34\x56\x78"))
    assert caught.value.error == "NotIncreasing(3, 9, 3, 7)"
    assert caught.value.error_name == "NotIncreasing"
    assert caught.value.data == NOT_INCREASING
    assert classify_revert(caught.value.error_name) is RevertClass.SUPERSEDED


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("nonce too low", TxRejection.NONCE_TOO_LOW),
        ("already known", TxRejection.ALREADY_KNOWN),
        ("transaction already imported", TxRejection.ALREADY_KNOWN),
        ("replacement transaction underpriced", TxRejection.UNDERPRICED),
        ("max fee per gas less than block base fee", TxRejection.UNDERPRICED),
        ("Insufficient funds for gas * price + value", TxRejection.INSUFFICIENT_FUNDS),
        ("intrinsic gas too low", TxRejection.OTHER),
    ],
)
async def test_send_refusals_are_classified(
    nodes: tuple[FakeNode, FakeNode], message: str, reason: TxRejection
) -> None:
    a, b = nodes
    a.answers["eth_sendRawTransaction"] = lambda _: {"error": {"code": -32003, "message": message}}
    async with client(a.url, b.url) as rpc:
        with pytest.raises(TxRejected) as caught:
            await rpc.send_raw_transaction(b"\x02\x01")
    assert caught.value.reason is reason
    assert "eth_sendRawTransaction" not in b.methods  # an answer, not an outage
    assert classify_rejection(message) is reason


async def test_rate_limits_fail_over_other_errors_do_not(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, b = nodes
    a.answers["eth_estimateGas"] = lambda _: {"error": {"code": -32005, "message": "slow down"}}
    b.answers["eth_estimateGas"] = lambda _: {"result": "0xc350"}
    async with client(a.url, b.url) as rpc:
        assert await rpc.estimate_gas(CallRequest(ACCOUNT, CONTRACT, b"")) == 50_000
    a.answers["eth_estimateGas"] = lambda _: {"error": {"code": -32601, "message": "no method"}}
    async with client(a.url, b.url) as rpc:
        with pytest.raises(RpcError) as caught:
            await rpc.estimate_gas(CallRequest(ACCOUNT, CONTRACT, b""))
    assert caught.value.code == -32601


async def test_receipts_and_fee_history(nodes: tuple[FakeNode, FakeNode]) -> None:
    a, _ = nodes
    receipts: dict[str, Any] = {}
    a.answers["eth_getTransactionReceipt"] = lambda body: {
        "result": receipts.get(body["params"][0])
    }
    a.answers["eth_feeHistory"] = lambda _: {
        "result": {
            "oldestBlock": "0x10",
            "baseFeePerGas": ["0x3b9aca00", "0x3b9aca00", "0x77359400"],
            "gasUsedRatio": [0.5, 0.6],
            "reward": [["0x5f5e100"], ["0x3b9aca00"]],
        }
    }
    async with client(a.url) as rpc:
        assert await rpc.receipt(TxHash(bytes.fromhex(TX_HASH[2:]))) is None
        receipts[TX_HASH] = {
            "transactionHash": TX_HASH,
            "transactionIndex": "0x0",
            "blockHash": "0x" + "88" * 32,
            "blockNumber": "0x2a",
            "from": ACCOUNT,
            "to": CONTRACT,
            "cumulativeGasUsed": "0xc350",
            "gasUsed": "0xc350",
            "effectiveGasPrice": "0x77359400",
            "contractAddress": None,
            "logs": [],
            "logsBloom": "0x" + "00" * 256,
            "status": "0x1",
            "type": "0x2",
        }
        receipt = await rpc.receipt(TxHash(bytes.fromhex(TX_HASH[2:])))
        fees = await rpc.fee_snapshot()
    assert receipt is not None
    assert (receipt.status, receipt.block_number, receipt.gas_used) == (1, 42, 50_000)
    assert receipt.fee == 50_000 * 2 * 10**9
    # The last base fee is the next block's; the tip is the median of the percentiles.
    assert fees.next_base_fee == 2 * 10**9
    assert fees.suggested_priority_fee == (10**8 + 10**9) // 2


def test_revert_classes() -> None:
    assert classify_revert("NotIncreasing") is RevertClass.SUPERSEDED
    for final in ("StaleReport", "BadSignature", "WrongConfigDigest", "WrongGroupKey"):
        assert classify_revert(final) is RevertClass.TERMINAL
    for later in ("Paused", "FutureReport", "NotConfigured", "", "SomethingNew"):
        assert classify_revert(later) is RevertClass.RETRY
