"""Pedersen DKG state machine: happy path, illegal moves, and blame for each kind of cheat."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from aggregation.errors import CryptoError, LocalProtocolError, PeerMisbehaviour
from aggregation.frost import (
    DKG_TRANSITIONS,
    ChainIncompatibleKey,
    DkgConfig,
    DkgError,
    DkgEvent,
    DkgParticipant,
    DkgPeerMisbehaviour,
    DkgState,
    DkgStateError,
    InvalidElement,
    InvalidScalar,
    N,
    Point,
    Round1Package,
    Round2Package,
    Signature,
    base_mul,
    sign_with_committee,
    verify,
)
from aggregation.frost import dkg as dkg_module
from aggregation.frost.group import encode_scalar

SESSION = b"xon-dkg-test-session-0001"


def _state(participant: DkgParticipant) -> DkgState:
    # A call, so that mypy does not carry an earlier narrowing of .state across round2().
    return participant.state


def _setup(n: int, t: int, seed: int = 1) -> tuple[dict[int, DkgParticipant], random.Random]:
    config = DkgConfig(SESSION, t, tuple(range(1, n + 1)))
    return {i: DkgParticipant(config, i) for i in config.participants}, random.Random(seed)


def _round1(parts: dict[int, DkgParticipant], rnd: random.Random) -> dict[int, Round1Package]:
    return {i: p.round1(rnd.randbytes) for i, p in parts.items()}


def _broadcast(parts: dict[int, DkgParticipant], packages: dict[int, Round1Package]) -> None:
    for i, p in parts.items():
        for j, pkg in packages.items():
            if j != i:
                p.receive(pkg)


def _run(n: int, t: int, seed: int = 1) -> dict[int, DkgParticipant]:
    parts, rnd = _setup(n, t, seed)
    _broadcast(parts, _round1(parts, rnd))
    outgoing = {i: p.round2() for i, p in parts.items()}
    for sent in outgoing.values():
        for recipient, pkg in sent.items():
            parts[recipient].receive(pkg)
    return parts


def test_full_run_produces_a_working_group_key() -> None:
    parts = _run(5, 3)
    outputs = {i: p.output for i, p in parts.items()}
    public = outputs[1].public_key_package
    for i, out in outputs.items():
        assert parts[i].state is DkgState.DONE
        assert out.public_key_package == public
        assert out.key_package.group_key == public.group_key
        assert public.verifying_shares[i] == base_mul(out.key_package.signing_share)
        assert out.key_package.threshold == 3
    assert public.chain_key.x < N
    kps = {i: o.key_package for i, o in outputs.items()}
    rng = random.Random(2).randbytes
    for signers in ([1, 2, 3], [2, 4, 5], [1, 2, 3, 4, 5]):
        sig = sign_with_committee(kps, public, signers, b"dkg" * 10, rng)
        assert verify(public.group_key, b"dkg" * 10, sig)


def test_early_round2_packages_are_buffered() -> None:
    parts, rnd = _setup(3, 2)
    r1 = _round1(parts, rnd)
    _broadcast(parts, r1)
    # 1 and 2 move to round 2 first; 3 receives their shares while still in ROUND1.
    out1, out2 = parts[1].round2(), parts[2].round2()
    parts[3].receive(out1[3])
    parts[3].receive(out2[3])
    assert parts[3].state is DkgState.ROUND1
    out3 = parts[3].round2()
    assert _state(parts[3]) is DkgState.DONE
    parts[1].receive(out2[1])
    parts[1].receive(out3[1])
    parts[2].receive(out1[2])
    parts[2].receive(out3[2])
    keys = {p.output.public_key_package.group_key for p in parts.values()}
    assert len(keys) == 1


def test_identical_duplicates_are_ignored() -> None:
    parts, rnd = _setup(3, 2)
    r1 = _round1(parts, rnd)
    _broadcast(parts, r1)
    parts[1].receive(r1[2])
    outs = {i: p.round2() for i, p in parts.items()}
    parts[1].receive(outs[2][1])
    parts[1].receive(outs[2][1])
    parts[1].receive(outs[3][1])
    assert parts[1].state is DkgState.DONE


class TestIllegalMoves:
    def test_round2_before_round1(self) -> None:
        parts, _ = _setup(3, 2)
        with pytest.raises(DkgStateError) as err:
            parts[1].round2()
        assert isinstance(err.value, LocalProtocolError)
        assert parts[1].state is DkgState.NEW

    def test_round1_twice(self) -> None:
        parts, rnd = _setup(3, 2)
        parts[1].round1(rnd.randbytes)
        with pytest.raises(DkgStateError):
            parts[1].round1(rnd.randbytes)
        assert parts[1].state is DkgState.ROUND1

    def test_round2_without_all_round1_packages(self) -> None:
        parts, rnd = _setup(3, 2)
        r1 = _round1(parts, rnd)
        parts[1].receive(r1[2])
        assert not parts[1].ready_for_round2
        with pytest.raises(DkgStateError):
            parts[1].round2()
        assert parts[1].state is DkgState.ROUND1
        parts[1].receive(r1[3])
        assert parts[1].ready_for_round2

    def test_output_only_when_done_and_nothing_after(self) -> None:
        parts, _ = _setup(3, 2)
        with pytest.raises(DkgStateError):
            _ = parts[1].output
        done = _run(3, 2)
        with pytest.raises(DkgStateError):
            done[1].round2()
        assert done[1].state is DkgState.DONE

    def test_receive_after_done_is_refused(self) -> None:
        parts, rnd = _setup(3, 2)
        r1 = _round1(parts, rnd)
        _broadcast(parts, r1)
        outs = {i: p.round2() for i, p in parts.items()}
        for sent in outs.values():
            for recipient, pkg in sent.items():
                parts[recipient].receive(pkg)
        with pytest.raises(DkgStateError):
            parts[1].receive(r1[2])
        assert parts[1].state is DkgState.DONE

    def test_transition_table_is_the_only_authority(self) -> None:
        for state, event in itertools.product(DkgState, DkgEvent):
            allowed = (state, event) in DKG_TRANSITIONS
            if state in (DkgState.DONE, DkgState.FAILED):
                assert not allowed
        assert DKG_TRANSITIONS[(DkgState.ROUND1, DkgEvent.START_ROUND2)] is DkgState.ROUND2

    def test_misrouted_packages_do_not_fail_the_session(self) -> None:
        parts, rnd = _setup(3, 2)
        r1 = _round1(parts, rnd)
        with pytest.raises(DkgError):
            parts[1].receive(dataclasses.replace(r1[2], session_id=b"another-session-000"))
        with pytest.raises(DkgError):
            parts[1].receive(r1[1])  # our own package
        with pytest.raises(DkgError):
            parts[1].receive(dataclasses.replace(r1[2], sender=9))
        _broadcast(parts, r1)
        outs = {i: p.round2() for i, p in parts.items()}
        with pytest.raises(DkgError):
            parts[1].receive(outs[2][3])  # addressed to 3
        assert parts[1].state is DkgState.ROUND2

    def test_config_validation(self) -> None:
        with pytest.raises(DkgError):
            DkgConfig(b"short", 2, (1, 2, 3))
        with pytest.raises(DkgError):
            DkgConfig(SESSION, 2, (1, 2, 2))
        with pytest.raises(DkgError):
            DkgConfig(SESSION, 4, (1, 2, 3))
        with pytest.raises(DkgError):
            DkgParticipant(DkgConfig(SESSION, 2, (1, 2, 3)), 4)


class TestBlame:
    def _expect_blame(self, victim: DkgParticipant, package: object, culprit: int) -> None:
        with pytest.raises(DkgPeerMisbehaviour) as err:
            victim.receive(package)  # type: ignore[arg-type]
        assert isinstance(err.value, PeerMisbehaviour)
        assert err.value.culprit == culprit
        assert victim.state is DkgState.FAILED
        with pytest.raises(DkgStateError):
            victim.round2()

    def test_bad_proof_of_knowledge(self) -> None:
        parts, rnd = _setup(4, 3)
        r1 = _round1(parts, rnd)
        pok = r1[3].proof_of_knowledge
        forged = dataclasses.replace(r1[3], proof_of_knowledge=Signature(pok.R, (pok.z + 1) % N))
        parts[1].receive(r1[2])
        self._expect_blame(parts[1], forged, 3)

    def test_proof_bound_to_sender_identifier(self) -> None:
        parts, rnd = _setup(4, 3)
        r1 = _round1(parts, rnd)
        # 4 replays 2's commitment and proof as its own.
        stolen = dataclasses.replace(r1[2], sender=4, encryption_key=r1[4].encryption_key)
        self._expect_blame(parts[1], stolen, 4)

    def test_wrong_degree_commitment(self) -> None:
        parts, rnd = _setup(4, 3)
        r1 = _round1(parts, rnd)
        short = dataclasses.replace(r1[2], commitment=r1[2].commitment[:2])
        self._expect_blame(parts[1], short, 2)

    def test_equivocation_in_round1(self) -> None:
        parts, rnd = _setup(3, 2)
        r1 = _round1(parts, rnd)
        parts[1].receive(r1[2])
        other = DkgParticipant(parts[2].config, 2).round1(rnd.randbytes)
        self._expect_blame(parts[1], other, 2)

    def test_share_not_matching_commitment(self) -> None:
        parts, rnd = _setup(4, 2)
        r1 = _round1(parts, rnd)
        _broadcast(parts, r1)
        # Participant 3 cheats: a share off by one, correctly encrypted to 1.
        assert parts[3]._secrets is not None
        parts[3]._secrets.coefficients[0] = (parts[3]._secrets.coefficients[0] + 1) % N
        outs = {i: p.round2() for i, p in parts.items()}
        parts[1].receive(outs[2][1])
        self._expect_blame(parts[1], outs[3][1], 3)

    def test_share_encrypted_with_wrong_value_to_one_recipient(self) -> None:
        parts, rnd = _setup(3, 2)
        _broadcast(parts, _round1(parts, rnd))
        outs = {i: p.round2() for i, p in parts.items()}
        key = parts[2]._pair_key(sender=2, recipient=3)
        aad = SESSION + encode_scalar(2) + encode_scalar(3)
        forged = Round2Package(
            2, 3, SESSION, ChaCha20Poly1305(key).encrypt(bytes(12), encode_scalar(12345), aad)
        )
        parts[3].receive(outs[1][3])
        self._expect_blame(parts[3], forged, 2)

    def test_undecryptable_share(self) -> None:
        parts, rnd = _setup(3, 2)
        _broadcast(parts, _round1(parts, rnd))
        outs = {i: p.round2() for i, p in parts.items()}
        pkg = outs[2][1]
        flipped = bytes((pkg.ciphertext[0] ^ 1,)) + pkg.ciphertext[1:]
        self._expect_blame(parts[1], dataclasses.replace(pkg, ciphertext=flipped), 2)

    def test_share_encrypted_for_someone_else_does_not_open(self) -> None:
        parts, rnd = _setup(3, 2)
        _broadcast(parts, _round1(parts, rnd))
        outs = {i: p.round2() for i, p in parts.items()}
        # 2's ciphertext for 3, relabelled as for 1: the key is bound to the pair.
        relabelled = dataclasses.replace(outs[2][3], recipient=1)
        self._expect_blame(parts[1], relabelled, 2)

    def test_equivocation_in_round2(self) -> None:
        parts, rnd = _setup(3, 2)
        _broadcast(parts, _round1(parts, rnd))
        outs = {i: p.round2() for i, p in parts.items()}
        parts[1].receive(outs[2][1])
        # 1 is not done yet (3 missing); a second, different share from 2 is equivocation.
        other = dataclasses.replace(outs[2][1], ciphertext=bytes(48))
        self._expect_blame(parts[1], other, 2)

    def test_chain_incompatible_result_fails_the_session(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(dkg_module, "group_key_is_chain_compatible", lambda _p: False)
        parts, rnd = _setup(3, 2)
        _broadcast(parts, _round1(parts, rnd))
        outs = {i: p.round2() for i, p in parts.items()}
        parts[1].receive(outs[2][1])
        with pytest.raises(ChainIncompatibleKey):
            parts[1].receive(outs[3][1])
        assert parts[1].state is DkgState.FAILED


class TestWireFormat:
    def test_packages_roundtrip_and_run_from_bytes(self) -> None:
        parts, rnd = _setup(3, 2)
        r1 = {i: Round1Package.decode(p.round1(rnd.randbytes).encode()) for i, p in parts.items()}
        _broadcast(parts, r1)
        outs = {i: p.round2() for i, p in parts.items()}
        for sent in outs.values():
            for recipient, pkg in sent.items():
                decoded = Round2Package.decode(pkg.encode())
                assert decoded == pkg
                parts[recipient].receive(decoded)
        assert all(p.state is DkgState.DONE for p in parts.values())

    def test_malformed_packages_are_refused(self) -> None:
        parts, rnd = _setup(3, 2)
        raw = parts[1].round1(rnd.randbytes).encode()
        for bad in (raw[:-1], raw + b"\x00", raw[:40]):
            with pytest.raises(CryptoError):
                Round1Package.decode(bad)
        with pytest.raises(CryptoError):
            Round2Package.decode(b"\x00" * 10)
        pkg = Round1Package.decode(raw)
        with pytest.raises(InvalidElement):
            dataclasses.replace(pkg, encryption_key=Point(None))
        with pytest.raises(InvalidElement):
            dataclasses.replace(pkg, commitment=(pkg.commitment[0], Point(None)))
        with pytest.raises(InvalidElement):
            dataclasses.replace(pkg, commitment=())
        with pytest.raises(InvalidScalar):
            Round2Package(0, 1, SESSION, b"")
