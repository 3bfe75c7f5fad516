// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What a `ReportReceiver` needs to know about its committee.
interface IXonCommittee {
    /// The owner (Ownable2Step) of the committee; it may tune receivers' report age.
    function owner() external view returns (address);

    /// The current configuration's digest (every accepted report carries it).
    function configDigest() external view returns (bytes32);

    /// The current FROST group key: x-coordinate and y-parity (0 even, 1 odd).
    function groupKey() external view returns (uint256 x, uint8 parity);

    /// Whether the committee is paused (no report is accepted anywhere while it is).
    function paused() external view returns (bool);
}
