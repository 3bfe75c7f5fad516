// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ReportReceiver} from "./ReportReceiver.sol";
import {ReportHeader, XonReport} from "./XonReport.sol";

/// @title ValuationRegistry
/// @notice Latest committee valuation per asset, from VALUATIONS reports.
///
/// An asset id is a bytes32; for a GPU it is the HardwareRegistry device id (the device's
/// registration fingerprint), which is also what GpuCollateralVault looks up. Values are USD
/// fixed-point with `DECIMALS` (8) decimals, like Chainlink USD feeds. `reportHash` is the
/// hash of the off-chain valuation report (inputs and method) so anyone can audit the number.
///
/// Entries are applied one by one: an observation older than the asset's stored one is
/// skipped (`ValuationSkipped`, equal timestamps from a later round win); a value that does
/// not fit 192 bits reverts the whole report (`ValuationOutOfRange`, a committee bug).
contract ValuationRegistry is ReportReceiver {
    /// One storage word for value + time, one for the report hash.
    struct Valuation {
        uint192 value;
        uint64 updatedAt; // observationsTimestamp of the report (0: never valued)
        bytes32 reportHash;
    }

    uint8 public constant DECIMALS = 8;

    mapping(bytes32 assetId => Valuation) private _valuations;

    event ValuationUpdated(bytes32 indexed assetId, uint256 value, bytes32 reportHash, uint64 observedAt);
    event ValuationSkipped(bytes32 indexed assetId, uint64 observedAt, uint64 storedAt);

    error ValuationOutOfRange(bytes32 assetId, uint256 value);
    error NoValuation(bytes32 assetId);
    error StaleValuation(bytes32 assetId, uint64 updatedAt, uint256 maxAge);

    /// @param committee_ the XonCommittee whose group key signs VALUATIONS reports
    /// @param maxReportAge_ seconds a report's observationsTimestamp may lag the block time
    constructor(address committee_, uint64 maxReportAge_)
        ReportReceiver(committee_, XonReport.KIND_VALUATIONS, maxReportAge_)
    {}

    /// @notice Submits a committee-signed VALUATIONS report. Permissionless.
    function transmit(bytes calldata report, bytes calldata signature) external {
        (ReportHeader memory header, bytes calldata payload) = _acceptReport(report, signature);
        // Canonical encoding and equal column lengths are enforced by the decoder.
        (bytes32[] calldata assetIds, uint256[] calldata values, bytes32[] calldata reportHashes) =
            XonReport.decodeValuations(payload);
        uint64 observedAt = header.observationsTimestamp;
        for (uint256 i = 0; i < assetIds.length; ++i) {
            _applyValuation(assetIds[i], values[i], reportHashes[i], observedAt);
        }
    }

    function _applyValuation(bytes32 assetId, uint256 value, bytes32 reportHash, uint64 observedAt) internal {
        if (value > type(uint192).max) revert ValuationOutOfRange(assetId, value);
        Valuation storage stored = _valuations[assetId];
        uint64 storedAt = stored.updatedAt;
        if (observedAt < storedAt) {
            emit ValuationSkipped(assetId, observedAt, storedAt);
            return;
        }
        // Range-checked at the top of this function.
        // forge-lint: disable-next-line(unsafe-typecast)
        stored.value = uint192(value);
        stored.updatedAt = observedAt;
        stored.reportHash = reportHash;
        emit ValuationUpdated(assetId, value, reportHash, observedAt);
    }

    /// @notice The stored valuation, whatever its age (all zero when never valued).
    function getValuation(bytes32 assetId) external view returns (uint256 value, bytes32 reportHash, uint64 updatedAt) {
        Valuation storage stored = _valuations[assetId];
        return (stored.value, stored.reportHash, stored.updatedAt);
    }

    /// @notice The stored valuation with its age in seconds at this block (0 when the
    /// observation is ahead of the block clock). Reverts `NoValuation` when never valued.
    function latestValuation(bytes32 assetId)
        external
        view
        returns (uint256 value, bytes32 reportHash, uint64 updatedAt, uint256 age)
    {
        Valuation storage stored = _valuations[assetId];
        updatedAt = stored.updatedAt;
        if (updatedAt == 0) revert NoValuation(assetId);
        age = block.timestamp > updatedAt ? block.timestamp - updatedAt : 0;
        return (stored.value, stored.reportHash, updatedAt, age);
    }

    /// @notice The value, only if it is at most `maxAge` seconds old; reverts `NoValuation` or
    /// `StaleValuation` otherwise. This is the call a lending consumer should make.
    function freshValuation(bytes32 assetId, uint256 maxAge) external view returns (uint256 value, uint64 updatedAt) {
        Valuation storage stored = _valuations[assetId];
        updatedAt = stored.updatedAt;
        if (updatedAt == 0) revert NoValuation(assetId);
        if (block.timestamp > updatedAt && block.timestamp - updatedAt > maxAge) {
            revert StaleValuation(assetId, updatedAt, maxAge);
        }
        return (stored.value, updatedAt);
    }

    function decimals() external pure returns (uint8) {
        return DECIMALS;
    }
}
