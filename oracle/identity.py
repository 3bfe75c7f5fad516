"""Node and device identity keys: secp256k1, named by their Ethereum address.

Every node and every device holds one identity key (DESIGN §4). It signs transport
frames, heartbeats and challenge responses; it is *not* the FROST key share.

* :data:`NodeId` is the EIP-55 checksummed address of the key (``0x`` + 40 hex digits),
  so operators and contracts name a member the way Ethereum tooling does.
* Signatures are 65 bytes ``r ‖ s ‖ recid`` (recid 0 or 1, as libsecp256k1 returns it) over
  ``keccak256(domain ‖ message)``. The domain separates uses (and networks): a frame signed
  for ``xon/devnet/v1`` recovers to an unrelated address under ``xon/mainnet/v1``. XON's
  domains have the form ``xon/<name>/v<n>`` with a ``name`` free of ``/``, so no domain is a
  prefix of another one and ``domain ‖ message`` is unambiguous.
* Verification is by public-key *recovery*: the recovered address must be the claimed
  signer. Only low-s signatures are accepted, so a valid signature has exactly one encoding
  (libsecp256k1 signs low-s; a high-s twin would otherwise recover the same key).

Key material never appears in ``repr``/``str`` or logs; :meth:`IdentityKey.secret_bytes`
exists for the keystore only.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, NewType

from coincurve import PrivateKey, PublicKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from aggregation.errors import CryptoError

__all__ = [
    "SIGNATURE_SIZE",
    "IdentityKey",
    "NodeId",
    "Roster",
    "address_of",
    "parse_node_id",
    "recover_signer",
    "signing_digest",
]

NodeId = NewType("NodeId", str)
"""EIP-55 checksummed Ethereum address of an identity key, e.g. ``0x5aAeb6…``."""

SIGNATURE_SIZE: Final = 65
_CURVE_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER: Final = _CURVE_ORDER // 2
_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")


def signing_digest(domain: bytes, message: bytes) -> bytes:
    """The 32-byte digest an identity signature covers: ``keccak256(domain ‖ message)``."""
    if not domain:
        raise ValueError("a signing domain is required")
    return keccak(domain + message)


def address_of(public_key: bytes) -> NodeId:
    """The checksummed address of a secp256k1 public key (33 or 65 bytes)."""
    try:
        point = PublicKey(public_key).format(compressed=False)
    except ValueError as exc:
        raise CryptoError(f"not a secp256k1 public key: {exc}") from None
    return _node_id(point[1:])


# Memoised: a committee has a few dozen addresses, met in every message; an invalid one
# raises, so it is never cached.
@functools.lru_cache(maxsize=4096)
def parse_node_id(text: str) -> NodeId:
    """Validate an address and return it in checksummed form.

    All-lowercase or all-uppercase hex is accepted and normalised; mixed case must be a
    correct EIP-55 checksum (a typo in a config file should not silently name someone else).
    """
    if not _ADDRESS_RE.fullmatch(text):
        raise ValueError(f"not an address: {text!r}")
    digits = text[2:]
    checksummed = to_checksum_address(text.lower())
    if digits not in (digits.lower(), digits.upper()) and text != checksummed:
        raise ValueError(f"bad EIP-55 checksum: {text!r}")
    return NodeId(checksummed)


def recover_signer(domain: bytes, message: bytes, signature: bytes) -> NodeId:
    """Recover the address that produced ``signature`` over ``(domain, message)``.

    Raises :class:`~aggregation.errors.CryptoError` for a signature that is not 65 bytes,
    has a recovery id other than 0/1, a zero or out-of-range ``r``/``s``, a high ``s``, or
    recovers no key. A well-formed signature by *another* key recovers another address: the
    caller compares.
    """
    if len(signature) != SIGNATURE_SIZE:
        raise CryptoError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if signature[64] > 1 or not 0 < r < _CURVE_ORDER or not 0 < s <= _HALF_ORDER:
        raise CryptoError("malformed or non-canonical signature")
    try:
        return _recover(signing_digest(domain, message), bytes(signature))
    except ValueError as exc:
        raise CryptoError(f"signature recovers no key: {exc}") from None


# Recovery is a pure function of (digest, signature), and the same signed frame is checked
# more than once (an observation when it arrives and again inside each PROPOSE that
# carries it), by few distinct keys (a committee): memoising both steps removes most of the
# CPU a large committee spends on identities. Failures raise, so they are never cached.
@functools.lru_cache(maxsize=8192)
def _recover(digest: bytes, signature: bytes) -> NodeId:
    public = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return _node_id(public.format(compressed=False)[1:])


@functools.lru_cache(maxsize=1024)
def _node_id(public_key: bytes) -> NodeId:
    """The checksummed address of a 64-byte uncompressed public key (x ‖ y)."""
    return NodeId(to_checksum_address(keccak(public_key)[12:]))


class IdentityKey:
    """A secp256k1 private key that signs for one node or device.

    >>> key = IdentityKey.generate()
    >>> sig = key.sign(b"xon/devnet/v1", b"hello")
    >>> recover_signer(b"xon/devnet/v1", b"hello", sig) == key.node_id
    True
    """

    __slots__ = ("_key", "_node_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < _CURVE_ORDER:
            # Do not echo the bytes: they may be a (mistyped) real key.
            raise CryptoError("an identity key is a 32-byte scalar in [1, n)")
        self._key = PrivateKey(secret)
        self._node_id = address_of(self._key.public_key.format(compressed=True))

    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh key from the operating system's CSPRNG (via libsecp256k1's binding)."""
        return cls(PrivateKey().secret)

    @classmethod
    def from_hex(cls, text: str) -> IdentityKey:
        """From 64 hex digits, with or without ``0x`` (as keystores and anvil print them)."""
        digits = text[2:] if text.startswith(("0x", "0X")) else text
        try:
            secret = bytes.fromhex(digits)
        except ValueError:
            raise CryptoError("an identity key in hex must be 64 hex digits") from None
        return cls(secret)

    @property
    def node_id(self) -> NodeId:
        return self._node_id

    @property
    def public_key(self) -> bytes:
        """The compressed (33-byte) public key."""
        return bytes(self._key.public_key.format(compressed=True))

    def sign(self, domain: bytes, message: bytes) -> bytes:
        """A 65-byte recoverable signature ``r ‖ s ‖ recid`` over keccak256(domain ‖ message)."""
        return bytes(self._key.sign_recoverable(signing_digest(domain, message), hasher=None))

    def secret_bytes(self) -> bytes:
        """The raw 32-byte secret, for writing a keystore file. Never log it."""
        return bytes(self._key.secret)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityKey):
            return NotImplemented
        return hmac.compare_digest(self._key.secret, other._key.secret)

    def __hash__(self) -> int:
        return hash(self._node_id)

    def __repr__(self) -> str:
        return f"IdentityKey(node_id={self._node_id})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the secret into wherever the pickle goes (a log, a cache).
        raise TypeError("IdentityKey is not picklable")


class Roster(Mapping[NodeId, bytes]):
    """The members allowed to speak on a channel: NodeId → compressed public key.

    Immutable; a committee rotation builds a new roster. Iteration order is
    :attr:`node_ids`, i.e. sorted by address, so every node derives the same order.
    """

    __slots__ = ("_keys", "_order")

    def __init__(self, public_keys: Iterable[bytes] = ()) -> None:
        keys: dict[NodeId, bytes] = {}
        for public_key in public_keys:
            try:
                compressed = bytes(PublicKey(bytes(public_key)).format(compressed=True))
            except ValueError as exc:
                raise CryptoError(f"not a secp256k1 public key: {exc}") from None
            keys[address_of(compressed)] = compressed
        self._keys = keys
        self._order = tuple(sorted(keys, key=str.lower))

    @classmethod
    def of(cls, *members: IdentityKey) -> Roster:
        """The roster of the given keys (tests, devnet)."""
        return cls(member.public_key for member in members)

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        return self._order

    def __getitem__(self, node_id: NodeId) -> bytes:
        return self._keys[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._keys

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Roster):
            return NotImplemented
        return self._keys == other._keys

    def __hash__(self) -> int:
        return hash(self._order)

    def __repr__(self) -> str:
        return f"Roster({list(self._order)!r})"
