"""Key material: Shamir sharing with Feldman VSS, trusted-dealer keygen, refresh, chain check.

Follows RFC 9591 appendix C (``trusted_dealer_keygen``, ``secret_share_shard``,
``vss_commit``, ``vss_verify``, ``derive_group_info``) with identifiers as plain ints.

A group key whose x-coordinate is >= n cannot be checked by the on-chain verifier (it passes
Px to ecrecover as ``r``), so the dealer draws again in that case and
:func:`chain_key` refuses such a key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from aggregation.frost.errors import (
    ChainIncompatibleKey,
    DkgPeerMisbehaviour,
    FrostError,
    InvalidElement,
    InvalidScalar,
    InvalidSigningPackage,
)
from aggregation.frost.group import (
    N,
    Point,
    base_mul,
    batch_invert,
    check_identifier,
    point_sum,
)

#: A source of randomness: called with a byte count, returns that many random bytes
#: (``secrets.token_bytes`` at the edge; a seeded generator in tests).
Rng: TypeAlias = Callable[[int], bytes]

#: A Feldman VSS commitment: the coefficients of a secret polynomial times G, constant first.
VssCommitment: TypeAlias = tuple[Point, ...]


def random_scalar(rng: Rng) -> int:
    """A uniformly random non-zero scalar: 48 random bytes reduced mod n (bias < 2^-128)."""
    while True:
        raw = rng(48)
        if len(raw) != 48:
            raise FrostError("rng returned the wrong number of bytes")
        value = int.from_bytes(raw, "big") % N
        if value:
            return value


def check_threshold(min_signers: int, max_signers: int) -> None:
    if not 2 <= min_signers <= max_signers:
        raise FrostError("need 2 <= min_signers <= max_signers")


# -- polynomials and VSS ----------------------------------------------------------------
def polynomial_evaluate(x: int, coefficients: Sequence[int]) -> int:
    """f(x) mod n by Horner's rule; ``coefficients[0]`` is the constant term."""
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % N
    return value


def vss_commit(coefficients: Sequence[int]) -> VssCommitment:
    return tuple(base_mul(c) for c in coefficients)


def evaluate_commitment(commitment: Sequence[Point], x: int) -> Point:
    """``sum_j C_j * x^j``: the public image of f(x) under a VSS commitment."""
    terms = [commitment[0]]
    power = 1
    for c in commitment[1:]:
        power = power * x % N
        terms.append(c * power)
    return point_sum(terms)


def vss_verify(identifier: int, share: int, commitment: Sequence[Point]) -> bool:
    """RFC ``vss_verify``: does ``share * G`` match the commitment evaluated at identifier?"""
    return base_mul(share) == evaluate_commitment(commitment, identifier)


def sum_commitments(commitments: Iterable[Sequence[Point]]) -> VssCommitment:
    """Coefficient-wise sum of several participants' commitments (one combine per degree)."""
    columns = list(zip(*commitments, strict=True))
    return tuple(point_sum(col) for col in columns)


def derive_verifying_shares(
    commitment: Sequence[Point], identifiers: Iterable[int]
) -> dict[int, Point]:
    """RFC ``derive_group_info``: each participant's verification share from the commitment."""
    return {i: evaluate_commitment(commitment, i) for i in identifiers}


# -- Lagrange interpolation -------------------------------------------------------------
def lagrange_coefficient(identifiers: Sequence[int], identifier: int) -> int:
    """RFC ``derive_interpolating_value``: lambda_i at 0 over the given signer set, O(t)."""
    if len(set(identifiers)) != len(identifiers):
        raise InvalidSigningPackage("duplicate identifier in signer set")
    if identifier not in identifiers:
        raise InvalidSigningPackage(f"identifier {identifier} is not in the signer set")
    num = 1
    den = 1
    for x in identifiers:
        if x != identifier:
            num = num * x % N
            den = den * (x - identifier) % N
    return num * pow(den, -1, N) % N


def lagrange_coefficients(identifiers: Sequence[int]) -> dict[int, int]:
    """All lambda_i over a signer set with a single modular inversion.

    lambda_i = X / (x_i * d_i) with X = prod x_j and d_i = prod_{j != i} (x_j - x_i); the
    d_i need O(t^2) multiplications of small ints, the inversions are batched.
    """
    ids = list(identifiers)
    if len(set(ids)) != len(ids):
        raise InvalidSigningPackage("duplicate identifier in signer set")
    total = 1
    for x in ids:
        total = total * x % N
    dens = []
    for xi in ids:
        d = xi
        for xj in ids:
            if xj != xi:
                d = d * (xj - xi) % N
        dens.append(d)
    return {xi: total * inv % N for xi, inv in zip(ids, batch_invert(dens), strict=True)}


# -- key packages ---------------------------------------------------------------------
@dataclass(frozen=True)
class ChainKey:
    """The group key as the on-chain verifier wants it."""

    x: int
    parity: int
    compressed: bytes


def group_key_is_chain_compatible(group_key: Point) -> bool:
    """True when Px < n, so that Px is a valid ecrecover ``r`` for the on-chain check."""
    return not group_key.is_identity and group_key.x < N


def chain_key(group_key: Point) -> ChainKey:
    """(x, parity, compressed) of the group key; raises if Px >= n."""
    if not group_key_is_chain_compatible(group_key):
        raise ChainIncompatibleKey("group key x-coordinate is >= n (or the key is the identity)")
    return ChainKey(x=group_key.x, parity=group_key.parity, compressed=group_key.encode())


@dataclass(frozen=True)
class KeyPackage:
    """One participant's long-lived signing material. ``signing_share`` is secret."""

    identifier: int
    signing_share: int = field(repr=False)
    verifying_share: Point
    group_key: Point
    threshold: int

    def __post_init__(self) -> None:
        check_identifier(self.identifier)
        if not 0 < self.signing_share < N:
            raise InvalidScalar("signing share must be in [1, n)")
        if self.group_key.is_identity or self.verifying_share.is_identity:
            raise InvalidElement("group key and verifying share must not be the identity")
        if base_mul(self.signing_share) != self.verifying_share:
            raise FrostError("verifying share does not match the signing share")
        if self.threshold < 2:
            raise FrostError("threshold must be at least 2")


@dataclass(frozen=True)
class PublicKeyPackage:
    """Public data of a committee: group key, every verification share, the threshold."""

    group_key: Point
    verifying_shares: Mapping[int, Point]
    threshold: int

    def __post_init__(self) -> None:
        if self.group_key.is_identity:
            raise InvalidElement("group key must not be the identity")
        shares = dict(self.verifying_shares)
        for i, share in shares.items():
            check_identifier(i)
            if share.is_identity:
                raise InvalidElement(f"verifying share of {i} is the identity")
        check_threshold(self.threshold, len(shares))
        object.__setattr__(self, "verifying_shares", MappingProxyType(shares))

    @property
    def max_signers(self) -> int:
        return len(self.verifying_shares)

    @property
    def chain_key(self) -> ChainKey:
        return chain_key(self.group_key)


@dataclass(frozen=True)
class SecretShare:
    """What a trusted dealer sends to one participant: its share and the VSS commitment."""

    identifier: int
    signing_share: int = field(repr=False)
    commitment: VssCommitment

    def verify(self) -> KeyPackage:
        """RFC ``vss_verify`` then build the participant's :class:`KeyPackage`."""
        check_identifier(self.identifier)
        if not 0 < self.signing_share < N:
            raise InvalidScalar("signing share must be in [1, n)")
        verifying_share = base_mul(self.signing_share)
        if verifying_share != evaluate_commitment(self.commitment, self.identifier):
            raise FrostError(f"share of {self.identifier} does not match the VSS commitment")
        return KeyPackage(
            identifier=self.identifier,
            signing_share=self.signing_share,
            verifying_share=verifying_share,
            group_key=self.commitment[0],
            threshold=len(self.commitment),
        )


@dataclass(frozen=True)
class DealerOutput:
    secret_shares: Mapping[int, SecretShare]
    key_packages: Mapping[int, KeyPackage]
    public_key_package: PublicKeyPackage
    commitment: VssCommitment


def split_secret(
    secret: int,
    max_signers: int,
    min_signers: int,
    *,
    rng: Rng | None = None,
    coefficients: Sequence[int] | None = None,
) -> DealerOutput:
    """RFC ``trusted_dealer_keygen`` for a given secret: shares for identifiers 1..max_signers.

    The non-constant ``coefficients`` come from ``rng`` unless given (test vectors). This
    does not check chain compatibility: a given secret is what it is.
    """
    check_threshold(min_signers, max_signers)
    if not 0 < secret < N:
        raise InvalidScalar("secret must be in [1, n)")
    if coefficients is None:
        if rng is None:
            raise FrostError("split_secret needs rng or coefficients")
        coefficients = [random_scalar(rng) for _ in range(min_signers - 1)]
    if len(coefficients) != min_signers - 1:
        raise FrostError("need exactly min_signers - 1 coefficients")
    coeffs = [secret, *coefficients]
    commitment = vss_commit(coeffs)
    group_key = commitment[0]
    secret_shares: dict[int, SecretShare] = {}
    key_packages: dict[int, KeyPackage] = {}
    verifying: dict[int, Point] = {}
    for i in range(1, max_signers + 1):
        share = polynomial_evaluate(i, coeffs)
        if share == 0:
            # Probability 2^-256 per share; a zero share cannot sign, so refuse loudly.
            raise FrostError("degenerate polynomial: zero share")
        secret_shares[i] = SecretShare(i, share, commitment)
        verifying[i] = base_mul(share)
        key_packages[i] = KeyPackage(i, share, verifying[i], group_key, min_signers)
    return DealerOutput(
        secret_shares=MappingProxyType(secret_shares),
        key_packages=MappingProxyType(key_packages),
        public_key_package=PublicKeyPackage(group_key, verifying, min_signers),
        commitment=commitment,
    )


def trusted_dealer_keygen(max_signers: int, min_signers: int, rng: Rng) -> DealerOutput:
    """Fresh t-of-n keys from a trusted dealer, with a chain-compatible group key (Px < n)."""
    check_threshold(min_signers, max_signers)
    while True:
        secret = random_scalar(rng)
        if group_key_is_chain_compatible(base_mul(secret)):
            return split_secret(secret, max_signers, min_signers, rng=rng)


def reconstruct_secret(shares: Mapping[int, int]) -> int:
    """Interpolate the group secret from >= t shares (tests and recovery only)."""
    lambdas = lagrange_coefficients(list(shares))
    return sum(lambdas[i] * s for i, s in shares.items()) % N


# -- refresh ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RefreshPackage:
    """Shares of a zero-constant polynomial g (g(0) = 0) and its commitment.

    ``commitment`` holds g_1*G .. g_{t-1}*G (the constant term's commitment is the identity
    and is left out). ``deltas[i]`` = g(i) is secret and goes to participant i only.
    """

    deltas: Mapping[int, int] = field(repr=False)
    commitment: VssCommitment


def refresh_deltas(identifiers: Sequence[int], threshold: int, rng: Rng) -> RefreshPackage:
    """One refresh contribution (from a dealer, or from each participant of a committee)."""
    check_threshold(threshold, len(identifiers))
    coeffs = [0, *(random_scalar(rng) for _ in range(threshold - 1))]
    return RefreshPackage(
        deltas=MappingProxyType(
            {check_identifier(i): polynomial_evaluate(i, coeffs) for i in identifiers}
        ),
        commitment=vss_commit(coeffs[1:]),
    )


def _refresh_image(commitment: Sequence[Point], identifier: int) -> Point:
    """g(i)*G for a zero-constant polynomial committed without its constant term."""
    power = 1
    terms = []
    for c in commitment:
        power = power * identifier % N
        terms.append(c * power)
    return point_sum(terms)


def refresh_key_package(
    key_package: KeyPackage,
    deltas: Mapping[int, int],
    commitments: Mapping[int, VssCommitment],
) -> KeyPackage:
    """New key package = old share + the sum of verified refresh deltas.

    ``deltas[c]`` and ``commitments[c]`` are contributor c's delta for us and its public
    commitment; a delta that does not match its commitment names c as the culprit.
    """
    if set(deltas) != set(commitments):
        raise FrostError("every refresh delta needs its contributor's commitment")
    new_share = key_package.signing_share
    for contributor, delta in deltas.items():
        commitment = commitments[contributor]
        if len(commitment) != key_package.threshold - 1:
            raise DkgPeerMisbehaviour(
                "refresh commitment has the wrong degree", culprit=contributor, evidence=commitment
            )
        if base_mul(delta) != _refresh_image(commitment, key_package.identifier):
            raise DkgPeerMisbehaviour(
                "refresh delta does not match its commitment",
                culprit=contributor,
                evidence=commitment,
            )
        new_share = (new_share + delta) % N
    return KeyPackage(
        identifier=key_package.identifier,
        signing_share=new_share,
        verifying_share=base_mul(new_share),
        group_key=key_package.group_key,
        threshold=key_package.threshold,
    )


def refresh_public_key_package(
    public: PublicKeyPackage, commitments: Iterable[VssCommitment]
) -> PublicKeyPackage:
    """Verification shares after a refresh; the group key is unchanged by construction."""
    commitment_list = list(commitments)
    for c in commitment_list:
        if len(c) != public.threshold - 1:
            raise FrostError("refresh commitment has the wrong degree")
    total = sum_commitments(commitment_list) if commitment_list else ()
    shares = {
        i: point_sum((y, _refresh_image(total, i))) for i, y in public.verifying_shares.items()
    }
    return PublicKeyPackage(public.group_key, shares, public.threshold)
