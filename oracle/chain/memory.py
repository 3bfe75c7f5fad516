"""An in-memory chain with the :class:`~oracle.chain.client.ChainClient` interface.

For tests and simulations of the transmitter: deterministic, instant, and able to do what
a real node only does by accident — hold transactions in the pool, lose the answer to a
broadcast, go down. It models just enough of Ethereum for the transmitter:

* accounts with nonces; a pool with same-nonce replacement (both fee fields ≥ +10 %,
  as geth), ``nonce too low`` / ``already known`` / ``underpriced`` /
  ``insufficient funds`` refusals; EIP-1559 inclusion (maxFee ≥ base fee) and effective
  gas price; ``automine`` (a block per transaction, like anvil) or explicit :meth:`mine`;
* receiver contracts (:meth:`add_receiver`) with ``transmit`` and
  ``latestEpochAndRound`` (a PRICES receiver also takes ``transmitCompact`` and treats
  the report it rebuilds from the calldata exactly as ``transmit`` would), strictly
  increasing (epoch, round) per receiver, an optional FROST signature check under
  ``group_key``, a pause switch — reverting with the real contracts' custom error
  encodings, so :func:`contracts.artifacts.decode_revert` names them;
* failure injection: :attr:`down` (every call raises RpcUnavailable),
  :meth:`lose_next_answer` (the call takes effect but its answer is lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from aggregation.errors import EncodingError, XonError
from aggregation.frost import Point, Signature, verify
from aggregation.report import Report, ReportKind, signing_message
from contracts.artifacts import decode_revert
from contracts.encoding import decode_compact_prices_calldata
from oracle.chain.errors import ExecutionReverted, RpcUnavailable, TxRejected, TxRejection
from oracle.chain.receivers import (
    LATEST_EPOCH_AND_ROUND_SELECTOR,
    TRANSMIT_COMPACT_SELECTOR,
    TRANSMIT_SELECTOR,
)
from oracle.chain.types import (
    GWEI,
    Address,
    BlockTag,
    CallRequest,
    FeeSnapshot,
    Receipt,
    TxHash,
    Wei,
    address,
)

__all__ = ["CANCEL_GAS_USED", "MemoryChain", "MinedTx"]

TRANSMIT_GAS = 50_000
REVERT_GAS = 25_000
TRANSFER_GAS = 21_000
CANCEL_GAS_USED = TRANSFER_GAS


def _error(
    signature: str, types: list[str] | None = None, values: list[object] | None = None
) -> bytes:
    selector = keccak(signature.encode())[:4]
    if types is None or values is None:
        return selector
    return selector + abi_encode(types, values)


@dataclass
class _Receiver:
    kind: int
    latest: tuple[int, int] = (0, 0)
    paused: bool = False
    compact: bool = True  # False: a PriceFeedStore deployed before transmitCompact existed

    def takes(self, data: bytes) -> bool:
        """Whether ``data`` calls one of this receiver's transmit entry points."""
        selector = data[:4]
        if selector == TRANSMIT_COMPACT_SELECTOR:
            return self.kind == ReportKind.PRICES and self.compact  # PriceFeedStore's alone
        return selector == TRANSMIT_SELECTOR


def _transmit_arguments(data: bytes) -> tuple[bytes, bytes]:
    """(report, signature) of a call of either transmit entry point; a compact call
    carries the ABI report the store rebuilds from it. Raises EncodingError for compact
    calldata the store reverts ``MalformedReport()`` for."""
    if data[:4] == TRANSMIT_COMPACT_SELECTOR:
        report, signature = decode_compact_prices_calldata(data)
        return report.encode(), signature
    report_bytes, signature_bytes = abi_decode(["bytes", "bytes"], data[4:])
    return bytes(report_bytes), bytes(signature_bytes)


@dataclass(frozen=True)
class _PoolTx:
    tx_hash: TxHash
    sender: Address
    nonce: int
    to: Address
    data: bytes
    gas: int
    max_fee: int
    tip: int


@dataclass(frozen=True)
class MinedTx:
    tx_hash: TxHash
    sender: Address
    nonce: int
    to: Address
    data: bytes
    status: int
    gas_used: int
    block: int
    max_fee: int
    tip: int


class MemoryChain:
    """See the module docstring. Not thread-safe; one event loop."""

    def __init__(
        self,
        chain_id: int = 31337,
        *,
        base_fee: int = GWEI,
        suggested_tip: int = GWEI,
        automine: bool = True,
        group_key: Point | None = None,
        default_balance: int = 10**20,
    ) -> None:
        self._chain_id = chain_id
        self.base_fee = base_fee
        self.suggested_tip = suggested_tip
        self.automine = automine
        self.group_key = group_key
        self.down = False
        self.default_balance = default_balance
        self.balances: dict[Address, int] = {}
        self.mined: list[MinedTx] = []
        self.calls: dict[str, int] = {}
        self.block_number = 0
        self._receivers: dict[Address, _Receiver] = {}
        self._nonces: dict[Address, int] = {}
        self._pool: dict[tuple[Address, int], _PoolTx] = {}
        self._receipts: dict[TxHash, Receipt] = {}
        self._lose_answer: dict[str, int] = {}

    # -- control -------------------------------------------------------------------------
    def add_receiver(self, receiver: str, kind: int, *, compact: bool = True) -> Address:
        """A receiver contract of report ``kind``; ``compact=False`` makes a PRICES store
        without ``transmitCompact`` (as deployed before it existed)."""
        checksummed = address(receiver)
        self._receivers[checksummed] = _Receiver(kind, compact=compact)
        return checksummed

    def latest(self, receiver: str) -> tuple[int, int]:
        return self._receivers[address(receiver)].latest

    def set_paused(self, receiver: str, paused: bool) -> None:
        self._receivers[address(receiver)].paused = paused

    def lose_next_answer(self, method: str, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` take effect, then raise RpcUnavailable."""
        self._lose_answer[method] = count

    @property
    def pool(self) -> list[_PoolTx]:
        return list(self._pool.values())

    def sent_by(self, sender: str) -> list[MinedTx]:
        return [tx for tx in self.mined if tx.sender == address(sender)]

    def mine(self) -> list[MinedTx]:
        """One block: every includable pool transaction, in nonce order per sender."""
        self.block_number += 1
        included: list[MinedTx] = []
        progress = True
        while progress:
            progress = False
            for key, tx in sorted(self._pool.items(), key=lambda item: (item[0][0], item[0][1])):
                if tx.nonce != self._nonces.get(tx.sender, 0) or tx.max_fee < self.base_fee:
                    continue
                del self._pool[key]
                included.append(self._execute(tx))
                progress = True
        return included

    # -- execution ---------------------------------------------------------------------
    def _revert_data(
        self, receiver: _Receiver, report_bytes: bytes, signature: bytes, to: Address
    ) -> bytes | None:
        """Why ``transmit`` would revert (custom error data), or None if it succeeds."""
        try:
            report = Report.decode(report_bytes)
        except XonError:
            return _error("MalformedReport()")
        if len(signature) != 128:
            return _error("MalformedSignature()")
        if receiver.paused:
            return _error("Paused()")
        if int(report.kind) != receiver.kind:
            return _error(
                "WrongKind(uint8,uint8)", ["uint8", "uint8"], [receiver.kind, report.kind]
            )
        if (report.epoch, report.round) <= receiver.latest:
            return _error(
                "NotIncreasing(uint32,uint32,uint32,uint32)",
                ["uint32", "uint32", "uint32", "uint32"],
                [*receiver.latest, report.epoch, report.round],
            )
        if self.group_key is not None and not self._signature_ok(to, report_bytes, signature):
            return _error("BadSignature()")
        return None

    def _signature_ok(self, to: Address, report: bytes, signature: bytes) -> bool:
        assert self.group_key is not None
        if int.from_bytes(signature[96:], "big") != self.group_key.x:
            return False
        z = int.from_bytes(signature[64:96], "big")
        try:
            # Rx ‖ Ry on-chain; the point must really be (Rx, Ry), not just share Rx.
            r = Point.decode(bytes([2 + (signature[63] & 1)]) + signature[:32])
            if r.key.format(compressed=False)[33:] != signature[32:64]:
                return False
            return verify(
                self.group_key, signing_message(self._chain_id, to, report), Signature(r, z)
            )
        except XonError:
            return False

    def _simulate(self, to: Address, data: bytes) -> tuple[bytes | None, bytes]:
        """(revert data or None, return data) of a call."""
        receiver = self._receivers.get(to)
        if receiver is None:
            return None, b""
        if data[:4] == LATEST_EPOCH_AND_ROUND_SELECTOR:
            return None, abi_encode(["uint32", "uint32"], list(receiver.latest))
        if receiver.takes(data):
            try:
                report, signature = _transmit_arguments(data)
            except EncodingError:
                return _error("MalformedReport()"), b""
            return self._revert_data(receiver, report, signature, to), b""
        # No such function and no fallback: Solidity reverts without data.
        return b"", b""

    def _execute(self, tx: _PoolTx) -> MinedTx:
        revert, _ = self._simulate(tx.to, tx.data)
        receiver = self._receivers.get(tx.to)
        is_transmit = receiver is not None and receiver.takes(tx.data)
        if is_transmit and revert is None:
            assert receiver is not None
            report = Report.decode(_transmit_arguments(tx.data)[0])
            receiver.latest = (report.epoch, report.round)
        status = 0 if revert is not None else 1
        gas_used = (
            (REVERT_GAS if revert is not None else TRANSMIT_GAS) if is_transmit else TRANSFER_GAS
        )
        price = self.base_fee + min(tx.tip, tx.max_fee - self.base_fee)
        self._nonces[tx.sender] = tx.nonce + 1
        self.balances[tx.sender] = self._balance(tx.sender) - gas_used * price
        mined = MinedTx(
            tx.tx_hash,
            tx.sender,
            tx.nonce,
            tx.to,
            tx.data,
            status,
            gas_used,
            self.block_number,
            tx.max_fee,
            tx.tip,
        )
        self.mined.append(mined)
        self._receipts[tx.tx_hash] = Receipt(
            tx.tx_hash, status, self.block_number, gas_used, Wei(price)
        )
        return mined

    def _balance(self, account: Address) -> int:
        return self.balances.get(account, self.default_balance)

    def _enter(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.down:
            raise RpcUnavailable(method, "memory chain is down")

    def _answer_lost(self, method: str) -> bool:
        left = self._lose_answer.get(method, 0)
        if left > 0:
            self._lose_answer[method] = left - 1
            return True
        return False

    # -- ChainClient -------------------------------------------------------------------
    async def chain_id(self) -> int:
        self._enter("eth_chainId")
        return self._chain_id

    async def nonce(self, account: Address, block: BlockTag = "pending") -> int:
        self._enter("eth_getTransactionCount")
        mined = self._nonces.get(account, 0)
        if block == "latest":
            return mined
        pending = mined
        while (account, pending) in self._pool:
            pending += 1
        return pending

    async def fee_snapshot(self) -> FeeSnapshot:
        self._enter("eth_feeHistory")
        return FeeSnapshot(Wei(self.base_fee), Wei(self.suggested_tip))

    async def call(self, request: CallRequest) -> bytes:
        self._enter("eth_call")
        revert, result = self._simulate(request.to, request.data)
        if revert is not None:
            raise ExecutionReverted(revert, decode_revert(revert))
        return result

    async def estimate_gas(self, request: CallRequest) -> int:
        self._enter("eth_estimateGas")
        revert, _ = self._simulate(request.to, request.data)
        if revert is not None:
            raise ExecutionReverted(revert, decode_revert(revert))
        receiver = self._receivers.get(request.to)
        return TRANSMIT_GAS if receiver is not None else TRANSFER_GAS

    async def send_raw_transaction(self, raw: bytes) -> TxHash:
        self._enter("eth_sendRawTransaction")
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        sender = address(Account.recover_transaction(raw))
        tx = _PoolTx(
            tx_hash=TxHash(keccak(raw)),
            sender=sender,
            nonce=int(fields["nonce"]),
            to=address(bytes(fields["to"])),
            data=bytes(fields["data"]),
            gas=int(fields["gas"]),
            max_fee=int(fields["maxFeePerGas"]),
            tip=int(fields["maxPriorityFeePerGas"]),
        )
        # geth's order: a pooled copy is "already known"; a mined one fails the nonce check.
        if any(p.tx_hash == tx.tx_hash for p in self.pool):
            raise TxRejected(TxRejection.ALREADY_KNOWN, "already known")
        if tx.nonce < self._nonces.get(sender, 0):
            raise TxRejected(TxRejection.NONCE_TOO_LOW, "nonce too low")
        if tx.max_fee < self.base_fee:
            raise TxRejected(TxRejection.UNDERPRICED, "max fee per gas less than block base fee")
        if self._balance(sender) < tx.gas * tx.max_fee:
            raise TxRejected(TxRejection.INSUFFICIENT_FUNDS, "insufficient funds for gas * price")
        existing = self._pool.get((sender, tx.nonce))
        if existing is not None and (
            tx.max_fee * 10 < existing.max_fee * 11 or tx.tip * 10 < existing.tip * 11
        ):
            raise TxRejected(TxRejection.UNDERPRICED, "replacement transaction underpriced")
        self._pool[(sender, tx.nonce)] = tx
        if self.automine:
            self.mine()
        if self._answer_lost("eth_sendRawTransaction"):
            raise RpcUnavailable("eth_sendRawTransaction", "answer lost")
        return tx.tx_hash

    async def receipt(self, tx_hash: TxHash) -> Receipt | None:
        self._enter("eth_getTransactionReceipt")
        return self._receipts.get(tx_hash)

    async def aclose(self) -> None:
        return None
