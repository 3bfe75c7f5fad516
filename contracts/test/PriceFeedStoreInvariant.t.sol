// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonTest} from "./utils/XonTest.sol";
import {Vm} from "./utils/Vm.sol";
import {SchnorrSigner} from "./utils/SchnorrSigner.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {PriceFeedStore} from "../src/PriceFeedStore.sol";
import {XonCommittee} from "../src/XonCommittee.sol";
import {XonReport} from "../src/XonReport.sol";

/// Drives a committee and a price store with a mix of valid and invalid reports, key
/// rotations and pauses, and keeps a model of what must be stored.
contract PriceStoreHandler {
    using SchnorrSigner for SchnorrSigner.Key;

    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant FEEDS = 4;
    uint64 internal constant MAX_AGE = 1 hours;

    XonCommittee public immutable committee;
    PriceFeedStore public immutable store;
    address public immutable owner;

    SchnorrSigner.Key internal key;
    SchnorrSigner.Key internal oldKey;
    bool internal rotated;
    bool public paused;
    uint32 internal epoch = 1;
    uint32 internal round;

    bytes32[FEEDS] public ids;
    int256[FEEDS] public latest;
    uint32[FEEDS] public latestRound;
    uint32 public accepted;
    uint256 public violations;
    uint256 public rejectedAsExpected;

    bytes[] internal acceptedReports;
    bytes[] internal acceptedSignatures;

    constructor(XonCommittee committee_, PriceFeedStore store_, address owner_, SchnorrSigner.Key memory key_) {
        committee = committee_;
        store = store_;
        owner = owner_;
        key = key_;
        for (uint256 i; i < FEEDS; ++i) {
            ids[i] = bytes32(uint256(keccak256(abi.encode("feed", i))) << 96);
        }
    }

    // ------------------------------------------------------------ internals

    function _build(uint256 seed, uint32 e, uint32 r, uint64 ts)
        internal
        view
        returns (bytes memory report, uint256 mask, int256[] memory values)
    {
        mask = seed % (1 << FEEDS);
        if (mask == 0) mask = 1;
        uint256 count;
        for (uint256 i; i < FEEDS; ++i) {
            if (mask & (1 << i) != 0) ++count;
        }
        bytes32[] memory f = new bytes32[](count);
        values = new int256[](count);
        uint256 j;
        for (uint256 i; i < FEEDS; ++i) {
            if (mask & (1 << i) != 0) {
                f[j] = ids[i];
                values[j] = int256(uint256(keccak256(abi.encode(seed, i)))) >> 140;
                ++j;
            }
        }
        report = ReportBuilder.prices(ReportBuilder.Header(committee.configDigest(), e, r, ts), f, values);
    }

    /// A report that must be refused, through ABI `transmit` and, when it is a well-formed
    /// PRICES report (`compactable`), through the compact calldata as well.
    function _expectRejected(bytes memory report, bytes memory signature, bool compactable) internal {
        try store.transmit(report, signature) {
            ++violations;
        } catch {
            ++rejectedAsExpected;
        }
        if (compactable) {
            (bool ok,) = address(store).call(ReportBuilder.compactPrices(report, signature));
            if (ok) ++violations;
            else ++rejectedAsExpected;
        }
    }

    function _expectRejected(bytes memory report, bytes memory signature) internal {
        _expectRejected(report, signature, true);
    }

    /// A valid report, through either entry point.
    function _send(bytes memory report, bytes memory signature, bool compact) internal {
        if (compact) {
            (bool ok, bytes memory ret) = address(store).call(ReportBuilder.compactPrices(report, signature));
            if (!ok) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        } else {
            store.transmit(report, signature);
        }
    }

    /// The (epoch, round) after the last accepted one.
    function _next() internal view returns (uint32, uint32) {
        if (round == type(uint32).max) return (epoch + 1, 1);
        return (epoch, round + 1);
    }

    // ------------------------------------------------------------ actions

    function submitValid(uint256 seed, uint16 age) public {
        (uint32 e, uint32 r) = _next();
        if (seed % 5 == 0) {
            // A new epoch now and then: rounds restart, (epoch, round) still increases.
            (e, r) = (epoch + 1, 1);
        }
        uint64 ts = uint64(block.timestamp - (uint256(age) % MAX_AGE));
        (bytes memory report, uint256 mask, int256[] memory values) = _build(seed, e, r, ts);
        bytes memory sig = key.signReport(address(store), report);
        if (paused) {
            _expectRejected(report, sig);
            return;
        }
        _send(report, sig, (seed >> 128) & 1 == 1);
        (epoch, round) = (e, r);
        ++accepted;
        uint256 j;
        for (uint256 i; i < FEEDS; ++i) {
            if (mask & (1 << i) != 0) {
                latest[i] = values[j++];
                latestRound[i] = accepted;
            }
        }
        acceptedReports.push(report);
        acceptedSignatures.push(sig);
    }

    function replay(uint256 index) public {
        if (acceptedReports.length == 0) return;
        index %= acceptedReports.length;
        _expectRejected(acceptedReports[index], acceptedSignatures[index]);
    }

    /// (epoch, round) at or below the last accepted one.
    function submitNotIncreasing(uint256 seed, uint32 back) public {
        if (round == 0) return;
        uint64 current = (uint64(epoch) << 32) | round;
        uint64 older = current - (uint64(back) % current);
        (bytes memory report,,) = _build(seed, uint32(older >> 32), uint32(older), uint64(block.timestamp));
        _expectRejected(report, key.signReport(address(store), report));
    }

    function submitTampered(uint256 seed, uint16 index, uint8 delta) public {
        if (delta == 0) delta = 1;
        (uint32 e, uint32 r) = _next();
        (bytes memory report,,) = _build(seed, e, r, uint64(block.timestamp));
        bytes memory sig = key.signReport(address(store), report);
        if (seed % 2 == 0) {
            uint256 i = index % report.length;
            report[i] = bytes1(uint8(report[i]) ^ delta);
            _expectRejected(report, sig, false);
        } else {
            uint256 i = index % 128;
            sig[i] = bytes1(uint8(sig[i]) ^ delta);
            _expectRejected(report, sig);
        }
    }

    function submitForeign(uint256 seed, uint8 which) public {
        (uint32 e, uint32 r) = _next();
        (bytes memory report,,) = _build(seed, e, r, uint64(block.timestamp));
        bytes32 m;
        if (which % 3 == 0) {
            m = ReportBuilder.message(block.chainid + 1 + (seed % 1000), address(store), report); // other chain
        } else if (which % 3 == 1) {
            m = ReportBuilder.message(address(committee), report); // other contract
        } else {
            m = ReportBuilder.message(address(uint160(seed)), report);
        }
        _expectRejected(report, SchnorrSigner.envelope(key.sign(m), key.x));
    }

    function submitWrongKind(uint256 seed, uint8 kind) public {
        if (kind == XonReport.KIND_PRICES) kind = XonReport.KIND_UPTIME;
        (uint32 e, uint32 r) = _next();
        bytes memory report = ReportBuilder.report(
            committee.configDigest(), e, r, uint64(block.timestamp), kind, ReportBuilder.pricesPayload(ids[0], 1)
        );
        seed;
        _expectRejected(report, key.signReport(address(store), report), false);
    }

    function submitOutOfTime(uint256 seed, uint32 offset, bool future) public {
        (uint32 e, uint32 r) = _next();
        uint64 ts = future
            ? uint64(block.timestamp + 1 + offset)
            : uint64(block.timestamp - MAX_AGE - 1 - (offset % (block.timestamp - MAX_AGE - 1)));
        (bytes memory report,,) = _build(seed, e, r, ts);
        _expectRejected(report, key.signReport(address(store), report));
    }

    function submitWithOldKey(uint256 seed) public {
        if (!rotated) return;
        (uint32 e, uint32 r) = _next();
        (bytes memory report,,) = _build(seed, e, r, uint64(block.timestamp));
        bytes memory sig = oldKey.signReport(address(store), report);
        _expectRejected(report, sig);
        // Claiming the current key with the old key's signature fails too.
        bytes memory claimed = SchnorrSigner.envelope(oldKey.sign(ReportBuilder.message(address(store), report)), key.x);
        _expectRejected(report, claimed);
    }

    function rotate(uint256 seed) public {
        if (paused) return;
        SchnorrSigner.Key memory next = SchnorrSigner.keyFromSeed(seed);
        if (next.x == key.x) return;
        bytes memory report = ReportBuilder.keyRotation(
            ReportBuilder.Header(committee.configDigest(), 1, 1, uint64(block.timestamp)),
            next.x,
            next.parity,
            3,
            4,
            bytes32(seed)
        );
        committee.transmit(report, key.signReport(address(committee), report));
        oldKey = key;
        key = next;
        rotated = true;
        // The new configuration starts its own (epoch, round) sequence.
        epoch = 1;
        round = 0;
    }

    function togglePause() public {
        vm.prank(owner);
        if (paused) committee.unpause();
        else committee.pause();
        paused = !paused;
    }

    function warp(uint16 dt) public {
        vm.warp(block.timestamp + dt);
    }
}

contract PriceFeedStoreInvariantTest is XonTest {
    PriceStoreHandler internal handler;
    PriceFeedStore internal store;

    function setUp() public {
        address owner = address(0xA11CE);
        vm.warp(1_750_000_000);
        XonCommittee committee = new XonCommittee(owner, 1 hours);
        store = new PriceFeedStore(address(committee), owner, 1 hours);
        SchnorrSigner.Key memory key = SchnorrSigner.keyFromSeed(21);
        vm.startPrank(owner);
        committee.setConfig(key.x, key.parity, 5, 7, bytes32(0));
        committee.addReceiver(address(store));
        vm.stopPrank();
        handler = new PriceStoreHandler(committee, store, owner, key);
        vm.startPrank(owner);
        for (uint256 i; i < 4; ++i) {
            store.registerFeed(handler.ids(i), 8, "", 50, 3600);
        }
        vm.stopPrank();
        targetContract(address(handler));
    }

    /// One campaign checks everything (each invariant function is a campaign of its own).
    /// No invalid, replayed, reordered, cross-chain, cross-contract, wrong-kind, stale,
    /// future or rotated-out-key report was ever accepted; the store's sequence counts the
    /// accepted reports; every feed's latest value and its history agree with the model.
    function invariant_storeMatchesModel() public view {
        vm.assertEq(handler.violations(), 0, "an invalid report was accepted");
        vm.assertEq(uint256(store.reportSequence()), uint256(handler.accepted()), "sequence");
        for (uint256 i; i < 4; ++i) {
            bytes32 id = handler.ids(i);
            uint32 expectedRound = handler.latestRound(i);
            if (expectedRound == 0) continue;
            (uint80 roundId, int256 answer,,,) = store.latestRoundData(id);
            vm.assertEq(uint256(roundId), uint256(expectedRound), "latest round");
            vm.assertEq(answer, handler.latest(i), "latest answer");
            (, int256 again,,,) = store.getRoundData(id, roundId);
            vm.assertEq(again, answer, "history agrees with latest");
        }
    }
}
