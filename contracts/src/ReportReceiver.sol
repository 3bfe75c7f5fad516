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
    uint256 internal constant _FLAG_PAUSED = 1 << 121;
    uint256 internal constant _FLAG_ATTACHED = 1 << 122;
    uint256 private constant _MASK32 = 0xffffffff;
    uint256 private constant _MASK64 = 0xffffffffffffffff;
    uint256 private constant _MASK24 = 0xffffff;

    /// The XonCommittee this receiver follows.
    address public immutable committee;
    /// The report kind accepted here (XonReport.KIND_*).
    uint8 public immutable reportKind;

    /// The receiver state (layout in the contract notes). Internal only so that
    /// `PriceFeedStore.transmitCompact` can inline `_accept`; nothing else writes it.
    uint256 internal _state;

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
        // targets. Only the canonical envelope is accepted: fields in range, payload offset
        // 0xc0, total length exactly 0xe0 + the payload length rounded up to a word.
        payload = report; // set to the payload slice below
        bool malformed;
        uint256 epochAndRound;
        bytes32 m;
        assembly ("memory-safe") {
            let o := report.offset
            let len := report.length
            let epoch := calldataload(add(o, 0x20))
            let round := calldataload(add(o, 0x40))
            let ts := calldataload(add(o, 0x60))
            let kind := calldataload(add(o, 0x80))
            let plen := calldataload(add(o, 0xc0))
            // (plen is bounded by len before the rounding, so it cannot overflow.)
            malformed := or(
                or(lt(len, 0xe0), or(shr(32, or(epoch, round)), or(shr(64, ts), shr(8, kind)))),
                or(
                    iszero(eq(calldataload(add(o, 0xa0)), 0xc0)),
                    or(gt(plen, len), iszero(eq(len, add(0xe0, and(add(plen, 31), not(31))))))
                )
            )
            epochAndRound := or(shl(32, epoch), round)
            // Decode into the (zeroed) header; sequence is set below.
            mstore(header, calldataload(o))
            mstore(add(header, 0x20), epoch)
            mstore(add(header, 0x40), round)
            mstore(add(header, 0x60), ts)
            mstore(add(header, 0x80), kind)
            payload.offset := add(o, 0xe0)
            payload.length := plen
            // m = keccak256(chainId ‖ address(this) ‖ report)
            let ptr := mload(0x40)
            mstore(ptr, chainid())
            mstore(add(ptr, 0x20), shl(96, address()))
            calldatacopy(add(ptr, 0x34), o, len)
            m := keccak256(ptr, add(0x34, len))
        }
        if (malformed) revert XonReport.MalformedReport();
        if (signature.length != SIGNATURE_LENGTH) revert MalformedSignature();
        header.sequence = uint32(
            _accept(
                header.configDigest,
                epochAndRound,
                header.observationsTimestamp,
                header.kind,
                m,
                _signatureOffset(signature)
            )
        );
    }

    /// @notice Checks an already decoded envelope and the signature over its message `m`
    /// (the signature's 128 bytes start at calldata offset `sigOffset`; the caller checked
    /// they are all there) and records (epoch, round). Returns the receiver's new sequence
    /// number. `PriceFeedStore.transmitCompact_*` inlines this function (its gas target
    /// leaves no room for the call); a change here must be made there too, and the tests
    /// hold both entry points to the same outcome for every report.
    function _accept(bytes32 digest, uint256 epochAndRound, uint256 ts, uint256 kind, bytes32 m, uint256 sigOffset)
        internal
        returns (uint256 sequence)
    {
        uint256 s = _state;
        bool ok;
        uint256 wantKind = reportKind;
        assembly ("memory-safe") {
            // Every check of the contract notes at once (the cold path names the first
            // failure): attached and not paused; keccak256(groupKeyX ‖ configDigest)[0:16]
            // is the stored commitment; the kind; ts ≤ now ≤ ts + maxReportAge; and
            // (epoch, round) above the last accepted.
            mstore(0x00, calldataload(add(sigOffset, 0x60)))
            mstore(0x20, digest)
            let time := timestamp()
            ok := and(
                and(
                    eq(and(s, or(_FLAG_ATTACHED, _FLAG_PAUSED)), _FLAG_ATTACHED),
                    iszero(shr(128, xor(keccak256(0x00, 0x40), s)))
                ),
                and(
                    and(eq(kind, wantKind), iszero(gt(ts, time))),
                    and(
                        iszero(lt(add(ts, and(shr(96, s), _MASK24)), time)),
                        gt(epochAndRound, and(shr(32, s), _MASK64))
                    )
                )
            )
        }
        if (!ok) _revertFailure(digest, epochAndRound, ts, kind, sigOffset, s);
        uint256 rx;
        uint256 ry;
        uint256 z;
        uint256 px;
        assembly ("memory-safe") {
            rx := calldataload(sigOffset)
            ry := calldataload(add(sigOffset, 0x20))
            z := calldataload(add(sigOffset, 0x40))
            px := calldataload(add(sigOffset, 0x60))
        }
        if (!FrostVerifier.verify(px, (s >> 120) & 1, m, rx, ry, z)) revert BadSignature();
        unchecked {
            sequence = (s & _MASK32) + 1;
        }
        if (sequence > _MASK32) revert SequenceExhausted();
        _state = (s & ~(_MASK64 << 32 | _MASK32)) | (epochAndRound << 32) | sequence;
    }

    function _signatureOffset(bytes calldata signature) private pure returns (uint256 o) {
        assembly ("memory-safe") {
            o := signature.offset
        }
    }

    /// Reverts with the named error for the first check of `_accept` that failed (cold
    /// path), in the documented order.
    function _revertFailure(
        bytes32 digest,
        uint256 epochAndRound,
        uint256 ts,
        uint256 kind,
        uint256 sigOffset,
        uint256 s
    ) internal view {
        if (s & _FLAG_ATTACHED == 0) revert NotConfigured();
        if (s & _FLAG_PAUSED != 0) revert Paused();
        uint256 px;
        assembly ("memory-safe") {
            px := calldataload(add(sigOffset, 0x60))
        }
        if (keyCommitment(px, digest) != bytes16(bytes32(s))) _revertConfigMismatch(digest, px);
        if (kind != reportKind) revert WrongKind(reportKind, uint8(kind));
        if (ts > block.timestamp) revert FutureReport(uint64(ts), block.timestamp);
        uint256 maxAge = (s >> 96) & _MASK24;
        if (ts + maxAge < block.timestamp) revert StaleReport(uint64(ts), block.timestamp - maxAge);
        uint256 last = (s >> 32) & _MASK64;
        revert NotIncreasing(uint32(last >> 32), uint32(last), uint32(epochAndRound >> 32), uint32(epochAndRound));
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
