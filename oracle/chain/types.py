"""Typed values at the chain boundary: units, ids and the few RPC results we use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NewType

from eth_utils.address import to_checksum_address

__all__ = [
    "GWEI",
    "Address",
    "BlockTag",
    "CallRequest",
    "FeeSnapshot",
    "Receipt",
    "TxHash",
    "Wei",
    "address",
]

Wei = NewType("Wei", int)
"""An amount of wei (fees per gas, balances). Never a float."""
TxHash = NewType("TxHash", bytes)
"""A 32-byte transaction hash."""
Address = NewType("Address", str)
"""A checksummed 0x address."""
BlockTag = Literal["latest", "pending"]

GWEI = 10**9
_ZERO: Final = Wei(0)


def address(value: str | bytes) -> Address:
    """Checksum an address given as hex text or 20 bytes (raises ValueError otherwise)."""
    if isinstance(value, bytes):
        if len(value) != 20:
            raise ValueError("an address is 20 bytes")
        value = "0x" + value.hex()
    return Address(to_checksum_address(value))


@dataclass(frozen=True, slots=True)
class CallRequest:
    """What eth_call / eth_estimateGas simulate: ``sender`` calls ``to`` with ``data``."""

    sender: Address
    to: Address
    data: bytes
    value: Wei = _ZERO


@dataclass(frozen=True, slots=True)
class FeeSnapshot:
    """Fee market now: the next block's base fee and a suggested priority fee (tip)."""

    next_base_fee: Wei
    suggested_priority_fee: Wei


@dataclass(frozen=True, slots=True)
class Receipt:
    """The parts of a transaction receipt the transmitter uses."""

    tx_hash: TxHash
    status: int  # 1 success, 0 reverted
    block_number: int
    gas_used: int
    effective_gas_price: Wei

    @property
    def succeeded(self) -> bool:
        return self.status == 1

    @property
    def fee(self) -> Wei:
        """What the sender paid: gas used × effective gas price."""
        return Wei(self.gas_used * self.effective_gas_price)
