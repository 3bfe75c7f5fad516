// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

import {ReportReceiver} from "../src/ReportReceiver.sol";
import {UptimeRegistry} from "../src/UptimeRegistry.sol";
import {XonReport} from "../src/XonReport.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {RegistryFixture, ReceiverConformance} from "./utils/RegistryFixture.sol";

contract UptimeRegistryTest is RegistryFixture {
    event log_named_uint(string key, uint256 val);

    /// Reference vector made with OpenZeppelin's own JavaScript library
    /// (npm package openzeppelin merkle-tree, version 1.0.8):
    ///   StandardMerkleTree.of(values, ["bytes32", "uint64", "uint16"])
    /// with values[i] = [keccak256("xon-device-" + i), 4242, bps[i]], bps = [10000, 9950, 0,
    /// 5000, 1]. Leaves, proofs and root are copied from its output.
    uint64 internal constant VEC_EPOCH = 4242;
    bytes32 internal constant VEC_ROOT = 0xde0a90b87765f1711ccd1aa64162375d80bf411c9a555280974de7d4d14d50f9;

    function setUp() public {
        _deployRegistries();
    }

    function _vecLeaves() internal pure returns (bytes32[5] memory leaves, uint16[5] memory bps) {
        leaves = [
            bytes32(0x09cfb67d1c0b6f200fe94d0f302dca0d738b074c4ad22c8f013bc63d290c7496),
            0x4b139ea4b8d1a3e5d14f08f3a672e5e104425b2d0bd32677cb7061e3356b0dfd,
            0xd19974f83947ac973d29b6320defb1eb0ea52af7f6058b3a2bd30fc4273ed10d,
            0xaa25cd1fc6f335956f47e7377eb40ac86452f87a61dfb4c2aff4a4e5e6195df3,
            0x8eda3faf275e6d596006a258158040c89d7f1baf9f93fce296e36319639d2c5b
        ];
        bps = [uint16(10000), 9950, 0, 5000, 1];
    }

    function _vecProof(uint256 i) internal pure returns (bytes32[] memory p) {
        if (i == 0 || i == 1) {
            p = new bytes32[](3);
            p[0] = i == 0
                ? bytes32(0x4b139ea4b8d1a3e5d14f08f3a672e5e104425b2d0bd32677cb7061e3356b0dfd)
                : bytes32(0x09cfb67d1c0b6f200fe94d0f302dca0d738b074c4ad22c8f013bc63d290c7496);
            p[1] = 0xd19974f83947ac973d29b6320defb1eb0ea52af7f6058b3a2bd30fc4273ed10d;
            p[2] = 0x87b1114826b92ea60e2f9a9cdb45e916007bd0bbd3adc9606d0cd010c35d2c78;
        } else if (i == 2) {
            p = new bytes32[](2);
            p[0] = 0xc7a557301c1a6040a06e24e162aa9b0397508482abda899fb42c4e364ad32a61;
            p[1] = 0x87b1114826b92ea60e2f9a9cdb45e916007bd0bbd3adc9606d0cd010c35d2c78;
        } else {
            p = new bytes32[](2);
            p[0] = i == 3
                ? bytes32(0x8eda3faf275e6d596006a258158040c89d7f1baf9f93fce296e36319639d2c5b)
                : bytes32(0xaa25cd1fc6f335956f47e7377eb40ac86452f87a61dfb4c2aff4a4e5e6195df3);
            p[1] = 0x3dfe617deab87693bd38a5bb3b7e96c3424f927407e5bb3f19136bc9f8fcd219;
        }
    }

    function _vecDevice(uint256 i) internal pure returns (bytes32) {
        return
            keccak256(
                bytes(string.concat("xon-device-", i == 0 ? "0" : i == 1 ? "1" : i == 2 ? "2" : i == 3 ? "3" : "4"))
            );
    }

    // ------------------------------------------------------------------ leaf + proofs

    function test_leafMatchesOpenZeppelinStandardMerkleTree() public view {
        (bytes32[5] memory leaves, uint16[5] memory bps) = _vecLeaves();
        for (uint256 i; i < 5; ++i) {
            vm.assertEq(uptime.uptimeLeaf(_vecDevice(i), VEC_EPOCH, bps[i]), leaves[i], "leaf");
        }
    }

    function test_verifyOpenZeppelinVector() public {
        _postUptime(VEC_EPOCH, VEC_ROOT, 5);
        (bytes32[5] memory leaves, uint16[5] memory bps) = _vecLeaves();
        for (uint256 i; i < 5; ++i) {
            bytes32[] memory proof = _vecProof(i);
            vm.assertTrue(uptime.verifyUptime(_vecDevice(i), VEC_EPOCH, bps[i], proof), "valid proof");
            vm.assertTrue(uptime.verifyLeaf(VEC_EPOCH, leaves[i], proof), "valid leaf proof");
            // A claimed uptime one basis point higher, or another device's proof, fails.
            vm.assertFalse(uptime.verifyUptime(_vecDevice(i), VEC_EPOCH, bps[i] + 1, proof), "inflated uptime");
            vm.assertFalse(uptime.verifyUptime(_vecDevice((i + 1) % 5), VEC_EPOCH, bps[i], proof), "other device");
        }
        // An inner node is not a leaf (the double hash): the parent of leaves 0 and 1 with the
        // rest of leaf 0's proof must not verify as a leaf of uptimeLeaf's form.
        bytes32 inner = Hashes.commutativeKeccak256(leaves[0], leaves[1]);
        bytes32[] memory rest = new bytes32[](2);
        rest[0] = 0xd19974f83947ac973d29b6320defb1eb0ea52af7f6058b3a2bd30fc4273ed10d;
        rest[1] = 0x87b1114826b92ea60e2f9a9cdb45e916007bd0bbd3adc9606d0cd010c35d2c78;
        vm.assertTrue(uptime.verifyLeaf(VEC_EPOCH, inner, rest), "raw inner node passes verifyLeaf");
        // ... but no (deviceId, epoch, bps) hashes to it through uptimeLeaf, which is the point
        // of double hashing; verifyUptime only takes the fields.
        (bytes32 root, uint32 count, uint64 postedAt) = uptime.epochRoot(VEC_EPOCH);
        vm.assertEq(root, VEC_ROOT, "root");
        vm.assertEq(uint256(count), 5, "count");
        vm.assertEq(uint256(postedAt), block.timestamp, "postedAt");
    }

    function test_unknownEpochReverts() public {
        vm.expectRevert(abi.encodeWithSelector(UptimeRegistry.UptimeEpochUnavailable.selector, VEC_EPOCH));
        uptime.verifyUptime(_vecDevice(0), VEC_EPOCH, 10000, _vecProof(0));
        _postUptime(VEC_EPOCH, VEC_ROOT, 5);
        // Same ring slot, other epoch.
        uint64 other = VEC_EPOCH + uint64(UPTIME_CAPACITY);
        vm.expectRevert(abi.encodeWithSelector(UptimeRegistry.UptimeEpochUnavailable.selector, other));
        uptime.verifyUptime(_vecDevice(0), other, 10000, _vecProof(0));
        vm.assertFalse(uptime.isAvailable(other), "other not available");
        vm.assertTrue(uptime.isAvailable(VEC_EPOCH), "available");
        // The proof of epoch 4242 does not prove epoch 4243 (the epoch is in the leaf).
        _postUptime(VEC_EPOCH + 1, VEC_ROOT, 5);
        vm.assertFalse(uptime.verifyUptime(_vecDevice(0), VEC_EPOCH + 1, 10000, _vecProof(0)), "epoch in leaf");
    }

    // ------------------------------------------------------------------ posting rules

    function test_postEmitsAndStores() public {
        vm.expectEmit(address(uptime));
        emit UptimeRegistry.UptimeRootPosted(VEC_EPOCH, VEC_ROOT, 5, uint64(block.timestamp));
        _postUptime(VEC_EPOCH, VEC_ROOT, 5);
        vm.assertTrue(uptime.isAvailable(VEC_EPOCH), "available");
    }

    function test_rootIsNeverReplaced() public {
        _postUptime(VEC_EPOCH, VEC_ROOT, 5);
        (bytes memory report, bytes memory sig) = _uptimeReport(VEC_EPOCH, keccak256("other root"), 5);
        vm.expectRevert(abi.encodeWithSelector(UptimeRegistry.UptimeEpochAlreadyPosted.selector, VEC_EPOCH));
        uptime.transmit(report, sig);
    }

    function test_ringBufferPrunesOldEpochs() public {
        uint64 e = 100;
        _postUptime(e, VEC_ROOT, 5);
        uint64 later = e + uint64(UPTIME_CAPACITY);
        _postUptime(later, keccak256("later"), 7);
        vm.assertFalse(uptime.isAvailable(e), "pruned");
        vm.expectRevert(abi.encodeWithSelector(UptimeRegistry.UptimeEpochUnavailable.selector, e));
        uptime.epochRoot(e);
        // The pruned epoch cannot come back.
        (bytes memory report, bytes memory sig) = _uptimeReport(e, VEC_ROOT, 5);
        vm.expectRevert(abi.encodeWithSelector(UptimeRegistry.UptimeEpochTooOld.selector, e, later));
        uptime.transmit(report, sig);
    }

    function test_epochsMayArriveOutOfOrderWithinTheWindow() public {
        _postUptime(10, keccak256("10"), 1);
        _postUptime(8, keccak256("8"), 1);
        vm.assertTrue(uptime.isAvailable(10) && uptime.isAvailable(8), "both held");
    }

    function test_zeroRootAndEmptyTreeRejected() public {
        (bytes memory report, bytes memory sig) = _uptimeReport(1, bytes32(0), 5);
        vm.expectRevert(UptimeRegistry.ZeroMerkleRoot.selector);
        uptime.transmit(report, sig);
        (report, sig) = _uptimeReport(1, VEC_ROOT, 0);
        vm.expectRevert(UptimeRegistry.EmptyUptimeTree.selector);
        uptime.transmit(report, sig);
    }

    function test_malformedPayloadRejected() public {
        bytes memory report = ReportBuilder.report(
            _nextHeader(), XonReport.KIND_UPTIME, abi.encode(uint256(1) << 64, VEC_ROOT, uint32(5))
        );
        bytes memory sig = _sign(address(uptime), report);
        vm.expectRevert(XonReport.MalformedPayload.selector);
        uptime.transmit(report, sig);
    }

    function test_zeroCapacityRejected() public {
        vm.expectRevert(UptimeRegistry.ZeroCapacity.selector);
        new UptimeRegistry(address(committee), MAX_AGE, 0);
    }

    /// Any tree of 1..64 leaves built with sorted-pair hashing verifies every leaf, and a
    /// changed uptime does not.
    function testFuzz_anyTreeVerifies(uint256 seed, uint8 size, uint256 pick, uint64 epoch) public {
        uint256 n = 1 + size % 64;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            leaves[i] = uptime.uptimeLeaf(keccak256(abi.encode(seed, i)), epoch, uint16(i * 97 % 10001));
        }
        uint256 k = pick % n;
        (bytes32 root, bytes32[] memory proof) = _rootAndProof(leaves, k);
        _postUptime(epoch, root, uint32(n));
        bytes32 device = keccak256(abi.encode(seed, k));
        uint16 bps = uint16(k * 97 % 10001);
        vm.assertTrue(uptime.verifyUptime(device, epoch, bps, proof), "member");
        vm.assertFalse(uptime.verifyUptime(device, epoch, bps ^ 1, proof), "changed uptime");
    }

    /// Merkle root and proof of `leaves[k]`: layers of sorted-pair hashes, an odd node is
    /// carried up unchanged (any such tree is valid for OpenZeppelin's MerkleProof).
    function _rootAndProof(bytes32[] memory leaves, uint256 k)
        internal
        pure
        returns (bytes32 root, bytes32[] memory proof)
    {
        bytes32[] memory layer = leaves;
        bytes32[] memory path = new bytes32[](8);
        uint256 depth;
        while (layer.length > 1) {
            uint256 sibling = k ^ 1;
            if (sibling < layer.length) path[depth++] = layer[sibling];
            bytes32[] memory next = new bytes32[]((layer.length + 1) / 2);
            for (uint256 i; i < next.length; ++i) {
                next[i] = 2 * i + 1 < layer.length
                    ? Hashes.commutativeKeccak256(layer[2 * i], layer[2 * i + 1])
                    : layer[2 * i];
            }
            layer = next;
            k /= 2;
        }
        root = layer[0];
        proof = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            proof[i] = path[i];
        }
    }

    // ------------------------------------------------------------------ gas targets

    /// Issue target: one UPTIME root ≤ 60,000 gas for the whole transaction (21,000 base and
    /// calldata included, EIP-7623 floor applied), storage cold as in a fresh transaction.
    function test_gas_uptimeRootTransaction() public {
        // Realistic, full-width values: hourly epoch number since 1970, 10,000 devices.
        uint64 epoch = uint64(block.timestamp / 3600);
        bytes32 root = keccak256("a real root");
        // A first report so the receiver's state word is in its steady (non-zero) state.
        _postUptime(epoch - 1, keccak256("previous"), 10_000);
        vm.warp(block.timestamp + 3600);
        (bytes memory report, bytes memory sig) = _uptimeReport(epoch, root, 10_000);
        bytes memory data = abi.encodeCall(UptimeRegistry.transmit, (report, sig));
        (uint256 execution, uint256 total) = _measureTx(address(uptime), data);
        (uint256 intrinsic, uint256 floor) = _intrinsicGas(data);
        emit log_named_uint("UPTIME calldata bytes", data.length);
        emit log_named_uint("UPTIME intrinsic gas (21000 + calldata)", intrinsic);
        emit log_named_uint("UPTIME EIP-7623 floor", floor);
        emit log_named_uint("UPTIME execution gas", execution);
        emit log_named_uint("UPTIME transaction gas", total);
        vm.assertTrue(uptime.isAvailable(epoch), "posted");
        vm.assertLe(total, 60_000, "UPTIME transaction <= 60,000 gas");
    }

    /// The same for the very first report a fresh registry receives (its state word's
    /// sequence goes from zero to non-zero); also within the target.
    function test_gas_firstUptimeRootTransaction() public {
        (bytes memory report, bytes memory sig) = _uptimeReport(uint64(block.timestamp / 3600), keccak256("r"), 10_000);
        (, uint256 total) = _measureTx(address(uptime), abi.encodeCall(UptimeRegistry.transmit, (report, sig)));
        emit log_named_uint("UPTIME first report transaction gas", total);
        vm.assertLe(total, 60_000, "first UPTIME transaction <= 60,000 gas");
    }

    /// Issue target: verifyUptime with a 20-level proof ≤ 15,000 gas (execution of the
    /// call, storage cold).
    function test_gas_verifyUptime20Levels() public {
        bytes32 device = keccak256("device");
        uint64 epoch = 4242;
        uint16 bps = 9_999;
        bytes32[] memory proof = new bytes32[](20);
        bytes32 node = uptime.uptimeLeaf(device, epoch, bps);
        for (uint256 i; i < 20; ++i) {
            proof[i] = keccak256(abi.encode("sibling", i));
            node = Hashes.commutativeKeccak256(node, proof[i]);
        }
        _postUptime(epoch, node, 1 << 20);
        bytes memory data = abi.encodeCall(UptimeRegistry.verifyUptime, (device, epoch, bps, proof));
        (uint256 execution, uint256 total) = _measureTx(address(uptime), data);
        vm.assertTrue(uptime.verifyUptime(device, epoch, bps, proof), "valid");
        emit log_named_uint("verifyUptime 20 levels: execution gas", execution);
        emit log_named_uint("verifyUptime 20 levels: as its own transaction", total);
        vm.assertLe(execution, 15_000, "verifyUptime(20 levels) <= 15,000 gas");
    }

    function test_gas_deploymentPerEpochSlot() public {
        uint256 before = gasleft();
        new UptimeRegistry(address(committee), MAX_AGE, 1);
        uint256 one = before - gasleft();
        before = gasleft();
        new UptimeRegistry(address(committee), MAX_AGE, 65);
        uint256 many = before - gasleft();
        emit log_named_uint("UptimeRegistry deployment, per ring entry", (many - one) / 64);
        vm.assertLe((many - one) / 64, 46_000, "two fresh words per entry");
    }
}

/// The ReportReceiver rules, through UptimeRegistry.
contract UptimeRegistryConformanceTest is ReceiverConformance {
    function setUp() public {
        _deployRegistries();
    }

    function _target() internal view override returns (ReportReceiver) {
        return uptime;
    }

    function _kind() internal pure override returns (uint8) {
        return XonReport.KIND_UPTIME;
    }

    function _validPayload() internal pure override returns (bytes memory) {
        return ReportBuilder.uptimePayload(77, keccak256("root"), 3);
    }

    function _applied() internal view override returns (bool) {
        return uptime.isAvailable(77);
    }
}
