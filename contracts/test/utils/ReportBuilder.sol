// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonReport} from "../../src/XonReport.sol";

/// @title ReportBuilder (test only)
/// @notice Builds XON reports of every kind and the message the committee signs for them.
/// Encodings mirror docs/contracts.md (and aggregation/report.py on the Python side).
library ReportBuilder {
    /// The envelope fields besides kind and payload.
    struct Header {
        bytes32 configDigest;
        uint32 epoch;
        uint32 round;
        uint64 observationsTimestamp;
    }

    /// @notice abi.encode(configDigest, epoch, round, observationsTimestamp, kind, payload).
    function report(
        bytes32 configDigest,
        uint32 epoch,
        uint32 round,
        uint64 observationsTimestamp,
        uint8 kind,
        bytes memory payload
    ) internal pure returns (bytes memory) {
        return abi.encode(configDigest, epoch, round, observationsTimestamp, kind, payload);
    }

    function report(Header memory h, uint8 kind, bytes memory payload) internal pure returns (bytes memory) {
        return abi.encode(h.configDigest, h.epoch, h.round, h.observationsTimestamp, kind, payload);
    }

    /// @notice The signed message: keccak256(abi.encodePacked(chainId, verifyingContract, report)).
    function message(uint256 chainId, address verifyingContract, bytes memory report_) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(chainId, verifyingContract, report_));
    }

    /// @notice `message` on the current chain.
    function message(address verifyingContract, bytes memory report_) internal view returns (bytes32) {
        return message(block.chainid, verifyingContract, report_);
    }

    /// @notice A feed name as its id: ASCII, left-aligned in a bytes32 (≤ 32 characters).
    function feedId(string memory name) internal pure returns (bytes32 id) {
        bytes memory b = bytes(name);
        require(b.length > 0 && b.length <= 32, "ReportBuilder: feed name must be 1-32 bytes");
        assembly ("memory-safe") {
            id := mload(add(b, 0x20))
        }
        // Clear whatever follows the name in memory.
        if (b.length < 32) id &= bytes32(~(type(uint256).max >> (8 * b.length)));
    }

    // ------------------------------------------------------------------ payloads

    function pricesPayload(bytes32[] memory feedIds, int256[] memory values) internal pure returns (bytes memory) {
        return abi.encode(feedIds, values);
    }

    /// @notice One-feed PRICES payload.
    function pricesPayload(bytes32 feedId_, int256 value) internal pure returns (bytes memory) {
        bytes32[] memory ids = new bytes32[](1);
        int256[] memory values = new int256[](1);
        ids[0] = feedId_;
        values[0] = value;
        return abi.encode(ids, values);
    }

    function valuationsPayload(bytes32[] memory assetIds, uint256[] memory values, bytes32[] memory reportHashes)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(assetIds, values, reportHashes);
    }

    function hardwarePayload(bytes32[] memory deviceIds, uint8[] memory statuses, bytes32[] memory fingerprints)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(deviceIds, statuses, fingerprints);
    }

    function uptimePayload(uint64 uptimeEpoch, bytes32 merkleRoot, uint32 leafCount)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(uptimeEpoch, merkleRoot, leafCount);
    }

    function keyRotationPayload(
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash
    ) internal pure returns (bytes memory) {
        return abi.encode(groupKeyX, groupKeyParity, threshold, committeeSize, membersHash);
    }

    // ------------------------------------------------------------------ whole reports

    function prices(Header memory h, bytes32[] memory feedIds, int256[] memory values)
        internal
        pure
        returns (bytes memory)
    {
        return report(h, XonReport.KIND_PRICES, pricesPayload(feedIds, values));
    }

    function valuations(
        Header memory h,
        bytes32[] memory assetIds,
        uint256[] memory values,
        bytes32[] memory reportHashes
    ) internal pure returns (bytes memory) {
        return report(h, XonReport.KIND_VALUATIONS, valuationsPayload(assetIds, values, reportHashes));
    }

    function hardware(
        Header memory h,
        bytes32[] memory deviceIds,
        uint8[] memory statuses,
        bytes32[] memory fingerprints
    ) internal pure returns (bytes memory) {
        return report(h, XonReport.KIND_HARDWARE, hardwarePayload(deviceIds, statuses, fingerprints));
    }

    function uptime(Header memory h, uint64 uptimeEpoch, bytes32 merkleRoot, uint32 leafCount)
        internal
        pure
        returns (bytes memory)
    {
        return report(h, XonReport.KIND_UPTIME, uptimePayload(uptimeEpoch, merkleRoot, leafCount));
    }

    function keyRotation(
        Header memory h,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash
    ) internal pure returns (bytes memory) {
        return report(
            h,
            XonReport.KIND_KEY_ROTATION,
            keyRotationPayload(groupKeyX, groupKeyParity, threshold, committeeSize, membersHash)
        );
    }

    // ------------------------------------------------------------------ compact calldata

    /// @notice `PriceFeedStore.transmitCompact_14743166` calldata for an ABI PRICES report
    /// and its 128-byte signature argument (docs/contracts.md §6.1). Reverts if the report
    /// does not decode as PRICES or a value is outside int128 (not representable compactly).
    function compactPrices(bytes memory report_, bytes memory signature) internal pure returns (bytes memory data) {
        (bytes32 digest, uint32 epoch, uint32 round, uint64 ts, uint8 kind, bytes memory payload) =
            abi.decode(report_, (bytes32, uint32, uint32, uint64, uint8, bytes));
        require(kind == XonReport.KIND_PRICES, "ReportBuilder: compact calldata is for PRICES only");
        (bytes32[] memory ids, int256[] memory values) = abi.decode(payload, (bytes32[], int256[]));
        data = abi.encodePacked(bytes4(0x00000029), signature, digest, epoch, round, ts);
        for (uint256 i; i < ids.length; ++i) {
            require(values[i] == int128(values[i]), "ReportBuilder: value outside int128");
            data = abi.encodePacked(data, ids[i], int128(values[i]));
        }
    }
}
