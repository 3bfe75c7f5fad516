"""Pedersen DKG with proofs of knowledge, as a sans-io state machine per participant.

Semantics follow ZcashFoundation ``frost-core`` ``keys::dkg`` (part1/part2/part3), so its
test vectors check here (see :mod:`aggregation.frost.vectors`):

- round 1: participant i draws a_i0..a_i(t-1), broadcasts the commitment
  C_i = (a_i0*G, ..., a_i(t-1)*G) and a proof of knowledge of a_i0:
  k random, R = k*G, c = HDKG(SerializeScalar(i) || C_i0 || R), mu = k + a_i0*c;
- round 2: after checking every peer's proof, i sends f_i(j) to each peer j;
- finish: i checks every received f_j(i) against C_j, then s_i = sum_j f_j(i); the group
  key is sum_j C_j0 and every verification share follows from the summed commitments.

XON additions: round-1 packages carry the session id and an ephemeral secp256k1 key, and
round-2 shares travel encrypted to their recipient (ECDH + HKDF-SHA256 bound to session,
sender, recipient and both keys, then ChaCha20-Poly1305). The transport signs every message
and runs round 1 over an echo broadcast, so a package's sender is authentic and no one can
show different round-1 packages to different peers.

States and allowed moves are the :data:`TRANSITIONS` table; an illegal move raises
:class:`DkgStateError` and leaves the state unchanged. A peer's bad proof, bad or
undecryptable share, or two different packages for one round raise
:class:`DkgPeerMisbehaviour` naming it, and the participant ends in ``FAILED`` (the caller
starts a new session without the culprit).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from coincurve import PrivateKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aggregation.frost.ciphersuite import hdkg
from aggregation.frost.errors import (
    ChainIncompatibleKey,
    DkgError,
    DkgPeerMisbehaviour,
    DkgStateError,
    FrostError,
    InvalidElement,
    InvalidScalar,
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
    VssCommitment,
    derive_verifying_shares,
    evaluate_commitment,
    group_key_is_chain_compatible,
    polynomial_evaluate,
    random_scalar,
    sum_commitments,
    vss_commit,
)
from aggregation.frost.signing import SIGNATURE_SIZE, Signature

_KDF_INFO: Final = b"XON-FROST-DKG-v1 round2 share"
_AEAD_NONCE: Final = bytes(12)  # each key encrypts exactly one share
_MIN_SESSION_ID: Final = 16


# -- proof of knowledge (ZF frost-core compatible) -----------------------------------------
def dkg_challenge(identifier: int, verifying_key: Point, R: Point) -> int:
    return hdkg(encode_scalar(identifier) + verifying_key.encode() + R.encode())


def compute_proof_of_knowledge(identifier: int, coefficients: Sequence[int], rng: Rng) -> Signature:
    """Schnorr proof of knowledge of ``coefficients[0]`` bound to ``identifier``."""
    k = random_scalar(rng)
    R = base_mul(k)
    c = dkg_challenge(identifier, base_mul(coefficients[0]), R)
    return Signature(R, (k + coefficients[0] * c) % N)


def verify_proof_of_knowledge(
    identifier: int, commitment: Sequence[Point], proof: Signature
) -> bool:
    """``R == mu*G - c*C_0`` with ``c = HDKG(id || C_0 || R)``."""
    c = dkg_challenge(identifier, commitment[0], proof.R)
    return base_mul(proof.z) == point_sum((proof.R, commitment[0] * c))


# -- messages -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DkgConfig:
    """What every participant of one DKG run agrees on beforehand."""

    session_id: bytes
    threshold: int
    participants: tuple[int, ...]

    def __post_init__(self) -> None:
        if not _MIN_SESSION_ID <= len(self.session_id) <= 255:
            raise DkgError("session id must be 16 to 255 bytes")
        ids = tuple(sorted(check_identifier(i) for i in self.participants))
        if len(set(ids)) != len(ids):
            raise DkgError("duplicate participant")
        if not 2 <= self.threshold <= len(ids):
            raise DkgError("need 2 <= threshold <= number of participants")
        object.__setattr__(self, "participants", ids)


@dataclass(frozen=True)
class Round1Package:
    """Broadcast by each participant in round 1."""

    sender: int
    session_id: bytes
    commitment: VssCommitment
    proof_of_knowledge: Signature
    encryption_key: Point

    def __post_init__(self) -> None:
        check_identifier(self.sender)
        if not self.commitment or any(c.is_identity for c in self.commitment):
            raise InvalidElement("commitment must be non-empty and free of the identity")
        if self.encryption_key.is_identity:
            raise InvalidElement("encryption key must not be the identity")

    def encode(self) -> bytes:
        """sender (32) | len(session) (1) | session | t (2) | t x 33 | proof (65) | key (33)"""
        return b"".join(
            (
                encode_scalar(self.sender),
                _short_bytes(self.session_id),
                len(self.commitment).to_bytes(2, "big"),
                *(c.encode() for c in self.commitment),
                self.proof_of_knowledge.encode(),
                self.encryption_key.encode(),
            )
        )

    @staticmethod
    def decode(data: bytes) -> Round1Package:
        reader = _Reader(data)
        sender = decode_scalar(reader.take(SCALAR_SIZE), nonzero=True)
        session_id = reader.take(reader.take(1)[0])
        count = int.from_bytes(reader.take(2), "big")
        commitment = tuple(Point.decode(reader.take(ELEMENT_SIZE)) for _ in range(count))
        proof = Signature.decode(reader.take(SIGNATURE_SIZE))
        key = Point.decode(reader.take(ELEMENT_SIZE))
        reader.finish()
        return Round1Package(sender, session_id, commitment, proof, key)


@dataclass(frozen=True)
class Round2Package:
    """One encrypted secret share, from ``sender`` to ``recipient`` only."""

    sender: int
    recipient: int
    session_id: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        check_identifier(self.sender)
        check_identifier(self.recipient)

    def encode(self) -> bytes:
        """sender (32) | recipient (32) | len(session) (1) | session | ciphertext"""
        return (
            encode_scalar(self.sender)
            + encode_scalar(self.recipient)
            + _short_bytes(self.session_id)
            + self.ciphertext
        )

    @staticmethod
    def decode(data: bytes) -> Round2Package:
        reader = _Reader(data)
        sender = decode_scalar(reader.take(SCALAR_SIZE), nonzero=True)
        recipient = decode_scalar(reader.take(SCALAR_SIZE), nonzero=True)
        session_id = reader.take(reader.take(1)[0])
        return Round2Package(sender, recipient, session_id, reader.rest())


def _short_bytes(data: bytes) -> bytes:
    if len(data) > 255:
        raise DkgError("session id longer than 255 bytes")
    return bytes((len(data),)) + data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise DkgError("truncated DKG package")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise DkgError("trailing bytes after DKG package")


@dataclass(frozen=True)
class DkgOutput:
    key_package: KeyPackage
    public_key_package: PublicKeyPackage


def check_dkg_share(identifier: int, sender: int, share: int, commitment: VssCommitment) -> None:
    """Raise :class:`DkgPeerMisbehaviour` naming ``sender`` unless ``share*G`` matches
    ``sender``'s commitment evaluated at our identifier."""
    if base_mul(share) != evaluate_commitment(commitment, identifier):
        raise DkgPeerMisbehaviour(
            f"secret share from {sender} does not match its commitment",
            culprit=sender,
            evidence={"share": encode_scalar(share).hex()},
        )


def finalize_dkg(
    identifier: int,
    threshold: int,
    own_share: int,
    commitments: Mapping[int, VssCommitment],
    received_shares: Mapping[int, int],
) -> DkgOutput:
    """ZF ``part3``: check every received share against its sender's commitment, then sum.

    ``commitments`` holds every participant's commitment, ours included.
    """
    for sender, share in received_shares.items():
        check_dkg_share(identifier, sender, share, commitments[sender])
    return _combine(identifier, threshold, own_share, commitments, received_shares)


def _combine(
    identifier: int,
    threshold: int,
    own_share: int,
    commitments: Mapping[int, VssCommitment],
    received_shares: Mapping[int, int],
) -> DkgOutput:
    signing_share = (own_share + sum(received_shares.values())) % N
    ids = sorted(commitments)
    total = sum_commitments(commitments[i] for i in ids)
    verifying = derive_verifying_shares(total, ids)
    public = PublicKeyPackage(total[0], verifying, threshold)
    key_package = KeyPackage(
        identifier=identifier,
        signing_share=signing_share,
        verifying_share=verifying[identifier],
        group_key=total[0],
        threshold=threshold,
    )
    return DkgOutput(key_package, public)


# -- the state machine ------------------------------------------------------------------------
class DkgState(enum.Enum):
    NEW = "new"  # created; may already receive early round-1/round-2 packages
    ROUND1 = "round1"  # our round-1 package is out; collecting peers' round-1 packages
    ROUND2 = "round2"  # our shares are out; collecting peers' shares
    DONE = "done"  # key material available
    FAILED = "failed"  # a peer misbehaved (or the key is unusable); start a new session


class DkgEvent(enum.Enum):
    START_ROUND1 = "start_round1"
    RECEIVE_ROUND1 = "receive_round1"
    RECEIVE_ROUND2 = "receive_round2"
    START_ROUND2 = "start_round2"
    FINISH = "finish"
    FAIL = "fail"


_S = DkgState
_E = DkgEvent
#: Every allowed (state, event) -> next state. Anything else is a local protocol error.
TRANSITIONS: Final[Mapping[tuple[DkgState, DkgEvent], DkgState]] = MappingProxyType(
    {
        (_S.NEW, _E.START_ROUND1): _S.ROUND1,
        (_S.NEW, _E.RECEIVE_ROUND1): _S.NEW,
        (_S.NEW, _E.RECEIVE_ROUND2): _S.NEW,
        (_S.NEW, _E.FAIL): _S.FAILED,
        (_S.ROUND1, _E.RECEIVE_ROUND1): _S.ROUND1,
        (_S.ROUND1, _E.RECEIVE_ROUND2): _S.ROUND1,
        (_S.ROUND1, _E.START_ROUND2): _S.ROUND2,
        (_S.ROUND1, _E.FAIL): _S.FAILED,
        (_S.ROUND2, _E.RECEIVE_ROUND1): _S.ROUND2,
        (_S.ROUND2, _E.RECEIVE_ROUND2): _S.ROUND2,
        (_S.ROUND2, _E.FINISH): _S.DONE,
        (_S.ROUND2, _E.FAIL): _S.FAILED,
    }
)


@dataclass
class _Secrets:
    coefficients: list[int] = field(repr=False)
    encryption_secret: int = field(repr=False)


class DkgParticipant:
    """One participant's side of a DKG run. Pure: packages in, packages out."""

    def __init__(self, config: DkgConfig, identifier: int) -> None:
        if identifier not in config.participants:
            raise DkgError(f"{identifier} is not a participant of this session")
        self.config = config
        self.identifier = identifier
        self._state = DkgState.NEW
        self._secrets: _Secrets | None = None
        self._own_package: Round1Package | None = None
        self._own_share = 0
        self._round1: dict[int, Round1Package] = {}
        self._round2_raw: dict[int, Round2Package] = {}
        self._shares: dict[int, int] = {}
        self._output: DkgOutput | None = None

    # -- state handling --------------------------------------------------------------------
    @property
    def state(self) -> DkgState:
        return self._state

    def _next(self, event: DkgEvent) -> DkgState:
        try:
            return TRANSITIONS[(self._state, event)]
        except KeyError:
            raise DkgStateError(
                f"illegal DKG move {event.value} in state {self._state.value}"
            ) from None

    def _fail(self, error: FrostError) -> FrostError:
        self._state = self._next(DkgEvent.FAIL)
        self._secrets = None
        self._own_share = 0
        self._shares.clear()
        return error

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(i for i in self.config.participants if i != self.identifier)

    @property
    def ready_for_round2(self) -> bool:
        return self._state is DkgState.ROUND1 and len(self._round1) == len(self.peers)

    @property
    def output(self) -> DkgOutput:
        if self._state is not DkgState.DONE or self._output is None:
            raise DkgStateError(f"no DKG output in state {self._state.value}")
        return self._output

    # -- round 1 ---------------------------------------------------------------------------
    def round1(self, rng: Rng) -> Round1Package:
        """Draw our polynomial and encryption key; return the package to broadcast."""
        new_state = self._next(DkgEvent.START_ROUND1)
        coefficients = [random_scalar(rng) for _ in range(self.config.threshold)]
        commitment = vss_commit(coefficients)
        proof = compute_proof_of_knowledge(self.identifier, coefficients, rng)
        encryption_secret = random_scalar(rng)
        package = Round1Package(
            sender=self.identifier,
            session_id=self.config.session_id,
            commitment=commitment,
            proof_of_knowledge=proof,
            encryption_key=base_mul(encryption_secret),
        )
        self._secrets = _Secrets(coefficients, encryption_secret)
        self._own_package = package
        self._state = new_state
        return package

    def receive(self, package: Round1Package | Round2Package) -> None:
        """Take one peer package. Raises :class:`DkgPeerMisbehaviour` naming a cheater."""
        if isinstance(package, Round1Package):
            new_state = self._next(DkgEvent.RECEIVE_ROUND1)
            self._check_routing(package.sender, package.session_id)
            self._receive_round1(package)
            self._state = new_state
        else:
            new_state = self._next(DkgEvent.RECEIVE_ROUND2)
            self._check_routing(package.sender, package.session_id)
            if package.recipient != self.identifier:
                raise DkgError(f"share for {package.recipient} delivered to {self.identifier}")
            self._receive_round2(package)
            self._state = new_state
            self._maybe_finish()

    def _check_routing(self, sender: int, session_id: bytes) -> None:
        if session_id != self.config.session_id:
            raise DkgError("package belongs to another DKG session")
        if sender not in self.peers:
            raise DkgError(f"{sender} is not a peer in this session")

    def _receive_round1(self, package: Round1Package) -> None:
        known = self._round1.get(package.sender)
        if known is not None:
            if known == package:
                return  # a harmless duplicate
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"participant {package.sender} sent two different round-1 packages",
                    culprit=package.sender,
                    evidence=(known, package),
                )
            )
        if len(package.commitment) != self.config.threshold:
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"participant {package.sender} committed to a polynomial of wrong degree",
                    culprit=package.sender,
                    evidence=package,
                )
            )
        if not verify_proof_of_knowledge(
            package.sender, package.commitment, package.proof_of_knowledge
        ):
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"invalid proof of knowledge from participant {package.sender}",
                    culprit=package.sender,
                    evidence=package,
                )
            )
        self._round1[package.sender] = package

    def _receive_round2(self, package: Round2Package) -> None:
        known = self._round2_raw.get(package.sender)
        if known is not None:
            if known == package:
                return
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"participant {package.sender} sent two different shares",
                    culprit=package.sender,
                    evidence=(known, package),
                )
            )
        self._round2_raw[package.sender] = package
        if self._state is DkgState.ROUND2:
            self._open_share(package)
        # Before round 2 the share waits: we need every round-1 package first.

    # -- round 2 ---------------------------------------------------------------------------
    def round2(self) -> dict[int, Round2Package]:
        """Encrypt f_i(j) to every peer j; returns the packages keyed by recipient."""
        new_state = self._next(DkgEvent.START_ROUND2)
        if not self.ready_for_round2:
            raise DkgStateError("round 2 needs every peer's round-1 package")
        assert self._secrets is not None and self._own_package is not None
        coefficients = self._secrets.coefficients
        out: dict[int, Round2Package] = {}
        for peer in self.peers:
            share = polynomial_evaluate(peer, coefficients)
            key = self._pair_key(sender=self.identifier, recipient=peer)
            out[peer] = Round2Package(
                sender=self.identifier,
                recipient=peer,
                session_id=self.config.session_id,
                ciphertext=ChaCha20Poly1305(key).encrypt(
                    _AEAD_NONCE, encode_scalar(share), self._aad(self.identifier, peer)
                ),
            )
        self._own_share = polynomial_evaluate(self.identifier, coefficients)
        # The polynomial is no longer needed: forget it (the ECDH secret stays for decryption).
        self._secrets.coefficients = []
        self._state = new_state
        for package in list(self._round2_raw.values()):
            self._open_share(package)
        self._maybe_finish()
        return out

    def _aad(self, sender: int, recipient: int) -> bytes:
        return self.config.session_id + encode_scalar(sender) + encode_scalar(recipient)

    def _pair_key(self, *, sender: int, recipient: int) -> bytes:
        assert self._secrets is not None and self._own_package is not None
        peer = recipient if sender == self.identifier else sender
        peer_key = self._round1[peer].encryption_key
        keys = {self.identifier: self._own_package.encryption_key, peer: peer_key}
        shared = PrivateKey(encode_scalar(self._secrets.encryption_secret)).ecdh(peer_key.encode())
        info = (
            _KDF_INFO
            + encode_scalar(sender)
            + encode_scalar(recipient)
            + keys[sender].encode()
            + keys[recipient].encode()
        )
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=self.config.session_id, info=info
        ).derive(shared)

    def _open_share(self, package: Round2Package) -> None:
        sender = package.sender
        if sender in self._shares:
            return
        key = self._pair_key(sender=sender, recipient=self.identifier)
        try:
            plain = ChaCha20Poly1305(key).decrypt(
                _AEAD_NONCE, package.ciphertext, self._aad(sender, self.identifier)
            )
        except InvalidTag:
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"share from {sender} does not decrypt",
                    culprit=sender,
                    evidence=package,
                )
            ) from None
        try:
            share = decode_scalar(plain)
            check_dkg_share(self.identifier, sender, share, self._round1[sender].commitment)
        except (InvalidScalar, DkgPeerMisbehaviour):
            raise self._fail(
                DkgPeerMisbehaviour(
                    f"secret share from {sender} does not match its commitment",
                    culprit=sender,
                    evidence={"package": package, "share": plain.hex()},
                )
            ) from None
        self._shares[sender] = share

    def _maybe_finish(self) -> None:
        if self._state is not DkgState.ROUND2 or len(self._shares) != len(self.peers):
            return
        new_state = self._next(DkgEvent.FINISH)
        assert self._own_package is not None
        commitments = {i: p.commitment for i, p in self._round1.items()}
        commitments[self.identifier] = self._own_package.commitment
        # Every share was checked on arrival (_open_share), so combine without re-checking.
        output = _combine(
            self.identifier, self.config.threshold, self._own_share, commitments, self._shares
        )
        if not group_key_is_chain_compatible(output.public_key_package.group_key):
            raise self._fail(
                ChainIncompatibleKey("DKG produced a group key with x >= n; run a new session")
            )
        self._secrets = None
        self._own_share = 0
        self._shares.clear()
        self._output = output
        self._state = new_state
