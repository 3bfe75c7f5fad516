// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The hook through which `XonCommittee` keeps a receiver's copy of the
/// committee state current. Only the committee may call it.
interface IReportReceiver {
    /// @param configDigest the committee's current config digest
    /// @param groupKeyX the current group key x-coordinate (0 with `attached` false is allowed)
    /// @param groupKeyParity its y-parity
    /// @param paused whether the committee is paused
    /// @param attached false when the receiver is being removed from the committee: it must
    /// then refuse every report, since it will no longer hear of key rotations
    function onCommitteeUpdate(
        bytes32 configDigest,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        bool paused,
        bool attached
    ) external;

    /// The report kind this receiver accepts (see XonReport).
    function reportKind() external view returns (uint8);
}
