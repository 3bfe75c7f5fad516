"""The report envelope every signed XON report shares, and its per-kind payloads.

Byte layout (DESIGN.md §5; the contracts decode exactly this)::

    report  = abi.encode(bytes32 configDigest, uint32 epoch, uint32 round,
                         uint64 observationsTimestamp, uint8 kind, bytes payload)
    message = keccak256(abi.encodePacked(uint256 chainId, address verifyingContract, report))

``message`` (32 bytes) is what the committee FROST-signs. Binding the chain id and the
receiving contract makes a report useless on another chain or at another contract;
binding ``kind`` inside the report makes it useless as another kind.

Payloads (abi.encode):

* PRICES        ``(bytes32[] feedIds, int256[] values)``; a feed id is the ASCII feed
                name left-aligned in a bytes32 (Solidity ``bytes32("H100-SXM/USD-HR")``)
* VALUATIONS    ``(bytes32[] assetIds, uint256[] values, bytes32[] reportHashes)``
* HARDWARE      ``(bytes32[] deviceIds, uint8[] statuses, bytes32[] fingerprints)``
* UPTIME        ``(uint64 uptimeEpoch, bytes32 merkleRoot, uint32 leafCount)``
* KEY_ROTATION  see :mod:`contracts` and docs/contracts.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any, Self

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_abi.exceptions import EncodingError as AbiEncodingError
from eth_utils.crypto import keccak

from aggregation.errors import EncodingError

_U32 = 2**32
_U64 = 2**64
_I256_MIN, _I256_MAX = -(2**255), 2**255 - 1


class ReportKind(IntEnum):
    PRICES = 1
    VALUATIONS = 2
    HARDWARE = 3
    UPTIME = 4
    KEY_ROTATION = 5


class DeviceStatus(IntEnum):
    UNKNOWN = 0
    ACTIVE = 1
    DEGRADED = 2
    FAILED = 3
    OFFLINE = 4


_ENVELOPE = ("bytes32", "uint32", "uint32", "uint64", "uint8", "bytes")


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise EncodingError(f"{what} must be 32 bytes")
    return value


def _abi_encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    try:
        return abi_encode(list(types), list(values))
    except (AbiEncodingError, TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"cannot ABI-encode {types}: {exc}") from exc


def _abi_decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    try:
        decoded = abi_decode(list(types), data, strict=True)
    except (DecodingError, TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"not an ABI-encoded {types}: {exc}") from exc
    if _abi_encode(types, decoded) != data:
        # Non-canonical encodings (odd offsets, dirty padding) decode fine but would hash
        # differently from what the contract signs over; refuse them.
        raise EncodingError(f"non-canonical ABI encoding of {types}")
    return tuple(decoded)


@dataclass(frozen=True)
class Report:
    config_digest: bytes
    epoch: int
    round: int
    observations_timestamp: int
    kind: ReportKind
    payload: bytes

    def __post_init__(self) -> None:
        _bytes32(self.config_digest, "config digest")
        for name, value, bound in (
            ("epoch", self.epoch, _U32),
            ("round", self.round, _U32),
            ("observations_timestamp", self.observations_timestamp, _U64),
        ):
            if not 0 <= value < bound:
                raise EncodingError(f"{name} {value} out of range")
        if self.kind not in ReportKind.__members__.values():
            raise EncodingError(f"unknown report kind {self.kind}")

    def encode(self) -> bytes:
        return _abi_encode(
            _ENVELOPE,
            (
                self.config_digest,
                self.epoch,
                self.round,
                self.observations_timestamp,
                int(self.kind),
                self.payload,
            ),
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        digest, epoch, round_, timestamp, kind, payload = _abi_decode(_ENVELOPE, data)
        try:
            report_kind = ReportKind(kind)
        except ValueError as exc:
            raise EncodingError(f"unknown report kind {kind}") from exc
        return cls(digest, epoch, round_, timestamp, report_kind, payload)


def signing_message(chain_id: int, verifying_contract: str | bytes, report: bytes) -> bytes:
    """The 32-byte message the committee signs for ``report`` at ``verifying_contract``."""
    if isinstance(verifying_contract, str):
        text = verifying_contract.removeprefix("0x")
        try:
            address = bytes.fromhex(text)
        except ValueError as exc:
            raise EncodingError(f"bad contract address {verifying_contract!r}") from exc
    else:
        address = verifying_contract
    if len(address) != 20:
        raise EncodingError("verifying contract must be a 20-byte address")
    if not 0 <= chain_id < 2**256:
        raise EncodingError(f"chain id {chain_id} out of range")
    return keccak(chain_id.to_bytes(32, "big") + address + report)


# Memoised: a deployment has a few hundred feed names, converted for every report, proposal
# and observation; an invalid name raises, so it is never cached.
@lru_cache(maxsize=4096)
def feed_id(name: str) -> bytes:
    """A feed name as its on-chain bytes32 id: printable ASCII, left-aligned, ≤ 32 chars."""
    if not name or len(name) > 32 or not all(0x21 <= ord(c) <= 0x7E for c in name):
        raise EncodingError(f"feed name {name!r} must be 1-32 printable ASCII characters")
    return name.encode("ascii").ljust(32, b"\0")


def feed_name(feed_id_bytes: bytes) -> str:
    """Inverse of :func:`feed_id`."""
    name = _bytes32(feed_id_bytes, "feed id").rstrip(b"\0")
    try:
        text = name.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EncodingError("feed id is not ASCII") from exc
    if feed_id(text) != feed_id_bytes:
        raise EncodingError("feed id has bytes after its padding")
    return text


def _check_lengths(*columns: Sequence[Any]) -> None:
    if len({len(c) for c in columns}) != 1:
        raise EncodingError("payload columns differ in length")


def _check_unique(ids: Sequence[bytes], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise EncodingError(f"duplicate {what} in payload")


@dataclass(frozen=True)
class PricesPayload:
    feed_ids: tuple[bytes, ...]
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_lengths(self.feed_ids, self.values)
        for fid in self.feed_ids:
            _bytes32(fid, "feed id")
        _check_unique(self.feed_ids, "feed id")
        for value in self.values:
            if not _I256_MIN <= value <= _I256_MAX:
                raise EncodingError(f"price {value} does not fit int256")

    def encode(self) -> bytes:
        return _abi_encode(("bytes32[]", "int256[]"), (list(self.feed_ids), list(self.values)))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        ids, values = _abi_decode(("bytes32[]", "int256[]"), data)
        return cls(tuple(ids), tuple(values))


@dataclass(frozen=True)
class ValuationsPayload:
    asset_ids: tuple[bytes, ...]
    values: tuple[int, ...]
    report_hashes: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_lengths(self.asset_ids, self.values, self.report_hashes)
        for item in (*self.asset_ids, *self.report_hashes):
            _bytes32(item, "asset id / report hash")
        _check_unique(self.asset_ids, "asset id")
        for value in self.values:
            if not 0 <= value < 2**256:
                raise EncodingError(f"valuation {value} does not fit uint256")

    def encode(self) -> bytes:
        return _abi_encode(
            ("bytes32[]", "uint256[]", "bytes32[]"),
            (list(self.asset_ids), list(self.values), list(self.report_hashes)),
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        ids, values, hashes = _abi_decode(("bytes32[]", "uint256[]", "bytes32[]"), data)
        return cls(tuple(ids), tuple(values), tuple(hashes))


@dataclass(frozen=True)
class HardwarePayload:
    device_ids: tuple[bytes, ...]
    statuses: tuple[DeviceStatus, ...]
    fingerprints: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_lengths(self.device_ids, self.statuses, self.fingerprints)
        for item in (*self.device_ids, *self.fingerprints):
            _bytes32(item, "device id / fingerprint")
        _check_unique(self.device_ids, "device id")
        for status in self.statuses:
            if status not in DeviceStatus.__members__.values():
                raise EncodingError(f"unknown device status {status}")

    def encode(self) -> bytes:
        return _abi_encode(
            ("bytes32[]", "uint8[]", "bytes32[]"),
            (list(self.device_ids), [int(s) for s in self.statuses], list(self.fingerprints)),
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        ids, statuses, fingerprints = _abi_decode(("bytes32[]", "uint8[]", "bytes32[]"), data)
        try:
            typed = tuple(DeviceStatus(s) for s in statuses)
        except ValueError as exc:
            raise EncodingError(f"unknown device status in {statuses}") from exc
        return cls(tuple(ids), typed, tuple(fingerprints))


@dataclass(frozen=True)
class UptimePayload:
    uptime_epoch: int
    merkle_root: bytes
    leaf_count: int

    def __post_init__(self) -> None:
        _bytes32(self.merkle_root, "merkle root")
        if not 0 <= self.uptime_epoch < _U64 or not 0 <= self.leaf_count < _U32:
            raise EncodingError("uptime epoch or leaf count out of range")

    def encode(self) -> bytes:
        return _abi_encode(
            ("uint64", "bytes32", "uint32"), (self.uptime_epoch, self.merkle_root, self.leaf_count)
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        epoch, root, count = _abi_decode(("uint64", "bytes32", "uint32"), data)
        return cls(epoch, root, count)
