// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {ReportReceiver} from "./ReportReceiver.sol";
import {ReportHeader, XonReport} from "./XonReport.sol";

/// @title UptimeRegistry
/// @notice Keeps the committee's per-epoch uptime Merkle roots (from UPTIME reports) and lets
/// anyone prove a device's uptime in an epoch.
///
/// Leaf (OpenZeppelin StandardMerkleTree convention, leaf types
/// `["bytes32", "uint64", "uint16"]`):
///
///     leaf = keccak256(bytes.concat(keccak256(abi.encode(
///                bytes32 deviceId, uint64 uptimeEpoch, uint16 uptimeBps))))
///
/// `deviceId` is the HardwareRegistry device id (the registration fingerprint), `uptimeEpoch`
/// the uptime epoch number the root is posted for, `uptimeBps` the committee's agreed uptime
/// of the device in that epoch in basis points (0..10000, rounded down). Inner nodes hash the
/// sorted pair (`MerkleProof`'s commutative keccak256). The double hash keeps a 64-byte inner
/// node from ever passing as a leaf.
///
/// Storage: roots live in a ring buffer of `capacity` entries (slot = uptimeEpoch % capacity),
/// every slot written with a non-zero placeholder at deployment. Posting a root then rewrites
/// two non-zero slots (2 × 5,000 gas) instead of creating two (2 × 22,100), which is what
/// keeps a whole UPTIME transaction under 60,000 gas (Uniswap v3's observation array pays
/// its storage up front the same way). A root stays provable for the next `capacity - 1`
/// epochs; a later epoch with the same slot prunes it (`UptimeEpochUnavailable`).
/// A posted epoch's root is never replaced.
contract UptimeRegistry is ReportReceiver {
    enum EntryState {
        NONE, // never used: every slot is written at deployment
        PLACEHOLDER, // written at deployment so the word is non-zero; no root yet
        POSTED
    }

    /// Metadata word of a ring entry.
    struct EpochInfo {
        EntryState state;
        uint64 uptimeEpoch;
        uint32 leafCount;
        uint64 postedAt; // observationsTimestamp of the report that posted the root
    }

    uint256 public constant MAX_UPTIME_BPS = 10_000;

    /// Number of epochs kept (ring buffer length).
    uint256 public immutable capacity;

    // Mappings keyed by ring index rather than arrays: no length word to read on each access.
    mapping(uint256 index => bytes32) private _roots;
    mapping(uint256 index => EpochInfo) private _infos;

    event UptimeRootPosted(uint64 indexed uptimeEpoch, bytes32 merkleRoot, uint32 leafCount, uint64 observedAt);

    error ZeroCapacity();
    error ZeroMerkleRoot();
    error EmptyUptimeTree();
    error UptimeEpochAlreadyPosted(uint64 uptimeEpoch);
    /// The ring slot of `uptimeEpoch` already holds the newer `heldEpoch`.
    error UptimeEpochTooOld(uint64 uptimeEpoch, uint64 heldEpoch);
    /// Never posted, or pruned from the ring buffer.
    error UptimeEpochUnavailable(uint64 uptimeEpoch);

    /// @param committee_ the XonCommittee whose group key signs UPTIME reports
    /// @param maxReportAge_ seconds a report's observationsTimestamp may lag the block time
    /// @param capacity_ epochs kept; deployment pays ~45,000 gas per entry up front
    constructor(address committee_, uint64 maxReportAge_, uint256 capacity_)
        ReportReceiver(committee_, XonReport.KIND_UPTIME, maxReportAge_)
    {
        if (capacity_ == 0) revert ZeroCapacity();
        capacity = capacity_;
        for (uint256 i = 0; i < capacity_; ++i) {
            _roots[i] = bytes32(uint256(1));
            _infos[i] = EpochInfo({state: EntryState.PLACEHOLDER, uptimeEpoch: 0, leafCount: 0, postedAt: 0});
        }
    }

    /// @notice Submits a committee-signed UPTIME report. Permissionless.
    function transmit(bytes calldata report, bytes calldata signature) external {
        (ReportHeader memory header, bytes calldata payload) = _acceptReport(report, signature);
        (uint64 uptimeEpoch, bytes32 root, uint32 leafCount) = XonReport.decodeUptime(payload);
        if (root == bytes32(0)) revert ZeroMerkleRoot();
        if (leafCount == 0) revert EmptyUptimeTree();

        uint256 index = uptimeEpoch % capacity;
        EpochInfo storage info = _infos[index];
        if (info.state == EntryState.POSTED) {
            uint64 held = info.uptimeEpoch;
            if (uptimeEpoch == held) revert UptimeEpochAlreadyPosted(uptimeEpoch);
            if (uptimeEpoch < held) revert UptimeEpochTooOld(uptimeEpoch, held);
        }
        uint64 observedAt = header.observationsTimestamp;
        _roots[index] = root;
        _infos[index] =
            EpochInfo({state: EntryState.POSTED, uptimeEpoch: uptimeEpoch, leafCount: leafCount, postedAt: observedAt});
        emit UptimeRootPosted(uptimeEpoch, root, leafCount, observedAt);
    }

    /// @notice Whether `proof` shows that `deviceId` had `uptimeBps` uptime in `uptimeEpoch`.
    /// Reverts `UptimeEpochUnavailable` when the epoch's root is not held.
    function verifyUptime(bytes32 deviceId, uint64 uptimeEpoch, uint16 uptimeBps, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return MerkleProof.verifyCalldata(proof, _rootOf(uptimeEpoch), uptimeLeaf(deviceId, uptimeEpoch, uptimeBps));
    }

    /// @notice Generic form: whether `leaf` (already double-hashed) is in the epoch's tree.
    function verifyLeaf(uint64 uptimeEpoch, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _rootOf(uptimeEpoch), leaf);
    }

    /// @notice The leaf hash for (deviceId, uptimeEpoch, uptimeBps); see the contract notes.
    function uptimeLeaf(bytes32 deviceId, uint64 uptimeEpoch, uint16 uptimeBps) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(deviceId, uptimeEpoch, uptimeBps))));
    }

    /// @notice Root, leaf count and posting time of a held epoch; reverts when not held.
    function epochRoot(uint64 uptimeEpoch)
        external
        view
        returns (bytes32 merkleRoot, uint32 leafCount, uint64 postedAt)
    {
        uint256 index = uptimeEpoch % capacity;
        EpochInfo storage info = _infos[index];
        if (info.state != EntryState.POSTED || info.uptimeEpoch != uptimeEpoch) {
            revert UptimeEpochUnavailable(uptimeEpoch);
        }
        return (_roots[index], info.leafCount, info.postedAt);
    }

    /// @notice Whether the root of `uptimeEpoch` is held.
    function isAvailable(uint64 uptimeEpoch) external view returns (bool) {
        EpochInfo storage info = _infos[uptimeEpoch % capacity];
        return info.state == EntryState.POSTED && info.uptimeEpoch == uptimeEpoch;
    }

    function _rootOf(uint64 uptimeEpoch) private view returns (bytes32) {
        uint256 index = uptimeEpoch % capacity;
        EpochInfo storage info = _infos[index];
        if (info.state != EntryState.POSTED || info.uptimeEpoch != uptimeEpoch) {
            revert UptimeEpochUnavailable(uptimeEpoch);
        }
        return _roots[index];
    }
}
