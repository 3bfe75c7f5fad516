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
