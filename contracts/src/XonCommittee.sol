// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {FrostVerifier} from "./FrostVerifier.sol";
import {ReportReceiver} from "./ReportReceiver.sol";
import {XonReport, ReportHeader} from "./XonReport.sol";
import {IReportReceiver} from "./interfaces/IReportReceiver.sol";
import {IXonCommittee} from "./interfaces/IXonCommittee.sol";

/// @title XonCommittee
/// @notice The oracle committee's on-chain identity: its FROST group key, its config
/// digest and the pause switch, pushed to every registered `ReportReceiver`.
///
/// - The owner (Ownable2Step) bootstraps the configuration with `setConfig` and may
///   replace it later (an emergency power, e.g. if the committee lost its key).
/// - The committee rotates its own key with a KEY_ROTATION report signed with the current
///   key (`transmit`); no owner is involved.
/// - Every configuration gets a fresh digest derived from a counter (see `computeConfigDigest`),
///   so reports of earlier configurations can never be replayed.
/// - `pause` / `unpause` (owner) stop and resume every receiver at once.
///
/// KEY_ROTATION payload: abi.encode(uint256 groupKeyX, uint8 groupKeyParity, uint8 threshold,
/// uint8 committeeSize, bytes32 membersHash).
contract XonCommittee is ReportReceiver, Ownable2Step, IXonCommittee {
    /// Receivers are pushed every change in one loop; this bounds that loop's gas
    /// (≈ 10k per receiver).
    uint256 public constant MAX_RECEIVERS = 64;

    struct Config {
        bytes32 configDigest;
        uint256 groupKeyX;
        uint8 groupKeyParity;
        uint8 threshold;
        uint8 committeeSize;
        uint64 configCount;
        bytes32 membersHash;
    }

    Config private _config;
    bool private _paused;
    address[] private _receivers;
    mapping(address receiver => uint256 indexPlusOne) private _receiverIndex;

    /// `viaReport` is true for a rotation by a KEY_ROTATION report, false for `setConfig`.
    event ConfigSet(
        bytes32 indexed configDigest,
        uint64 configCount,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash,
        bool viaReport
    );
    event CommitteePaused(address indexed by);
    event CommitteeUnpaused(address indexed by);
    event ReceiverAdded(address indexed receiver);
    event ReceiverRemoved(address indexed receiver, bool notified);

    error InvalidGroupKey(uint256 groupKeyX, uint8 groupKeyParity);
    error InvalidThreshold(uint8 threshold, uint8 committeeSize);
    error ReceiverAlreadyAdded(address receiver);
    error ReceiverNotFound(address receiver);
    error TooManyReceivers();
    error NotAReceiver(address receiver);
    error AlreadyInState(bool paused);

    constructor(address initialOwner, uint64 maxReportAge_)
        ReportReceiver(address(this), XonReport.KIND_KEY_ROTATION, maxReportAge_)
        Ownable(initialOwner)
    {}

    // ---------------------------------------------------------------- owner

    /// @notice Installs a configuration (bootstrap, or an emergency replacement).
    function setConfig(
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash
    ) external onlyOwner returns (bytes32 configDigest_) {
        return _setConfig(groupKeyX, groupKeyParity, threshold, committeeSize, membersHash, false);
    }

    function pause() external onlyOwner {
        if (_paused) revert AlreadyInState(true);
        _paused = true;
        emit CommitteePaused(msg.sender);
        _pushAll();
    }

    function unpause() external onlyOwner {
        if (!_paused) revert AlreadyInState(false);
        _paused = false;
        emit CommitteeUnpaused(msg.sender);
        _pushAll();
    }

    /// @notice Registers a receiver and pushes the current state to it. The receiver must
    /// follow this committee (its `committee()` is this contract).
    function addReceiver(address receiver) external onlyOwner {
        if (_receiverIndex[receiver] != 0 || receiver == address(this)) revert ReceiverAlreadyAdded(receiver);
        if (_receivers.length >= MAX_RECEIVERS) revert TooManyReceivers();
        if (!_follows(receiver)) revert NotAReceiver(receiver);
        _receivers.push(receiver);
        _receiverIndex[receiver] = _receivers.length;
        emit ReceiverAdded(receiver);
        Config storage c = _config;
        IReportReceiver(receiver)
            .onCommitteeUpdate(c.configDigest, c.groupKeyX, c.groupKeyParity, _paused, c.configCount != 0);
    }

    /// @notice Unregisters a receiver and detaches it (it then refuses every report, since it
    /// would no longer hear of rotations). A receiver whose hook reverts is still removed
    /// (`notified` false in the event) so a broken receiver cannot block the committee.
    function removeReceiver(address receiver) external onlyOwner {
        uint256 index = _receiverIndex[receiver];
        if (index == 0) revert ReceiverNotFound(receiver);
        address last = _receivers[_receivers.length - 1];
        _receivers[index - 1] = last;
        _receiverIndex[last] = index;
        _receivers.pop();
        delete _receiverIndex[receiver];
        Config storage c = _config;
        bool notified;
        try IReportReceiver(receiver).onCommitteeUpdate(c.configDigest, c.groupKeyX, c.groupKeyParity, _paused, false) {
            notified = true;
        } catch {}
        emit ReceiverRemoved(receiver, notified);
    }

    // ---------------------------------------------------------------- reports

    /// @notice Accepts a KEY_ROTATION report signed with the current key and installs the
    /// configuration it carries. Permissionless: anyone may relay it.
    function transmit(bytes calldata report, bytes calldata signature) external returns (bytes32 configDigest_) {
        (, bytes calldata payload) = _acceptReport(report, signature);
        (uint256 x, uint8 parity, uint8 threshold, uint8 size, bytes32 membersHash) =
            XonReport.decodeKeyRotation(payload);
        return _setConfig(x, parity, threshold, size, membersHash, true);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IXonCommittee
    function configDigest() external view returns (bytes32) {
        return _config.configDigest;
    }

    /// @inheritdoc IXonCommittee
    function groupKey() external view returns (uint256 x, uint8 parity) {
        return (_config.groupKeyX, _config.groupKeyParity);
    }

    /// @inheritdoc IXonCommittee
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @notice The whole current configuration (configCount 0: never configured).
    function latestConfig() external view returns (Config memory) {
        return _config;
    }

    function receivers() external view returns (address[] memory) {
        return _receivers;
    }

    function isReceiver(address receiver) external view returns (bool) {
        return _receiverIndex[receiver] != 0;
    }

    /// @notice The digest of configuration number `configCount` with these parameters on
    /// this chain and committee: keccak256(abi.encode(uint256 chainId, address committee,
    /// uint64 configCount, uint256 groupKeyX, uint8 groupKeyParity, uint8 threshold,
    /// uint8 committeeSize, bytes32 membersHash)). Nodes compute it off-chain to sign the
    /// first reports of a new configuration.
    function computeConfigDigest(
        uint64 configCount,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash
    ) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                block.chainid,
                address(this),
                configCount,
                groupKeyX,
                groupKeyParity,
                threshold,
                committeeSize,
                membersHash
            )
        );
    }

    // ---------------------------------------------------------------- internals

    function owner() public view override(Ownable, IXonCommittee) returns (address) {
        return Ownable.owner();
    }

    function _setConfig(
        uint256 groupKeyX,
        uint8 groupKeyParity,
        uint8 threshold,
        uint8 committeeSize,
        bytes32 membersHash,
        bool viaReport
    ) private returns (bytes32 digest) {
        if (!FrostVerifier.isValidGroupKey(groupKeyX, groupKeyParity)) {
            revert InvalidGroupKey(groupKeyX, groupKeyParity);
        }
        if (threshold == 0 || threshold > committeeSize) revert InvalidThreshold(threshold, committeeSize);
        uint64 count = _config.configCount + 1;
        digest = computeConfigDigest(count, groupKeyX, groupKeyParity, threshold, committeeSize, membersHash);
        _config = Config(digest, groupKeyX, groupKeyParity, threshold, committeeSize, count, membersHash);
        emit ConfigSet(digest, count, groupKeyX, groupKeyParity, threshold, committeeSize, membersHash, viaReport);
        _pushAll();
    }

    /// Pushes the current state to this contract's own receiver state and every receiver.
    function _pushAll() private {
        Config storage c = _config;
        bytes32 digest = c.configDigest;
        uint256 x = c.groupKeyX;
        uint8 parity = c.groupKeyParity;
        bool paused_ = _paused;
        bool configured = c.configCount != 0;
        _applyCommitteeUpdate(digest, x, parity, paused_, configured);
        uint256 n = _receivers.length;
        for (uint256 i; i < n; ++i) {
            IReportReceiver(_receivers[i]).onCommitteeUpdate(digest, x, parity, paused_, configured);
        }
    }

    /// Whether `receiver` is a contract whose `committee()` is this one.
    function _follows(address receiver) private view returns (bool) {
        if (receiver.code.length == 0) return false;
        try ReportReceiver(receiver).committee() returns (address c) {
            return c == address(this);
        } catch {
            return false;
        }
    }
}
