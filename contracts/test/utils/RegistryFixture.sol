// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ReportBuilder} from "./ReportBuilder.sol";
import {XonFixture} from "./XonFixture.sol";
import {HardwareRegistry} from "../../src/HardwareRegistry.sol";
import {UptimeRegistry} from "../../src/UptimeRegistry.sol";
import {ValuationRegistry} from "../../src/ValuationRegistry.sol";
import {DeviceNFT} from "../../src/DeviceNFT.sol";
import {ReportReceiver} from "../../src/ReportReceiver.sol";
import {XonReport} from "../../src/XonReport.sol";

/// @title RegistryFixture (test only)
/// @notice The three registries (hardware, valuation, uptime) attached to a committee whose
/// key the test holds, and one-line helpers to post signed reports and bind devices.
abstract contract RegistryFixture is XonFixture {
    uint256 internal constant UPTIME_CAPACITY = 16;

    HardwareRegistry internal hardware;
    ValuationRegistry internal valuations;
    UptimeRegistry internal uptime;
    DeviceNFT internal nft;

    /// Reports go out as epoch 1, rounds 1, 2, 3, ...: one increasing counter serves every
    /// receiver, since each only needs its own (epoch, round) to increase.
    uint32 internal lastRound;

    function _deployRegistries() internal {
        _deployCommittee(7);
        hardware = new HardwareRegistry(address(committee), MAX_AGE);
        valuations = new ValuationRegistry(address(committee), MAX_AGE);
        uptime = new UptimeRegistry(address(committee), MAX_AGE, UPTIME_CAPACITY);
        nft = hardware.deviceNft();
        _addReceiver(address(hardware));
        _addReceiver(address(valuations));
        _addReceiver(address(uptime));
    }

    function _nextHeader() internal returns (ReportBuilder.Header memory) {
        return _header(1, ++lastRound);
    }

    // ------------------------------------------------------------------ HARDWARE

    function _hardwareReport(bytes32[] memory ids, uint8[] memory statuses, bytes32[] memory fingerprints)
        internal
        returns (bytes memory report, bytes memory signature)
    {
        report = ReportBuilder.hardware(_nextHeader(), ids, statuses, fingerprints);
        signature = _sign(address(hardware), report);
    }

    function _postHardware(bytes32[] memory ids, uint8[] memory statuses, bytes32[] memory fingerprints) internal {
        (bytes memory report, bytes memory signature) = _hardwareReport(ids, statuses, fingerprints);
        hardware.transmit(report, signature);
    }

    /// One device, reported with its registered fingerprint.
    function _postStatus(bytes32 deviceId, uint8 status) internal {
        _postStatus(deviceId, status, deviceId);
    }

    function _postStatus(bytes32 deviceId, uint8 status, bytes32 fingerprint) internal {
        (bytes32[] memory ids, uint8[] memory statuses, bytes32[] memory fps) = _one(deviceId, status, fingerprint);
        _postHardware(ids, statuses, fps);
    }

    function _one(bytes32 deviceId, uint8 status, bytes32 fingerprint)
        internal
        pure
        returns (bytes32[] memory ids, uint8[] memory statuses, bytes32[] memory fps)
    {
        ids = new bytes32[](1);
        statuses = new uint8[](1);
        fps = new bytes32[](1);
        ids[0] = deviceId;
        statuses[0] = status;
        fps[0] = fingerprint;
    }

    // ------------------------------------------------------------------ VALUATIONS

    function _valuationReport(bytes32 assetId, uint256 value, bytes32 reportHash)
        internal
        returns (bytes memory report, bytes memory signature)
    {
        bytes32[] memory ids = new bytes32[](1);
        uint256[] memory values = new uint256[](1);
        bytes32[] memory hashes = new bytes32[](1);
        ids[0] = assetId;
        values[0] = value;
        hashes[0] = reportHash;
        report = ReportBuilder.valuations(_nextHeader(), ids, values, hashes);
        signature = _sign(address(valuations), report);
    }

    function _postValuation(bytes32 assetId, uint256 value) internal {
        (bytes memory report, bytes memory signature) =
            _valuationReport(assetId, value, keccak256(abi.encode("valuation", assetId, value)));
        valuations.transmit(report, signature);
    }

    // ------------------------------------------------------------------ UPTIME

    function _uptimeReport(uint64 uptimeEpoch, bytes32 root, uint32 leafCount)
        internal
        returns (bytes memory report, bytes memory signature)
    {
        report = ReportBuilder.uptime(_nextHeader(), uptimeEpoch, root, leafCount);
        signature = _sign(address(uptime), report);
    }

    function _postUptime(uint64 uptimeEpoch, bytes32 root, uint32 leafCount) internal {
        (bytes memory report, bytes memory signature) = _uptimeReport(uptimeEpoch, root, leafCount);
        uptime.transmit(report, signature);
    }

    // ------------------------------------------------------------------ devices

    function _signDigest(uint256 privateKey, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    /// Binds `fingerprint` to the wallet of `ownerKey` with the device key `deviceKey`.
    function _register(uint256 ownerKey, uint256 deviceKey, bytes32 fingerprint) internal returns (bytes32) {
        address owner = vm.addr(ownerKey);
        address device = vm.addr(deviceKey);
        uint256 nonce = hardware.nonces(owner);
        bytes32 digest = hardware.bindingDigest(fingerprint, device, owner, nonce);
        return hardware.register(
            fingerprint, device, owner, nonce, _signDigest(ownerKey, digest), _signDigest(deviceKey, digest)
        );
    }

    /// Registered, attested ACTIVE and minted: the token is the owner's.
    function _attestedDevice(uint256 ownerKey, uint256 deviceKey, bytes32 fingerprint)
        internal
        returns (uint256 tokenId)
    {
        _register(ownerKey, deviceKey, fingerprint);
        _postStatus(fingerprint, XonReport.STATUS_ACTIVE);
        return hardware.mintDeviceNft(fingerprint);
    }
}

/// Every registry's report entry point.
interface ITransmit {
    function transmit(bytes calldata report, bytes calldata signature) external;
}

/// @title ReceiverConformance (test only)
/// @notice The rejection rules every registry inherits from ReportReceiver, run against one
/// concrete registry: a registry that forgets to call `_acceptReport`, or decodes a payload
/// before the checks, fails here.
abstract contract ReceiverConformance is RegistryFixture {
    /// The registry under test.
    function _target() internal view virtual returns (ReportReceiver);
    /// Its report kind.
    function _kind() internal pure virtual returns (uint8);
    /// A payload the registry accepts.
    function _validPayload() internal view virtual returns (bytes memory);
    /// Some observable effect of `_validPayload` having been applied.
    function _applied() internal view virtual returns (bool);

    function _report(ReportBuilder.Header memory h) internal view returns (bytes memory) {
        return ReportBuilder.report(h, _kind(), _validPayload());
    }

    function _transmit(bytes memory report, bytes memory signature) internal {
        ITransmit(address(_target())).transmit(report, signature);
    }

    function test_conformance_acceptsSignedReport() public {
        bytes memory report = _report(_nextHeader());
        vm.assertFalse(_applied(), "not applied before");
        _transmit(report, _sign(address(_target()), report));
        vm.assertTrue(_applied(), "applied");
        (uint32 epoch, uint32 round) = _target().latestEpochAndRound();
        vm.assertEq(uint256(epoch), 1, "epoch");
        vm.assertEq(uint256(round), lastRound, "round");
    }

    function test_conformance_rejectsReplay() public {
        bytes memory report = _report(_nextHeader());
        bytes memory signature = _sign(address(_target()), report);
        _transmit(report, signature);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.NotIncreasing.selector, 1, lastRound, 1, lastRound));
        _transmit(report, signature);
    }

    function test_conformance_rejectsReordered() public {
        bytes memory older = _report(_nextHeader());
        bytes memory newer = _report(_nextHeader());
        bytes memory olderSig = _sign(address(_target()), older);
        _transmit(newer, _sign(address(_target()), newer));
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.NotIncreasing.selector, 1, lastRound, 1, lastRound - 1));
        _transmit(older, olderSig);
    }

    function test_conformance_rejectsTamperedSignature() public {
        bytes memory report = _report(_nextHeader());
        bytes memory signature = _sign(address(_target()), report);
        signature[70] ^= 0x01; // a bit of z
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _transmit(report, signature);
    }

    function test_conformance_rejectsTamperedReport() public {
        bytes memory report = _report(_nextHeader());
        bytes memory signature = _sign(address(_target()), report);
        report[report.length - 1] ^= 0x01; // last payload byte
        vm.expectRevert();
        _transmit(report, signature);
        vm.assertFalse(_applied(), "not applied");
    }

    function test_conformance_rejectsOtherChain() public {
        bytes memory report = _report(_nextHeader());
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        bytes memory signature = _sign(address(_target()), report);
        vm.chainId(chain);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _transmit(report, signature);
    }

    function test_conformance_rejectsReportSignedForAnotherContract() public {
        bytes memory report = _report(_nextHeader());
        // Same kind, same bytes, signed for a twin registry at another address.
        bytes memory signature = _sign(address(0xBEEF), report);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _transmit(report, signature);
    }

    function test_conformance_rejectsWrongKind() public {
        uint8 other = _kind() == XonReport.KIND_PRICES ? XonReport.KIND_UPTIME : XonReport.KIND_PRICES;
        bytes memory report = ReportBuilder.report(_nextHeader(), other, _validPayload());
        bytes memory signature = _sign(address(_target()), report);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, _kind(), other));
        _transmit(report, signature);
    }

    function test_conformance_rejectsStaleReport() public {
        ReportBuilder.Header memory h = _nextHeader();
        h.observationsTimestamp = uint64(block.timestamp - MAX_AGE - 1);
        bytes memory report = _report(h);
        bytes memory signature = _sign(address(_target()), report);
        vm.expectRevert(
            abi.encodeWithSelector(
                ReportReceiver.StaleReport.selector, h.observationsTimestamp, block.timestamp - MAX_AGE
            )
        );
        _transmit(report, signature);
    }

    function test_conformance_acceptsReportAtMaxAge() public {
        ReportBuilder.Header memory h = _nextHeader();
        h.observationsTimestamp = uint64(block.timestamp - MAX_AGE);
        bytes memory report = _report(h);
        _transmit(report, _sign(address(_target()), report));
        vm.assertTrue(_applied(), "applied");
    }

    function test_conformance_rejectsFutureReport() public {
        ReportBuilder.Header memory h = _nextHeader();
        h.observationsTimestamp = uint64(block.timestamp + 1);
        bytes memory report = _report(h);
        bytes memory signature = _sign(address(_target()), report);
        vm.expectRevert(
            abi.encodeWithSelector(ReportReceiver.FutureReport.selector, h.observationsTimestamp, block.timestamp)
        );
        _transmit(report, signature);
    }

    function test_conformance_rejectsWrongConfigDigest() public {
        ReportBuilder.Header memory h = _nextHeader();
        bytes32 expected = h.configDigest;
        h.configDigest = keccak256("another configuration");
        bytes memory report = _report(h);
        bytes memory signature = _sign(address(_target()), report);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongConfigDigest.selector, expected, h.configDigest));
        _transmit(report, signature);
    }

    function test_conformance_rejectsWhilePaused() public {
        bytes memory report = _report(_nextHeader());
        bytes memory signature = _sign(address(_target()), report);
        vm.prank(OWNER);
        committee.pause();
        vm.expectRevert(ReportReceiver.Paused.selector);
        _transmit(report, signature);
    }

    function test_conformance_rejectsMalformedSignatureLength() public {
        bytes memory report = _report(_nextHeader());
        vm.expectRevert(ReportReceiver.MalformedSignature.selector);
        _transmit(report, new bytes(96));
    }

    /// Any bit flipped anywhere in the report invalidates it.
    function testFuzz_conformance_anyReportBitFlipRejected(uint256 position) public {
        bytes memory report = _report(_nextHeader());
        bytes memory signature = _sign(address(_target()), report);
        position = position % (report.length * 8);
        report[position / 8] ^= bytes1(uint8(1 << (position % 8)));
        vm.expectRevert();
        _transmit(report, signature);
    }
}
