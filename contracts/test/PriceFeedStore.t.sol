// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {XonFixture} from "./utils/XonFixture.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {PriceFeedStore} from "../src/PriceFeedStore.sol";
import {FeedProxy} from "../src/FeedProxy.sol";
import {ReportReceiver} from "../src/ReportReceiver.sol";
import {XonReport} from "../src/XonReport.sol";

contract PriceFeedStoreTest is XonFixture {
    /// Gas bounds asserted below (see docs/contracts.md §7 for what they are made of). One
    /// feed: 40,000 through the compact entry point (the path nodes and relayers use); the
    /// ABI `transmit` costs more calldata and decoding and has its own bound.
    uint256 internal constant ONE_FEED_TX_GAS = 40_000;
    uint256 internal constant ONE_FEED_ABI_TX_GAS = 44_000;
    uint256 internal constant PER_EXTRA_FEED_GAS = 7_000;
    uint256 internal constant FIFTY_FEEDS_TX_GAS = 400_000;

    uint256 internal constant FEEDS = 50;

    PriceFeedStore internal store;
    bytes32[] internal ids;
    uint32 internal round;

    event log_named_uint(string key, uint256 val);

    function setUp() public virtual {
        _deployCommittee(1);
        store = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        _addReceiver(address(store));
        vm.startPrank(OWNER);
        for (uint256 i; i < FEEDS; ++i) {
            // Realistic ids: 15-20 ASCII characters, like "H100-SXM-80GB/USD-HR".
            bytes32 id = ReportBuilder.feedId(string.concat("GPU-MODEL-", vm.toString(i + 100), "/USD-HR"));
            store.registerFeed(id, 8, "GPU rental, USD per GPU-hour", 50, 3600);
            ids.push(id);
        }
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- helpers

    function _values(uint256 n, int256 base) internal pure returns (int256[] memory v) {
        v = new int256[](n);
        for (uint256 i; i < n; ++i) {
            v[i] = base + int256(i) * 1_000_003;
        }
    }

    function _firstIds(uint256 n) internal view returns (bytes32[] memory out) {
        out = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = ids[i];
        }
    }

    function _report(bytes32[] memory fids, int256[] memory values) internal returns (bytes memory) {
        return ReportBuilder.prices(_header(1, ++round), fids, values);
    }

    function _calldata(bytes32[] memory fids, int256[] memory values) internal returns (bytes memory) {
        bytes memory r = _report(fids, values);
        return abi.encodeCall(PriceFeedStore.transmit, (r, _sign(address(store), r)));
    }

    /// `transmitCompact_14743166` calldata for the report `_calldata` would build.
    function _compactCalldata(bytes32[] memory fids, int256[] memory values) internal returns (bytes memory) {
        bytes memory r = _report(fids, values);
        return ReportBuilder.compactPrices(r, _sign(address(store), r));
    }

    function _submit(bytes32[] memory fids, int256[] memory values) internal {
        bytes memory r = _report(fids, values);
        _post(r, _sign(address(store), r));
    }

    /// How a test sends a PRICES report: ABI `transmit` here, the compact calldata in
    /// PriceFeedStoreCompactTest, which runs every test of this contract again.
    function _post(bytes memory report, bytes memory sig) internal virtual {
        store.transmit(report, sig);
    }

    function _one(bytes32 id, int256 value) internal {
        bytes32[] memory f = new bytes32[](1);
        int256[] memory v = new int256[](1);
        f[0] = id;
        v[0] = value;
        _submit(f, v);
    }

    function _answer(bytes32 id) internal view returns (uint80 roundId, int256 answer) {
        (roundId, answer,,,) = store.latestRoundData(id);
    }

    // ---------------------------------------------------------------- gas

    /// Whole-transaction gas of a PRICES report: execution of the call frame (measured,
    /// storage cold) + intrinsic gas of the exact calldata (see XonFixture._measureTx), for
    /// both entry points, with realistic feed ids (20 ASCII characters) and prices.
    function test_gas_transmit() public {
        // Steady state: every ring slot of every feed already holds a real entry.
        for (uint256 i; i < 8; ++i) {
            vm.warp(block.timestamp + 60);
            _submit(_firstIds(FEEDS), _values(FEEDS, 2_00000000));
        }
        _measure("compact", true, ONE_FEED_TX_GAS);
        _measure("abi", false, ONE_FEED_ABI_TX_GAS);
    }

    function _measure(string memory path, bool compact, uint256 oneFeedBound) internal {
        uint256[4] memory counts = [uint256(1), 2, 10, FEEDS];
        uint256[4] memory total;
        uint256[4] memory execution;
        for (uint256 i; i < 4; ++i) {
            vm.warp(block.timestamp + 60);
            bytes32[] memory f = _firstIds(counts[i]);
            int256[] memory v = _values(counts[i], 2_45678901);
            bytes memory data = compact ? _compactCalldata(f, v) : _calldata(f, v);
            (execution[i], total[i]) = _measureTx(address(store), data);
        }
        emit log_named_uint(string.concat(path, ": 1 feed, execution"), execution[0]);
        emit log_named_uint(string.concat(path, ": 1 feed, transaction"), total[0]);
        emit log_named_uint(string.concat(path, ": 2 feeds, transaction"), total[1]);
        emit log_named_uint(string.concat(path, ": 10 feeds, transaction"), total[2]);
        emit log_named_uint(string.concat(path, ": 50 feeds, execution"), execution[3]);
        emit log_named_uint(string.concat(path, ": 50 feeds, transaction"), total[3]);
        emit log_named_uint(string.concat(path, ": per extra feed (2 - 1)"), total[1] - total[0]);
        emit log_named_uint(string.concat(path, ": per extra feed (avg 1..50)"), (total[3] - total[0]) / (FEEDS - 1));
        vm.assertLe(total[0], oneFeedBound, string.concat(path, ": 1 feed"));
        vm.assertLe(total[1] - total[0], PER_EXTRA_FEED_GAS, string.concat(path, ": second feed"));
        vm.assertLe((total[2] - total[0]) / 9, PER_EXTRA_FEED_GAS, string.concat(path, ": extra feeds up to 10"));
        vm.assertLe(
            (total[3] - total[0]) / (FEEDS - 1), PER_EXTRA_FEED_GAS, string.concat(path, ": extra feeds up to 50")
        );
        vm.assertLe(total[3], FIFTY_FEEDS_TX_GAS, string.concat(path, ": 50 feeds"));
    }

    /// The intrinsic-gas helper against hand-counted calldata.
    function test_intrinsicGasHelper() public pure {
        (uint256 intrinsic, uint256 floor) = _intrinsicGas(hex"00ff0000ab");
        vm.assertEq(intrinsic, 21_000 + 2 * 16 + 3 * 4, "EIP-2028");
        vm.assertEq(floor, 21_000 + 10 * (3 + 4 * 2), "EIP-7623 floor");
    }

    // ---------------------------------------------------------------- registration

    function test_registerFeed() public {
        bytes32 id = bytes32("B200/USD-HR");
        vm.prank(OWNER);
        address proxy = store.registerFeed(id, 6, "B200 rental", 100, 86400);
        PriceFeedStore.FeedConfig memory c = store.feedConfig(id);
        vm.assertTrue(c.registered, "registered");
        vm.assertEq(uint256(c.decimals), 6, "decimals");
        vm.assertEq(uint256(c.deviationThresholdBps), 100, "deviation");
        vm.assertEq(uint256(c.heartbeat), 86400, "heartbeat");
        vm.assertEq(c.proxy, proxy, "proxy");
        vm.assertEq(store.proxyOf(id), proxy, "proxyOf");
        vm.assertEq(keccak256(bytes(c.description)), keccak256("B200 rental"), "description");
        vm.assertEq(uint256(FeedProxy(proxy).decimals()), 6, "proxy decimals");
        vm.assertEq(FeedProxy(proxy).feedId(), id, "proxy feed");
        vm.assertEq(store.feedCount(), FEEDS + 1, "count");
        vm.assertEq(store.feedIds()[FEEDS], id, "listed");
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.NoDataPresent.selector, id));
        store.latestRoundData(id);
    }

    function test_registerFeedChecks() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        store.registerFeed(bytes32("X"), 8, "", 0, 0);
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.FeedAlreadyRegistered.selector, ids[0]));
        store.registerFeed(ids[0], 8, "", 0, 0);
        vm.expectRevert(PriceFeedStore.InvalidFeedId.selector);
        store.registerFeed(bytes32(0), 8, "", 0, 0);
        vm.stopPrank();
    }

    function test_setFeedParameters() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        store.setFeedParameters(ids[0], 25, 600);
        vm.startPrank(OWNER);
        store.setFeedParameters(ids[0], 25, 600);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.FeedNotFound.selector, bytes32("nope")));
        store.setFeedParameters(bytes32("nope"), 25, 600);
        vm.stopPrank();
        PriceFeedStore.FeedConfig memory c = store.feedConfig(ids[0]);
        vm.assertEq(uint256(c.deviationThresholdBps), 25, "deviation");
        vm.assertEq(uint256(c.heartbeat), 600, "heartbeat");
        vm.assertEq(uint256(c.decimals), 8, "decimals unchanged");
    }

    // ---------------------------------------------------------------- updates

    function test_latestRoundDataAfterUpdate() public {
        uint256 observed = block.timestamp - 30;
        bytes memory r = ReportBuilder.report(
            committee.configDigest(),
            2,
            7,
            uint64(observed),
            XonReport.KIND_PRICES,
            ReportBuilder.pricesPayload(ids[3], 2_12345678)
        );
        _post(r, _sign(address(store), r));
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            store.latestRoundData(ids[3]);
        vm.assertEq(uint256(roundId), 1, "round = report sequence");
        vm.assertEq(answer, 2_12345678, "answer");
        vm.assertEq(startedAt, observed, "startedAt = observationsTimestamp");
        vm.assertEq(updatedAt, block.timestamp, "updatedAt = block time");
        vm.assertEq(uint256(answeredInRound), 1, "answeredInRound");
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.NoDataPresent.selector, ids[4]));
        store.latestRoundData(ids[4]);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.FeedNotFound.selector, bytes32("unknown")));
        store.latestRoundData(bytes32("unknown"));
    }

    function test_manyFeedsInOneReport() public {
        _submit(_firstIds(FEEDS), _values(FEEDS, 1_00000000));
        for (uint256 i; i < FEEDS; ++i) {
            (uint80 roundId, int256 answer) = _answer(ids[i]);
            vm.assertEq(uint256(roundId), 1, "round");
            vm.assertEq(answer, 1_00000000 + int256(i) * 1_000_003, "answer");
        }
    }

    function testFuzz_valuesRoundTrip(int128 value) public {
        _one(ids[0], value);
        (, int256 answer) = _answer(ids[0]);
        vm.assertEq(answer, int256(value), "int128 range round-trips, sign included");
    }

    function testFuzz_valueOutOfRangeRejected(int256 value) public {
        vm.assume(value > type(int128).max || value < type(int128).min);
        bytes32[] memory f = _firstIds(2);
        int256[] memory v = new int256[](2);
        v[0] = 1;
        v[1] = value;
        bytes memory r = _report(f, v);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.ValueOutOfRange.selector, ids[1], value));
        store.transmit(r, sig);
        vm.assertEq(uint256(store.reportSequence()), 0, "nothing applied");
    }

    /// An unknown feed anywhere in a report reverts the whole report: no half-application.
    function testFuzz_unknownFeedRevertsWholeReport(bytes32 unknown, uint8 position) public {
        vm.assume(!store.feedConfig(unknown).registered);
        bytes32[] memory f = _firstIds(5);
        f[position % 5] = unknown;
        bytes memory r = _report(f, _values(5, 7));
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.UnknownFeed.selector, unknown));
        _post(r, sig);
        vm.assertEq(uint256(store.reportSequence()), 0, "nothing applied");
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.NoDataPresent.selector, ids[(uint256(position) + 1) % 5]));
        store.latestRoundData(ids[(uint256(position) + 1) % 5]);
    }

    function test_duplicateFeedRejected() public {
        bytes32[] memory f = _firstIds(3);
        f[2] = f[0];
        bytes memory r = _report(f, _values(3, 7));
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.DuplicateFeed.selector, f[0]));
        _post(r, sig);
    }

    function test_emptyReportRejected() public {
        bytes memory r = _report(new bytes32[](0), new int256[](0));
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(PriceFeedStore.EmptyReport.selector);
        store.transmit(r, sig);
    }

    function test_malformedPayloadRejected() public {
        bytes[] memory payloads = new bytes[](5);
        payloads[0] = abi.encode(_firstIds(2), _values(1, 1)); // length mismatch
        payloads[1] = abi.encode(_firstIds(1)); // one array
        payloads[2] = abi.encodePacked(abi.encode(_firstIds(1), _values(1, 1)), bytes32(0)); // trailing word
        payloads[3] = hex"";
        // Second array offset pointing at the first array.
        bytes memory p = abi.encode(_firstIds(1), _values(1, 1));
        assembly {
            mstore(add(p, 0x40), 0x40)
        }
        payloads[4] = p;
        for (uint256 i; i < payloads.length; ++i) {
            bytes memory r = ReportBuilder.report(_header(1, ++round), XonReport.KIND_PRICES, payloads[i]);
            bytes memory sig = _sign(address(store), r);
            vm.expectRevert(XonReport.MalformedPayload.selector);
            store.transmit(r, sig);
        }
    }

    // ---------------------------------------------------------------- history

    function test_getRoundDataWithinHistory() public {
        // Feed 0 in every report, feed 1 in every other one.
        for (uint256 k = 1; k <= 12; ++k) {
            vm.warp(block.timestamp + 60);
            if (k % 2 == 0) {
                bytes32[] memory f = _firstIds(2);
                int256[] memory v = new int256[](2);
                v[0] = int256(k);
                v[1] = int256(k) * 100;
                _submit(f, v);
            } else {
                _one(ids[0], int256(k));
            }
        }
        // Rounds 5..12 are in the history of feed 0.
        for (uint80 k = 5; k <= 12; ++k) {
            (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredIn) = store.getRoundData(ids[0], k);
            vm.assertEq(uint256(roundId), k, "round");
            vm.assertEq(answer, int256(uint256(k)), "answer");
            vm.assertEq(uint256(answeredIn), k, "answeredInRound");
            vm.assertEq(updatedAt, START_TIME + 60 * k, "updatedAt");
        }
        for (uint80 k = 0; k < 5; ++k) {
            vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[0], k));
            store.getRoundData(ids[0], k);
        }
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[0], uint80(13)));
        store.getRoundData(ids[0], 13);
        // Feed 1 exists in even rounds only.
        (, int256 a10,,,) = store.getRoundData(ids[1], 10);
        vm.assertEq(a10, 1000, "feed 1 round 10");
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[1], uint80(11)));
        store.getRoundData(ids[1], 11);
        // A round id beyond uint32 never matches.
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[0], uint80(12 + (1 << 32))));
        store.getRoundData(ids[0], uint80(12 + (1 << 32)));
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.FeedNotFound.selector, bytes32("nope")));
        store.getRoundData(bytes32("nope"), 1);
    }

    /// latestRoundData finds a feed's latest entry however many reports ago it was written.
    function testFuzz_latestAfterOtherReports(uint8 gap) public {
        _one(ids[0], 111);
        uint256 others = uint256(gap) % 20;
        for (uint256 i; i < others; ++i) {
            _one(ids[1 + (i % 3)], int256(i));
        }
        (uint80 roundId, int256 answer) = _answer(ids[0]);
        vm.assertEq(uint256(roundId), 1, "round");
        vm.assertEq(answer, 111, "answer");
        if (others > 0) {
            _one(ids[0], 222);
            (roundId, answer) = _answer(ids[0]);
            vm.assertEq(uint256(roundId), others + 2, "newer round");
            vm.assertEq(answer, 222, "newer answer");
        }
    }

    /// Against a model: random reports over 6 feeds; latest and history always agree.
    function testFuzz_matchesModel(uint256 seed) public {
        uint256 n = 6;
        int256[6] memory latest;
        uint256[6] memory latestRound;
        for (uint256 k = 1; k <= 24; ++k) {
            uint256 mask = uint256(keccak256(abi.encode(seed, k))) % (1 << n);
            if (mask == 0) mask = 1 << (k % n);
            uint256 count;
            for (uint256 i; i < n; ++i) {
                if (mask & (1 << i) != 0) ++count;
            }
            bytes32[] memory f = new bytes32[](count);
            int256[] memory v = new int256[](count);
            uint256 j;
            for (uint256 i; i < n; ++i) {
                if (mask & (1 << i) != 0) {
                    f[j] = ids[i];
                    v[j] = int256(uint256(keccak256(abi.encode(seed, k, i)))) >> 130;
                    latest[i] = v[j];
                    latestRound[i] = k;
                    ++j;
                }
            }
            _submit(f, v);
            for (uint256 i; i < n; ++i) {
                if (latestRound[i] == 0) continue;
                (uint80 roundId, int256 answer) = _answer(ids[i]);
                vm.assertEq(uint256(roundId), latestRound[i], "latest round");
                vm.assertEq(answer, latest[i], "latest answer");
            }
        }
    }

    function test_readersSeeNothingBeforeFirstReport() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.NoDataPresent.selector, ids[0]));
        store.latestRoundData(ids[0]);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[0], uint80(0)));
        store.getRoundData(ids[0], 0);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, ids[0], uint80(1)));
        store.getRoundData(ids[0], 1);
    }

    function test_reportForAnotherReceiverKindRejected() public {
        bytes memory r = ReportBuilder.uptime(_header(1, 1), 1, bytes32(uint256(1)), 2);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, 1, 4));
        store.transmit(r, sig);
    }
}

/// Every test above again, with each PRICES report sent as `transmitCompact_14743166`
/// calldata (tests of reports that compact calldata cannot carry stay on `transmit`:
/// values outside int128, empty and malformed payloads).
contract PriceFeedStoreCompactTest is PriceFeedStoreTest {
    /// A second store with the first 4 feeds, fed through ABI `transmit`.
    PriceFeedStore internal twin;

    function setUp() public override {
        super.setUp();
        twin = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        _addReceiver(address(twin));
        vm.startPrank(OWNER);
        for (uint256 i; i < 4; ++i) {
            twin.registerFeed(ids[i], 8, "", 50, 3600);
        }
        vm.stopPrank();
    }

    function _post(bytes memory report, bytes memory sig) internal override {
        (bool ok, bytes memory ret) = address(store).call(ReportBuilder.compactPrices(report, sig));
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// Lengths that are not selector ‖ 176-byte head ‖ n ≥ 1 × 48-byte entries.
    function testFuzz_compactMalformedLengthRejected(uint16 length) public {
        bytes memory r = _report(_firstIds(1), _values(1, 5));
        bytes memory good = ReportBuilder.compactPrices(r, _sign(address(store), r));
        uint256 len = uint256(length) % 600;
        vm.assume(len < 0xe4 || (len - 0xb4) % 0x30 != 0);
        bytes memory data = new bytes(len);
        for (uint256 i; i < len && i < good.length; ++i) {
            data[i] = good[i];
        }
        if (len < 4) return; // not even a selector: the fallback-less contract reverts too
        (bool ok, bytes memory ret) = address(store).call(data);
        vm.assertFalse(ok, "malformed compact calldata accepted");
        vm.assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(XonReport.MalformedReport.selector)), "error");
        vm.assertEq(uint256(store.reportSequence()), 0, "nothing applied");
    }

    /// The compact path applies exactly what the ABI path applies: two stores, same
    /// reports (one through each entry point), same state after every report.
    function testFuzz_compactMatchesAbi(uint256 seed) public {
        for (uint256 k = 1; k <= 2; ++k) {
            vm.warp(block.timestamp + 1 + (seed >> (8 * k)) % 100);
            uint256 mask = uint256(keccak256(abi.encode(seed, k))) % 15 + 1;
            uint256 count;
            for (uint256 i; i < 4; ++i) {
                if (mask & (1 << i) != 0) ++count;
            }
            bytes32[] memory f = new bytes32[](count);
            int256[] memory v = new int256[](count);
            uint256 j;
            for (uint256 i; i < 4; ++i) {
                if (mask & (1 << i) != 0) {
                    f[j] = ids[i];
                    v[j++] = int256(uint256(keccak256(abi.encode(seed, k, i)))) >> 129; // any int128 value
                }
            }
            ReportBuilder.Header memory h = _header(uint32(seed % 3), uint32(k));
            h.observationsTimestamp -= uint64((seed >> 64) % 60);
            bytes memory r = ReportBuilder.prices(h, f, v);
            _post(r, _sign(address(store), r));
            twin.transmit(r, _sign(address(twin), r));
            vm.assertEq(uint256(store.reportSequence()), uint256(twin.reportSequence()), "sequence");
            for (uint256 i; i < 4; ++i) {
                (bool okA, bytes memory a) = address(store).staticcall(abi.encodeCall(store.latestRoundData, (ids[i])));
                (bool okB, bytes memory b) = address(twin).staticcall(abi.encodeCall(twin.latestRoundData, (ids[i])));
                vm.assertEq(okA, okB, "both have data or neither");
                vm.assertEq(keccak256(a), keccak256(b), "same latestRoundData");
            }
        }
    }
}
