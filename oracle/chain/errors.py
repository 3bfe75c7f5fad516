"""Errors of the chain client and the transmitter (all :class:`oracle.errors.ChainError`).

::

    ChainError (oracle.errors)
    ├── RpcUnavailable        no endpoint answered within the deadline (transport failures)
    ├── RpcError              an endpoint answered with a JSON-RPC error we do not classify
    ├── WrongChain            an endpoint serves another chain id than the one configured
    ├── ExecutionReverted     eth_call / eth_estimateGas reverted; carries the decoded error
    ├── TxRejected            eth_sendRawTransaction refused; carries a TxRejection reason
    ├── FeeCapExceeded        the next block's base fee is above our max fee cap
    ├── NonceError            the journal does not fit this account/chain, or nonces conflict
    └── TransactionReverted   a mined transaction has status 0 (carries the receipt)

web3.py and aiohttp exceptions are translated into these in :mod:`oracle.chain.client`
and never leave it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from oracle.errors import ChainError

if TYPE_CHECKING:
    from oracle.chain.types import Receipt

__all__ = [
    "ChainError",
    "ExecutionReverted",
    "FeeCapExceeded",
    "NonceError",
    "RpcError",
    "RpcUnavailable",
    "TransactionReverted",
    "TxRejected",
    "TxRejection",
    "WrongChain",
]


class RpcUnavailable(ChainError):
    """No RPC endpoint answered ``method`` before the deadline; ``last_error`` says why the
    last attempt failed (connection refused, timeout, HTTP 5xx, garbled response)."""

    def __init__(self, method: str, last_error: str) -> None:
        super().__init__(f"no RPC endpoint answered {method}: {last_error}")
        self.method = method
        self.last_error = last_error


class RpcError(ChainError):
    """An endpoint answered ``method`` with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str) -> None:
        super().__init__(f"{method} failed: {message} (code {code})")
        self.method = method
        self.code = code
        self.rpc_message = message


class WrongChain(ChainError):
    """An endpoint reports a chain id other than the configured one: never use it."""

    def __init__(self, url: str, expected: int, got: int) -> None:
        super().__init__(f"RPC endpoint {url} serves chain id {got}, expected {expected}")
        self.url = url
        self.expected = expected
        self.got = got


class ExecutionReverted(ChainError):
    """A simulated call reverted. ``data`` is the raw revert data; ``error`` is it decoded
    with the contracts' custom errors (``NotIncreasing(1, 2, 1, 2)``), ``error_name`` the
    bare name (``NotIncreasing``), empty when the node gave no data."""

    def __init__(self, data: bytes, error: str) -> None:
        super().__init__(f"execution reverted: {error or 'no revert data'}")
        self.data = data
        self.error = error
        self.error_name = error.split("(", 1)[0] if error else ""


class TxRejection(StrEnum):
    """Why a node refused a raw transaction (classified from its error message)."""

    ALREADY_KNOWN = "already_known"  # the same tx is in the pool: harmless
    NONCE_TOO_LOW = "nonce_too_low"  # the nonce is used (maybe by this very tx, mined)
    UNDERPRICED = "underpriced"  # replacement underpriced / below base fee / pool minimum
    INSUFFICIENT_FUNDS = "insufficient_funds"
    OTHER = "other"


class TxRejected(ChainError):
    """eth_sendRawTransaction was refused by the node (the endpoint itself worked)."""

    def __init__(self, reason: TxRejection, message: str) -> None:
        super().__init__(f"transaction rejected ({reason}): {message}")
        self.reason = reason
        self.rpc_message = message


class FeeCapExceeded(ChainError):
    """The next block's base fee is above the configured max fee per gas: a transaction
    sent now could not be included, so none is sent (wait for the base fee to fall)."""

    def __init__(self, base_fee: int, cap: int) -> None:
        super().__init__(f"base fee {base_fee} wei exceeds the max fee cap {cap} wei")
        self.base_fee = base_fee
        self.cap = cap


class NonceError(ChainError):
    """The nonce journal does not belong to this account/chain, or is unreadable."""


class TransactionReverted(ChainError):
    """A mined transaction failed (receipt status 0)."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(f"transaction 0x{receipt.tx_hash.hex()} reverted")
        self.receipt = receipt
