"""Errors raised by the oracle package (the node).

Other oracle modules add their own subclasses next to the code that raises them; this
module holds the branch roots so every one of them derives from one place::

    XonError (aggregation.errors)
    └── OracleError
        ├── TransportError           the message transport failed or was misused
        │   ├── FrameTooLarge        an outgoing frame exceeds the size cap (carries sizes)
        │   ├── ReadOnlyTransport    publish on a transport that holds no identity key
        │   └── TransportClosed      receive/publish on a transport that is not running
        ├── ProtocolError            the consensus protocol (oracle/protocol) refused a move
        ├── StoreError               the node's persistent store failed
        ├── KeystoreError            a key file is missing, malformed or its passphrase wrong
        └── ChainError               the EVM chain client failed (RPC, tx, receipt)

Library errors (aiomqtt, web3, sqlite) are translated into these at the adapter edge and
never leak upward. A *peer's* fault is not one of these: that is
``aggregation.errors.PeerMisbehaviour``, which carries the culprit and the evidence.
"""

from __future__ import annotations

from aggregation.errors import XonError


class OracleError(XonError):
    """Root of the oracle package's errors."""


class TransportError(OracleError):
    """The message transport failed (broker unreachable, publish not acknowledged) or was
    used wrongly. ``topic`` names the topic involved, when there is one."""

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        super().__init__(message)
        self.topic = topic


class FrameTooLarge(TransportError):
    """An outgoing frame is larger than the transport's size cap; nothing was sent."""

    def __init__(self, size: int, limit: int, *, topic: str | None = None) -> None:
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte cap", topic=topic)
        self.size = size
        self.limit = limit


class ReadOnlyTransport(TransportError):
    """Publish was called on a transport that has no identity key (a pure subscriber)."""


class TransportClosed(TransportError):
    """The transport is not running (not entered yet, or already closed)."""


class ProtocolError(OracleError):
    """The consensus protocol refused a move or a message."""


class StoreError(OracleError):
    """The node's persistent store failed."""


class KeystoreError(OracleError):
    """A key file is missing or malformed, or its passphrase is wrong."""


class ChainError(OracleError):
    """The EVM chain client failed: RPC error, rejected or reverted transaction."""
