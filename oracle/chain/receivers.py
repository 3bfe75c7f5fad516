"""The receiver contracts' interface as the transmitter uses it (docs/contracts.md §4).

Every receiver has ``transmit(bytes report, bytes signature)`` (128-byte signature
argument ``Rx ‖ Ry ‖ z ‖ groupKeyX``) and ``latestEpochAndRound() → (uint32, uint32)``,
the (epoch, round) of the last report it accepted in the current configuration.
``PriceFeedStore`` also takes PRICES reports through ``transmitCompact`` (the same report
and signature without ABI padding, ≈3.6k gas less: :mod:`contracts.encoding`);
:func:`encode_report_calldata` picks the entry point. Calldata is built here with eth_abi
(no contract objects: a few functions, fixed ABI).

:func:`classify_revert` sorts a simulated revert into what the transmitter does next:
the report is settled for good (already accepted, or it can never be accepted), or it
may succeed later (paused committee, a report from a clock slightly ahead).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from aggregation.errors import EncodingError
from aggregation.report import ReportKind
from contracts.encoding import TRANSMIT_COMPACT_SELECTOR, compact_prices_calldata
from oracle.chain.client import ChainClient
from oracle.chain.errors import ChainError
from oracle.chain.types import Address, CallRequest

__all__ = [
    "LATEST_EPOCH_AND_ROUND_SELECTOR",
    "TRANSMIT_COMPACT_SELECTOR",
    "TRANSMIT_SELECTOR",
    "RevertClass",
    "classify_revert",
    "encode_report_calldata",
    "encode_transmit",
    "latest_epoch_and_round",
    "receiver_name",
]

TRANSMIT_SELECTOR: Final = keccak(b"transmit(bytes,bytes)")[:4]
LATEST_EPOCH_AND_ROUND_SELECTOR: Final = keccak(b"latestEpochAndRound()")[:4]

#: The contract (artifact name) that accepts each report kind.
_RECEIVER_NAMES: Final = {
    ReportKind.PRICES: "PriceFeedStore",
    ReportKind.VALUATIONS: "ValuationRegistry",
    ReportKind.HARDWARE: "HardwareRegistry",
    ReportKind.UPTIME: "UptimeRegistry",
    ReportKind.KEY_ROTATION: "XonCommittee",
}


def receiver_name(kind: int) -> str:
    return _RECEIVER_NAMES[ReportKind(kind)]


def encode_transmit(report: bytes, signature: bytes) -> bytes:
    """Calldata of ``transmit(report, signature)``."""
    return TRANSMIT_SELECTOR + abi_encode(["bytes", "bytes"], [report, signature])


def encode_report_calldata(report: bytes, signature: bytes) -> bytes:
    """The calldata that posts ``report`` at its receiver: ``transmitCompact`` for a PRICES
    report the compact layout can carry, ``transmit(report, signature)`` for the rest.

    The compact call saves ≈3.6k gas per PRICES report and takes the same 128-byte
    signature (the store rebuilds the ABI report and checks the same message), so it is
    used whenever it can be: a canonical PRICES report with at least one feed, values
    within int128 and a 128-byte signature. Anything else — other kinds, and PRICES
    reports the store would refuse anyway (no feed, a value beyond int128, a repeated
    feed, non-canonical bytes, a bad signature length) — goes through ``transmit``, so the
    simulation names the store's own error for it as before.
    """
    try:
        return compact_prices_calldata(report, signature)
    except EncodingError:
        return encode_transmit(report, signature)


async def latest_epoch_and_round(
    client: ChainClient, receiver: Address, sender: Address
) -> tuple[int, int]:
    """The receiver's last accepted (epoch, round); (0, 0) before any report."""
    data = await client.call(CallRequest(sender, receiver, LATEST_EPOCH_AND_ROUND_SELECTOR))
    try:
        epoch, round_ = abi_decode(["uint32", "uint32"], data)
    except DecodingError:
        # No code at the address (an empty answer) or not a receiver: a configuration
        # error (wrong deployment file, wrong chain) that retrying will not fix by itself.
        raise ChainError(
            f"{receiver} answered latestEpochAndRound() with {len(data)} bytes: "
            "not an XON receiver contract on this chain?"
        ) from None
    return int(epoch), int(round_)


class RevertClass(StrEnum):
    """What a simulated revert of ``transmit`` means for the report."""

    SUPERSEDED = "superseded"  # this or a later report is on-chain: done, nothing to send
    TERMINAL = "terminal"  # it can never be accepted here (stale, other config/key, bad sig)
    RETRY = "retry"  # it may be accepted later (paused, from the future, not configured)


# Time only moves forward, configurations never come back (digests never repeat) and a
# signature does not become valid: these are final.
_TERMINAL: Final = frozenset(
    {
        "StaleReport",
        "WrongConfigDigest",
        "WrongGroupKey",
        "WrongKind",
        "BadSignature",
        "MalformedReport",
        "MalformedSignature",
        "MalformedPayload",
        "UptimeEpochAlreadyPosted",
        "UptimeEpochTooOld",
        "InvalidDeviceStatus",
        "ValuationOutOfRange",
        "ValueOutOfRange",
        "EmptyReport",
        "InvalidKind",
        "ZeroMerkleRoot",
        "EmptyUptimeTree",
    }
)
_SUPERSEDED: Final = frozenset({"NotIncreasing"})


def classify_revert(error_name: str) -> RevertClass:
    """Anything not known to be final is retried (bounded by the report going stale)."""
    if error_name in _SUPERSEDED:
        return RevertClass.SUPERSEDED
    if error_name in _TERMINAL:
        return RevertClass.TERMINAL
    return RevertClass.RETRY
