"""FROST errors, all under :class:`aggregation.errors.CryptoError` (see the tree there).

::

    CryptoError
    └── FrostError
        ├── InvalidElement          not a valid SEC1 compressed point, or the identity
        ├── InvalidScalar           zero where the RFC forbids it, or >= n
        ├── InvalidSigningPackage   commitments that do not fit together (our coordinator's data)
        ├── ChainIncompatibleKey    group key with x >= n (the on-chain verifier cannot use it)
        ├── NonceReuseError         (also a LocalProtocolError) a SigningNonces used twice
        ├── InvalidSignatureShare   (also a PeerMisbehaviour) a signer sent a bad share
        └── DkgError
            ├── DkgStateError       (also a LocalProtocolError) illegal move of the DKG machine
            └── DkgPeerMisbehaviour (also a PeerMisbehaviour) bad proof, bad share, equivocation
"""

from __future__ import annotations

from typing import Any

from aggregation.errors import CryptoError, LocalProtocolError, PeerMisbehaviour


class FrostError(CryptoError):
    """Root of every error raised by :mod:`aggregation.frost`."""


class InvalidElement(FrostError):
    """Bytes that are not a valid, non-identity secp256k1 point (or a point that must not be
    the identity)."""


class InvalidScalar(FrostError):
    """A scalar that is >= the group order n, or zero where zero is forbidden."""


class InvalidSigningPackage(FrostError):
    """A signing package that is inconsistent (duplicate or missing signers, a commitment
    that does not match our nonces, too few signers)."""


class ChainIncompatibleKey(FrostError):
    """A group key whose x-coordinate is >= n: the on-chain verifier feeds Px to ecrecover as
    the ``r`` value, which must be < n, so such a key can never be verified on-chain."""


class NonceReuseError(FrostError, LocalProtocolError):
    """A :class:`SigningNonces` object was used a second time (or copied)."""


class InvalidSignatureShare(FrostError, PeerMisbehaviour):
    """One or more signers sent a signature share that fails verification.

    ``culprit`` is the lowest offending identifier, ``culprits`` all of them.
    """

    def __init__(self, message: str, *, culprits: tuple[int, ...], evidence: Any = None) -> None:
        super().__init__(message, culprit=culprits[0], evidence=evidence)
        self.culprits = culprits


class DkgError(FrostError):
    """A distributed key generation run failed."""


class DkgStateError(DkgError, LocalProtocolError):
    """We drove a DKG participant into an illegal move; its state is unchanged."""


class DkgPeerMisbehaviour(DkgError, PeerMisbehaviour):
    """A DKG peer sent a bad proof of knowledge, a bad or undecryptable share, or two
    different packages for the same round. ``culprit`` is its identifier."""
