"""An independent FROST(secp256k1, SHA-256) signature verifier on ``py_ecc.secp256k1``.

It shares no code with ``aggregation.frost`` on purpose: its own expand_message_xmd (hashlib),
challenge, point decoding and point arithmetic, so that a bug in the implementation under
test is not mirrored here. Slow (pure Python), which is fine for tests.
"""

from __future__ import annotations

import hashlib

from py_ecc.secp256k1 import secp256k1 as curve

__all__ = [
    "G",
    "N",
    "P",
    "challenge",
    "compress",
    "curve",
    "decompress",
    "onchain_style_verify",
    "verify",
    "xmd_sha256",
]

N = curve.N
P = curve.P
G = curve.G

_CONTEXT = b"FROST-secp256k1-SHA256-v1"


def xmd_sha256(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 expand_message_xmd with SHA-256, written out step by step."""
    ell = (length + 31) // 32
    dst_prime = dst + len(dst).to_bytes(1, "big")
    msg_prime = b"\x00" * 64 + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    blocks = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha256(mixed + i.to_bytes(1, "big") + dst_prime).digest())
    return b"".join(blocks)[:length]


def challenge(r_enc: bytes, pk_enc: bytes, message: bytes) -> int:
    """H2(R || PK || m) = hash_to_field with DST contextString || "chal", L = 48."""
    return int.from_bytes(xmd_sha256(r_enc + pk_enc + message, _CONTEXT + b"chal", 48), "big") % N


def decompress(data: bytes) -> tuple[int, int] | None:
    """SEC1 compressed point, or None if it is not a valid non-identity point."""
    if len(data) != 33 or data[0] not in (2, 3):
        return None
    x = int.from_bytes(data[1:], "big")
    if x >= P:
        return None
    rhs = (pow(x, 3, P) + 7) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P != rhs:
        return None
    if y % 2 != data[0] - 2:
        y = P - y
    return (x, y)


def compress(point: tuple[int, int]) -> bytes:
    x, y = point
    return bytes((2 + (y & 1),)) + x.to_bytes(32, "big")


def verify(group_key: bytes, message: bytes, signature: bytes) -> bool:
    """``z*G == R + c*PK`` with everything recomputed by py_ecc."""
    if len(signature) != 65:
        return False
    pk = decompress(group_key)
    r = decompress(signature[:33])
    z = int.from_bytes(signature[33:], "big")
    if pk is None or r is None or z >= N:
        return False
    c = challenge(signature[:33], group_key, message)
    lhs = curve.multiply(G, z)
    rhs = curve.add(r, curve.multiply(pk, c))
    return bool(lhs == rhs)


def onchain_style_verify(group_key: bytes, message: bytes, signature: bytes) -> bool:
    """The contract's check: ecrecover(e = z*Px, v = 27 + parity(P), r = Px, s = c*Px)
    recovers -R (as a point here; the contract compares addresses). Requires Px < n."""
    pk = decompress(group_key)
    r = decompress(signature[:33])
    z = int.from_bytes(signature[33:], "big")
    if pk is None or r is None or z >= N or pk[0] >= N:
        return False
    c = challenge(signature[:33], group_key, message)
    px = pk[0]
    e = z * px % N
    s = c * px % N
    if s == 0:
        return False
    v = 27 + (pk[1] & 1)
    recovered = curve.ecdsa_raw_recover(e.to_bytes(32, "big"), (v, px, s))
    minus_r = (r[0], (P - r[1]) % P)
    return bool(recovered == minus_r)
