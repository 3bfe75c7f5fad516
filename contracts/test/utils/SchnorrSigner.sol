// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @title SchnorrSigner (test only)
/// @notice Produces FROST(secp256k1, SHA-256) signatures for a single secret key. A 1-of-1
/// FROST group is plain Schnorr with the RFC 9591 challenge: R = k·G, c = H2(enc(R) ‖ enc(P) ‖ m),
/// z = k + c·x mod n. Points come from the `createWallet` cheatcode (k·G for any k); the
/// challenge is computed here independently of FrostVerifier (high-level `sha256`), so a
/// bug in the verifier's hashing is not mirrored by the signer.
library SchnorrSigner {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    bytes internal constant DST = "FROST-secp256k1-SHA256-v1chal";

    /// A group key with its secret (the test plays the whole committee).
    struct Key {
        uint256 secret;
        uint256 x;
        uint8 parity;
    }

    struct Signature {
        uint256 rx;
        uint256 ry;
        uint256 z;
    }

    /// @notice A usable key derived from `seed`: the first secret from keccak(seed, i) whose
    /// public x-coordinate is below n (FrostVerifier cannot use keys with Px ≥ n; those occur
    /// with probability ≈ 2^-128, so in practice i = 0).
    function keyFromSeed(uint256 seed) internal returns (Key memory key) {
        for (uint256 i;; ++i) {
            uint256 secret = uint256(keccak256(abi.encode("xon.test.key", seed, i))) % N;
            if (secret == 0) continue;
            Key memory k = keyFromSecret(secret);
            if (k.x < N) return k;
        }
    }

    /// @notice The key for `secret` (not checked for Px < n).
    function keyFromSecret(uint256 secret) internal returns (Key memory key) {
        Vm.Wallet memory w = vm.createWallet(secret);
        return Key(secret, w.publicKeyX, uint8(w.publicKeyY & 1));
    }

    /// @notice Signs a 32-byte message with a nonce derived from (secret, message, salt).
    function sign(Key memory key, bytes32 message, uint256 salt) internal returns (Signature memory) {
        return signBytes(key, abi.encodePacked(message), salt);
    }

    function sign(Key memory key, bytes32 message) internal returns (Signature memory) {
        return sign(key, message, 0);
    }

    /// @notice Signs an arbitrary byte string (RFC 9591 messages are byte strings).
    function signBytes(Key memory key, bytes memory message, uint256 salt) internal returns (Signature memory sig) {
        uint256 k = uint256(keccak256(abi.encode("xon.test.nonce", key.secret, message, salt))) % N;
        if (k == 0) k = 1;
        Vm.Wallet memory r = vm.createWallet(k);
        uint256 c = challenge(r.publicKeyX, uint8(r.publicKeyY & 1), key.x, key.parity, message);
        sig.rx = r.publicKeyX;
        sig.ry = r.publicKeyY;
        sig.z = addmod(k, mulmod(c, key.secret, N), N);
    }

    /// @notice H2(enc(R) ‖ enc(P) ‖ message) per RFC 9591 / RFC 9380 expand_message_xmd.
    function challenge(uint256 rx, uint8 rParity, uint256 px, uint8 pParity, bytes memory message)
        internal
        pure
        returns (uint256)
    {
        bytes memory dstPrime = abi.encodePacked(DST, uint8(DST.length));
        bytes memory msgPrime = abi.encodePacked(
            new bytes(64), uint8(2 + rParity), rx, uint8(2 + pParity), px, message, uint16(48), uint8(0), dstPrime
        );
        bytes32 b0 = sha256(msgPrime);
        bytes32 b1 = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        bytes32 b2 = sha256(abi.encodePacked(b0 ^ b1, uint8(2), dstPrime));
        // 48 uniform bytes b1 ‖ b2[0:16] as a big-endian integer, reduced mod n.
        return addmod(mulmod(uint256(b1), 1 << 128, N), uint256(b2) >> 128, N);
    }

    /// @notice FrostVerifier's 96-byte layout Rx ‖ Ry ‖ z.
    function encode(Signature memory sig) internal pure returns (bytes memory) {
        return abi.encodePacked(sig.rx, sig.ry, sig.z);
    }

    /// @notice RFC 9591's 65-byte layout enc(R) ‖ z.
    function encodeCompressed(Signature memory sig) internal pure returns (bytes memory) {
        return abi.encodePacked(uint8(2 + (sig.ry & 1)), sig.rx, sig.z);
    }

    /// @notice The 128-byte signature argument of ReportReceiver: Rx ‖ Ry ‖ z ‖ groupKeyX.
    function envelope(Signature memory sig, uint256 groupKeyX) internal pure returns (bytes memory) {
        return abi.encodePacked(sig.rx, sig.ry, sig.z, groupKeyX);
    }

    /// @notice Signs `report` for `verifyingContract` on the current chain and returns the
    /// ReportReceiver signature argument.
    function signReport(Key memory key, address verifyingContract, bytes memory report)
        internal
        returns (bytes memory)
    {
        bytes32 m = keccak256(abi.encodePacked(block.chainid, verifyingContract, report));
        return envelope(sign(key, m), key.x);
    }
}
