"""FROST(secp256k1, SHA-256) threshold Schnorr signatures (RFC 9591), pure Python on coincurve.

Bit-exact with the RFC 9591 test vectors and ZcashFoundation ``frost-secp256k1`` (check any
vector file with ``python -m aggregation.frost.vectors FILE...``). Identifiers are ints
``1..n``; randomness is always passed in as ``rng(nbytes) -> bytes`` (use
``secrets.token_bytes`` at the edge). See docs/crypto.md.

Keys::

    dealer = trusted_dealer_keygen(max_signers=7, min_signers=5, rng=secrets.token_bytes)
    dealer.key_packages[i]                  # KeyPackage for participant i (secret)
    dealer.public_key_package.chain_key     # ChainKey(x, parity, compressed), Px < n

Signing (each signer i; the coordinator collects and aggregates)::

    nonces, commitments = commit(key_package, rng)          # round 1, nonces stay in memory
    package = SigningPackage((commitments_1, ...), message)  # coordinator's choice of signers
    share = sign(package, nonces, key_package)               # round 2, consumes the nonces
    signature = aggregate(package, shares, public_key_package)  # raises InvalidSignatureShare
    verify(group_key, message, signature)                    # -> bool
    signature.encode()                                       # R (33) || z (32)

or all at once in one process: ``sign_with_committee(key_packages, public, signers, msg, rng)``.

DKG: one :class:`DkgParticipant` per member (``round1`` -> ``receive`` -> ``round2`` ->
``receive`` -> ``output``). Refresh: :func:`refresh_deltas`, :func:`refresh_key_package`,
:func:`refresh_public_key_package`.
"""

from aggregation.frost.dkg import (
    TRANSITIONS as DKG_TRANSITIONS,
)
from aggregation.frost.dkg import (
    DkgConfig,
    DkgEvent,
    DkgOutput,
    DkgParticipant,
    DkgState,
    Round1Package,
    Round2Package,
)
from aggregation.frost.errors import (
    ChainIncompatibleKey,
    DkgError,
    DkgPeerMisbehaviour,
    DkgStateError,
    FrostError,
    InvalidElement,
    InvalidScalar,
    InvalidSignatureShare,
    InvalidSigningPackage,
    NonceReuseError,
)
from aggregation.frost.group import N, Point, base_mul, decode_scalar, encode_scalar
from aggregation.frost.keys import (
    ChainKey,
    DealerOutput,
    KeyPackage,
    PublicKeyPackage,
    RefreshPackage,
    Rng,
    SecretShare,
    chain_key,
    group_key_is_chain_compatible,
    refresh_deltas,
    refresh_key_package,
    refresh_public_key_package,
    split_secret,
    trusted_dealer_keygen,
)
from aggregation.frost.signing import (
    Signature,
    SignatureShare,
    SigningCommitments,
    SigningContext,
    SigningNonces,
    SigningPackage,
    aggregate,
    commit,
    sign,
    sign_with_committee,
    verify,
    verify_signature_share,
)

__all__ = [
    "DKG_TRANSITIONS",
    "ChainIncompatibleKey",
    "ChainKey",
    "DealerOutput",
    "DkgConfig",
    "DkgError",
    "DkgEvent",
    "DkgOutput",
    "DkgParticipant",
    "DkgPeerMisbehaviour",
    "DkgState",
    "DkgStateError",
    "FrostError",
    "InvalidElement",
    "InvalidScalar",
    "InvalidSignatureShare",
    "InvalidSigningPackage",
    "KeyPackage",
    "N",
    "NonceReuseError",
    "Point",
    "PublicKeyPackage",
    "RefreshPackage",
    "Rng",
    "Round1Package",
    "Round2Package",
    "SecretShare",
    "Signature",
    "SignatureShare",
    "SigningCommitments",
    "SigningContext",
    "SigningNonces",
    "SigningPackage",
    "aggregate",
    "base_mul",
    "chain_key",
    "commit",
    "decode_scalar",
    "encode_scalar",
    "group_key_is_chain_compatible",
    "refresh_deltas",
    "refresh_key_package",
    "refresh_public_key_package",
    "sign",
    "sign_with_committee",
    "split_secret",
    "trusted_dealer_keygen",
    "verify",
    "verify_signature_share",
]
