"""Property tests for FROST: random committees, cheaters, tampering, DKG runs.

Signatures are also checked by an independent verifier on py_ecc (tests/helpers_pyecc.py).
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation.errors import CryptoError
from aggregation.frost import (
    DkgConfig,
    DkgParticipant,
    DkgPeerMisbehaviour,
    DkgState,
    InvalidSignatureShare,
    N,
    Point,
    Signature,
    SignatureShare,
    SigningContext,
    SigningPackage,
    aggregate,
    commit,
    sign,
    sign_with_committee,
    trusted_dealer_keygen,
    verify,
)
from tests import helpers_pyecc

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def committees(draw: st.DrawFn, max_n: int = 20) -> tuple[int, int, list[int], int]:
    """(n, t, signers, seed): a t-of-n committee and a signer subset of size >= t."""
    n = draw(st.integers(2, max_n))
    t = draw(st.integers(2, n))
    size = draw(st.integers(t, n))
    signers = draw(st.permutations(list(range(1, n + 1))))[:size]
    seed = draw(st.integers(0, 2**32))
    return n, t, signers, seed


def _flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@SETTINGS
@given(committees(), st.binary(min_size=0, max_size=64))
def test_random_committees_sign_and_verify(
    committee: tuple[int, int, list[int], int], message: bytes
) -> None:
    n, t, signers, seed = committee
    rng = random.Random(seed).randbytes
    dealer = trusted_dealer_keygen(n, t, rng)
    public = dealer.public_key_package
    sig = sign_with_committee(dealer.key_packages, public, signers, message, rng)
    assert verify(public.group_key, message, sig)
    key = public.group_key.encode()
    assert helpers_pyecc.verify(key, message, sig.encode())
    assert helpers_pyecc.onchain_style_verify(key, message, sig.encode())


@SETTINGS
@given(committees(), st.data())
def test_single_altered_share_is_blamed_on_its_signer(
    committee: tuple[int, int, list[int], int], data: st.DataObject
) -> None:
    n, t, signers, seed = committee
    rng = random.Random(seed).randbytes
    dealer = trusted_dealer_keygen(n, t, rng)
    public = dealer.public_key_package
    committed = [commit(dealer.key_packages[i], rng) for i in signers]
    package = SigningPackage(tuple(c for _, c in committed), b"round-7 report")
    ctx = SigningContext(package, public.group_key)
    shares = [
        sign(package, nonces, dealer.key_packages[c.identifier], context=ctx)
        for nonces, c in committed
    ]
    victim = data.draw(st.sampled_from(signers))
    delta = data.draw(st.integers(1, N - 1))
    altered = [
        SignatureShare(s.identifier, (s.share + delta) % N) if s.identifier == victim else s
        for s in shares
    ]
    with pytest.raises(InvalidSignatureShare) as err:
        aggregate(package, altered, public)
    assert err.value.culprit == victim
    assert err.value.culprits == (victim,)


@SETTINGS
@given(
    committees(max_n=8),
    st.binary(min_size=1, max_size=48),
    st.sampled_from(["R", "z", "message", "key"]),
    st.integers(0, 2**16),
)
def test_independent_verifier_rejects_bit_flips(
    committee: tuple[int, int, list[int], int], message: bytes, target: str, bit: int
) -> None:
    n, t, signers, seed = committee
    rng = random.Random(seed).randbytes
    dealer = trusted_dealer_keygen(n, t, rng)
    key = dealer.public_key_package.group_key.encode()
    sig = sign_with_committee(
        dealer.key_packages, dealer.public_key_package, signers, message, rng
    ).encode()
    assert helpers_pyecc.verify(key, message, sig)
    if target == "R":
        sig = _flip(sig[:33], bit) + sig[33:]
    elif target == "z":
        sig = sig[:33] + _flip(sig[33:], bit)
    elif target == "message":
        message = _flip(message, bit)
    else:
        key = _flip(key, bit)
    assert not helpers_pyecc.verify(key, message, sig)
    assert not helpers_pyecc.onchain_style_verify(key, message, sig)
    # Our verifier agrees: the tampered input is malformed or the check fails.
    try:
        ours = verify(Point.decode(key), message, Signature.decode(sig))
    except CryptoError:
        ours = False
    assert not ours


def _dkg(n: int, t: int, seed: int) -> tuple[dict[int, DkgParticipant], random.Random]:
    config = DkgConfig(
        b"property-dkg-session-" + seed.to_bytes(8, "big"), t, tuple(range(1, n + 1))
    )
    return {i: DkgParticipant(config, i) for i in config.participants}, random.Random(seed)


@settings(max_examples=25, deadline=None)
@given(committees(max_n=20))
def test_dkg_produces_a_working_group_key(committee: tuple[int, int, list[int], int]) -> None:
    n, t, signers, seed = committee
    parts, rnd = _dkg(n, t, seed)
    r1 = {i: p.round1(rnd.randbytes) for i, p in parts.items()}
    for i, p in parts.items():
        for j, pkg in r1.items():
            if j != i:
                p.receive(pkg)
    outgoing = {i: p.round2() for i, p in parts.items()}
    for sent in outgoing.values():
        for recipient, share_pkg in sent.items():
            parts[recipient].receive(share_pkg)
    assert all(p.state is DkgState.DONE for p in parts.values())
    public = parts[1].output.public_key_package
    assert all(p.output.public_key_package == public for p in parts.values())
    assert public.chain_key.x < N
    kps = {i: p.output.key_package for i, p in parts.items()}
    sig = sign_with_committee(kps, public, signers, b"dkg", rnd.randbytes)
    assert helpers_pyecc.verify(public.group_key.encode(), b"dkg", sig.encode())


@settings(max_examples=25, deadline=None)
@given(committees(max_n=20), st.data(), st.sampled_from(["proof", "share"]))
def test_dkg_cheater_is_blamed(
    committee: tuple[int, int, list[int], int], data: st.DataObject, cheat: str
) -> None:
    n, t, _, seed = committee
    parts, rnd = _dkg(n, t, seed)
    cheater = data.draw(st.integers(1, n))
    victim = data.draw(st.sampled_from([i for i in range(1, n + 1) if i != cheater]))
    r1 = {i: p.round1(rnd.randbytes) for i, p in parts.items()}
    if cheat == "proof":
        pok = r1[cheater].proof_of_knowledge
        r1[cheater] = dataclasses.replace(
            r1[cheater], proof_of_knowledge=Signature(pok.R, (pok.z + 1) % N)
        )
    for j, pkg in r1.items():
        if j not in (victim, cheater):
            parts[victim].receive(pkg)
    if cheat == "proof":
        with pytest.raises(DkgPeerMisbehaviour) as err:
            parts[victim].receive(r1[cheater])
    else:
        parts[victim].receive(r1[cheater])
        for j, pkg in r1.items():
            if j != cheater:
                parts[cheater].receive(pkg)
        # The cheater shifts its polynomial after committing: every share it sends is off.
        cheater_secrets = parts[cheater]._secrets
        assert cheater_secrets is not None
        cheater_secrets.coefficients[-1] += 1
        with pytest.raises(DkgPeerMisbehaviour) as err:
            parts[victim].receive(parts[cheater].round2()[victim])
            parts[victim].round2()
    assert err.value.culprit == cheater
    assert parts[victim].state is DkgState.FAILED
