"""Conversions between XON's off-chain values and what the contracts take as calldata."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from aggregation.errors import EncodingError
from aggregation.frost import Signature
from aggregation.report import PricesPayload, Report, ReportKind

ONCHAIN_SIGNATURE_LENGTH = 96
TRANSMIT_SIGNATURE_LENGTH = 128


def onchain_signature(signature: Signature | bytes) -> bytes:
    """The RFC 9591 65-byte signature (R compressed ‖ z) as the contracts take it: Rx ‖ Ry ‖ z.

    ``FrostVerifier`` carries R uncompressed because decompressing it on-chain costs a
    modexp (≈1.4k gas) while the 31 extra calldata bytes cost ≈0.5k.
    """
    sig = signature if isinstance(signature, Signature) else Signature.decode(signature)
    r_uncompressed = sig.R.key.format(compressed=False)  # 0x04 ‖ x ‖ y
    return r_uncompressed[1:] + sig.z.to_bytes(32, "big")


def transmit_signature(signature: Signature | bytes, group_key_x: int) -> bytes:
    """The ``signature`` argument of every receiver's ``transmit``: Rx ‖ Ry ‖ z ‖ Px.

    The receiver checks Px against a 128-bit commitment to (key, config digest) it keeps
    in the same storage word as its (epoch, round) state, which is cheaper than reading
    the full key from storage (docs/contracts.md).
    """
    if not 0 < group_key_x < 2**256:
        raise ValueError("group key x out of range")
    return onchain_signature(signature) + group_key_x.to_bytes(32, "big")


# ---------------------------------------------------------------- compact PRICES calldata

TRANSMIT_COMPACT_SELECTOR = keccak(b"transmitCompact_14743166()")[:4]  # 0x00000029
_COMPACT_HEAD = 4 + TRANSMIT_SIGNATURE_LENGTH + 32 + 4 + 4 + 8  # 180 bytes before the feeds
_COMPACT_FEED = 32 + 16
_I128_MIN, _I128_MAX = -(2**127), 2**127 - 1


def compact_prices_calldata(report: Report | bytes, signature: bytes) -> bytes:
    """Calldata for ``PriceFeedStore.transmitCompact``: the same signed PRICES report as
    ``transmit(report, signature)``, without ABI padding (docs/contracts.md §6.1)::

        selector ‖ Rx ‖ Ry ‖ z ‖ groupKeyX ‖ configDigest ‖ epoch (4) ‖ round (4)
        ‖ observationsTimestamp (8) ‖ n × (feedId (32) ‖ value (16, two's complement))

    The contract rebuilds the ABI report from these fields and checks the signature over
    its usual message, so the committee signs nothing new. Raises
    :class:`~aggregation.errors.EncodingError` for bytes that are not a canonical report, a
    report that is not PRICES, a payload that is not a canonical PRICES payload (repeated
    feed ids included), one with no feed or a value outside int128 (which ``transmit``
    rejects on-chain too), and a signature that is not 128 bytes. Whatever it encodes,
    the contract rebuilds byte for byte (the report decoders accept canonical ABI only).
    """
    parsed = report if isinstance(report, Report) else Report.decode(report)
    if not isinstance(report, Report) and parsed.encode() != bytes(report):
        # The store rebuilds the canonical encoding: a signature over other bytes would
        # not verify there (`transmit` names the problem: MalformedReport).
        raise EncodingError("report bytes are not the canonical ABI encoding")
    if parsed.kind != ReportKind.PRICES:
        raise EncodingError(f"compact calldata carries PRICES reports only, not {parsed.kind.name}")
    if len(signature) != TRANSMIT_SIGNATURE_LENGTH:
        raise EncodingError(f"signature must be {TRANSMIT_SIGNATURE_LENGTH} bytes (Rx‖Ry‖z‖Px)")
    payload = PricesPayload.decode(parsed.payload)
    if not payload.feed_ids:
        raise EncodingError("a PRICES report needs at least one feed")
    parts = [
        TRANSMIT_COMPACT_SELECTOR,
        bytes(signature),
        parsed.config_digest,
        parsed.epoch.to_bytes(4, "big"),
        parsed.round.to_bytes(4, "big"),
        parsed.observations_timestamp.to_bytes(8, "big"),
    ]
    for fid, value in zip(payload.feed_ids, payload.values, strict=True):
        if not _I128_MIN <= value <= _I128_MAX:
            raise EncodingError(f"price {value} does not fit int128 (the store's range)")
        parts += [fid, value.to_bytes(16, "big", signed=True)]
    return b"".join(parts)


def decode_compact_prices_calldata(
    data: bytes | bytearray | memoryview,
) -> tuple[Report, bytes]:
    """Inverse of :func:`compact_prices_calldata`: the ABI report the contract rebuilds
    from ``data`` and the 128-byte signature argument.

    Raises :class:`~aggregation.errors.EncodingError` for another function's selector and
    for what the contract reverts ``MalformedReport()`` for before it reads a field: a
    length other than 180 + 48·n bytes with n ≥ 1 (and for an argument that is not
    bytes-like). Everything else decodes as the contract rebuilds it. The payload is not
    checked: a repeated feed id comes back as it is (the contract reverts
    ``DuplicateFeed`` for it only after its envelope, sequence and signature checks;
    :meth:`~aggregation.report.PricesPayload.decode` refuses such a payload).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EncodingError(f"transmitCompact calldata must be bytes, not {type(data).__name__}")
    raw = bytes(data)
    n, rest = divmod(len(raw) - _COMPACT_HEAD, _COMPACT_FEED)
    if raw[:4] != TRANSMIT_COMPACT_SELECTOR or n < 1 or rest:
        raise EncodingError(
            f"not transmitCompact calldata ({len(raw)} bytes, selector 0x{raw[:4].hex()})"
        )
    signature = raw[4 : 4 + TRANSMIT_SIGNATURE_LENGTH]
    o = 4 + TRANSMIT_SIGNATURE_LENGTH
    digest = raw[o : o + 32]
    epoch = int.from_bytes(raw[o + 32 : o + 36], "big")
    round_ = int.from_bytes(raw[o + 36 : o + 40], "big")
    timestamp = int.from_bytes(raw[o + 40 : o + 48], "big")
    starts = range(_COMPACT_HEAD, len(raw), _COMPACT_FEED)
    feeds = [raw[start : start + _COMPACT_FEED] for start in starts]
    ids = [f[:32] for f in feeds]
    values = [int.from_bytes(f[32:], "big", signed=True) for f in feeds]
    # eth_abi directly, not PricesPayload (which refuses repeated ids): 32-byte ids and
    # int128 values always encode, so this cannot fail.
    payload = abi_encode(["bytes32[]", "int256[]"], [ids, values])
    return Report(digest, epoch, round_, timestamp, ReportKind.PRICES, payload), signature
