// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FrostVerifier} from "./FrostVerifier.sol";
import {XonReport, ReportHeader} from "./XonReport.sol";
import {IReportReceiver} from "./interfaces/IReportReceiver.sol";
import {IXonCommittee} from "./interfaces/IXonCommittee.sol";

/// @title ReportReceiver
/// @notice Base of every contract that accepts signed XON reports of one kind.
///
/// Checks, in `_acceptReport`: the receiver is attached to its committee and the committee
/// is not paused; the report's config digest and the group key given with the signature
/// are the committee's current ones; the kind is this receiver's; the observations
/// timestamp is not in the future and at most `maxReportAge` old; (epoch, round) is
/// strictly greater than the last accepted here; and the FROST signature over
/// keccak256(chainId ‖ address(this) ‖ report) verifies under the group key.
///
/// Gas design: everything a report needs besides the signature lives in ONE storage slot
/// (`_state`), read once and written once per report. The committee pushes its state
/// (key, digest, pause) to each registered receiver (`onCommitteeUpdate`) in the same
/// transaction that changes it, so a receiver's copy never lags a rotation. The slot keeps
/// only a 128-bit commitment keccak256(abi.encode(groupKeyX, configDigest))[:16] and the key's
/// parity; the relayer passes groupKeyX after the signature and the receiver checks it
/// against the commitment (cheaper than a second cold storage read). Finding another
/// (key, digest) with the same 128-bit commitment is a 2^128 second-preimage search, the
/// security level of secp256k1 itself.
///
/// `_state` layout (bit 0 = least significant):
///   [  0, 32) sequence: reports accepted here so far
///   [ 32, 64) round of the last accepted report
///   [ 64, 96) epoch of the last accepted report
///   [ 96,120) maxReportAge in seconds
///   [120,128) flags: bit 0 group key parity, bit 1 paused, bit 2 attached
///   [128,256) key commitment
///
/// The signature argument is 128 bytes: Rx ‖ Ry ‖ z ‖ groupKeyX, each a 32-byte
/// big-endian integer (the FROST signature in FrostVerifier's 96-byte layout followed by
/// the current group key's x-coordinate).
abstract contract ReportReceiver is IReportReceiver {
    /// Length of the signature argument: Rx ‖ Ry ‖ z ‖ groupKeyX.
    uint256 public constant SIGNATURE_LENGTH = 128;
    /// Largest maxReportAge the packed state can hold (24 bits, about 194 days).
    uint64 public constant MAX_REPORT_AGE_LIMIT = (1 << 24) - 1;

    uint256 private constant _FLAG_PARITY = 1 << 120;
    uint256 private constant _FLAG_PAUSED = 1 << 121;
    uint256 private constant _FLAG_ATTACHED = 1 << 122;
    uint256 private constant _MASK32 = 0xffffffff;
    uint256 private constant _MASK64 = 0xffffffffffffffff;
    uint256 private constant _MASK24 = 0xffffff;

    /// The XonCommittee this receiver follows.
    address public immutable committee;
    /// The report kind accepted here (XonReport.KIND_*).
    uint8 public immutable reportKind;

    uint256 private _state;

    /// One per accepted report; `epochAndRound` = epoch << 32 | round.
    event ReportAccepted(uint64 epochAndRound, uint32 sequence);
    event CommitteeStateUpdated(bytes16 keyCommitment, uint8 groupKeyParity, bool paused, bool attached);
    event MaxReportAgeSet(uint64 maxReportAge);

    error NotConfigured();
    error Paused();
    error WrongConfigDigest(bytes32 expected, bytes32 got);
    error WrongGroupKey(uint256 expected, uint256 got);
    error WrongKind(uint8 expected, uint8 got);
    error FutureReport(uint64 observationsTimestamp, uint256 blockTimestamp);
    error StaleReport(uint64 observationsTimestamp, uint256 oldestAccepted);
    error NotIncreasing(uint32 lastEpoch, uint32 lastRound, uint32 epoch, uint32 round);
    error BadSignature();
    error MalformedSignature();
    error SequenceExhausted();
    error OnlyCommittee();
    error OnlyCommitteeOwner();
    error InvalidMaxReportAge(uint64 maxReportAge);
    error InvalidKind(uint8 kind);

    constructor(address committee_, uint8 kind_, uint64 maxReportAge_) {
        if (kind_ == XonReport.KIND_INVALID || kind_ > XonReport.KIND_KEY_ROTATION) revert InvalidKind(kind_);
        if (maxReportAge_ == 0 || maxReportAge_ > MAX_REPORT_AGE_LIMIT) revert InvalidMaxReportAge(maxReportAge_);
        committee = committee_;
        reportKind = kind_;
        _state = uint256(maxReportAge_) << 96;
    }

    /// @inheritdoc IReportReceiver
    function onCommitteeUpdate(
        bytes32 configDigest,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        bool paused,
        bool attached
    ) external {
        if (msg.sender != committee) revert OnlyCommittee();
        _applyCommitteeUpdate(configDigest, groupKeyX, groupKeyParity, paused, attached);
    }

    /// @notice Sets how old (observationsTimestamp vs block time) an accepted report may be.
    /// Only the committee's owner.
    function setMaxReportAge(uint64 maxReportAge_) external {
        if (msg.sender != IXonCommittee(committee).owner()) revert OnlyCommitteeOwner();
        if (maxReportAge_ == 0 || maxReportAge_ > MAX_REPORT_AGE_LIMIT) revert InvalidMaxReportAge(maxReportAge_);
        _state = (_state & ~(_MASK24 << 96)) | (uint256(maxReportAge_) << 96);
        emit MaxReportAgeSet(maxReportAge_);
    }

    /// @notice The last accepted (epoch, round); (0, 0) before the first report of a config.
    function latestEpochAndRound() external view returns (uint32 epoch, uint32 round) {
        uint256 s = _state;
        return (uint32(s >> 64), uint32(s >> 32));
    }

    /// @notice Number of reports accepted here (the sequence number of the latest one).
    function reportSequence() public view returns (uint32) {
        return uint32(_state);
    }

    function maxReportAge() external view returns (uint64) {
        return uint64((_state >> 96) & _MASK24);
    }

    /// @notice The receiver's copy of the committee state.
    function committeeState()
        external
        view
        returns (bytes16 commitment, uint8 groupKeyParity, bool paused, bool attached)
    {
        uint256 s = _state;
        return (bytes16(bytes32(s)), uint8((s >> 120) & 1), s & _FLAG_PAUSED != 0, s & _FLAG_ATTACHED != 0);
    }

    /// @notice The commitment a receiver stores for (groupKeyX, configDigest).
    function keyCommitment(uint256 groupKeyX, bytes32 digest) public pure returns (bytes16) {
        return bytes16(keccak256(abi.encode(groupKeyX, digest)));
    }

    /// @notice Checks a report and its signature (see the contract notes), records its
    /// (epoch, round), and returns its header (with this receiver's new sequence number) and
    /// payload. Reverts with a named error on any failure; returns only for a report that
    /// must be applied.
    function _acceptReport(bytes calldata report, bytes calldata signature)
        internal
        returns (ReportHeader memory header, bytes calldata payload)
    {
        // Straight-line assembly: this runs on every report and its cost is in the gas
        // target. It decodes the envelope into `header` and finds the first failed check
        // (codes below); `_revertFailure` re-derives the details for the named error.
        uint256 s = _state;
        payload = report; // set to the payload slice below
        uint256 failure;
        uint256 kind = reportKind;
        assembly ("memory-safe") {
            // The first failed check, in the documented order (0: none).
            function firstFailure(o, len, so, sigLen, state, wantKind) -> code {
                let epoch := calldataload(add(o, 0x20))
                let round := calldataload(add(o, 0x40))
                let ts := calldataload(add(o, 0x60))
                let plen := calldataload(add(o, 0xc0))
                // 1: canonical envelope only: fields in range, payload offset 0xc0, total
                // length exactly 0xe0 + plen rounded up to a word (plen ≤ len first).
                if or(
                    or(
                        lt(len, 0xe0),
                        or(shr(32, or(epoch, round)), or(shr(64, ts), shr(8, calldataload(add(o, 0x80)))))
                    ),
                    or(
                        iszero(eq(calldataload(add(o, 0xa0)), 0xc0)),
                        or(gt(plen, len), iszero(eq(len, add(0xe0, and(add(plen, 31), not(31))))))
                    )
                ) {
                    code := 1
                    leave
                }
                if iszero(eq(sigLen, 128)) {
                    code := 2
                    leave
                }
                if iszero(and(state, _FLAG_ATTACHED)) {
                    code := 3
                    leave
                }
                if and(state, _FLAG_PAUSED) {
                    code := 4
                    leave
                }
                // 5: keccak256(groupKeyX ‖ configDigest)[0:16] must be the stored commitment.
                mstore(0x00, calldataload(add(so, 0x60)))
                mstore(0x20, calldataload(o))
                if shr(128, xor(keccak256(0x00, 0x40), state)) {
                    code := 5
                    leave
                }
                if iszero(eq(calldataload(add(o, 0x80)), wantKind)) {
                    code := 6
                    leave
                }
                if gt(ts, timestamp()) {
                    code := 7
                    leave
                }
                if lt(add(ts, and(shr(96, state), _MASK24)), timestamp()) {
                    code := 8
                    leave
                }
                if iszero(gt(or(shl(32, epoch), round), and(shr(32, state), _MASK64))) { code := 9 }
            }
            failure := firstFailure(report.offset, report.length, signature.offset, signature.length, s, kind)
        }
        if (failure != 0) _revertFailure(failure, report, signature, s);
        uint256 epochAndRound;
        bytes32 m;
        assembly ("memory-safe") {
            let o := report.offset
            let epoch := calldataload(add(o, 0x20))
            let round := calldataload(add(o, 0x40))
            epochAndRound := or(shl(32, epoch), round)
            // Decode into the (zeroed) header; sequence is set below.
            mstore(header, calldataload(o))
            mstore(add(header, 0x20), epoch)
            mstore(add(header, 0x40), round)
            mstore(add(header, 0x60), calldataload(add(o, 0x60)))
            mstore(add(header, 0x80), kind)
            payload.offset := add(o, 0xe0)
            payload.length := calldataload(add(o, 0xc0))
            // m = keccak256(chainId ‖ address(this) ‖ report)
            let ptr := mload(0x40)
            mstore(ptr, chainid())
            mstore(add(ptr, 0x20), shl(96, address()))
            calldatacopy(add(ptr, 0x34), o, report.length)
            m := keccak256(ptr, add(0x34, report.length))
        }
        _verifySignature(s, m, signature);
        uint256 sequence = (s & _MASK32) + 1;
        if (sequence > _MASK32) revert SequenceExhausted();
        _state = (s & ~(_MASK64 << 32 | _MASK32)) | (epochAndRound << 32) | sequence;
        header.sequence = uint32(sequence);
        // emit ReportAccepted(uint64(epochAndRound), uint32(sequence)), from scratch space.
        bytes32 topic = ReportAccepted.selector;
        assembly ("memory-safe") {
            mstore(0x00, epochAndRound)
            mstore(0x20, sequence)
            log1(0x00, 0x40, topic)
        }
    }

    /// The FROST signature (Rx ‖ Ry ‖ z ‖ groupKeyX) over m under the stored key parity.
    function _verifySignature(uint256 s, bytes32 m, bytes calldata signature) private view {
        uint256 rx;
        uint256 ry;
        uint256 z;
        uint256 px;
        assembly ("memory-safe") {
            let so := signature.offset
            rx := calldataload(so)
            ry := calldataload(add(so, 0x20))
            z := calldataload(add(so, 0x40))
            px := calldataload(add(so, 0x60))
        }
        if (!FrostVerifier.verify(px, (s >> 120) & 1, m, rx, ry, z)) revert BadSignature();
    }

    /// Reverts with the named error for failure `code` of `_acceptReport` (cold path).
    function _revertFailure(uint256 code, bytes calldata report, bytes calldata signature, uint256 s) private view {
        if (code == 1) revert XonReport.MalformedReport();
        if (code == 2) revert MalformedSignature();
        if (code == 3) revert NotConfigured();
        if (code == 4) revert Paused();
        (ReportHeader memory h,) = XonReport.decodeHeader(report);
        if (code == 5) _revertConfigMismatch(h.configDigest, uint256(bytes32(signature[96:128])));
        if (code == 6) revert WrongKind(reportKind, h.kind);
        if (code == 7) revert FutureReport(h.observationsTimestamp, block.timestamp);
        uint256 maxAge = (s >> 96) & _MASK24;
        if (code == 8) revert StaleReport(h.observationsTimestamp, block.timestamp - maxAge);
        uint256 last = (s >> 32) & _MASK64;
        revert NotIncreasing(uint32(last >> 32), uint32(last), h.epoch, h.round);
    }

    /// @dev The receiver's own sequence number (for derived contracts' views).
    function _sequence() internal view returns (uint32) {
        return uint32(_state);
    }

    /// Installs the committee state. (epoch, round) restart from (0, 0) whenever the key
    /// commitment changes: config digests are unique per configuration (XonCommittee
    /// derives them from a counter), so reports of earlier configurations stay rejected.
    /// Pause, unpause, attach and detach keep the commitment and hence the replay state.
    function _applyCommitteeUpdate(
        bytes32 configDigest,
        uint256 groupKeyX,
        uint8 groupKeyParity,
        bool paused,
        bool attached
    ) internal {
        uint256 s = _state;
        bytes16 commitment = keyCommitment(groupKeyX, configDigest);
        uint256 kept = s & (_MASK24 << 96 | _MASK32); // maxReportAge and sequence
        if (bytes16(bytes32(s)) == commitment) kept |= s & (_MASK64 << 32);
        uint256 flags = (groupKeyParity & 1 == 1 ? _FLAG_PARITY : 0) | (paused ? _FLAG_PAUSED : 0)
            | (attached ? _FLAG_ATTACHED : 0);
        _state = uint256(bytes32(commitment)) | flags | kept;
        emit CommitteeStateUpdated(commitment, groupKeyParity & 1, paused, attached);
    }

    /// Explains why the (digest, key) of a report does not match the stored commitment.
    function _revertConfigMismatch(bytes32 digest, uint256 px) private view {
        bytes32 expectedDigest = IXonCommittee(committee).configDigest();
        if (expectedDigest != digest) revert WrongConfigDigest(expectedDigest, digest);
        (uint256 expectedX,) = IXonCommittee(committee).groupKey();
        revert WrongGroupKey(expectedX, px);
    }
}
