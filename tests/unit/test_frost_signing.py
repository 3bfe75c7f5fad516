"""FROST signing: RFC 9591 vector through the public API, nonce handling, cheater detection."""

from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from aggregation.errors import CryptoError, LocalProtocolError, PeerMisbehaviour
from aggregation.frost import (
    DealerOutput,
    InvalidElement,
    InvalidScalar,
    InvalidSignatureShare,
    InvalidSigningPackage,
    N,
    NonceReuseError,
    Point,
    Signature,
    SignatureShare,
    SigningCommitments,
    SigningContext,
    SigningNonces,
    SigningPackage,
    aggregate,
    base_mul,
    commit,
    sign,
    sign_with_committee,
    split_secret,
    trusted_dealer_keygen,
    verify,
    verify_signature_share,
)
from aggregation.frost.signing import commit_with_randomness
from tests import helpers_pyecc

RFC_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
RFC_FILE = RFC_VECTORS / "frost-secp256k1-sha256-rfc9591.json"
ZF_FILE = Path(__file__).resolve().parents[1] / "vectors" / "zf" / "vectors.json"


def _rfc_file() -> Path:
    # CI clones the repo with shared/ beside it; fall back to the ZF copy of the same suite.
    return RFC_FILE if RFC_FILE.exists() else ZF_FILE


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def dealer() -> DealerOutput:
    return trusted_dealer_keygen(5, 3, random.Random(7).randbytes)


def _session(
    dealer: DealerOutput, signers: list[int], message: bytes, seed: int = 1
) -> tuple[SigningPackage, dict[int, SigningNonces]]:
    rng = random.Random(seed).randbytes
    nonces: dict[int, SigningNonces] = {}
    commitments = []
    for i in signers:
        n, c = commit(dealer.key_packages[i], rng)
        nonces[i] = n
        commitments.append(c)
    return SigningPackage(tuple(commitments), message), nonces


@pytest.mark.parametrize("path", [RFC_FILE, ZF_FILE], ids=["rfc9591", "zf"])
def test_vector_through_public_api(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    v = _load(path)
    inputs = v["inputs"]
    coefficients = [int(c, 16) for c in inputs["share_polynomial_coefficients"]]
    out = split_secret(int(inputs["group_secret_key"], 16), 3, 2, coefficients=coefficients)
    group_key_hex = inputs.get("group_public_key", inputs.get("verifying_key_key"))
    assert out.public_key_package.group_key.hex() == group_key_hex
    message = bytes.fromhex(inputs["message"])
    nonces = {}
    for o in v["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        nonces[i], c = commit_with_randomness(
            i,
            out.key_packages[i].signing_share,
            bytes.fromhex(o["hiding_nonce_randomness"]),
            bytes.fromhex(o["binding_nonce_randomness"]),
        )
        assert c.hiding.hex() == o["hiding_nonce_commitment"]
        assert c.binding.hex() == o["binding_nonce_commitment"]
    package = SigningPackage(tuple(n.commitments for n in nonces.values()), message)
    shares = [sign(package, nonces[i], out.key_packages[i]) for i in sorted(nonces)]
    expected = {o["identifier"]: int(o["sig_share"], 16) for o in v["round_two_outputs"]["outputs"]}
    assert {s.identifier: s.share for s in shares} == expected
    signature = aggregate(package, shares, out.public_key_package)
    assert signature.encode().hex() == v["final_output"]["sig"]
    assert verify(out.public_key_package.group_key, message, signature)
    assert helpers_pyecc.verify(
        out.public_key_package.group_key.encode(), message, signature.encode()
    )


class TestNonces:
    def test_second_use_raises(self, dealer: DealerOutput) -> None:
        package, nonces = _session(dealer, [1, 2, 3], b"m" * 32)
        kp = dealer.key_packages[1]
        sign(package, nonces[1], kp)
        assert nonces[1].consumed
        with pytest.raises(NonceReuseError) as err:
            sign(package, nonces[1], kp)
        assert isinstance(err.value, LocalProtocolError)
        assert isinstance(err.value, CryptoError)

    def test_reuse_for_another_message_raises(self, dealer: DealerOutput) -> None:
        package, nonces = _session(dealer, [1, 2, 3], b"a" * 32)
        sign(package, nonces[2], dealer.key_packages[2])
        other = SigningPackage(package.commitments, b"b" * 32)
        with pytest.raises(NonceReuseError):
            sign(other, nonces[2], dealer.key_packages[2])

    @pytest.mark.parametrize(
        "duplicate",
        [copy.copy, copy.deepcopy, pickle.dumps, lambda n: n.__reduce_ex__(2)],
        ids=["copy", "deepcopy", "pickle", "reduce_ex"],
    )
    def test_cannot_be_copied_or_pickled(self, dealer: DealerOutput, duplicate: Any) -> None:
        _, nonces = _session(dealer, [1, 2], b"m" * 32)
        with pytest.raises(NonceReuseError):
            duplicate(nonces[1])
        assert not nonces[1].consumed

    def test_cannot_be_constructed_directly(self) -> None:
        c = SigningCommitments(1, base_mul(2), base_mul(3))
        with pytest.raises(TypeError):
            SigningNonces(2, 3, c, _token=object())

    def test_repr_hides_secrets(self, dealer: DealerOutput) -> None:
        _, nonces = _session(dealer, [1, 2], b"m" * 32)
        assert "fresh" in repr(nonces[1])
        assert str(nonces[1]._hiding) not in repr(nonces[1])

    def test_invalid_package_does_not_burn_nonces(self, dealer: DealerOutput) -> None:
        package, nonces = _session(dealer, [1, 2, 3], b"m" * 32)
        # Signer 4 is not in the package.
        with pytest.raises(InvalidSigningPackage):
            sign(package, nonces[1], dealer.key_packages[4])
        # A package whose commitment for us differs from our nonces.
        _, other = _session(dealer, [1, 2, 3], b"m" * 32, seed=99)
        forged = SigningPackage((other[1].commitments, *package.commitments[1:]), package.message)
        with pytest.raises(InvalidSigningPackage):
            sign(forged, nonces[1], dealer.key_packages[1])
        assert not nonces[1].consumed
        sign(package, nonces[1], dealer.key_packages[1])

    def test_fresh_randomness_gives_fresh_nonces(self, dealer: DealerOutput) -> None:
        rng = random.Random(5).randbytes
        _, c1 = commit(dealer.key_packages[1], rng)
        _, c2 = commit(dealer.key_packages[1], rng)
        assert c1.hiding != c2.hiding and c1.binding != c2.binding


class TestSigningPackage:
    def test_sorted_and_deduplicated(self, dealer: DealerOutput) -> None:
        package, _ = _session(dealer, [3, 1, 2], b"m")
        assert package.identifiers == (1, 2, 3)
        with pytest.raises(InvalidSigningPackage):
            SigningPackage((package.commitments[0], package.commitments[0]), b"m")
        with pytest.raises(InvalidSigningPackage):
            SigningPackage((package.commitments[0],), b"m")

    def test_below_threshold_refused(self, dealer: DealerOutput) -> None:
        package, nonces = _session(dealer, [1, 2], b"m")
        with pytest.raises(InvalidSigningPackage):
            sign(package, nonces[1], dealer.key_packages[1])

    def test_commitments_roundtrip_and_reject_identity(self) -> None:
        c = SigningCommitments(7, base_mul(2), base_mul(3))
        assert SigningCommitments.decode(c.encode()) == c
        with pytest.raises(InvalidElement):
            SigningCommitments(7, Point(None), base_mul(3))
        with pytest.raises(InvalidScalar):
            SigningCommitments(0, base_mul(2), base_mul(3))
        with pytest.raises(CryptoError):
            SigningCommitments.decode(c.encode()[:-1])
        with pytest.raises(CryptoError):
            SigningCommitments.decode(bytes(32) + c.encode()[32:])

    def test_context_mismatch_refused(self, dealer: DealerOutput) -> None:
        package, nonces = _session(dealer, [1, 2, 3], b"m")
        other, _ = _session(dealer, [1, 2, 3], b"n")
        ctx = SigningContext(other, dealer.public_key_package.group_key)
        with pytest.raises(InvalidSigningPackage):
            sign(package, nonces[1], dealer.key_packages[1], context=ctx)


class TestAggregate:
    def _shares(
        self, dealer: DealerOutput, signers: list[int], message: bytes
    ) -> tuple[SigningPackage, list[SignatureShare]]:
        package, nonces = _session(dealer, signers, message)
        ctx = SigningContext(package, dealer.public_key_package.group_key)
        shares = [sign(package, nonces[i], dealer.key_packages[i], context=ctx) for i in signers]
        return package, shares

    def test_valid_signature_and_share_verification(self, dealer: DealerOutput) -> None:
        package, shares = self._shares(dealer, [2, 4, 5], b"x" * 32)
        public = dealer.public_key_package
        ctx = SigningContext(package, public.group_key)
        for s in shares:
            assert verify_signature_share(s, public.verifying_shares[s.identifier], ctx)
        sig = aggregate(package, shares, public)
        assert verify(public.group_key, b"x" * 32, sig)
        key = public.group_key.encode()
        assert helpers_pyecc.verify(key, b"x" * 32, sig.encode())
        assert helpers_pyecc.onchain_style_verify(key, b"x" * 32, sig.encode())

    def test_bad_share_names_culprit(self, dealer: DealerOutput) -> None:
        package, shares = self._shares(dealer, [1, 3, 4, 5], b"y" * 32)
        shares[2] = SignatureShare(shares[2].identifier, (shares[2].share + 1) % N)
        with pytest.raises(InvalidSignatureShare) as err:
            aggregate(package, shares, dealer.public_key_package)
        assert err.value.culprit == 4
        assert err.value.culprits == (4,)
        assert isinstance(err.value, PeerMisbehaviour)

    def test_several_bad_shares_all_named(self, dealer: DealerOutput) -> None:
        package, shares = self._shares(dealer, [1, 2, 3, 5], b"y" * 32)
        shares[0] = SignatureShare(1, 5)
        shares[3] = SignatureShare(5, 6)
        with pytest.raises(InvalidSignatureShare) as err:
            aggregate(package, shares, dealer.public_key_package)
        assert err.value.culprits == (1, 5)

    def test_share_set_must_match_package(self, dealer: DealerOutput) -> None:
        package, shares = self._shares(dealer, [1, 2, 3], b"z")
        with pytest.raises(InvalidSigningPackage):
            aggregate(package, shares[:2], dealer.public_key_package)
        with pytest.raises(InvalidSigningPackage):
            aggregate(package, [*shares, shares[0]], dealer.public_key_package)

    def test_sign_with_committee_any_subset(self, dealer: DealerOutput) -> None:
        rng = random.Random(11).randbytes
        public = dealer.public_key_package
        for signers in ([1, 2, 3], [3, 4, 5], [1, 2, 3, 4, 5], [5, 1, 3]):
            sig = sign_with_committee(dealer.key_packages, public, signers, b"msg", rng)
            assert verify(public.group_key, b"msg", sig)


class TestVerify:
    def test_rejects_tampering(self, dealer: DealerOutput) -> None:
        public = dealer.public_key_package
        sig = sign_with_committee(
            dealer.key_packages, public, [1, 2, 3], b"m" * 32, random.Random(3).randbytes
        )
        assert verify(public.group_key, b"m" * 32, sig)
        assert not verify(public.group_key, b"n" * 32, sig)
        assert not verify(public.group_key, b"m" * 32, Signature(sig.R, (sig.z + 1) % N))
        assert not verify(public.group_key, b"m" * 32, Signature(-sig.R, sig.z))
        assert not verify(base_mul(3), b"m" * 32, sig)

    def test_signature_encoding(self, dealer: DealerOutput) -> None:
        sig = Signature(base_mul(5), 17)
        raw = sig.encode()
        assert len(raw) == 65
        assert Signature.decode(raw) == sig
        with pytest.raises(InvalidScalar):
            Signature.decode(raw[:33] + N.to_bytes(32, "big"))
        with pytest.raises(InvalidElement):
            Signature.decode(bytes(33) + raw[33:])
        with pytest.raises(InvalidElement):
            Signature.decode(raw[:-1])
        with pytest.raises(InvalidElement):
            Signature(Point(None), 1)
        with pytest.raises(InvalidElement):
            verify(Point(None), b"", sig)
