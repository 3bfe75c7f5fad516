// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonFixture} from "./utils/XonFixture.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {SchnorrSigner} from "./utils/SchnorrSigner.sol";
import {ReportReceiver} from "../src/ReportReceiver.sol";
import {PriceFeedStore} from "../src/PriceFeedStore.sol";
import {XonCommittee} from "../src/XonCommittee.sol";
import {XonReport, ReportHeader} from "../src/XonReport.sol";

/// A receiver of any kind that records what it accepted.
contract MockReceiver is ReportReceiver {
    bytes32 public lastPayloadHash;
    uint32 public lastSequence;

    constructor(address committee_, uint8 kind_, uint64 maxAge_) ReportReceiver(committee_, kind_, maxAge_) {}

    function transmit(bytes calldata report, bytes calldata signature) external {
        (ReportHeader memory h, bytes calldata payload) = _acceptReport(report, signature);
        lastPayloadHash = keccak256(payload);
        lastSequence = h.sequence;
    }
}

/// The checks every ReportReceiver makes, exercised through PriceFeedStore (PRICES) and
/// mock receivers of other kinds: no invalid, replayed, reordered, cross-chain,
/// cross-contract or cross-kind report is accepted; stale and future reports revert with
/// their named errors; key rotation and pause take effect at once.
contract ReportReceiverTest is XonFixture {
    using SchnorrSigner for SchnorrSigner.Key;

    bytes32 internal constant FEED = bytes32("H100-SXM-80GB/USD-HR");

    PriceFeedStore internal store;
    PriceFeedStore internal otherStore;
    MockReceiver internal hardware;

    function setUp() public {
        _deployCommittee(7);
        store = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        otherStore = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        hardware = new MockReceiver(address(committee), XonReport.KIND_HARDWARE, MAX_AGE);
        _addReceiver(address(store));
        _addReceiver(address(otherStore));
        _addReceiver(address(hardware));
        vm.startPrank(OWNER);
        store.registerFeed(FEED, 8, "H100 SXM 80GB rental, USD per GPU-hour", 50, 3600);
        otherStore.registerFeed(FEED, 8, "same feed, other store", 50, 3600);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- helpers

    function _prices(uint32 epoch, uint32 round, uint64 ts, int256 value) internal view returns (bytes memory) {
        return ReportBuilder.report(
            committee.configDigest(), epoch, round, ts, XonReport.KIND_PRICES, ReportBuilder.pricesPayload(FEED, value)
        );
    }

    function _prices(uint32 epoch, uint32 round) internal view returns (bytes memory) {
        return _prices(epoch, round, uint64(block.timestamp), 2_50000000);
    }

    function _latest(PriceFeedStore s) internal view returns (int256 answer) {
        (, answer,,,) = s.latestRoundData(FEED);
    }

    function _submit(bytes memory report) internal {
        _post(store, report, _sign(address(store), report));
    }

    /// How a test sends a PRICES report to a store: ABI `transmit` here, the compact
    /// calldata in ReportReceiverCompactTest, which runs every test of this contract again.
    function _post(PriceFeedStore target, bytes memory report, bytes memory sig) internal virtual {
        target.transmit(report, sig);
    }

    // ---------------------------------------------------------------- acceptance

    function test_acceptsValidReportAndRecordsIt() public {
        bytes memory r = _prices(3, 9);
        bytes memory sig = _sign(address(store), r);
        _post(store, r, sig);
        (uint32 e, uint32 rd) = store.latestEpochAndRound();
        vm.assertEq(uint256(e), 3, "epoch");
        vm.assertEq(uint256(rd), 9, "round");
        vm.assertEq(uint256(store.reportSequence()), 1, "sequence");
        vm.assertEq(_latest(store), 2_50000000, "value");
    }

    function test_anyoneMayRelay() public {
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(store), r);
        vm.prank(address(0xBEEF));
        _post(store, r, sig);
        vm.assertEq(uint256(store.reportSequence()), 1, "accepted from any sender");
    }

    function test_boundaryTimestampsAccepted() public {
        _submit(_prices(1, 1, uint64(block.timestamp - MAX_AGE), 1));
        _submit(_prices(1, 2, uint64(block.timestamp), 2));
        vm.assertEq(_latest(store), 2, "both accepted");
    }

    // ---------------------------------------------------------------- replay / order

    function testFuzz_replayRejected(uint32 epoch, uint32 round) public {
        vm.assume(epoch != 0 || round != 0);
        bytes memory r = _prices(epoch, round);
        bytes memory sig = _sign(address(store), r);
        _post(store, r, sig);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.NotIncreasing.selector, epoch, round, epoch, round));
        _post(store, r, sig);
    }

    function testFuzz_reorderedRejected(uint64 first, uint64 second) public {
        vm.assume(first != 0 && second <= first);
        bytes memory a = _prices(uint32(first >> 32), uint32(first), uint64(block.timestamp), 1);
        bytes memory b = _prices(uint32(second >> 32), uint32(second), uint64(block.timestamp), 2);
        bytes memory sigB = _sign(address(store), b);
        _submit(a);
        vm.expectRevert(
            abi.encodeWithSelector(
                ReportReceiver.NotIncreasing.selector,
                uint32(first >> 32),
                uint32(first),
                uint32(second >> 32),
                uint32(second)
            )
        );
        _post(store, b, sigB);
        vm.assertEq(_latest(store), 1, "older report not applied");
    }

    function test_zeroEpochAndRoundRejected() public {
        bytes memory r = _prices(0, 0);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.NotIncreasing.selector, 0, 0, 0, 0));
        _post(store, r, sig);
    }

    function testFuzz_increasingAccepted(uint32 e1, uint32 r1, uint32 e2, uint32 r2) public {
        uint64 a = (uint64(e1) << 32) | r1;
        uint64 b = (uint64(e2) << 32) | r2;
        vm.assume(a != 0 && b > a);
        _submit(_prices(e1, r1, uint64(block.timestamp), 1));
        _submit(_prices(e2, r2, uint64(block.timestamp), 2));
        vm.assertEq(_latest(store), 2, "newer applied");
        vm.assertEq(uint256(store.reportSequence()), 2, "sequence");
    }

    // ---------------------------------------------------------------- cross-chain / contract / kind

    function testFuzz_crossChainRejected(uint64 otherChain) public {
        vm.assume(otherChain != block.chainid && otherChain != 0);
        bytes memory r = _prices(1, 1);
        bytes32 m = ReportBuilder.message(otherChain, address(store), r);
        bytes memory sig = SchnorrSigner.envelope(groupKey.sign(m), groupKey.x);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, sig);
        // And a report signed for this chain is refused after a chain switch (fork).
        bytes memory sig2 = _sign(address(store), r);
        vm.chainId(otherChain);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, sig2);
    }

    function testFuzz_crossContractRejected(address other) public {
        vm.assume(other != address(store));
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(other, r);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, sig);
        // The concrete case: a report signed for the other store of the same kind.
        bytes memory sigOther = _sign(address(otherStore), r);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, sigOther);
        _post(otherStore, r, sigOther);
        vm.assertEq(_latest(otherStore), 2_50000000, "accepted where it was signed for");
    }

    /// A report whose kind is not the receiver's is refused even when correctly signed for it.
    function testFuzz_wrongKindRejected(uint8 kind, bytes memory payload) public {
        vm.assume(kind != XonReport.KIND_PRICES);
        bytes memory r = ReportBuilder.report(committee.configDigest(), 1, 1, uint64(block.timestamp), kind, payload);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, XonReport.KIND_PRICES, kind));
        store.transmit(r, sig);
    }

    /// A HARDWARE report signed for the hardware receiver cannot be applied as prices, and a
    /// PRICES report signed for the store cannot be applied as hardware.
    function test_reportOfOneKindNeverAppliedAsAnother() public {
        bytes memory hw = ReportBuilder.report(
            committee.configDigest(), 1, 1, uint64(block.timestamp), XonReport.KIND_HARDWARE, hex"00"
        );
        bytes memory hwSig = _sign(address(hardware), hw);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, 1, 3));
        store.transmit(hw, hwSig);
        hardware.transmit(hw, hwSig);

        bytes memory px = _prices(1, 2);
        bytes memory pxSig = _sign(address(store), px);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, 3, 1));
        hardware.transmit(px, pxSig);
        // Signed for the hardware receiver but with kind PRICES: still refused there.
        bytes memory pxForHw = _sign(address(hardware), px);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongKind.selector, 3, 1));
        hardware.transmit(px, pxForHw);
    }

    // ---------------------------------------------------------------- freshness

    function testFuzz_staleRejected(uint32 extra) public {
        vm.warp(block.timestamp + 30 days);
        uint64 ts = uint64(block.timestamp - MAX_AGE - 1 - (extra % 1 days));
        bytes memory r = _prices(1, 1, ts, 1);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.StaleReport.selector, ts, block.timestamp - MAX_AGE));
        _post(store, r, sig);
    }

    function testFuzz_futureRejected(uint64 ahead) public {
        ahead = uint64(bound(ahead, 1, type(uint64).max - block.timestamp));
        uint64 ts = uint64(block.timestamp) + ahead;
        bytes memory r = _prices(1, 1, ts, 1);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.FutureReport.selector, ts, block.timestamp));
        _post(store, r, sig);
    }

    function test_maxReportAgeConfigurableByCommitteeOwnerOnly() public {
        vm.expectRevert(ReportReceiver.OnlyCommitteeOwner.selector);
        store.setMaxReportAge(10);
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.InvalidMaxReportAge.selector, 0));
        store.setMaxReportAge(0);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.InvalidMaxReportAge.selector, 1 << 24));
        store.setMaxReportAge(1 << 24);
        store.setMaxReportAge(10);
        vm.stopPrank();
        vm.assertEq(uint256(store.maxReportAge()), 10, "set");
        uint64 ts = uint64(block.timestamp - 11);
        bytes memory r = _prices(1, 1, ts, 1);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.StaleReport.selector, ts, block.timestamp - 10));
        _post(store, r, sig);
    }

    // ---------------------------------------------------------------- forgery

    /// Any change to one byte of Rx ‖ Ry ‖ z is refused.
    function testFuzz_mutatedSignatureRejected(uint8 index, uint8 delta) public {
        vm.assume(delta != 0);
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(store), r);
        uint256 i = index % 96;
        sig[i] = bytes1(uint8(sig[i]) ^ delta);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, sig);
    }

    /// Any change to one byte of a signed report is refused (by whichever check sees it
    /// first) and leaves the store untouched.
    function testFuzz_tamperedReportRejected(uint16 index, uint8 delta) public {
        vm.assume(delta != 0);
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(store), r);
        uint256 i = index % r.length;
        r[i] = bytes1(uint8(r[i]) ^ delta);
        (bool ok,) = address(store).call(abi.encodeCall(PriceFeedStore.transmit, (r, sig)));
        vm.assertFalse(ok, "tampered report accepted");
        vm.assertEq(uint256(store.reportSequence()), 0, "state untouched");
    }

    function testFuzz_arbitrarySignatureRejected(bytes32 rx, bytes32 ry, bytes32 z) public {
        bytes memory r = _prices(1, 1);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, abi.encodePacked(rx, ry, z, groupKey.x));
    }

    function testFuzz_otherKeyRejected(uint256 seed) public {
        SchnorrSigner.Key memory other = SchnorrSigner.keyFromSeed(seed);
        vm.assume(other.x != groupKey.x);
        bytes memory r = _prices(1, 1);
        bytes32 m = ReportBuilder.message(address(store), r);
        SchnorrSigner.Signature memory s = other.sign(m);
        // Claiming the other key: it is not the committee's.
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongGroupKey.selector, groupKey.x, other.x));
        _post(store, r, SchnorrSigner.envelope(s, other.x));
        // Claiming the committee's key: the signature does not verify under it.
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, r, SchnorrSigner.envelope(s, groupKey.x));
    }

    function testFuzz_wrongConfigDigestRejected(bytes32 digest) public {
        bytes32 current = committee.configDigest();
        vm.assume(digest != current);
        bytes memory r =
            ReportBuilder.report(digest, 1, 1, uint64(block.timestamp), 1, ReportBuilder.pricesPayload(FEED, 1));
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongConfigDigest.selector, current, digest));
        _post(store, r, sig);
    }

    // ---------------------------------------------------------------- encoding

    function test_malformedEnvelopesRejected() public {
        bytes memory good = _prices(1, 1);
        bytes memory sig = _sign(address(store), good);
        bytes[] memory bad = new bytes[](7);
        bad[0] = new bytes(0xdf); // shorter than the head
        bad[1] = abi.encodePacked(good, bytes32(0)); // trailing word
        bad[2] = _withWord(good, 1, 1 << 32); // epoch out of uint32
        bad[3] = _withWord(good, 3, 1 << 64); // timestamp out of uint64
        bad[4] = _withWord(good, 4, 256 + 1); // kind out of uint8
        bad[5] = _withWord(good, 5, 0xe0); // payload offset
        bad[6] = _withWord(good, 6, 0x1000); // payload length beyond the report
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(XonReport.MalformedReport.selector);
            store.transmit(bad[i], sig);
        }
        vm.expectRevert(ReportReceiver.MalformedSignature.selector);
        store.transmit(good, abi.encodePacked(sig, uint8(0)));
        vm.expectRevert(ReportReceiver.MalformedSignature.selector);
        store.transmit(good, new bytes(96));
    }

    function _withWord(bytes memory data, uint256 word, uint256 value) internal pure returns (bytes memory out) {
        out = bytes.concat(data);
        assembly {
            mstore(add(out, add(0x20, mul(word, 0x20))), value)
        }
    }

    // ---------------------------------------------------------------- committee state

    function test_unregisteredReceiverRefusesEverything() public {
        PriceFeedStore lone = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(lone), r);
        vm.expectRevert(ReportReceiver.NotConfigured.selector);
        _post(lone, r, sig);
    }

    function test_removedReceiverRefusesEverything() public {
        vm.prank(OWNER);
        committee.removeReceiver(address(store));
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(store), r);
        vm.expectRevert(ReportReceiver.NotConfigured.selector);
        _post(store, r, sig);
        // Re-added under the same config, its replay state is intact.
        _addReceiver(address(store));
        _post(store, r, sig);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.NotIncreasing.selector, 1, 1, 1, 1));
        _post(store, r, sig);
    }

    function test_onlyCommitteeMayPush() public {
        vm.expectRevert(ReportReceiver.OnlyCommittee.selector);
        store.onCommitteeUpdate(bytes32(0), 1, 0, false, true);
    }

    function test_pauseBlocksReports() public {
        bytes memory r = _prices(1, 1);
        bytes memory sig = _sign(address(store), r);
        vm.prank(OWNER);
        committee.pause();
        vm.expectRevert(ReportReceiver.Paused.selector);
        _post(store, r, sig);
        vm.prank(OWNER);
        committee.unpause();
        _post(store, r, sig);
        vm.assertEq(uint256(store.reportSequence()), 1, "accepted after unpause");
    }

    function test_rotationSwitchesKeyAtOnce() public {
        // A report signed by the current key, not yet submitted when the key rotates.
        bytes memory old = _prices(5, 5);
        bytes memory oldSig = _sign(address(store), old);
        bytes32 oldDigest = committee.configDigest();
        uint256 oldX = groupKey.x;

        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(99);
        bytes memory rot = ReportBuilder.report(
            oldDigest,
            1,
            1,
            uint64(block.timestamp),
            XonReport.KIND_KEY_ROTATION,
            ReportBuilder.keyRotationPayload(next.x, next.parity, 5, 7, keccak256("next members"))
        );
        committee.transmit(rot, _sign(address(committee), rot));
        bytes32 newDigest = committee.configDigest();
        vm.assertTrue(newDigest != oldDigest, "new digest");

        // The old report is refused right away...
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongConfigDigest.selector, newDigest, oldDigest));
        _post(store, old, oldSig);
        // ...as is a report with the new digest signed by the old key.
        groupKey = SchnorrSigner.keyFromSeed(7);
        bytes memory forged = _prices(1, 1);
        bytes memory forgedSig = _sign(address(store), forged);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongGroupKey.selector, next.x, oldX));
        _post(store, forged, forgedSig);
        // (Claiming the new key with the old key's signature.)
        forgedSig = SchnorrSigner.envelope(groupKey.sign(ReportBuilder.message(address(store), forged)), next.x);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        _post(store, forged, forgedSig);

        // The new key works, and (epoch, round) restarted with the new configuration.
        groupKey = next;
        bytes memory fresh = _prices(1, 1);
        _post(store, fresh, _sign(address(store), fresh));
        (uint32 e, uint32 rd) = store.latestEpochAndRound();
        vm.assertEq((uint256(e) << 32) | rd, (1 << 32) | 1, "epoch and round restart");
    }

    function test_pushedStateMatchesCommittee() public view {
        (bytes16 commitment, uint8 parity, bool paused, bool attached) = store.committeeState();
        vm.assertEq(bytes32(commitment), bytes32(store.keyCommitment(groupKey.x, committee.configDigest())), "commit");
        vm.assertEq(uint256(parity), groupKey.parity, "parity");
        vm.assertFalse(paused, "paused");
        vm.assertTrue(attached, "attached");
    }

    function test_constructorChecks() public {
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.InvalidKind.selector, 0));
        new MockReceiver(address(committee), 0, MAX_AGE);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.InvalidKind.selector, 6));
        new MockReceiver(address(committee), 6, MAX_AGE);
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.InvalidMaxReportAge.selector, 0));
        new MockReceiver(address(committee), 1, 0);
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }
}

/// Every test above again, with each PRICES report sent as `transmitCompact_14743166`
/// calldata: both entry points must accept and refuse exactly the same reports, with the
/// same errors. (Tests of malformed ABI envelopes and of other kinds stay on `transmit`.)
contract ReportReceiverCompactTest is ReportReceiverTest {
    function _post(PriceFeedStore target, bytes memory report, bytes memory sig) internal override {
        (bool ok, bytes memory ret) = address(target).call(ReportBuilder.compactPrices(report, sig));
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
