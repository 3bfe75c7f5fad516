// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FrostVerifier} from "../FrostVerifier.sol";

/// @title FrostVerifierHarness
/// @notice Exposes FrostVerifier for off-chain tests (the Python suite deploys it on anvil).
/// Not part of the protocol; never registered with a committee.
contract FrostVerifierHarness {
    /// @param signature Rx ‖ Ry ‖ z (96 bytes).
    function verify(uint256 px, uint8 parity, bytes32 message, bytes calldata signature) external view returns (bool) {
        return FrostVerifier.verifyCalldata(px, parity, message, signature);
    }

    /// @notice Arbitrary-length message; signature Rx ‖ Ry ‖ z (96 bytes).
    function verifyMessage(uint256 px, uint8 parity, bytes calldata message, bytes calldata signature)
        external
        view
        returns (bool)
    {
        return FrostVerifier.verifyMessage(px, parity, message, signature);
    }

    /// @notice Arbitrary-length message; RFC 9591 signature encoding enc(R) ‖ z (65 bytes).
    function verifyCompressed(uint256 px, uint8 parity, bytes calldata message, bytes calldata signature)
        external
        view
        returns (bool)
    {
        return FrostVerifier.verifyCompressed(px, parity, message, signature);
    }

    /// @notice The RFC 9591 challenge c = H2(enc(R) ‖ enc(P) ‖ message) mod n.
    function challenge(uint256 rx, uint8 rParity, uint256 px, uint8 parity, bytes calldata message)
        external
        view
        returns (uint256)
    {
        return FrostVerifier.challenge(rx, rParity, px, parity, message);
    }

    /// @notice Whether (px, parity) is usable as a group key (0 < px < n, on the curve).
    function isValidGroupKey(uint256 px, uint8 parity) external view returns (bool) {
        return FrostVerifier.isValidGroupKey(px, parity);
    }

    /// @notice The curve point with x-coordinate x and y-parity `parity`, if any.
    function liftX(uint256 x, uint8 parity) external view returns (bool onCurve, uint256 y) {
        return FrostVerifier.liftX(x, parity);
    }
}
