// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonTest} from "./XonTest.sol";
import {Vm} from "./Vm.sol";
import {SchnorrSigner} from "./SchnorrSigner.sol";
import {ReportBuilder} from "./ReportBuilder.sol";
import {XonCommittee} from "../../src/XonCommittee.sol";

/// @title XonFixture (test only)
/// @notice A deployed, configured XonCommittee whose whole group key the test holds, plus
/// helpers to build and sign reports and to measure transaction gas.
abstract contract XonFixture is XonTest {
    using SchnorrSigner for SchnorrSigner.Key;

    address internal constant OWNER = address(0xA11CE);
    uint64 internal constant MAX_AGE = 1 hours;
    /// A realistic block time (mid 2025), so timestamps are full-width in calldata.
    uint256 internal constant START_TIME = 1_750_000_000;

    XonCommittee internal committee;
    SchnorrSigner.Key internal groupKey;

    /// Deploys the committee and installs a key derived from `seed` (t = 5 of n = 7).
    function _deployCommittee(uint256 seed) internal {
        vm.warp(START_TIME);
        committee = new XonCommittee(OWNER, MAX_AGE);
        groupKey = SchnorrSigner.keyFromSeed(seed);
        vm.prank(OWNER);
        committee.setConfig(groupKey.x, groupKey.parity, 5, 7, keccak256("xon.test.members"));
    }

    function _addReceiver(address receiver) internal {
        vm.prank(OWNER);
        committee.addReceiver(receiver);
    }

    /// Header with the committee's current digest and the current block time.
    function _header(uint32 epoch, uint32 round) internal view returns (ReportBuilder.Header memory) {
        return ReportBuilder.Header(committee.configDigest(), epoch, round, uint64(block.timestamp));
    }

    /// The ReportReceiver signature argument for `report` at `verifyingContract`.
    function _sign(address verifyingContract, bytes memory report) internal returns (bytes memory) {
        return groupKey.signReport(verifyingContract, report);
    }

    /// Intrinsic gas of a transaction carrying `data` to an existing contract, no access
    /// list: 21,000 + 16 per non-zero byte + 4 per zero byte (EIP-2028). `floor` is the
    /// EIP-7623 (Prague) minimum 21,000 + 10 · (zero bytes + 4 · non-zero bytes); a
    /// transaction is charged max(intrinsic + execution, floor).
    function _intrinsicGas(bytes memory data) internal pure returns (uint256 intrinsic, uint256 floor) {
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        intrinsic = 21_000 + 16 * nonZeros + 4 * zeros;
        floor = 21_000 + 10 * (zeros + 4 * nonZeros);
    }

    /// Calls `target` with `data` with its storage cold (as at the start of a transaction)
    /// and returns the execution gas of that call frame (what a transaction to `target`
    /// spends after intrinsic gas) and the whole transaction's gas.
    function _measureTx(address target, bytes memory data) internal returns (uint256 execution, uint256 total) {
        vm.cool(target);
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        Vm.Gas memory g = vm.lastCallGas();
        execution = g.gasTotalUsed;
        (uint256 intrinsic, uint256 floor) = _intrinsicGas(data);
        total = intrinsic + execution;
        if (floor > total) total = floor;
    }
}
