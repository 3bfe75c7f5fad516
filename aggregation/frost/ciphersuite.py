"""Hash functions of the FROST(secp256k1, SHA-256) ciphersuite (RFC 9591, section 6.5).

- H1 (rho), H2 (chal), H3 (nonce): ``hash_to_field`` with expand_message_xmd(SHA-256),
  L = 48 bytes, reduced mod n, DST = contextString || tag;
- H4 (msg), H5 (com): plain ``SHA-256(contextString || tag || m)`` (32-byte digests, as the
  RFC specifies for this suite; they are not reduced to scalars);
- HDKG (dkg), HID (id): the ZcashFoundation ``frost-secp256k1`` extensions, built like H1.
"""

from __future__ import annotations

import hashlib
from typing import Final

from aggregation.frost.group import N

CONTEXT_STRING: Final = b"FROST-secp256k1-SHA256-v1"

_HASH_LEN: Final = 32  # b_in_bytes of SHA-256
_BLOCK_LEN: Final = 64  # s_in_bytes of SHA-256
_FIELD_LEN: Final = 48  # L = ceil((ceil(log2(n)) + k) / 8) with k = 128

# SHA-256 state after absorbing Z_pad (one full block of zeros): shared by every call.
_ZPAD_STATE: Final = hashlib.sha256(bytes(_BLOCK_LEN))


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 section 5.3.1 expand_message_xmd with SHA-256."""
    if len(dst) > 255:
        raise ValueError("DST longer than 255 bytes")
    ell = -(-len_in_bytes // _HASH_LEN)
    if ell > 255 or len_in_bytes > 65535:
        raise ValueError("requested output too long for expand_message_xmd")
    dst_prime = dst + bytes((len(dst),))
    h = _ZPAD_STATE.copy()
    h.update(msg)
    h.update(len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime)
    b0 = h.digest()
    b_prev = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    b0_int = int.from_bytes(b0, "big")
    for i in range(2, ell + 1):
        mixed = (b0_int ^ int.from_bytes(b_prev, "big")).to_bytes(_HASH_LEN, "big")
        b_prev = hashlib.sha256(mixed + bytes((i,)) + dst_prime).digest()
        out.append(b_prev)
    return b"".join(out)[:len_in_bytes]


def hash_to_scalar(msg: bytes, dst: bytes) -> int:
    """hash_to_field(msg, 1) for the secp256k1 scalar field, with the given DST."""
    return int.from_bytes(expand_message_xmd(msg, dst, _FIELD_LEN), "big") % N


_DST_RHO: Final = CONTEXT_STRING + b"rho"
_DST_CHAL: Final = CONTEXT_STRING + b"chal"
_DST_NONCE: Final = CONTEXT_STRING + b"nonce"
_DST_DKG: Final = CONTEXT_STRING + b"dkg"
_DST_ID: Final = CONTEXT_STRING + b"id"


def h1(msg: bytes) -> int:
    """Binding factor hash (rho)."""
    return hash_to_scalar(msg, _DST_RHO)


def h2(msg: bytes) -> int:
    """Challenge hash (chal)."""
    return hash_to_scalar(msg, _DST_CHAL)


def h3(msg: bytes) -> int:
    """Nonce derivation hash (nonce)."""
    return hash_to_scalar(msg, _DST_NONCE)


def h4(msg: bytes) -> bytes:
    """Message hash (msg): SHA-256(contextString || "msg" || m)."""
    return hashlib.sha256(CONTEXT_STRING + b"msg" + msg).digest()


def h5(msg: bytes) -> bytes:
    """Commitment-list hash (com): SHA-256(contextString || "com" || m)."""
    return hashlib.sha256(CONTEXT_STRING + b"com" + msg).digest()


def hdkg(msg: bytes) -> int:
    """DKG proof-of-knowledge challenge (ZcashFoundation ``HDKG``)."""
    return hash_to_scalar(msg, _DST_DKG)


def hid(msg: bytes) -> int:
    """Identifier derivation from arbitrary bytes (ZcashFoundation ``HID``)."""
    return hash_to_scalar(msg, _DST_ID)
