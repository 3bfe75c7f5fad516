"""FROST signing (RFC 9591 sections 4 and 5): commit, sign, verify shares, aggregate, verify.

Round 1: :func:`commit` draws a hedged nonce pair ``H3(random_bytes(32) || share)`` and
returns single-use :class:`SigningNonces` (kept in memory) plus public
:class:`SigningCommitments`. Round 2: :func:`sign` consumes the nonces and returns a
:class:`SignatureShare`. The coordinator calls :func:`aggregate`, which checks the result and,
only if it fails, verifies every share to name the cheater.

:class:`SigningContext` holds everything derived from one (signing package, group key) pair
(binding factors, group commitment, challenge, Lagrange coefficients), computed once and
shared by :func:`sign`, :func:`verify_signature_share` and :func:`aggregate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, NoReturn

from aggregation.frost.ciphersuite import h1, h2, h3, h4, h5
from aggregation.frost.errors import (
    FrostError,
    InvalidElement,
    InvalidScalar,
    InvalidSignatureShare,
    InvalidSigningPackage,
    NonceReuseError,
)
from aggregation.frost.group import (
    ELEMENT_SIZE,
    SCALAR_SIZE,
    N,
    Point,
    base_mul,
    check_identifier,
    decode_scalar,
    encode_scalar,
    point_sum,
)
from aggregation.frost.keys import (
    KeyPackage,
    PublicKeyPackage,
    Rng,
    lagrange_coefficient,
    lagrange_coefficients,
)

SIGNATURE_SIZE: Final = ELEMENT_SIZE + SCALAR_SIZE
_COMMITMENT_SIZE: Final = SCALAR_SIZE + 2 * ELEMENT_SIZE


# -- round 1 ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningCommitments:
    """A signer's public nonce commitments (D = hiding * G, E = binding * G)."""

    identifier: int
    hiding: Point
    binding: Point

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        if self.hiding.is_identity or self.binding.is_identity:
            raise InvalidElement("nonce commitments must not be the identity")

    def encode(self) -> bytes:
        """``SerializeScalar(id) || D || E``: 98 bytes, the RFC commitment-list entry."""
        return encode_scalar(self.identifier) + self.hiding.encode() + self.binding.encode()

    @staticmethod
    def decode(data: bytes) -> SigningCommitments:
        if len(data) != _COMMITMENT_SIZE:
            raise InvalidElement("signing commitments are 98 bytes")
        identifier = decode_scalar(data[:SCALAR_SIZE], nonzero=True)
        hiding = Point.decode(data[SCALAR_SIZE : SCALAR_SIZE + ELEMENT_SIZE])
        binding = Point.decode(data[SCALAR_SIZE + ELEMENT_SIZE :])
        return SigningCommitments(identifier, hiding, binding)


_FACTORY: Final = object()


class SigningNonces:
    """A signer's secret nonce pair for exactly one signature.

    :func:`sign` consumes it: the scalars are wiped and a second use raises
    :class:`NonceReuseError`. Copying and pickling are refused, so the object cannot be
    duplicated within the process to get around this (it is also never meant to be
    persisted: a restarted node publishes fresh commitments). Only :func:`commit` creates one.
    """

    __slots__ = ("_binding", "_hiding", "_used", "commitments")

    def __init__(
        self, hiding: int, binding: int, commitments: SigningCommitments, *, _token: object
    ) -> None:
        if _token is not _FACTORY:
            raise TypeError("SigningNonces are created by commit() only")
        self._hiding = hiding
        self._binding = binding
        self._used = False
        self.commitments = commitments

    @property
    def consumed(self) -> bool:
        return self._used

    def _consume(self) -> tuple[int, int]:
        if self._used:
            raise NonceReuseError("these signing nonces were already used")
        pair = (self._hiding, self._binding)
        self._used = True
        self._hiding = 0
        self._binding = 0
        return pair

    def _refuse(self, *_: Any) -> NoReturn:
        raise NonceReuseError("SigningNonces are single-use and cannot be copied or pickled")

    __copy__ = _refuse
    __deepcopy__ = _refuse
    __reduce__ = _refuse
    __reduce_ex__ = _refuse
    __getstate__ = _refuse

    def __repr__(self) -> str:
        state = "consumed" if self._used else "fresh"
        return f"SigningNonces(identifier={self.commitments.identifier}, {state})"


def nonce_generate(secret: int, random_bytes: bytes) -> int:
    """RFC ``nonce_generate``: ``H3(random_bytes || SerializeScalar(secret))``."""
    if len(random_bytes) != 32:
        raise FrostError("nonce randomness must be 32 bytes")
    return h3(random_bytes + encode_scalar(secret))


def commit_with_randomness(
    identifier: int, signing_share: int, hiding_randomness: bytes, binding_randomness: bytes
) -> tuple[SigningNonces, SigningCommitments]:
    """Round 1 with explicit randomness (used for test vectors; prefer :func:`commit`)."""
    hiding = nonce_generate(signing_share, hiding_randomness)
    binding = nonce_generate(signing_share, binding_randomness)
    if hiding == 0 or binding == 0:
        raise InvalidScalar("nonce is zero")  # probability 2^-256
    commitments = SigningCommitments(identifier, base_mul(hiding), base_mul(binding))
    return SigningNonces(hiding, binding, commitments, _token=_FACTORY), commitments


def commit(key_package: KeyPackage, rng: Rng) -> tuple[SigningNonces, SigningCommitments]:
    """Round 1: hedged nonces from fresh randomness and the secret share."""
    return commit_with_randomness(
        key_package.identifier, key_package.signing_share, rng(32), rng(32)
    )


# -- signing package and derived values --------------------------------------------------
@dataclass(frozen=True)
class SigningPackage:
    """The message and the chosen signers' commitments, sorted by identifier."""

    commitments: tuple[SigningCommitments, ...]
    message: bytes

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.commitments, key=lambda c: c.identifier))
        ids = [c.identifier for c in ordered]
        if len(set(ids)) != len(ids):
            raise InvalidSigningPackage("duplicate signer in signing package")
        if len(ids) < 2:
            raise InvalidSigningPackage("a signing package needs at least two signers")
        object.__setattr__(self, "commitments", ordered)

    @cached_property
    def identifiers(self) -> tuple[int, ...]:
        return tuple(c.identifier for c in self.commitments)

    def commitment_for(self, identifier: int) -> SigningCommitments:
        for c in self.commitments:
            if c.identifier == identifier:
                return c
        raise InvalidSigningPackage(f"signer {identifier} is not in the signing package")

    def encode_commitment_list(self) -> bytes:
        """RFC ``encode_group_commitment_list``."""
        return b"".join(c.encode() for c in self.commitments)


class SigningContext:
    """Values of one signing session that every party derives identically, computed once.

    Creating it computes the binding factors (t hashes), the group commitment (t scalar
    multiplications and one ``combine_keys``) and the challenge.
    """

    def __init__(self, package: SigningPackage, group_key: Point) -> None:
        if group_key.is_identity:
            raise InvalidElement("group key must not be the identity")
        self.package = package
        self.group_key = group_key
        prefix = self._rho_prefix()
        self.binding_factors: dict[int, int] = {
            c.identifier: h1(prefix + encode_scalar(c.identifier)) for c in package.commitments
        }
        # rho_i * E_i is kept per signer: share verification reuses it.
        self._rho_e: dict[int, Point] = {
            c.identifier: c.binding * self.binding_factors[c.identifier]
            for c in package.commitments
        }
        points = [c.hiding for c in package.commitments]
        points.extend(self._rho_e.values())
        self.group_commitment = point_sum(points)
        if self.group_commitment.is_identity:
            raise InvalidSigningPackage("group commitment is the identity")
        self.challenge = h2(self.group_commitment.encode() + group_key.encode() + package.message)

    def _rho_prefix(self) -> bytes:
        return (
            self.group_key.encode()
            + h4(self.package.message)
            + h5(self.package.encode_commitment_list())
        )

    def binding_factor_input(self, identifier: int) -> bytes:
        """The H1 preimage for one signer (exposed for test vectors)."""
        return self._rho_prefix() + encode_scalar(identifier)

    def commitment_share(self, identifier: int) -> Point:
        """``D_i + rho_i * E_i``: signer i's part of the group commitment."""
        return point_sum((self.package.commitment_for(identifier).hiding, self._rho_e[identifier]))

    @cached_property
    def lagrange(self) -> dict[int, int]:
        return lagrange_coefficients(self.package.identifiers)


# -- round 2 ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureShare:
    identifier: int
    share: int

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        if not 0 <= self.share < N:
            raise InvalidScalar("signature share out of range")

    def encode(self) -> bytes:
        return encode_scalar(self.share)

    @staticmethod
    def decode(identifier: int, data: bytes) -> SignatureShare:
        return SignatureShare(identifier, decode_scalar(data))


def sign(
    package: SigningPackage,
    nonces: SigningNonces,
    key_package: KeyPackage,
    *,
    context: SigningContext | None = None,
) -> SignatureShare:
    """Round 2: this signer's share. Consumes ``nonces`` (a second call raises).

    The package is checked before the nonces are touched, so a malformed package does not
    burn them; once consumed they are gone even if the caller never sends the share.
    """
    identifier = key_package.identifier
    if nonces.consumed:
        raise NonceReuseError("these signing nonces were already used")
    if nonces.commitments.identifier != identifier:
        raise InvalidSigningPackage("nonces belong to another signer")
    if package.commitment_for(identifier) != nonces.commitments:
        raise InvalidSigningPackage("our commitment in the signing package is not our nonces'")
    if len(package.commitments) < key_package.threshold:
        raise InvalidSigningPackage("fewer signers than the threshold")
    if context is None:
        context = SigningContext(package, key_package.group_key)
    elif context.package is not package or context.group_key != key_package.group_key:
        raise InvalidSigningPackage("context belongs to another signing session")
    lam = lagrange_coefficient(package.identifiers, identifier)
    rho = context.binding_factors[identifier]
    hiding, binding = nonces._consume()
    z = (hiding + binding * rho + lam * key_package.signing_share * context.challenge) % N
    return SignatureShare(identifier, z)


def verify_signature_share(
    share: SignatureShare, verifying_share: Point, context: SigningContext
) -> bool:
    """RFC ``verify_signature_share``: ``z_i * G == D_i + rho_i * E_i + (c * lambda_i) * Y_i``."""
    i = share.identifier
    lam = context.lagrange[i]
    expected = point_sum(
        (context.commitment_share(i), verifying_share * (context.challenge * lam % N))
    )
    return base_mul(share.share) == expected


# -- aggregation and verification --------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    """A Schnorr signature (R, z); 65 bytes on the wire: R (33, compressed) || z (32)."""

    R: Point
    z: int

    def __post_init__(self) -> None:
        if self.R.is_identity:
            raise InvalidElement("signature R must not be the identity")
        if not 0 <= self.z < N:
            raise InvalidScalar("signature z out of range")

    def encode(self) -> bytes:
        return self.R.encode() + encode_scalar(self.z)

    @staticmethod
    def decode(data: bytes) -> Signature:
        if len(data) != SIGNATURE_SIZE:
            raise InvalidElement("a signature is 65 bytes")
        return Signature(Point.decode(data[:ELEMENT_SIZE]), decode_scalar(data[ELEMENT_SIZE:]))


def _schnorr_check(group_key: Point, signature: Signature, challenge: int) -> bool:
    return base_mul(signature.z) == point_sum((signature.R, group_key * challenge))


def verify(group_key: Point, message: bytes, signature: Signature) -> bool:
    """RFC ``verify_signature`` (prime-order group): ``z * G == R + H2(R || PK || m) * PK``."""
    if group_key.is_identity:
        raise InvalidElement("group key must not be the identity")
    challenge = h2(signature.R.encode() + group_key.encode() + message)
    return _schnorr_check(group_key, signature, challenge)


def aggregate(
    package: SigningPackage,
    shares: Iterable[SignatureShare],
    public_key_package: PublicKeyPackage,
    *,
    context: SigningContext | None = None,
) -> Signature:
    """Sum the shares and check the signature; on failure name the cheating signer(s).

    The happy path costs one signature check; per-share verification (with all Lagrange
    coefficients) runs only when that check fails.
    """
    by_id: dict[int, SignatureShare] = {}
    for s in shares:
        if s.identifier in by_id:
            raise InvalidSigningPackage(f"two shares from signer {s.identifier}")
        by_id[s.identifier] = s
    if set(by_id) != set(package.identifiers):
        raise InvalidSigningPackage("shares do not match the signers in the package")
    if len(by_id) < public_key_package.threshold:
        raise InvalidSigningPackage("fewer shares than the threshold")
    for i in by_id:
        if i not in public_key_package.verifying_shares:
            raise InvalidSigningPackage(f"signer {i} is not a committee member")
    if context is None:
        context = SigningContext(package, public_key_package.group_key)
    elif context.package is not package or context.group_key != public_key_package.group_key:
        raise InvalidSigningPackage("context belongs to another signing session")
    z = sum(s.share for s in by_id.values()) % N
    signature = Signature(context.group_commitment, z)
    if _schnorr_check(public_key_package.group_key, signature, context.challenge):
        return signature
    culprits = tuple(
        i
        for i in package.identifiers
        if not verify_signature_share(by_id[i], public_key_package.verifying_shares[i], context)
    )
    if not culprits:
        # Every share checks out against its verification share, yet the sum does not:
        # the public key package is inconsistent with the group key.
        raise FrostError("aggregate signature invalid although every share verifies")
    raise InvalidSignatureShare(
        f"invalid signature share from signer(s) {list(culprits)}",
        culprits=culprits,
        evidence={i: by_id[i].encode().hex() for i in culprits},
    )


def sign_with_committee(
    key_packages: Mapping[int, KeyPackage],
    public_key_package: PublicKeyPackage,
    signers: Sequence[int],
    message: bytes,
    rng: Rng,
) -> Signature:
    """Run commit -> sign -> aggregate for ``signers`` in one process (tests, benchmarks,
    devnet). Pure: randomness comes from ``rng``."""
    committed = [commit(key_packages[i], rng) for i in signers]
    package = SigningPackage(tuple(c for _, c in committed), message)
    context = SigningContext(package, public_key_package.group_key)
    shares = [
        sign(package, nonces, key_packages[c.identifier], context=context)
        for nonces, c in committed
    ]
    return aggregate(package, shares, public_key_package, context=context)
