// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {DeviceNFT} from "./DeviceNFT.sol";
import {ReportReceiver} from "./ReportReceiver.sol";
import {ReportHeader, XonReport} from "./XonReport.sol";

/// @title HardwareRegistry
/// @notice Binds attested GPU devices to owner wallets and records the committee's view of
/// each device's health from HARDWARE reports.
///
/// Life of a device:
/// 1. **Binding** (`register`, anyone may submit, e.g. the agent or a relayer): the owner
///    wallet *and* the device's identity key both sign the EIP-712 struct
///    `DeviceBinding(bytes32 fingerprint,address deviceKey,address owner,uint256 nonce)`.
///    The owner's signature (EOA or ERC-1271 wallet) is the owner binding; the device key's
///    signature proves the binding was made on the device, so nobody can bind a device they
///    do not run to their own wallet by copying its public fingerprint and key. The device id
///    is the fingerprint (`deviceId == fingerprint`); a fingerprint registers once, ever.
///    A new device's status is UNKNOWN.
/// 2. **Attestation**: HARDWARE reports signed by the committee set the status with the
///    report's `observationsTimestamp`. Nodes should attest a device only from agent
///    messages signed by its registered `deviceKey` (`getDevice(id).deviceKey`).
/// 3. **Token**: once the device is ACTIVE, anyone may call `mintDeviceNft`; the DeviceNFT
///    (token id = `uint256(deviceId)`) goes to the bound owner, once per fingerprint.
///
/// HARDWARE report entries are applied one by one:
/// - status > OFFLINE: the whole report reverts (`InvalidDeviceStatus`); the committee
///   never signs such a value, so this is a bug to surface, not data to skip;
/// - unregistered device id: skipped, `HardwareEntrySkipped(.., UNREGISTERED)` — the
///   committee may attest a device before its binding transaction lands;
/// - an observation older than the device's latest one: skipped (`OUTDATED`); equal
///   timestamps from a later round win;
/// - fingerprint differs from the registered one: recorded as FAILED with reason
///   FINGERPRINT_MISMATCH (DESIGN §7: "fingerprint must match the registered one"); the
///   reported fingerprint is in a `FingerprintMismatch` event;
/// - otherwise the reported status is recorded (reason REPORTED).
contract HardwareRegistry is ReportReceiver, EIP712, Nonces {
    enum DeviceStatus {
        UNKNOWN,
        ACTIVE,
        DEGRADED,
        FAILED,
        OFFLINE
    }

    /// Why a status was recorded.
    enum StatusReason {
        REPORTED,
        FINGERPRINT_MISMATCH
    }

    /// Why a HARDWARE report entry changed nothing.
    enum SkipReason {
        UNREGISTERED,
        OUTDATED
    }

    /// Two storage slots per device; a HARDWARE report entry reads and writes only the first.
    /// Times are 40-bit seconds (good until year 36812; the base rejects future reports).
    struct Device {
        // slot 0
        address owner; // the wallet that bound the device (the NFT holder may differ later)
        DeviceStatus status;
        StatusReason reason;
        uint40 statusSince; // observationsTimestamp of the first report of the current status
        uint40 updatedAt; // observationsTimestamp of the latest applied report (0: none yet)
        // slot 1, written once at registration
        address deviceKey; // the device's identity key (agent signing key)
    }

    bytes32 public constant BINDING_TYPEHASH =
        keccak256("DeviceBinding(bytes32 fingerprint,address deviceKey,address owner,uint256 nonce)");

    /// The token contract of attested devices; created by this registry, which is its minter.
    DeviceNFT public immutable deviceNft;

    mapping(bytes32 deviceId => Device) private _devices;

    event DeviceRegistered(bytes32 indexed deviceId, address indexed owner, address indexed deviceKey);
    event DeviceStatusUpdated(bytes32 indexed deviceId, DeviceStatus status, StatusReason reason, uint64 observedAt);
    /// With a FINGERPRINT_MISMATCH status update: what the device reported instead.
    event FingerprintMismatch(bytes32 indexed deviceId, bytes32 reportedFingerprint);
    event HardwareEntrySkipped(bytes32 indexed deviceId, SkipReason reason);
    event DeviceNftMinted(bytes32 indexed deviceId, address indexed owner, uint256 tokenId);

    error ZeroAddress();
    error ZeroFingerprint();
    error FingerprintAlreadyRegistered(bytes32 fingerprint);
    error InvalidOwnerSignature(address owner);
    error InvalidDeviceSignature(address deviceKey);
    error DeviceNotRegistered(bytes32 deviceId);
    error DeviceNotActive(bytes32 deviceId, DeviceStatus status);
    error InvalidDeviceStatus(bytes32 deviceId, uint8 status);

    /// @param committee_ the XonCommittee whose group key signs HARDWARE reports
    /// @param maxReportAge_ seconds a report's observationsTimestamp may lag the block time
    constructor(address committee_, uint64 maxReportAge_)
        ReportReceiver(committee_, XonReport.KIND_HARDWARE, maxReportAge_)
        EIP712("XON HardwareRegistry", "1")
    {
        deviceNft = new DeviceNFT(address(this));
    }

    // ---------------------------------------------------------------- binding

    /// @notice Binds device `fingerprint` (its device id from now on) to `owner`.
    /// @param nonce must equal `nonces(owner)`; consumed on success, so each owner signature
    /// works once. An owner revokes an unsubmitted signature with `useNonce()`.
    /// @param ownerSignature owner's signature over the EIP-712 `DeviceBinding` digest
    /// (65-byte ECDSA or an ERC-1271 contract signature)
    /// @param deviceSignature the device key's 65-byte ECDSA signature over the same digest
    function register(
        bytes32 fingerprint,
        address deviceKey,
        address owner,
        uint256 nonce,
        bytes calldata ownerSignature,
        bytes calldata deviceSignature
    ) external returns (bytes32 deviceId) {
        if (owner == address(0) || deviceKey == address(0)) revert ZeroAddress();
        if (fingerprint == bytes32(0)) revert ZeroFingerprint();
        deviceId = fingerprint;
        Device storage device = _devices[deviceId];
        if (device.owner != address(0)) revert FingerprintAlreadyRegistered(fingerprint);

        bytes32 digest = bindingDigest(fingerprint, deviceKey, owner, nonce);
        _useCheckedNonce(owner, nonce);
        if (!SignatureChecker.isValidSignatureNowCalldata(owner, digest, ownerSignature)) {
            revert InvalidOwnerSignature(owner);
        }
        // The device key is a bare secp256k1 key held by the agent, never a contract: plain
        // ECDSA (65 bytes, low-s) and no ERC-1271 path.
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, deviceSignature);
        if (err != ECDSA.RecoverError.NoError || recovered != deviceKey) revert InvalidDeviceSignature(deviceKey);

        device.owner = owner;
        device.deviceKey = deviceKey;
        emit DeviceRegistered(deviceId, owner, deviceKey);
    }

    /// @notice Consumes the caller's current nonce, invalidating any binding signature the
    /// caller gave out for it and has not yet seen submitted.
    function useNonce() external returns (uint256) {
        return _useNonce(msg.sender);
    }

    /// @notice The EIP-712 digest both the owner and the device key sign.
    function bindingDigest(bytes32 fingerprint, address deviceKey, address owner, uint256 nonce)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(BINDING_TYPEHASH, fingerprint, deviceKey, owner, nonce)));
    }

    /// @notice The EIP-712 domain separator (name "XON HardwareRegistry", version "1").
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- reports

    /// @notice Submits a committee-signed HARDWARE report. Permissionless: the signature,
    /// not the sender, is what is trusted.
    function transmit(bytes calldata report, bytes calldata signature) external {
        (ReportHeader memory header, bytes calldata payload) = _acceptReport(report, signature);
        // Canonical encoding and equal column lengths are enforced by the decoder.
        (bytes32[] calldata deviceIds, uint8[] calldata statuses, bytes32[] calldata fingerprints) =
            XonReport.decodeHardware(payload);
        uint64 observedAt = header.observationsTimestamp;
        for (uint256 i = 0; i < deviceIds.length; ++i) {
            _applyStatus(deviceIds[i], statuses[i], fingerprints[i], observedAt);
        }
    }

    function _applyStatus(bytes32 deviceId, uint8 rawStatus, bytes32 fingerprint, uint64 observedAt) internal {
        if (rawStatus > uint8(DeviceStatus.OFFLINE)) revert InvalidDeviceStatus(deviceId, rawStatus);
        Device storage device = _devices[deviceId];
        if (device.owner == address(0)) {
            emit HardwareEntrySkipped(deviceId, SkipReason.UNREGISTERED);
            return;
        }
        uint40 updatedAt = device.updatedAt;
        if (observedAt < updatedAt) {
            emit HardwareEntrySkipped(deviceId, SkipReason.OUTDATED);
            return;
        }
        DeviceStatus status = DeviceStatus(rawStatus);
        StatusReason reason = StatusReason.REPORTED;
        // deviceId is the registration fingerprint, so this is "matches the registered one".
        if (fingerprint != deviceId) {
            status = DeviceStatus.FAILED;
            reason = StatusReason.FINGERPRINT_MISMATCH;
            emit FingerprintMismatch(deviceId, fingerprint);
        }
        // observedAt <= block.timestamp (checked by the base), so it fits 40 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint40 at = uint40(observedAt);
        if (status != device.status || updatedAt == 0) device.statusSince = at;
        device.status = status;
        device.reason = reason;
        device.updatedAt = at;
        emit DeviceStatusUpdated(deviceId, status, reason, observedAt);
    }

    // ---------------------------------------------------------------- token

    /// @notice Mints the device's NFT to its bound owner. Anyone may call it (the owner, the
    /// agent, a keeper) once the device is ACTIVE; a second call reverts in DeviceNFT with
    /// `DeviceAlreadyMinted`.
    function mintDeviceNft(bytes32 deviceId) external returns (uint256 tokenId) {
        Device storage device = _devices[deviceId];
        address owner = device.owner;
        if (owner == address(0)) revert DeviceNotRegistered(deviceId);
        if (device.status != DeviceStatus.ACTIVE) revert DeviceNotActive(deviceId, device.status);
        tokenId = deviceNft.mint(owner, deviceId);
        emit DeviceNftMinted(deviceId, owner, tokenId);
    }

    // ---------------------------------------------------------------- views

    /// @notice The full record of a device (all zero when unregistered).
    function getDevice(bytes32 deviceId) external view returns (Device memory) {
        return _devices[deviceId];
    }

    /// @notice What a lending consumer needs: the status, since when it holds, and the time
    /// of the latest observation (all zero/UNKNOWN when unregistered or never attested).
    function deviceStatus(bytes32 deviceId)
        external
        view
        returns (DeviceStatus status, uint64 statusSince, uint64 updatedAt)
    {
        Device storage device = _devices[deviceId];
        return (device.status, uint64(device.statusSince), uint64(device.updatedAt));
    }

    function isRegistered(bytes32 deviceId) external view returns (bool) {
        return _devices[deviceId].owner != address(0);
    }
}
