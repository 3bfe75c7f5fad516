// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ReportReceiver} from "../src/ReportReceiver.sol";
import {ValuationRegistry} from "../src/ValuationRegistry.sol";
import {XonReport} from "../src/XonReport.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {RegistryFixture, ReceiverConformance} from "./utils/RegistryFixture.sol";

contract ValuationRegistryTest is RegistryFixture {
    event log_named_uint(string key, uint256 val);

    bytes32 internal constant ASSET = keccak256("GPU-valued");
    bytes32 internal constant HASH = keccak256("valuation report #1");

    function setUp() public {
        _deployRegistries();
    }

    function test_decimals() public view {
        vm.assertEq(uint256(valuations.decimals()), 8, "decimals");
        vm.assertEq(uint256(valuations.DECIMALS()), 8, "DECIMALS");
    }

    function test_reportStoresValueHashAndTime() public {
        (bytes memory report, bytes memory sig) = _valuationReport(ASSET, 21_500e8, HASH);
        vm.expectEmit(address(valuations));
        emit ValuationRegistry.ValuationUpdated(ASSET, 21_500e8, HASH, uint64(block.timestamp));
        valuations.transmit(report, sig);
        (uint256 value, bytes32 h, uint64 at) = valuations.getValuation(ASSET);
        vm.assertEq(value, 21_500e8, "value");
        vm.assertEq(h, HASH, "hash");
        vm.assertEq(uint256(at), block.timestamp, "time");
    }

    function test_latestValuationReportsAge() public {
        vm.expectRevert(abi.encodeWithSelector(ValuationRegistry.NoValuation.selector, ASSET));
        valuations.latestValuation(ASSET);
        _postValuation(ASSET, 1e8);
        uint256 t0 = block.timestamp;
        vm.warp(t0 + 5 hours);
        (uint256 value,, uint64 at, uint256 age) = valuations.latestValuation(ASSET);
        vm.assertEq(value, 1e8, "value");
        vm.assertEq(uint256(at), t0, "updatedAt");
        vm.assertEq(age, 5 hours, "age");
    }

    function test_freshValuationEnforcesMaxAge() public {
        vm.expectRevert(abi.encodeWithSelector(ValuationRegistry.NoValuation.selector, ASSET));
        valuations.freshValuation(ASSET, 1 days);
        _postValuation(ASSET, 3e8);
        uint256 t0 = block.timestamp;
        vm.warp(t0 + 1 days);
        (uint256 value, uint64 at) = valuations.freshValuation(ASSET, 1 days);
        vm.assertEq(value, 3e8, "exactly max age is fresh");
        vm.assertEq(uint256(at), t0, "at");
        vm.warp(t0 + 1 days + 1);
        vm.expectRevert(abi.encodeWithSelector(ValuationRegistry.StaleValuation.selector, ASSET, uint64(t0), 1 days));
        valuations.freshValuation(ASSET, 1 days);
    }

    function test_manyAssetsInOneReport() public {
        uint256 n = 4;
        bytes32[] memory ids = new bytes32[](n);
        uint256[] memory values = new uint256[](n);
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            ids[i] = keccak256(abi.encode(i));
            values[i] = (i + 1) * 1e8;
            hashes[i] = keccak256(abi.encode("h", i));
        }
        bytes memory report = ReportBuilder.valuations(_nextHeader(), ids, values, hashes);
        valuations.transmit(report, _sign(address(valuations), report));
        for (uint256 i; i < n; ++i) {
            (uint256 v, bytes32 h,) = valuations.getValuation(ids[i]);
            vm.assertEq(v, values[i], "value");
            vm.assertEq(h, hashes[i], "hash");
        }
    }

    function test_olderObservationSkipped() public {
        uint256 t0 = block.timestamp;
        vm.warp(t0 + 100);
        _postValuation(ASSET, 5e8);
        ReportBuilder.Header memory h = _nextHeader();
        h.observationsTimestamp = uint64(t0 + 50);
        bytes32[] memory ids = new bytes32[](1);
        uint256[] memory values = new uint256[](1);
        bytes32[] memory hashes = new bytes32[](1);
        ids[0] = ASSET;
        values[0] = 1;
        bytes memory report = ReportBuilder.valuations(h, ids, values, hashes);
        vm.expectEmit(address(valuations));
        emit ValuationRegistry.ValuationSkipped(ASSET, uint64(t0 + 50), uint64(t0 + 100));
        valuations.transmit(report, _sign(address(valuations), report));
        (uint256 v,, uint64 at) = valuations.getValuation(ASSET);
        vm.assertEq(v, 5e8, "kept");
        vm.assertEq(uint256(at), t0 + 100, "kept");
    }

    function test_valueOutOfRangeRevertsWholeReport() public {
        uint256 tooBig = uint256(type(uint192).max) + 1;
        (bytes memory report, bytes memory sig) = _valuationReport(ASSET, tooBig, HASH);
        vm.expectRevert(abi.encodeWithSelector(ValuationRegistry.ValuationOutOfRange.selector, ASSET, tooBig));
        valuations.transmit(report, sig);
    }

    function test_malformedPayloadRejected() public {
        bytes32[] memory ids = new bytes32[](2);
        uint256[] memory values = new uint256[](2);
        bytes32[] memory hashes = new bytes32[](1);
        bytes memory report = ReportBuilder.valuations(_nextHeader(), ids, values, hashes);
        bytes memory sig = _sign(address(valuations), report);
        vm.expectRevert(XonReport.MalformedPayload.selector);
        valuations.transmit(report, sig);
    }

    /// Any value that fits 192 bits round-trips; the age arithmetic never underflows.
    function testFuzz_valueRoundTrip(bytes32 asset, uint192 value, bytes32 hash, uint32 later) public {
        (bytes memory report, bytes memory sig) = _valuationReport(asset, value, hash);
        valuations.transmit(report, sig);
        uint256 t0 = block.timestamp;
        vm.warp(t0 + later);
        (uint256 v, bytes32 h, uint64 at, uint256 age) = valuations.latestValuation(asset);
        vm.assertEq(v, value, "value");
        vm.assertEq(h, hash, "hash");
        vm.assertEq(uint256(at), t0, "at");
        vm.assertEq(age, later, "age");
    }

    function test_gas_valuationReport() public {
        _postValuation(ASSET, 1e8); // steady state: the asset already has a value
        vm.warp(block.timestamp + 60);
        (bytes memory report, bytes memory sig) = _valuationReport(ASSET, 2e8, HASH);
        (uint256 e, uint256 t) =
            _measureTx(address(valuations), abi.encodeCall(ValuationRegistry.transmit, (report, sig)));
        emit log_named_uint("VALUATIONS 1 asset: execution gas", e);
        emit log_named_uint("VALUATIONS 1 asset: transaction gas", t);
        vm.assertLe(t, 70_000, "1-asset VALUATIONS tx");
    }
}

/// The ReportReceiver rules, through ValuationRegistry.
contract ValuationRegistryConformanceTest is ReceiverConformance {
    bytes32 internal constant ASSET = keccak256("conformance asset");

    function setUp() public {
        _deployRegistries();
    }

    function _target() internal view override returns (ReportReceiver) {
        return valuations;
    }

    function _kind() internal pure override returns (uint8) {
        return XonReport.KIND_VALUATIONS;
    }

    function _validPayload() internal pure override returns (bytes memory) {
        bytes32[] memory ids = new bytes32[](1);
        uint256[] memory values = new uint256[](1);
        bytes32[] memory hashes = new bytes32[](1);
        ids[0] = ASSET;
        values[0] = 12_345e8;
        hashes[0] = keccak256("h");
        return ReportBuilder.valuationsPayload(ids, values, hashes);
    }

    function _applied() internal view override returns (bool) {
        (uint256 v,,) = valuations.getValuation(ASSET);
        return v == 12_345e8;
    }
}
