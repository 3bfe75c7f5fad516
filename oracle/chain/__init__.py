"""The chain side of a node and of ``xon relay``: RPC client, fees, nonces, transmitter.

Layers, dependencies one way (like httpcore under httpx):

* :mod:`~oracle.chain.types`, :mod:`~oracle.chain.errors` — typed values, the error tree;
* :mod:`~oracle.chain.fees`, :mod:`~oracle.chain.schedule` — pure rules (EIP-1559 fees and
  the bump rule; staged scheduling);
* :mod:`~oracle.chain.client` — :class:`ChainClient` and :class:`Web3ChainClient` (async
  web3.py, failover over several RPC URLs), :mod:`~oracle.chain.memory` — an in-memory
  chain with the same interface for tests;
* :mod:`~oracle.chain.receivers` — the receiver contracts' calldata and revert meanings;
* :mod:`~oracle.chain.nonces` — nonce allocation and the write-ahead transaction journal;
* :mod:`~oracle.chain.transmitter` — :class:`Transmitter`, shared by the node and the
  relayer.

See docs/protocol.md, "Transmission and relaying".
"""

from oracle.chain.client import Backoff, ChainClient, RpcTimeouts, Web3ChainClient
from oracle.chain.errors import (
    ChainError,
    ExecutionReverted,
    FeeCapExceeded,
    NonceError,
    RpcError,
    RpcUnavailable,
    TransactionReverted,
    TxRejected,
    TxRejection,
    WrongChain,
)
from oracle.chain.fees import FeePolicy, Fees, bump_fees, compute_fees, gwei
from oracle.chain.nonces import NonceManager, ReportKey
from oracle.chain.schedule import StageQueue, stage_delay
from oracle.chain.transmitter import (
    GasSpend,
    Outcome,
    TransmitRequest,
    TransmitResult,
    Transmitter,
    TransmitTiming,
)
from oracle.chain.types import Address, CallRequest, FeeSnapshot, Receipt, TxHash, Wei, address

__all__ = [
    "Address",
    "Backoff",
    "CallRequest",
    "ChainClient",
    "ChainError",
    "ExecutionReverted",
    "FeeCapExceeded",
    "FeePolicy",
    "FeeSnapshot",
    "Fees",
    "GasSpend",
    "NonceError",
    "NonceManager",
    "Outcome",
    "Receipt",
    "ReportKey",
    "RpcError",
    "RpcTimeouts",
    "RpcUnavailable",
    "StageQueue",
    "TransactionReverted",
    "TransmitRequest",
    "TransmitResult",
    "TransmitTiming",
    "Transmitter",
    "TxHash",
    "TxRejected",
    "TxRejection",
    "Web3ChainClient",
    "Wei",
    "WrongChain",
    "address",
    "bump_fees",
    "compute_fees",
    "gwei",
    "stage_delay",
]
