"""The chain client: the :class:`ChainClient` protocol and its web3.py implementation.

:class:`Web3ChainClient` speaks JSON-RPC over HTTP through ``web3.AsyncWeb3`` with one
``AsyncHTTPProvider`` per configured URL, and never blocks the event loop (no
``wait_for_transaction_receipt``; receipts are polled by the caller).

**Failover.** Every call goes to the *preferred* endpoint (initially the first URL). A
transport failure — connection refused or reset, timeout, HTTP error status, a response
that is not JSON-RPC, a rate-limit answer — marks that endpoint *down* for a jittered,
exponentially growing time (:class:`Backoff`) and the call moves on to the next endpoint
that is up (round-robin); the one that answers becomes preferred. When every endpoint is
down the call waits for the first one to come back, up to ``RpcTimeouts.unavailable_after``
seconds in all, then raises :class:`~oracle.chain.errors.RpcUnavailable`. An answer that is
a JSON-RPC *error* (a revert, "nonce too low") is not a transport failure: it is translated
and raised at once, since another endpoint would say the same. Before its first use, and
again after it was down, an endpoint's ``eth_chainId`` is checked against the configured
chain id; an endpoint on another chain is disabled for good
(:class:`~oracle.chain.errors.WrongChain` is logged).

Resending the same signed transaction through another endpoint is safe: it has the same
hash, so the chain includes it at most once.

All web3.py / aiohttp exceptions are translated here (see :mod:`oracle.chain.errors`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

import aiohttp
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import (
    BadResponseFormat,
    ContractLogicError,
    OffchainLookup,
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    TransactionNotFound,
    Web3RPCError,
)
from web3.providers.rpc import AsyncHTTPProvider

from contracts.artifacts import decode_revert
from oracle.chain.errors import (
    ChainError,
    ExecutionReverted,
    RpcError,
    RpcUnavailable,
    TxRejected,
    TxRejection,
    WrongChain,
)
from oracle.chain.types import (
    Address,
    BlockTag,
    CallRequest,
    FeeSnapshot,
    Receipt,
    TxHash,
    Wei,
)
from oracle.metrics import NodeMetrics

__all__ = ["Backoff", "ChainClient", "RpcTimeouts", "Web3ChainClient", "classify_rejection"]

log = logging.getLogger("xon.chain.rpc")

T = TypeVar("T")

#: Blocks of history for the priority-fee suggestion (median of their 50th percentiles).
FEE_HISTORY_BLOCKS = 5
#: JSON-RPC error codes that mean "this endpoint is overloaded", not "your request is bad".
_TRANSIENT_RPC_CODES = frozenset({-32005, 429})


class ChainClient(Protocol):
    """What the transmitter needs from a chain. Errors: :mod:`oracle.chain.errors`."""

    async def chain_id(self) -> int: ...

    async def nonce(self, account: Address, block: BlockTag = "pending") -> int:
        """The account's transaction count at ``block`` (pending: including the pool)."""
        ...

    async def fee_snapshot(self) -> FeeSnapshot: ...

    async def call(self, request: CallRequest) -> bytes:
        """eth_call at the latest block; raises ExecutionReverted with decoded data."""
        ...

    async def estimate_gas(self, request: CallRequest) -> int: ...

    async def send_raw_transaction(self, raw: bytes) -> TxHash:
        """Broadcast; raises TxRejected (classified) when the node refuses it."""
        ...

    async def receipt(self, tx_hash: TxHash) -> Receipt | None:
        """The receipt, or None while the transaction is not mined (or unknown)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RpcTimeouts:
    """``request``: one HTTP request; ``unavailable_after``: how long one call keeps
    trying while every endpoint fails before it raises RpcUnavailable."""

    request: float = 10.0
    unavailable_after: float = 30.0

    def __post_init__(self) -> None:
        if self.request <= 0 or self.unavailable_after < 0:
            raise ValueError("RPC timeouts must be positive")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long a failed endpoint stays down: capped exponential growth, equal jitter."""

    initial: float = 0.25
    maximum: float = 15.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.multiplier < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and multiplier >= 1")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds after the ``failures``-th consecutive failure (1 → about ``initial``)."""
        ceiling = min(self.maximum, self.initial * self.multiplier ** min(max(failures - 1, 0), 64))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def classify_rejection(message: str) -> TxRejection:
    """Map a node's eth_sendRawTransaction error message (geth, reth, erigon, nethermind,
    anvil wordings) to a :class:`TxRejection`."""
    text = message.lower()
    if "already known" in text or "already imported" in text or "known transaction" in text:
        return TxRejection.ALREADY_KNOWN
    if "nonce too low" in text or "nonce has already been used" in text or "oldnonce" in text:
        return TxRejection.NONCE_TOO_LOW
    if "insufficient funds" in text:
        return TxRejection.INSUFFICIENT_FUNDS
    if (
        "underpriced" in text
        or "less than block base fee" in text
        or "fee cap less than" in text
        or "feecap" in text
        or "fee too low" in text
    ):
        return TxRejection.UNDERPRICED
    return TxRejection.OTHER


# Failures of the endpoint (or the path to it), never of the request itself.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,  # connection refused/reset, HTTP error status (raise_for_status)
    TimeoutError,
    OSError,
    ProviderConnectionError,
    BadResponseFormat,
    TooManyRequests,
    RequestTimedOut,
    json.JSONDecodeError,
)


@dataclass(slots=True)
class _Endpoint:
    index: int
    url: str
    w3: AsyncWeb3[AsyncHTTPProvider]
    failures: int = 0
    down_until: float = 0.0
    chain_checked: bool = False
    disabled: str | None = None

    @property
    def label(self) -> str:
        # Metric label: the position in the configured list (URLs may carry API keys).
        return str(self.index)


def _rpc_error_parts(exc: Web3RPCError) -> tuple[int | None, str]:
    response = exc.rpc_response
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return (code if isinstance(code, int) else None), str(error.get("message", exc.message))
    return None, str(exc.message)


def _revert(exc: ContractLogicError) -> ExecutionReverted:
    data = exc.data
    raw = b""
    if isinstance(data, str):
        try:
            raw = bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            raw = b""
    return ExecutionReverted(raw, decode_revert(raw) if raw else (exc.message or ""))


def _redact(url: str) -> str:
    """Scheme, host and port only: provider URLs often carry an API key in the path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.hostname}:{parts.port}"
        if parts.port
        else (f"{parts.scheme}://{parts.hostname}")
    )


class Web3ChainClient:
    """:class:`ChainClient` over one or more HTTP JSON-RPC endpoints with failover."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        chain_id: int | None = None,
        timeouts: RpcTimeouts | None = None,
        backoff: Backoff | None = None,
        metrics: NodeMetrics | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        self._timeouts = timeouts or RpcTimeouts()
        self._backoff = backoff or Backoff()
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._clock = clock
        self._chain_id = chain_id
        request_kwargs = {"timeout": aiohttp.ClientTimeout(total=self._timeouts.request)}
        self._endpoints = [
            _Endpoint(
                index=i,
                url=url,
                # No middleware: nothing may add RPC calls behind our back (chain id
                # validation, ENS), and no web3-level retries: failover is ours.
                w3=AsyncWeb3(
                    AsyncHTTPProvider(
                        url, request_kwargs=request_kwargs, exception_retry_configuration=None
                    ),
                    middleware=[],
                ),
            )
            for i, url in enumerate(urls)
        ]
        self._preferred = 0
        self._closed = False
        if metrics is not None:
            for endpoint in self._endpoints:
                metrics.rpc_endpoint_up.labels(endpoint=endpoint.label).set(1)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(e.url for e in self._endpoints)

    # -- lifecycle ---------------------------------------------------------------------
    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for endpoint in self._endpoints:
            await endpoint.w3.provider.disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- failover core -----------------------------------------------------------------
    def _candidates(self, now: float) -> list[_Endpoint]:
        n = len(self._endpoints)
        ordered = [self._endpoints[(self._preferred + k) % n] for k in range(n)]
        return [e for e in ordered if e.disabled is None and e.down_until <= now]

    def _failed(self, endpoint: _Endpoint, method: str, exc: BaseException) -> str:
        endpoint.failures += 1
        endpoint.chain_checked = False  # it may come back as another node
        delay = self._backoff.delay(endpoint.failures, self._rng)
        endpoint.down_until = self._clock() + delay
        if endpoint.index == self._preferred:
            self._preferred = (endpoint.index + 1) % len(self._endpoints)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning(
            "rpc.endpoint_down endpoint=%s url=%s method=%s failures=%d retry_in=%.2fs error=%s",
            endpoint.label,
            _redact(endpoint.url),
            method,
            endpoint.failures,
            delay,
            reason,
        )
        if self._metrics is not None:
            self._metrics.rpc_failures.labels(endpoint=endpoint.label).inc()
            self._metrics.rpc_endpoint_up.labels(endpoint=endpoint.label).set(0)
        return reason

    def _succeeded(self, endpoint: _Endpoint) -> None:
        if endpoint.failures:
            log.info(
                "rpc.endpoint_up endpoint=%s url=%s after_failures=%d",
                endpoint.label,
                _redact(endpoint.url),
                endpoint.failures,
            )
            if self._metrics is not None:
                self._metrics.rpc_endpoint_up.labels(endpoint=endpoint.label).set(1)
        endpoint.failures = 0
        endpoint.down_until = 0.0
        self._preferred = endpoint.index

    async def _check_chain(self, endpoint: _Endpoint) -> None:
        if endpoint.chain_checked:
            return
        got = int(await endpoint.w3.eth.chain_id)
        if self._chain_id is None:
            self._chain_id = got
        elif got != self._chain_id:
            error = WrongChain(_redact(endpoint.url), self._chain_id, got)
            endpoint.disabled = str(error)
            log.error("rpc.wrong_chain endpoint=%s %s", endpoint.label, error)
            if self._metrics is not None:
                self._metrics.rpc_endpoint_up.labels(endpoint=endpoint.label).set(0)
            raise error
        endpoint.chain_checked = True

    async def _run(self, method: str, fn: Callable[[AsyncWeb3[Any]], Awaitable[T]]) -> T:
        if self._closed:
            raise ChainError("the chain client is closed")
        deadline = self._clock() + self._timeouts.unavailable_after
        last_error = "no endpoint was up"
        while True:
            for endpoint in self._candidates(self._clock()):
                try:
                    await self._check_chain(endpoint)
                    result = await fn(endpoint.w3)
                except WrongChain as exc:
                    last_error = str(exc)
                    continue
                except OffchainLookup as exc:  # CCIP read is off; a contract asked anyway
                    self._succeeded(endpoint)
                    raise _revert(exc) from None
                except ContractLogicError as exc:
                    self._succeeded(endpoint)
                    raise _revert(exc) from None
                except TransactionNotFound:
                    raise  # an answer, handled by the caller
                except _TRANSPORT_ERRORS as exc:
                    last_error = self._failed(endpoint, method, exc)
                    continue
                except Web3RPCError as exc:
                    code, message = _rpc_error_parts(exc)
                    if code in _TRANSIENT_RPC_CODES:
                        last_error = self._failed(endpoint, method, exc)
                        continue
                    self._succeeded(endpoint)
                    raise RpcError(method, code, message) from None
                else:
                    self._succeeded(endpoint)
                    return result
            usable = [e for e in self._endpoints if e.disabled is None]
            if not usable:
                raise ChainError(
                    "every RPC endpoint is disabled: "
                    + "; ".join(str(e.disabled) for e in self._endpoints)
                )
            now = self._clock()
            if now >= deadline:
                raise RpcUnavailable(method, last_error)
            wake = min(e.down_until for e in usable)
            await asyncio.sleep(max(0.0, min(wake, deadline) - now))

    # -- ChainClient -------------------------------------------------------------------
    async def chain_id(self) -> int:
        if self._chain_id is not None:
            return self._chain_id
        return await self._run("eth_chainId", _chain_id)

    async def nonce(self, account: Address, block: BlockTag = "pending") -> int:
        async def run(w3: AsyncWeb3[Any]) -> int:
            return int(await w3.eth.get_transaction_count(cast(Any, account), block))

        return await self._run("eth_getTransactionCount", run)

    async def fee_snapshot(self) -> FeeSnapshot:
        async def run(w3: AsyncWeb3[Any]) -> FeeSnapshot:
            history = await w3.eth.fee_history(FEE_HISTORY_BLOCKS, "latest", [50.0])
            base_fees = history["baseFeePerGas"]
            if not base_fees:
                raise BadResponseFormat("eth_feeHistory returned no base fee")
            rewards = [int(r[0]) for r in history.get("reward", []) if r]
            tip = int(statistics.median(rewards)) if rewards else 0
            # The last entry is the base fee of the block after `newest`: the next block.
            return FeeSnapshot(Wei(int(base_fees[-1])), Wei(tip))

        return await self._run("eth_feeHistory", run)

    async def call(self, request: CallRequest) -> bytes:
        params = _tx_params(request)

        async def run(w3: AsyncWeb3[Any]) -> bytes:
            return bytes(await w3.eth.call(params, "latest", ccip_read_enabled=False))

        return await self._run("eth_call", run)

    async def estimate_gas(self, request: CallRequest) -> int:
        params = _tx_params(request)

        async def run(w3: AsyncWeb3[Any]) -> int:
            return int(await w3.eth.estimate_gas(params))

        return await self._run("eth_estimateGas", run)

    async def send_raw_transaction(self, raw: bytes) -> TxHash:
        async def run(w3: AsyncWeb3[Any]) -> TxHash:
            return TxHash(bytes(await w3.eth.send_raw_transaction(raw)))

        try:
            return await self._run("eth_sendRawTransaction", run)
        except RpcError as exc:
            raise TxRejected(classify_rejection(exc.rpc_message), exc.rpc_message) from None

    async def receipt(self, tx_hash: TxHash) -> Receipt | None:
        async def run(w3: AsyncWeb3[Any]) -> Receipt | None:
            try:
                data = await w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None
            return Receipt(
                tx_hash=TxHash(bytes(data["transactionHash"])),
                status=int(data["status"]),
                block_number=int(data["blockNumber"]),
                gas_used=int(data["gasUsed"]),
                effective_gas_price=Wei(int(data.get("effectiveGasPrice", 0))),
            )

        return await self._run("eth_getTransactionReceipt", run)


async def _chain_id(w3: AsyncWeb3[Any]) -> int:
    return int(await w3.eth.chain_id)


def _tx_params(request: CallRequest) -> Any:
    params: dict[str, Any] = {"from": request.sender, "to": request.to, "data": request.data}
    if request.value:
        params["value"] = request.value
    return params
