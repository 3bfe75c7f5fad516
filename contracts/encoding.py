"""Conversions between XON's off-chain values and what the contracts take as calldata."""

from __future__ import annotations

from aggregation.frost import Signature

ONCHAIN_SIGNATURE_LENGTH = 96


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
