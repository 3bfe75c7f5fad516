// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {XonFixture} from "./utils/XonFixture.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {SchnorrSigner} from "./utils/SchnorrSigner.sol";
import {XonCommittee} from "../src/XonCommittee.sol";
import {ReportReceiver} from "../src/ReportReceiver.sol";
import {FrostVerifier} from "../src/FrostVerifier.sol";
import {XonReport} from "../src/XonReport.sol";
import {MockReceiver} from "./ReportReceiver.t.sol";

/// A receiver whose hook starts reverting once broken.
contract BrokenReceiver {
    address public immutable committee;
    bool public broken;

    constructor(address c) {
        committee = c;
    }

    function breakIt() external {
        broken = true;
    }

    function onCommitteeUpdate(bytes32, uint256, uint8, bool, bool) external view {
        require(!broken, "broken");
    }
}

/// A contract that is not a receiver at all.
contract BrokenReceiverless {}

contract XonCommitteeTest is XonFixture {
    using SchnorrSigner for SchnorrSigner.Key;

    bytes32 internal constant MEMBERS = keccak256("xon.test.members");

    MockReceiver internal receiver;

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

    function setUp() public {
        _deployCommittee(11);
        receiver = new MockReceiver(address(committee), XonReport.KIND_UPTIME, MAX_AGE);
        _addReceiver(address(receiver));
    }

    function _rotation(uint32 epoch, uint32 round, SchnorrSigner.Key memory next, uint8 t, uint8 n)
        internal
        view
        returns (bytes memory)
    {
        return ReportBuilder.keyRotation(_header(epoch, round), next.x, next.parity, t, n, keccak256("next"));
    }

    // ---------------------------------------------------------------- bootstrap

    function test_bootstrapState() public view {
        XonCommittee.Config memory c = committee.latestConfig();
        vm.assertEq(c.groupKeyX, groupKey.x, "key x");
        vm.assertEq(uint256(c.groupKeyParity), groupKey.parity, "parity");
        vm.assertEq(uint256(c.threshold), 5, "t");
        vm.assertEq(uint256(c.committeeSize), 7, "n");
        vm.assertEq(uint256(c.configCount), 1, "count");
        vm.assertEq(c.membersHash, MEMBERS, "members");
        vm.assertEq(
            c.configDigest, committee.computeConfigDigest(1, groupKey.x, groupKey.parity, 5, 7, MEMBERS), "digest"
        );
        vm.assertEq(
            c.configDigest,
            keccak256(
                abi.encode(
                    block.chainid,
                    address(committee),
                    uint64(1),
                    groupKey.x,
                    uint8(groupKey.parity),
                    uint8(5),
                    uint8(7),
                    MEMBERS
                )
            ),
            "digest formula"
        );
        (uint256 x, uint8 parity) = committee.groupKey();
        vm.assertEq(x, groupKey.x, "groupKey()");
        vm.assertEq(uint256(parity), groupKey.parity, "groupKey() parity");
        vm.assertEq(committee.owner(), OWNER, "owner");
        vm.assertEq(uint256(committee.reportKind()), XonReport.KIND_KEY_ROTATION, "kind");
        vm.assertEq(committee.committee(), address(committee), "own receiver");
    }

    function test_receiversBeforeBootstrapAreNotConfigured() public {
        XonCommittee fresh = new XonCommittee(OWNER, MAX_AGE);
        MockReceiver r = new MockReceiver(address(fresh), 1, MAX_AGE);
        vm.prank(OWNER);
        fresh.addReceiver(address(r));
        (,,, bool attached) = r.committeeState();
        vm.assertFalse(attached, "not attached before a config exists");
        vm.prank(OWNER);
        fresh.setConfig(groupKey.x, groupKey.parity, 1, 1, bytes32(0));
        (,,, attached) = r.committeeState();
        vm.assertTrue(attached, "attached by setConfig");
    }

    function test_setConfigOnlyOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        committee.setConfig(groupKey.x, groupKey.parity, 5, 7, MEMBERS);
    }

    function test_setConfigRejectsBadKeys() public {
        vm.startPrank(OWNER);
        uint256[4] memory xs = [uint256(0), FrostVerifier.N, FrostVerifier.N + 5, 5];
        for (uint256 i; i < xs.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidGroupKey.selector, xs[i], 0));
            committee.setConfig(xs[i], 0, 5, 7, MEMBERS);
        }
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidGroupKey.selector, groupKey.x, 2));
        committee.setConfig(groupKey.x, 2, 5, 7, MEMBERS);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidThreshold.selector, 0, 7));
        committee.setConfig(groupKey.x, groupKey.parity, 0, 7, MEMBERS);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidThreshold.selector, 8, 7));
        committee.setConfig(groupKey.x, groupKey.parity, 8, 7, MEMBERS);
        vm.stopPrank();
    }

    /// The owner can replace the configuration (emergency): fresh digest, old reports dead.
    function test_setConfigReplacesAndInvalidatesOldReports() public {
        bytes memory r = ReportBuilder.uptime(_header(1, 1), 1, bytes32(uint256(1)), 3);
        bytes memory sig = _sign(address(receiver), r);
        bytes32 before = committee.configDigest();
        vm.prank(OWNER);
        committee.setConfig(groupKey.x, groupKey.parity, 5, 7, MEMBERS); // same key, new count
        bytes32 afterDigest = committee.configDigest();
        vm.assertTrue(before != afterDigest, "digest changes with the count");
        vm.expectRevert(abi.encodeWithSelector(ReportReceiver.WrongConfigDigest.selector, afterDigest, before));
        receiver.transmit(r, sig);
    }

    // ---------------------------------------------------------------- rotation

    function test_rotationByReport() public {
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(12);
        bytes memory r = _rotation(1, 1, next, 3, 4);
        bytes memory sig = _sign(address(committee), r);
        bytes32 expected = committee.computeConfigDigest(2, next.x, next.parity, 3, 4, keccak256("next"));
        vm.expectEmit(address(committee));
        emit ConfigSet(expected, 2, next.x, next.parity, 3, 4, keccak256("next"), true);
        vm.prank(address(0xBEEF)); // anyone may relay it
        bytes32 digest = committee.transmit(r, sig);
        vm.assertEq(digest, expected, "returned digest");
        vm.assertEq(committee.configDigest(), expected, "installed");
        (bytes16 commitment, uint8 parity,, bool attached) = receiver.committeeState();
        vm.assertEq(bytes32(commitment), bytes32(receiver.keyCommitment(next.x, expected)), "pushed");
        vm.assertEq(uint256(parity), next.parity, "pushed parity");
        vm.assertTrue(attached, "still attached");

        // The committee's own replay state restarted; the next rotation is signed by `next`.
        groupKey = next;
        SchnorrSigner.Key memory third = SchnorrSigner.keyFromSeed(13);
        bytes memory r2 = _rotation(1, 1, third, 1, 1);
        committee.transmit(r2, _sign(address(committee), r2));
        (uint256 x,) = committee.groupKey();
        vm.assertEq(x, third.x, "second rotation");
    }

    function test_rotationReportReplayRejected() public {
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(12);
        bytes memory r = _rotation(1, 1, next, 3, 4);
        bytes memory sig = _sign(address(committee), r);
        bytes32 oldDigest = committee.configDigest();
        committee.transmit(r, sig);
        vm.expectRevert(
            abi.encodeWithSelector(ReportReceiver.WrongConfigDigest.selector, committee.configDigest(), oldDigest)
        );
        committee.transmit(r, sig);
    }

    function test_rotationToInvalidKeyReverts() public {
        bytes memory r = ReportBuilder.keyRotation(_header(1, 1), FrostVerifier.N, 0, 3, 4, bytes32(0));
        bytes memory sig = _sign(address(committee), r);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidGroupKey.selector, FrostVerifier.N, 0));
        committee.transmit(r, sig);
        bytes memory r2 = ReportBuilder.keyRotation(_header(1, 1), groupKey.x, groupKey.parity, 5, 4, bytes32(0));
        bytes memory sig2 = _sign(address(committee), r2);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.InvalidThreshold.selector, 5, 4));
        committee.transmit(r2, sig2);
    }

    function test_rotationPayloadMustBeCanonical() public {
        bytes memory payload = abi.encode(groupKey.x, uint256(256), uint8(1), uint8(1), bytes32(0)); // parity > 255
        bytes memory r = ReportBuilder.report(_header(1, 1), XonReport.KIND_KEY_ROTATION, payload);
        bytes memory sig = _sign(address(committee), r);
        vm.expectRevert(XonReport.MalformedPayload.selector);
        committee.transmit(r, sig);
        bytes memory r2 =
            ReportBuilder.report(_header(1, 2), XonReport.KIND_KEY_ROTATION, abi.encodePacked(payload, uint256(0)));
        bytes memory sig2 = _sign(address(committee), r2);
        vm.expectRevert(XonReport.MalformedPayload.selector);
        committee.transmit(r2, sig2);
    }

    function test_rotationSignedByOtherKeyRejected() public {
        SchnorrSigner.Key memory attacker = SchnorrSigner.keyFromSeed(666);
        bytes memory r = _rotation(1, 1, attacker, 1, 1);
        bytes memory sig =
            SchnorrSigner.envelope(attacker.sign(ReportBuilder.message(address(committee), r)), groupKey.x);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        committee.transmit(r, sig);
    }

    /// A rotation report signed for another chain or another contract is refused.
    function test_rotationCrossDomainRejected() public {
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(12);
        bytes memory r = _rotation(1, 1, next, 3, 4);
        bytes memory forReceiver = _sign(address(receiver), r);
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        committee.transmit(r, forReceiver);
        bytes memory otherChain = SchnorrSigner.envelope(
            groupKey.sign(ReportBuilder.message(block.chainid + 1, address(committee), r)), groupKey.x
        );
        vm.expectRevert(ReportReceiver.BadSignature.selector);
        committee.transmit(r, otherChain);
    }

    // ---------------------------------------------------------------- pause

    function test_pauseUnpause() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        committee.pause();
        vm.startPrank(OWNER);
        committee.pause();
        vm.assertTrue(committee.paused(), "paused");
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.AlreadyInState.selector, true));
        committee.pause();
        vm.stopPrank();
        (,, bool paused,) = receiver.committeeState();
        vm.assertTrue(paused, "pushed");

        // Rotation by report is paused too; the owner can still act.
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(12);
        bytes memory r = _rotation(1, 1, next, 3, 4);
        bytes memory sig = _sign(address(committee), r);
        vm.expectRevert(ReportReceiver.Paused.selector);
        committee.transmit(r, sig);

        vm.startPrank(OWNER);
        committee.unpause();
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.AlreadyInState.selector, false));
        committee.unpause();
        vm.stopPrank();
        (,, paused,) = receiver.committeeState();
        vm.assertFalse(paused, "unpause pushed");
        committee.transmit(r, sig);
    }

    // ---------------------------------------------------------------- receivers

    function test_addReceiverChecks() public {
        Ownable h = Ownable(address(new BrokenReceiverless()));
        vm.startPrank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.ReceiverAlreadyAdded.selector, address(receiver)));
        committee.addReceiver(address(receiver));
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.ReceiverAlreadyAdded.selector, address(committee)));
        committee.addReceiver(address(committee));
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.NotAReceiver.selector, address(0xE0A)));
        committee.addReceiver(address(0xE0A));
        XonCommittee other = new XonCommittee(OWNER, MAX_AGE);
        MockReceiver foreign = new MockReceiver(address(other), 1, MAX_AGE);
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.NotAReceiver.selector, address(foreign)));
        committee.addReceiver(address(foreign));
        // A contract without committee() at all.
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.NotAReceiver.selector, address(h)));
        committee.addReceiver(address(h));
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, address(this)));
        committee.addReceiver(address(foreign));
    }

    function test_receiverLimit() public {
        vm.startPrank(OWNER);
        for (uint256 i = 1; i < committee.MAX_RECEIVERS(); ++i) {
            committee.addReceiver(address(new MockReceiver(address(committee), 1, MAX_AGE)));
        }
        address extra = address(new MockReceiver(address(committee), 1, MAX_AGE));
        vm.expectRevert(XonCommittee.TooManyReceivers.selector);
        committee.addReceiver(extra);
        vm.stopPrank();
        vm.assertEq(committee.receivers().length, committee.MAX_RECEIVERS(), "full");

        // A rotation pushes to all of them; its gas stays bounded.
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(12);
        bytes memory r = _rotation(1, 1, next, 3, 4);
        bytes memory sig = _sign(address(committee), r);
        address[] memory all = committee.receivers();
        for (uint256 i; i < all.length; ++i) {
            vm.cool(all[i]);
        }
        (uint256 execution, uint256 total) =
            _measureTx(address(committee), abi.encodeCall(XonCommittee.transmit, (r, sig)));
        emit log_named_uint("rotation with 64 receivers: transaction gas", total);
        vm.assertLe(total, 1_000_000, "rotation gas with MAX_RECEIVERS");
        execution;
        vm.assertEq(
            committee.configDigest(),
            committee.computeConfigDigest(2, next.x, next.parity, 3, 4, keccak256("next")),
            "rotated"
        );
    }

    event log_named_uint(string key, uint256 val);

    function test_removeReceiver() public {
        MockReceiver second = new MockReceiver(address(committee), 1, MAX_AGE);
        _addReceiver(address(second));
        vm.startPrank(OWNER);
        committee.removeReceiver(address(receiver));
        vm.expectRevert(abi.encodeWithSelector(XonCommittee.ReceiverNotFound.selector, address(receiver)));
        committee.removeReceiver(address(receiver));
        vm.stopPrank();
        vm.assertFalse(committee.isReceiver(address(receiver)), "removed");
        vm.assertTrue(committee.isReceiver(address(second)), "other kept");
        vm.assertEq(committee.receivers().length, 1, "one left");
        (,,, bool attached) = receiver.committeeState();
        vm.assertFalse(attached, "detached");
        // A removed receiver does not follow rotations, and refuses everything meanwhile.
        vm.prank(OWNER);
        committee.setConfig(groupKey.x, groupKey.parity, 5, 7, MEMBERS);
        bytes memory r = ReportBuilder.uptime(_header(1, 1), 1, bytes32(uint256(1)), 3);
        bytes memory sig = _sign(address(receiver), r);
        vm.expectRevert(ReportReceiver.NotConfigured.selector);
        receiver.transmit(r, sig);
    }

    function test_brokenReceiverCanBeRemovedButBlocksPushes() public {
        BrokenReceiver broken = new BrokenReceiver(address(committee));
        _addReceiver(address(broken));
        broken.breakIt();
        // A push that fails must not leave a receiver on an old key or unpaused: it reverts.
        vm.prank(OWNER);
        vm.expectRevert("broken");
        committee.pause();
        // Removal still works (a broken receiver cannot hold the committee hostage).
        vm.prank(OWNER);
        committee.removeReceiver(address(broken));
        vm.assertFalse(committee.isReceiver(address(broken)), "removed");
        vm.prank(OWNER);
        committee.pause();
        vm.assertTrue(committee.paused(), "paused after removal");
    }

    function test_ownershipIsTwoStep() public {
        vm.prank(OWNER);
        committee.transferOwnership(address(0xB0B));
        vm.assertEq(committee.owner(), OWNER, "not yet");
        vm.prank(address(0xB0B));
        committee.acceptOwnership();
        vm.assertEq(committee.owner(), address(0xB0B), "accepted");
    }
}
