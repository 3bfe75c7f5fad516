"""Trusted dealer, VSS, Lagrange interpolation, refresh and the on-chain key check."""

from __future__ import annotations

import random

import pytest

from aggregation.errors import PeerMisbehaviour
from aggregation.frost import (
    ChainIncompatibleKey,
    FrostError,
    InvalidElement,
    InvalidScalar,
    KeyPackage,
    N,
    Point,
    PublicKeyPackage,
    SecretShare,
    base_mul,
    chain_key,
    group_key_is_chain_compatible,
    refresh_deltas,
    refresh_key_package,
    refresh_public_key_package,
    sign_with_committee,
    split_secret,
    trusted_dealer_keygen,
    verify,
)
from aggregation.frost import keys as keys_module
from aggregation.frost.group import P
from aggregation.frost.keys import (
    lagrange_coefficient,
    lagrange_coefficients,
    polynomial_evaluate,
    reconstruct_secret,
    vss_verify,
)


def _rng(seed: int) -> keys_module.Rng:
    return random.Random(seed).randbytes


def _high_x_point() -> Point:
    x = N
    while pow((pow(x, 3, P) + 7) % P, (P - 1) // 2, P) != 1:
        x += 1
    return Point.decode(b"\x03" + x.to_bytes(32, "big"))


class TestDealer:
    def test_shares_interpolate_to_group_key(self) -> None:
        out = trusted_dealer_keygen(7, 5, _rng(1))
        public = out.public_key_package
        assert public.threshold == 5 and public.max_signers == 7
        shares = {i: kp.signing_share for i, kp in out.key_packages.items()}
        for subset in ([1, 2, 3, 4, 5], [3, 4, 5, 6, 7], [1, 3, 5, 7, 2]):
            secret = reconstruct_secret({i: shares[i] for i in subset})
            assert base_mul(secret) == public.group_key
        # Fewer than t shares interpolate to something else.
        assert base_mul(reconstruct_secret({i: shares[i] for i in (1, 2, 3, 4)})) != (
            public.group_key
        )

    def test_verifying_shares_and_vss(self) -> None:
        out = trusted_dealer_keygen(5, 3, _rng(2))
        for i, share in out.secret_shares.items():
            kp = share.verify()
            assert kp == out.key_packages[i]
            assert out.public_key_package.verifying_shares[i] == base_mul(share.signing_share)
            assert vss_verify(i, share.signing_share, out.commitment)
        bad = SecretShare(1, (out.secret_shares[1].signing_share + 1) % N, out.commitment)
        with pytest.raises(FrostError):
            bad.verify()

    def test_group_key_is_chain_compatible(self) -> None:
        for seed in range(5):
            out = trusted_dealer_keygen(3, 2, _rng(seed))
            key = out.public_key_package.chain_key
            assert key.x < N
            assert key.compressed == out.public_key_package.group_key.encode()
            assert key.parity == key.compressed[0] - 2

    def test_dealer_redraws_a_chain_incompatible_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[Point] = []
        real = keys_module.group_key_is_chain_compatible

        def first_fails(point: Point) -> bool:
            calls.append(point)
            return len(calls) > 1 and real(point)

        monkeypatch.setattr(keys_module, "group_key_is_chain_compatible", first_fails)
        out = trusted_dealer_keygen(3, 2, _rng(3))
        assert len(calls) == 2
        assert out.public_key_package.group_key == calls[1] != calls[0]

    def test_high_x_key_is_refused(self) -> None:
        point = _high_x_point()
        assert point.x >= N
        assert not group_key_is_chain_compatible(point)
        assert not group_key_is_chain_compatible(Point(None))
        with pytest.raises(ChainIncompatibleKey):
            chain_key(point)
        public = PublicKeyPackage(point, {1: base_mul(1), 2: base_mul(2)}, 2)
        with pytest.raises(ChainIncompatibleKey):
            _ = public.chain_key

    @pytest.mark.parametrize(("n", "t"), [(1, 1), (3, 1), (3, 4), (2, 3)])
    def test_bad_thresholds(self, n: int, t: int) -> None:
        with pytest.raises(FrostError):
            trusted_dealer_keygen(n, t, _rng(0))

    def test_split_secret_input_checks(self) -> None:
        with pytest.raises(InvalidScalar):
            split_secret(0, 3, 2, rng=_rng(0))
        with pytest.raises(InvalidScalar):
            split_secret(N, 3, 2, rng=_rng(0))
        with pytest.raises(FrostError):
            split_secret(5, 3, 2)
        with pytest.raises(FrostError):
            split_secret(5, 3, 2, coefficients=[1, 2])

    def test_key_package_validation(self) -> None:
        with pytest.raises(FrostError):
            KeyPackage(1, 5, base_mul(6), base_mul(7), 2)
        with pytest.raises(InvalidScalar):
            KeyPackage(1, 0, base_mul(1), base_mul(7), 2)
        with pytest.raises(InvalidElement):
            KeyPackage(1, 5, base_mul(5), Point(None), 2)
        with pytest.raises(InvalidElement):
            PublicKeyPackage(base_mul(1), {1: Point(None), 2: base_mul(2)}, 2)
        with pytest.raises(FrostError):
            PublicKeyPackage(base_mul(1), {1: base_mul(3)}, 2)

    def test_secret_not_in_repr(self) -> None:
        out = trusted_dealer_keygen(3, 2, _rng(4))
        kp = out.key_packages[1]
        assert str(kp.signing_share) not in repr(kp)
        assert str(kp.signing_share) not in repr(out.secret_shares[1])


class TestLagrange:
    def test_single_and_batch_agree(self) -> None:
        ids = [1, 4, 9, 10, 200]
        batch = lagrange_coefficients(ids)
        for i in ids:
            assert batch[i] == lagrange_coefficient(ids, i)
        # Interpolating a polynomial at zero recovers its constant term.
        poly = [1234, 5, 6, 7, 8]
        assert sum(batch[i] * polynomial_evaluate(i, poly) for i in ids) % N == 1234

    def test_rejects_duplicates_and_strangers(self) -> None:
        with pytest.raises(FrostError):
            lagrange_coefficient([1, 2, 2], 1)
        with pytest.raises(FrostError):
            lagrange_coefficient([1, 2, 3], 4)
        with pytest.raises(FrostError):
            lagrange_coefficients([1, 2, 2])


class TestRefresh:
    def test_refreshed_shares_sign_with_the_same_key(self) -> None:
        out = trusted_dealer_keygen(5, 3, _rng(10))
        public = out.public_key_package
        ids = list(out.key_packages)
        # Two contributors (as in a distributed refresh); a dealer refresh is one.
        contributions = {1: refresh_deltas(ids, 3, _rng(11)), 2: refresh_deltas(ids, 3, _rng(12))}
        commitments = {c: r.commitment for c, r in contributions.items()}
        new_kps = {
            i: refresh_key_package(
                kp, {c: r.deltas[i] for c, r in contributions.items()}, commitments
            )
            for i, kp in out.key_packages.items()
        }
        new_public = refresh_public_key_package(public, commitments.values())
        assert new_public.group_key == public.group_key
        for i, kp in new_kps.items():
            assert kp.signing_share != out.key_packages[i].signing_share
            assert new_public.verifying_shares[i] == kp.verifying_share
        sig = sign_with_committee(new_kps, new_public, [2, 4, 5], b"after", _rng(13))
        assert verify(public.group_key, b"after", sig)
        # Old and new shares do not mix: 2 old + 1 new shares interpolate to a wrong key.
        mixed = {
            1: out.key_packages[1].signing_share,
            2: out.key_packages[2].signing_share,
            3: new_kps[3].signing_share,
        }
        assert base_mul(reconstruct_secret(mixed)) != public.group_key

    def test_bad_delta_names_contributor(self) -> None:
        out = trusted_dealer_keygen(4, 2, _rng(20))
        ids = list(out.key_packages)
        good = refresh_deltas(ids, 2, _rng(21))
        bad = refresh_deltas(ids, 2, _rng(22))
        with pytest.raises(PeerMisbehaviour) as err:
            refresh_key_package(
                out.key_packages[3],
                {7: good.deltas[3], 9: (bad.deltas[3] + 1) % N},
                {7: good.commitment, 9: bad.commitment},
            )
        assert err.value.culprit == 9
        with pytest.raises(PeerMisbehaviour) as err:
            refresh_key_package(
                out.key_packages[3], {7: good.deltas[3]}, {7: (*good.commitment, base_mul(1))}
            )
        assert err.value.culprit == 7
        with pytest.raises(FrostError):
            refresh_key_package(out.key_packages[3], {7: good.deltas[3]}, {})
        with pytest.raises(FrostError):
            refresh_public_key_package(out.public_key_package, [(*good.commitment, base_mul(1))])
