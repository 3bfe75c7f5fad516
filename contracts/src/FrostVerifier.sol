// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title FrostVerifier
/// @notice Verifies RFC 9591 FROST(secp256k1, SHA-256) signatures on-chain with one
/// `ecrecover`.
///
/// A FROST signature (R, z) under group key P over message m is valid iff
/// z·G == R + c·P with c = H2(enc(R) ‖ enc(P) ‖ m), where enc is SEC1 compressed
/// encoding and H2 is expand_message_xmd(SHA-256, DST = "FROST-secp256k1-SHA256-v1chal",
/// 48 bytes) read as a big-endian integer mod n.
///
/// `ecrecover(h, v, r, s)` returns address(r⁻¹·(s·Q − h·G)) where Q is the point with
/// x = r and y-parity v − 27. With r = Px, v = 27 + parity(P), s = c·Px and h = z·Px
/// (all mod n) it returns address(c·P − z·G) = address(−R). The signature is valid iff
/// that equals keccak256(Rx ‖ p − Ry)[12:], the address of −R computed from R itself.
/// This needs Px in [1, n) (ecrecover rejects r ≥ n): group keys with Px ≥ n are
/// rejected at key generation, see `isValidGroupKey`.
///
/// On-chain signature layout (96 bytes, what `ReportReceiver` takes): Rx ‖ Ry ‖ z, each a
/// 32-byte big-endian integer. R is carried uncompressed because decompressing the RFC's
/// 33-byte encoding costs a modexp (≈1.45k gas on Cancun, ≈4k after EIP-7883) while the
/// 31 extra calldata bytes cost ≈0.5k. `verifyCompressed` accepts the RFC's own 65-byte
/// encoding (R compressed ‖ z) for completeness.
///
/// Differences from the RFC's verifier, all on inputs of negligible probability: z = 0 is
/// rejected (so is c = 0, which ecrecover refuses), and keys with Px ≥ n cannot be used.
library FrostVerifier {
    /// secp256k1 field prime p.
    uint256 internal constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    /// secp256k1 group order n.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    /// Length of the on-chain signature encoding Rx ‖ Ry ‖ z.
    uint256 internal constant SIGNATURE_LENGTH = 96;
    /// Length of the RFC 9591 signature encoding enc(R) ‖ z.
    uint256 internal constant COMPRESSED_SIGNATURE_LENGTH = 65;

    /// The bytes that follow the message in H2's first SHA-256 block input:
    /// I2OSP(48, 2) ‖ I2OSP(0, 1) ‖ DST (29 bytes), exactly one word.
    uint256 private constant _XMD_SUFFIX = 0x00300046524f53542d736563703235366b312d5348413235362d76316368616c;
    /// DST ‖ I2OSP(len(DST), 1), left-aligned in a word (DST_prime, 30 bytes).
    uint256 private constant _DST_PRIME = 0x46524f53542d736563703235366b312d5348413235362d76316368616c1d0000;
    /// (p + 1) / 4, the exponent of a square root mod p.
    uint256 private constant _SQRT_EXP = 0x3fffffffffffffffffffffffffffffffffffffffffffffffffffffffbfffff0c;

    /// @notice Verifies a signature over a 32-byte message (the form XON's reports use).
    /// @param px Group key x-coordinate. @param parity Group key y-parity (0 even, 1 odd).
    /// @param sig Rx ‖ Ry ‖ z (96 bytes); any other length is invalid.
    function verify(uint256 px, uint256 parity, bytes32 message, bytes memory sig) internal view returns (bool) {
        if (sig.length != SIGNATURE_LENGTH) return false;
        uint256 rx;
        uint256 ry;
        uint256 z;
        assembly ("memory-safe") {
            rx := mload(add(sig, 0x20))
            ry := mload(add(sig, 0x40))
            z := mload(add(sig, 0x60))
        }
        return verify(px, parity, message, rx, ry, z);
    }

    /// @notice Calldata form of `verify(px, parity, message, bytes)`.
    function verifyCalldata(uint256 px, uint256 parity, bytes32 message, bytes calldata sig)
        internal
        view
        returns (bool)
    {
        if (sig.length != SIGNATURE_LENGTH) return false;
        uint256 rx;
        uint256 ry;
        uint256 z;
        assembly ("memory-safe") {
            rx := calldataload(sig.offset)
            ry := calldataload(add(sig.offset, 0x20))
            z := calldataload(add(sig.offset, 0x40))
        }
        return verify(px, parity, message, rx, ry, z);
    }

    /// @notice Verifies (R = (rx, ry), z) under P = (px, parity) over a 32-byte message.
    /// One assembly block (the hot path of every report); `verifyMessage` is the same
    /// computation for any message length, and the tests check that the two agree.
    function verify(uint256 px, uint256 parity, bytes32 message, uint256 rx, uint256 ry, uint256 z)
        internal
        view
        returns (bool ok)
    {
        assembly ("memory-safe") {
            // R on the curve with coordinates < p; z and px in [1, n); parity a bit.
            ok := and(
                and(and(lt(rx, P), lt(ry, P)), lt(parity, 2)),
                and(lt(sub(z, 1), sub(N, 1)), lt(sub(px, 1), sub(N, 1)))
            )
            ok := and(ok, eq(mulmod(ry, ry, P), addmod(mulmod(rx, mulmod(rx, rx, P), P), 7, P)))
            if ok {
                let ptr := mload(0x40)
                // b_0 input: Z_pad (64 zero bytes) ‖ enc(R) ‖ enc(P) ‖ m ‖ I2OSP(48,2) ‖ 0x00 ‖ DST_prime
                mstore(ptr, 0)
                mstore(add(ptr, 0x20), 0)
                mstore8(add(ptr, 0x40), add(2, and(ry, 1)))
                mstore(add(ptr, 0x41), rx)
                mstore8(add(ptr, 0x61), add(2, parity))
                mstore(add(ptr, 0x62), px)
                mstore(add(ptr, 0x82), message)
                mstore(add(ptr, 0xa2), _XMD_SUFFIX)
                mstore8(add(ptr, 0xc2), 29)
                let q := add(ptr, 0x100)
                ok := staticcall(gas(), 0x02, ptr, 0xc3, q, 0x20)
                let b0 := mload(q)
                // b_1 = H(b_0 ‖ 0x01 ‖ DST_prime), b_2 = H(b_0 ⊕ b_1 ‖ 0x02 ‖ DST_prime)
                mstore8(add(q, 0x20), 1)
                mstore(add(q, 0x21), _DST_PRIME)
                ok := and(ok, staticcall(gas(), 0x02, q, 0x3f, add(q, 0x60), 0x20))
                let b1 := mload(add(q, 0x60))
                mstore(q, xor(b0, b1))
                mstore8(add(q, 0x20), 2)
                ok := and(ok, staticcall(gas(), 0x02, q, 0x3f, add(q, 0x60), 0x20))
                // c = (b_1 ‖ b_2[0:16]) mod n
                let c := addmod(mulmod(b1, shl(128, 1), N), shr(128, mload(add(q, 0x60))), N)
                // ecrecover(z·Px, 27 + parity, Px, c·Px) = address(c·P − z·G) = address(−R)
                mstore(ptr, mulmod(z, px, N))
                mstore(add(ptr, 0x20), add(27, parity))
                mstore(add(ptr, 0x40), px)
                mstore(add(ptr, 0x60), mulmod(c, px, N))
                mstore(0x00, 0) // ecrecover writes nothing when recovery fails
                ok := and(ok, staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20))
                let recovered := mload(0x00)
                mstore(ptr, rx)
                mstore(add(ptr, 0x20), sub(P, ry))
                let expected := and(keccak256(ptr, 0x40), 0xffffffffffffffffffffffffffffffffffffffff)
                ok := and(and(ok, iszero(iszero(recovered))), eq(recovered, expected))
            }
        }
    }

    /// @notice Verifies over an arbitrary-length message (RFC 9591 signs byte strings; its
    /// published test vectors use this form).
    function verifyMessage(uint256 px, uint256 parity, bytes memory message, uint256 rx, uint256 ry, uint256 z)
        internal
        view
        returns (bool)
    {
        if (!_validInputs(px, parity, rx, ry, z)) return false;
        return _recoverCheck(px, parity, challenge(rx, ry & 1, px, parity, message), rx, ry, z);
    }

    /// @notice `verifyMessage` with the 96-byte signature encoding.
    function verifyMessage(uint256 px, uint256 parity, bytes memory message, bytes memory sig)
        internal
        view
        returns (bool)
    {
        if (sig.length != SIGNATURE_LENGTH) return false;
        uint256 rx;
        uint256 ry;
        uint256 z;
        assembly ("memory-safe") {
            rx := mload(add(sig, 0x20))
            ry := mload(add(sig, 0x40))
            z := mload(add(sig, 0x60))
        }
        return verifyMessage(px, parity, message, rx, ry, z);
    }

    /// @notice Verifies the RFC 9591 encoding enc(R) (33 bytes, SEC1 compressed) ‖ z (32 bytes).
    /// Costs one modexp more than the uncompressed form.
    function verifyCompressed(uint256 px, uint256 parity, bytes memory message, bytes memory sig)
        internal
        view
        returns (bool)
    {
        if (sig.length != COMPRESSED_SIGNATURE_LENGTH) return false;
        uint256 prefix;
        uint256 rx;
        uint256 z;
        assembly ("memory-safe") {
            prefix := byte(0, mload(add(sig, 0x20)))
            rx := mload(add(sig, 0x21))
            z := mload(add(sig, 0x41))
        }
        if (prefix != 2 && prefix != 3) return false;
        (bool onCurve, uint256 ry) = liftX(rx, prefix - 2);
        if (!onCurve) return false;
        return verifyMessage(px, parity, message, rx, ry, z);
    }

    /// @notice H2(enc(R) ‖ enc(P) ‖ message) mod n, per RFC 9591 §6.5 (secp256k1).
    /// @param rParity y-parity of R; @param parity y-parity of P.
    function challenge(uint256 rx, uint256 rParity, uint256 px, uint256 parity, bytes memory message)
        internal
        view
        returns (uint256 c)
    {
        uint256 ptr;
        uint256 len;
        assembly ("memory-safe") {
            ptr := mload(0x40)
            len := mload(message)
            mstore(ptr, 0)
            mstore(add(ptr, 0x20), 0)
            mstore8(add(ptr, 0x40), add(2, and(rParity, 1)))
            mstore(add(ptr, 0x41), rx)
            mstore8(add(ptr, 0x61), add(2, and(parity, 1)))
            mstore(add(ptr, 0x62), px)
            mcopy(add(ptr, 0x82), add(message, 0x20), len)
            let tail := add(add(ptr, 0x82), len)
            mstore(tail, _XMD_SUFFIX)
            mstore8(add(tail, 0x20), 29)
        }
        c = _xmd(ptr, 0xa3 + len);
    }

    /// @notice Whether (px, parity) can serve as a group key here: 0 < px < n, parity ∈
    /// {0, 1} and px is the x-coordinate of a curve point. Costs a modexp; call it when a
    /// key is installed, not per signature.
    function isValidGroupKey(uint256 px, uint256 parity) internal view returns (bool) {
        if (px == 0 || px >= N || parity > 1) return false;
        (bool onCurve,) = liftX(px, parity);
        return onCurve;
    }

    /// @notice The curve point with x-coordinate `x` and y-parity `parity`, if there is one.
    function liftX(uint256 x, uint256 parity) internal view returns (bool onCurve, uint256 y) {
        if (x >= P) return (false, 0);
        uint256 rhs = addmod(mulmod(x, mulmod(x, x, P), P), 7, P);
        bool success;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, 0x20)
            mstore(add(ptr, 0x20), 0x20)
            mstore(add(ptr, 0x40), 0x20)
            mstore(add(ptr, 0x60), rhs)
            mstore(add(ptr, 0x80), _SQRT_EXP)
            mstore(add(ptr, 0xa0), P)
            success := staticcall(gas(), 0x05, ptr, 0xc0, ptr, 0x20)
            y := mload(ptr)
        }
        if (!success || mulmod(y, y, P) != rhs) return (false, 0);
        if (y & 1 != parity & 1) y = P - y;
        return (true, y);
    }

    /// R on the curve with coordinates < p, z in [1, n), key x in [1, n), parity a bit.
    function _validInputs(uint256 px, uint256 parity, uint256 rx, uint256 ry, uint256 z)
        private
        pure
        returns (bool valid)
    {
        assembly ("memory-safe") {
            valid := and(
                and(lt(rx, P), lt(ry, P)),
                and(and(lt(sub(z, 1), sub(N, 1)), lt(sub(px, 1), sub(N, 1))), lt(parity, 2))
            )
            valid := and(valid, eq(mulmod(ry, ry, P), addmod(mulmod(rx, mulmod(rx, rx, P), P), 7, P)))
        }
    }

    /// ecrecover(z·Px, 27 + parity, Px, c·Px) == address(−R)?
    function _recoverCheck(uint256 px, uint256 parity, uint256 c, uint256 rx, uint256 ry, uint256 z)
        private
        view
        returns (bool ok)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, mulmod(z, px, N))
            mstore(add(ptr, 0x20), add(27, parity))
            mstore(add(ptr, 0x40), px)
            mstore(add(ptr, 0x60), mulmod(c, px, N))
            // ecrecover writes nothing when recovery fails: pre-zero the output word.
            mstore(0x00, 0)
            let success := staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20)
            let recovered := mload(0x00)
            mstore(ptr, rx)
            mstore(add(ptr, 0x20), sub(P, ry))
            let expected := and(keccak256(ptr, 0x40), 0xffffffffffffffffffffffffffffffffffffffff)
            ok := and(and(success, iszero(iszero(recovered))), eq(recovered, expected))
        }
    }

    /// expand_message_xmd(SHA-256, len 48) of the block input at [ptr, ptr + len) (which
    /// already holds Z_pad ‖ msg ‖ I2OSP(48,2) ‖ 0x00 ‖ DST_prime), reduced mod n. Uses
    /// memory after ptr + len as scratch.
    function _xmd(uint256 ptr, uint256 len) private view returns (uint256 c) {
        assembly ("memory-safe") {
            // q: b_0 ‖ I2OSP(i, 1) ‖ DST_prime, 63 bytes; b_1 and b_2 land after it.
            let q := add(ptr, and(add(len, 0x3f), not(0x1f)))
            let ok := staticcall(gas(), 0x02, ptr, len, q, 0x20)
            let b0 := mload(q)
            mstore8(add(q, 0x20), 1)
            mstore(add(q, 0x21), _DST_PRIME)
            ok := and(ok, staticcall(gas(), 0x02, q, 0x3f, add(q, 0x60), 0x20))
            let b1 := mload(add(q, 0x60))
            mstore(q, xor(b0, b1))
            mstore8(add(q, 0x20), 2)
            ok := and(ok, staticcall(gas(), 0x02, q, 0x3f, add(q, 0x60), 0x20))
            let b2 := mload(add(q, 0x60))
            // uniform_bytes = b_1 ‖ b_2[0:16]; as an integer b_1·2^128 + (b_2 >> 128).
            c := addmod(mulmod(b1, shl(128, 1), N), shr(128, b2), N)
            // A failed precompile call (only possible out of gas) must not yield a usable c.
            if iszero(ok) { c := 0 }
        }
    }
}
