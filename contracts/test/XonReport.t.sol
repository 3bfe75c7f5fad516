// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonFixture} from "./utils/XonFixture.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {XonReport, ReportHeader} from "../src/XonReport.sol";
import {PriceFeedStore} from "../src/PriceFeedStore.sol";

/// External wrappers around the calldata decoders.
contract XonReportHarness {
    function header(bytes calldata report) external pure returns (ReportHeader memory h, bytes memory payload) {
        return XonReport.decodeHeader(report);
    }

    function prices(bytes calldata p) external pure returns (bytes32[] memory, int256[] memory) {
        return XonReport.decodePrices(p);
    }

    function valuations(bytes calldata p) external pure returns (bytes32[] memory, uint256[] memory, bytes32[] memory) {
        return XonReport.decodeValuations(p);
    }

    function hardware(bytes calldata p) external pure returns (bytes32[] memory, uint8[] memory, bytes32[] memory) {
        return XonReport.decodeHardware(p);
    }

    function uptime(bytes calldata p) external pure returns (uint64, bytes32, uint32) {
        return XonReport.decodeUptime(p);
    }

    function keyRotation(bytes calldata p) external pure returns (uint256, uint8, uint8, uint8, bytes32) {
        return XonReport.decodeKeyRotation(p);
    }
}

contract XonReportTest is XonFixture {
    XonReportHarness internal h;
    PriceFeedStore internal store;

    function setUp() public {
        _deployCommittee(5);
        h = new XonReportHarness();
        store = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        _addReceiver(address(store));
    }

    function testFuzz_headerRoundTrips(bytes32 d, uint32 e, uint32 r, uint64 ts, uint8 kind, bytes memory payload)
        public
        view
    {
        bytes memory report = ReportBuilder.report(d, e, r, ts, kind, payload);
        (ReportHeader memory got, bytes memory p) = h.header(report);
        vm.assertEq(got.configDigest, d, "digest");
        vm.assertEq(uint256(got.epoch), e, "epoch");
        vm.assertEq(uint256(got.round), r, "round");
        vm.assertEq(uint256(got.observationsTimestamp), ts, "ts");
        vm.assertEq(uint256(got.kind), kind, "kind");
        vm.assertEq(uint256(got.sequence), 0, "sequence");
        vm.assertEq(keccak256(p), keccak256(payload), "payload");
    }

    /// The receiver's inlined envelope check and XonReport.decodeHeader agree on what is
    /// malformed, for near-valid encodings (one head word replaced) and for trailing bytes.
    function testFuzz_receiverAndLibraryAgree(uint8 word, uint256 value, uint8 trailing) public view {
        bytes memory report = ReportBuilder.report(bytes32("d"), 1, 2, 3, 1, hex"0102030405");
        uint256 w = word % 8;
        assembly {
            mstore(add(report, add(0x20, mul(w, 0x20))), value)
        }
        if (trailing % 4 == 1) report = bytes.concat(report, new bytes(trailing % 40));
        (bool libOk,) = address(h).staticcall(abi.encodeCall(XonReportHarness.header, (report)));
        (bool rxOk, bytes memory ret) =
            address(store).staticcall(abi.encodeCall(PriceFeedStore.transmit, (report, new bytes(128))));
        vm.assertFalse(rxOk, "garbage accepted");
        bool rxMalformed = bytes4(ret) == XonReport.MalformedReport.selector;
        vm.assertEq(rxMalformed, !libOk, "receiver and library disagree");
    }

    function testFuzz_pricesRoundTrip(bytes32[] memory ids, int256 seed) public view {
        int256[] memory values = new int256[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            values[i] = seed ^ int256(i);
        }
        (bytes32[] memory a, int256[] memory b) = h.prices(abi.encode(ids, values));
        vm.assertEq(keccak256(abi.encode(a, b)), keccak256(abi.encode(ids, values)), "round trip");
    }

    function testFuzz_valuationsAndHardwareRoundTrip(bytes32[] memory ids, uint256 seed) public view {
        uint256[] memory values = new uint256[](ids.length);
        uint8[] memory statuses = new uint8[](ids.length);
        bytes32[] memory hashes = new bytes32[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            values[i] = seed ^ i;
            statuses[i] = uint8(seed >> i);
            hashes[i] = keccak256(abi.encode(seed, i));
        }
        (bytes32[] memory a, uint256[] memory b, bytes32[] memory c) = h.valuations(abi.encode(ids, values, hashes));
        vm.assertEq(keccak256(abi.encode(a, b, c)), keccak256(abi.encode(ids, values, hashes)), "valuations");
        (bytes32[] memory d, uint8[] memory e, bytes32[] memory f) = h.hardware(abi.encode(ids, statuses, hashes));
        vm.assertEq(keccak256(abi.encode(d, e, f)), keccak256(abi.encode(ids, statuses, hashes)), "hardware");
    }

    function test_malformedPayloadsRejected() public {
        bytes32[] memory one = new bytes32[](1);
        uint256[] memory two = new uint256[](2);
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.valuations(abi.encode(one, two, one));
        uint256[] memory dirty = new uint256[](1);
        dirty[0] = 256; // not a uint8
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.hardware(abi.encode(one, dirty, one));
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.uptime(abi.encode(uint256(1) << 64, bytes32(0), uint32(1)));
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.uptime(abi.encode(uint64(1), bytes32(0), uint256(1) << 32));
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.prices(abi.encode(one, one, one));
        vm.expectRevert(XonReport.MalformedPayload.selector);
        h.keyRotation(abi.encode(uint256(1), uint8(0), uint8(1), uint8(1)));
    }

    function test_uptimeAndKeyRotation() public view {
        (uint64 e, bytes32 root, uint32 count) = h.uptime(ReportBuilder.uptimePayload(7, bytes32("root"), 99));
        vm.assertEq(uint256(e), 7, "epoch");
        vm.assertEq(root, bytes32("root"), "root");
        vm.assertEq(uint256(count), 99, "count");
        (uint256 x, uint8 parity, uint8 t, uint8 n, bytes32 members) =
            h.keyRotation(ReportBuilder.keyRotationPayload(123, 1, 5, 7, bytes32("m")));
        vm.assertEq(x, 123, "x");
        vm.assertEq(uint256(parity), 1, "parity");
        vm.assertEq(uint256(t), 5, "t");
        vm.assertEq(uint256(n), 7, "n");
        vm.assertEq(members, bytes32("m"), "members");
    }

    function test_feedId() public pure {
        vm.assertEq(ReportBuilder.feedId("H100-SXM-80GB/USD-HR"), bytes32("H100-SXM-80GB/USD-HR"), "feed id");
        vm.assertEq(
            ReportBuilder.feedId("H100-SXM-80GB/USD-HR"),
            bytes32(0x483130302d53584d2d383047422f5553442d4852000000000000000000000000),
            "ASCII, left-aligned"
        );
    }

    function test_signedMessage() public pure {
        // keccak256(uint256 chainId ‖ address ‖ report), 32 + 20 + len bytes.
        bytes memory report = hex"abcdef";
        bytes32 expected = keccak256(
            hex"0000000000000000000000000000000000000000000000000000000000007a69"
            hex"00000000000000000000000000000000000000aa" hex"abcdef"
        );
        vm.assertEq(XonReport.message(31337, address(0xaa), report), expected, "message");
    }
}
