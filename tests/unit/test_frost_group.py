"""secp256k1 points and scalars over coincurve, and the ciphersuite hashes."""

from __future__ import annotations

import hashlib

import pytest

from aggregation.errors import CryptoError
from aggregation.frost.ciphersuite import (
    CONTEXT_STRING,
    expand_message_xmd,
    h1,
    h2,
    h3,
    h4,
    h5,
    hash_to_scalar,
)
from aggregation.frost.errors import InvalidElement, InvalidScalar
from aggregation.frost.group import (
    GENERATOR,
    IDENTITY,
    N,
    P,
    Point,
    base_mul,
    batch_invert,
    check_identifier,
    decode_scalar,
    encode_scalar,
    point_sum,
)
from tests import helpers_pyecc


def _x_not_below_n_on_curve() -> int:
    """Some x with n <= x < p that is the x-coordinate of a curve point."""
    for x in range(N, P):
        rhs = (pow(x, 3, P) + 7) % P
        if pow(rhs, (P - 1) // 2, P) == 1:
            return x
    raise AssertionError("unreachable")


class TestPoint:
    def test_generator_matches_sec2(self) -> None:
        assert GENERATOR.hex() == (
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        )

    def test_arithmetic_matches_py_ecc(self) -> None:
        a, b = 0x1234567890ABCDEF, N - 5
        ours = base_mul(a) + base_mul(b) * 7
        ref = helpers_pyecc.curve.add(
            helpers_pyecc.curve.multiply(helpers_pyecc.G, a),
            helpers_pyecc.curve.multiply(helpers_pyecc.curve.multiply(helpers_pyecc.G, b), 7),
        )
        assert ours.encode() == helpers_pyecc.compress(ref)

    def test_identity_from_opposite_points(self) -> None:
        p = base_mul(12345)
        assert (p + (-p)).is_identity
        assert (p - p).is_identity
        assert point_sum([p, -p, p]) == p
        assert point_sum([]).is_identity
        assert (IDENTITY + p) == p
        assert p + p == p * 2  # combine_keys must handle doubling
        assert point_sum([p, p, p, -p]) == p * 2

    def test_negation_is_multiplication_by_n_minus_1(self) -> None:
        p = base_mul(987654321)
        assert -p == p * (N - 1)
        assert -IDENTITY == IDENTITY

    def test_zero_and_order_multiples_give_identity(self) -> None:
        p = base_mul(42)
        assert (p * 0).is_identity
        assert (p * N).is_identity
        assert base_mul(0).is_identity
        assert base_mul(N).is_identity
        assert (IDENTITY * 5).is_identity
        assert p * (N + 3) == p * 3

    def test_identity_cannot_be_serialised(self) -> None:
        with pytest.raises(InvalidElement):
            IDENTITY.encode()
        with pytest.raises(CryptoError):
            IDENTITY.key  # noqa: B018

    def test_equality_and_hash(self) -> None:
        assert base_mul(7) == base_mul(7)
        assert base_mul(7) != base_mul(8)
        assert Point(None) == IDENTITY
        assert base_mul(1) != IDENTITY
        assert len({base_mul(7), base_mul(7), IDENTITY, Point(None)}) == 2

    def test_decode_roundtrip(self) -> None:
        p = base_mul(99)
        assert Point.decode(p.encode()) == p
        assert Point.from_hex(p.hex()) == p

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x00",  # SEC1 identity encoding
            bytes(33),
            b"\x04" + bytes(32),
            b"\x02" + bytes(31),
            b"\x05" + base_mul(3).encode()[1:],
        ],
    )
    def test_decode_rejects_malformed(self, data: bytes) -> None:
        with pytest.raises(InvalidElement):
            Point.decode(data)

    def test_decode_rejects_uncompressed_and_hybrid(self) -> None:
        key = base_mul(5).key
        uncompressed = key.format(compressed=False)
        with pytest.raises(InvalidElement):
            Point.decode(uncompressed)
        hybrid = bytes((6 + (uncompressed[-1] & 1),)) + uncompressed[1:]
        with pytest.raises(InvalidElement):
            Point.decode(hybrid)

    def test_decode_rejects_x_not_on_curve_and_x_above_p(self) -> None:
        x = 5
        while pow((x**3 + 7) % P, (P - 1) // 2, P) == 1:
            x += 1
        with pytest.raises(InvalidElement):
            Point.decode(b"\x02" + x.to_bytes(32, "big"))
        with pytest.raises(InvalidElement):
            Point.decode(b"\x02" + (P + 1).to_bytes(32, "big"))
        with pytest.raises(InvalidElement):
            Point.from_hex("zz")

    def test_x_and_parity(self) -> None:
        p = base_mul(11)
        x, y = p.key.point()
        assert p.x == x
        assert p.parity == y & 1

    def test_points_with_x_at_least_n_exist_and_decode(self) -> None:
        x = _x_not_below_n_on_curve()
        p = Point.decode(b"\x02" + x.to_bytes(32, "big"))
        assert p.x >= N


class TestScalars:
    def test_roundtrip(self) -> None:
        for v in (0, 1, N - 1, 0xDEADBEEF):
            assert decode_scalar(encode_scalar(v)) == v

    def test_encode_rejects_out_of_range(self) -> None:
        for v in (-1, N, N + 1):
            with pytest.raises(InvalidScalar):
                encode_scalar(v)

    def test_decode_rejects_order_and_above_and_bad_length(self) -> None:
        with pytest.raises(InvalidScalar):
            decode_scalar(N.to_bytes(32, "big"))
        with pytest.raises(InvalidScalar):
            decode_scalar(b"\xff" * 32)
        with pytest.raises(InvalidScalar):
            decode_scalar(b"\x01" * 31)
        with pytest.raises(InvalidScalar):
            decode_scalar(bytes(32), nonzero=True)

    def test_identifiers(self) -> None:
        assert check_identifier(1) == 1
        for bad in (0, -1, N, True):
            with pytest.raises(InvalidScalar):
                check_identifier(bad)

    def test_batch_invert(self) -> None:
        values = [1, 2, 3, N - 1, 0xABCDEF]
        assert batch_invert(values) == [pow(v, -1, N) for v in values]
        assert batch_invert([]) == []
        with pytest.raises(InvalidScalar):
            batch_invert([3, 0])


class TestHashes:
    # RFC 9380 appendix K.1, expand_message_xmd(SHA-256).
    DST = b"QUUX-V01-CS02-with-expander-SHA256-128"

    @pytest.mark.parametrize(
        ("msg", "length", "expected"),
        [
            (b"", 0x20, "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"),
            (b"abc", 0x20, "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"),
            (
                b"",
                0x80,
                "af84c27ccfd45d41914fdff5df25293e221afc53d8ad2ac06d5e3e29485dadbe"
                "e0d121587713a3e0dd4d5e69e93eb7cd4f5df4cd103e188cf60cb02edc3edf18"
                "eda8576c412b18ffb658e3dd6ec849469b979d444cf7b26911a08e63cf31f9dc"
                "c541708d3491184472c2c29bb749d4286b004ceb5ee6b9a7fa5b646c993f0ced",
            ),
            (
                b"abc",
                0x80,
                "abba86a6129e366fc877aab32fc4ffc70120d8996c88aee2fe4b32d6c7b6437a"
                "647e6c3163d40b76a73cf6a5674ef1d890f95b664ee0afa5359a5c4e07985635"
                "bbecbac65d747d3d2da7ec2b8221b17b0ca9dc8a1ac1c07ea6a1e60583e2cb00"
                "058e77b7b72a298425cd1b941ad4ec65e8afc50303a22c0f99b0509b4c895f40",
            ),
        ],
    )
    def test_expand_message_xmd_rfc9380(self, msg: bytes, length: int, expected: str) -> None:
        assert expand_message_xmd(msg, self.DST, length).hex() == expected

    def test_expand_message_xmd_matches_independent_helper(self) -> None:
        for length in (1, 31, 32, 33, 48, 64, 200):
            assert expand_message_xmd(b"x" * length, b"D", length) == helpers_pyecc.xmd_sha256(
                b"x" * length, b"D", length
            )

    def test_expand_message_xmd_limits(self) -> None:
        with pytest.raises(ValueError):
            expand_message_xmd(b"", b"d" * 256, 32)
        with pytest.raises(ValueError):
            expand_message_xmd(b"", b"d", 256 * 32)

    def test_suite_hash_domains(self) -> None:
        m = b"message"
        assert h1(m) == hash_to_scalar(m, CONTEXT_STRING + b"rho")
        assert h2(m) == hash_to_scalar(m, CONTEXT_STRING + b"chal")
        assert h3(m) == hash_to_scalar(m, CONTEXT_STRING + b"nonce")
        assert h4(m) == hashlib.sha256(CONTEXT_STRING + b"msg" + m).digest()
        assert h5(m) == hashlib.sha256(CONTEXT_STRING + b"com" + m).digest()
        assert len({h1(m), h2(m), h3(m)}) == 3
        assert all(0 <= h < N for h in (h1(m), h2(m), h3(m)))
        assert h2(m) == helpers_pyecc.challenge(m, b"", b"")
