"""The root of XON's exception tree, shared by every package.

``aggregation`` imports nothing of ours, so the root lives here and every other
package derives its own branch from it::

    XonError
    ├── LocalProtocolError      we misused our own state machine (a bug on our side)
    ├── PeerMisbehaviour        a peer sent something provably wrong; carries who and what
    ├── CryptoError             malformed or out-of-range keys, points, scalars, signatures
    │   └── (aggregation.frost) FrostError, InvalidShare, NonceReuseError, DkgError ...
    ├── EncodingError           a report or message that does not decode
    ├── (feeds)                 FeedError → SourceError, ConfigError ...
    ├── (contracts)             ContractsError → ArtifactError, DeployError ...
    └── (oracle)                ProtocolError, TransportError, ChainError, KeystoreError ...
"""

from __future__ import annotations

from typing import Any


class XonError(Exception):
    """Root of every error XON raises on purpose."""


class LocalProtocolError(XonError):
    """We drove one of our own state machines into an illegal move: a bug on our side."""


class PeerMisbehaviour(XonError):
    """A peer sent something provably wrong.

    ``culprit`` names the peer (a participant identifier or node id) and ``evidence``
    holds what it sent, so the fault can be counted, logged and later slashed.
    """

    def __init__(self, message: str, *, culprit: Any, evidence: Any = None) -> None:
        super().__init__(message)
        self.culprit = culprit
        self.evidence = evidence


class CryptoError(XonError):
    """A key, point, scalar or signature is malformed or out of range."""


class EncodingError(XonError):
    """Bytes that do not decode to the structure they claim to be."""
