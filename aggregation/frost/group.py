"""secp256k1 group and scalar field for FROST(secp256k1, SHA-256), on top of coincurve.

coincurve (libsecp256k1) has no identity element and no negation, so :class:`Point` wraps an
optional ``coincurve.PublicKey``: ``None`` is the identity. Every operation maps the cases
libsecp256k1 refuses (a zero scalar, a sum that lands on infinity) onto the identity, and the
RFC's SerializeElement / DeserializeElement refuse the identity with :class:`InvalidElement`.

Scalars are plain ``int`` values in ``[0, n)``; the helpers here encode and decode them as
32-byte big-endian strings (RFC 9591 SerializeScalar / DeserializeScalar).

Only public data is pushed through the variable-time paths; secret scalars only ever meet
``PublicKey.from_secret`` (constant time in libsecp256k1). Python's own big-int arithmetic on
secret shares is not constant time, which is a known limit of a pure-Python signer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from coincurve import PublicKey

from aggregation.frost.errors import InvalidElement, InvalidScalar

#: Order of the secp256k1 group (and modulus of the scalar field).
N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: Field prime of secp256k1.
P: Final = 2**256 - 2**32 - 977

SCALAR_SIZE: Final = 32
ELEMENT_SIZE: Final = 33


class Point:
    """A secp256k1 point, possibly the identity. Immutable; caches its compressed encoding."""

    __slots__ = ("_enc", "_key")

    def __init__(self, key: PublicKey | None, enc: bytes | None = None) -> None:
        self._key = key
        self._enc = enc

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def decode(data: bytes) -> Point:
        """RFC DeserializeElement: 33-byte SEC1 compressed encoding of a non-identity point."""
        if len(data) != ELEMENT_SIZE or data[0] not in (2, 3):
            raise InvalidElement("expected a 33-byte SEC1 compressed point (prefix 02 or 03)")
        try:
            key = PublicKey(bytes(data))
        except ValueError as exc:  # x >= p or x not on the curve
            raise InvalidElement("bytes are not a point on secp256k1") from exc
        return Point(key, bytes(data))

    @staticmethod
    def from_hex(text: str) -> Point:
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise InvalidElement("point is not valid hex") from exc
        return Point.decode(raw)

    # -- properties ---------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self._key is None

    @property
    def key(self) -> PublicKey:
        """The coincurve key; raises :class:`InvalidElement` for the identity."""
        if self._key is None:
            raise InvalidElement("the identity element has no coincurve representation")
        return self._key

    def encode(self) -> bytes:
        """RFC SerializeElement: 33 bytes; the identity cannot be serialised."""
        if self._enc is None:
            self._enc = self.key.format(compressed=True)
        return self._enc

    def hex(self) -> str:
        return self.encode().hex()

    @property
    def x(self) -> int:
        return int.from_bytes(self.encode()[1:], "big")

    @property
    def parity(self) -> int:
        """0 when y is even, 1 when odd."""
        return self.encode()[0] - 2

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Point) -> Point:
        return point_sum((self, other))

    def __neg__(self) -> Point:
        if self._key is None:
            return self
        # Negation flips y, which in compressed form is just the parity byte: far cheaper
        # than a scalar multiplication by n - 1.
        enc = self.encode()
        flipped = bytes((enc[0] ^ 1,)) + enc[1:]
        return Point(PublicKey(flipped), flipped)

    def __sub__(self, other: Point) -> Point:
        return point_sum((self, -other))

    def __mul__(self, scalar: int) -> Point:
        k = scalar % N
        if k == 0 or self._key is None:
            return IDENTITY
        return Point(self._key.multiply(k.to_bytes(SCALAR_SIZE, "big")))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        if self._key is None or other._key is None:
            return self._key is None and other._key is None
        return self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(b"" if self._key is None else self.encode())

    def __repr__(self) -> str:
        return "Point(identity)" if self._key is None else f"Point({self.hex()})"


IDENTITY: Final = Point(None)


def base_mul(scalar: int) -> Point:
    """``scalar * G`` (constant time in libsecp256k1); zero gives the identity."""
    k = scalar % N
    if k == 0:
        return IDENTITY
    return Point(PublicKey.from_valid_secret(k.to_bytes(SCALAR_SIZE, "big")))


def point_sum(points: Iterable[Point]) -> Point:
    """Sum of points in one ``combine_keys`` call, with the identity handled explicitly."""
    keys = [p._key for p in points if p._key is not None]
    if not keys:
        return IDENTITY
    if len(keys) == 1:
        return Point(keys[0])
    try:
        return Point(PublicKey.combine_keys(keys))
    except ValueError:
        # libsecp256k1 refuses to return the point at infinity; P + (-P) lands here.
        return IDENTITY


GENERATOR: Final = base_mul(1)


# -- scalars ----------------------------------------------------------------------------
def encode_scalar(scalar: int) -> bytes:
    """RFC SerializeScalar: 32-byte big-endian encoding of a scalar in ``[0, n)``."""
    if not 0 <= scalar < N:
        raise InvalidScalar("scalar out of range [0, n)")
    return scalar.to_bytes(SCALAR_SIZE, "big")


def decode_scalar(data: bytes, *, nonzero: bool = False) -> int:
    """RFC DeserializeScalar: 32 bytes big-endian, rejecting values >= n (and 0 if asked)."""
    if len(data) != SCALAR_SIZE:
        raise InvalidScalar("expected a 32-byte scalar")
    value = int.from_bytes(data, "big")
    if value >= N:
        raise InvalidScalar("scalar is not below the group order n")
    if nonzero and value == 0:
        raise InvalidScalar("scalar must not be zero")
    return value


def scalar_from_hex(text: str, *, nonzero: bool = False) -> int:
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidScalar("scalar is not valid hex") from exc
    return decode_scalar(raw, nonzero=nonzero)


def check_identifier(identifier: int) -> int:
    """Participant identifiers are non-zero scalars; the API uses plain ints ``1..n``."""
    if isinstance(identifier, bool) or not isinstance(identifier, int):
        raise InvalidScalar("identifier must be an int")
    if not 0 < identifier < N:
        raise InvalidScalar("identifier must be a non-zero scalar")
    return identifier


def batch_invert(values: list[int]) -> list[int]:
    """Invert many non-zero scalars with one modular inversion (Montgomery's trick)."""
    if not values:
        return []
    prefix = [0] * len(values)
    acc = 1
    for i, v in enumerate(values):
        if v % N == 0:
            raise InvalidScalar("cannot invert zero")
        prefix[i] = acc
        acc = acc * v % N
    inv = pow(acc, -1, N)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % N
        inv = inv * values[i] % N
    return out
