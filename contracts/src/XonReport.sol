// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The decoded envelope of a report, as `ReportReceiver._acceptReport` returns it.
/// `sequence` is not part of the signed report: it is the receiver's own count of
/// accepted reports (1 for the first), which `PriceFeedStore` uses as round id.
struct ReportHeader {
    bytes32 configDigest;
    uint32 epoch;
    uint32 round;
    uint64 observationsTimestamp;
    uint8 kind;
    uint32 sequence;
}

/// @title XonReport
/// @notice The report envelope every XON contract accepts, its kinds, the signed message,
/// and strict calldata decoders for the payloads.
///
/// Report = abi.encode(bytes32 configDigest, uint32 epoch, uint32 round,
///                     uint64 observationsTimestamp, uint8 kind, bytes payload)
/// Signed message m = keccak256(abi.encodePacked(uint256 chainId, address verifyingContract, report))
///
/// Payloads (abi.encode):
///   PRICES        (bytes32[] feedIds, int256[] values)
///   VALUATIONS    (bytes32[] assetIds, uint256[] values, bytes32[] reportHashes)
///   HARDWARE      (bytes32[] deviceIds, uint8[] statuses, bytes32[] fingerprints)
///   UPTIME        (uint64 uptimeEpoch, bytes32 merkleRoot, uint32 leafCount)
///   KEY_ROTATION  (uint256 groupKeyX, uint8 groupKeyParity, uint8 threshold,
///                  uint8 committeeSize, bytes32 membersHash)
library XonReport {
    uint8 internal constant KIND_INVALID = 0;
    uint8 internal constant KIND_PRICES = 1;
    uint8 internal constant KIND_VALUATIONS = 2;
    uint8 internal constant KIND_HARDWARE = 3;
    uint8 internal constant KIND_UPTIME = 4;
    uint8 internal constant KIND_KEY_ROTATION = 5;

    /// Device status values carried in HARDWARE payloads.
    uint8 internal constant STATUS_UNKNOWN = 0;
    uint8 internal constant STATUS_ACTIVE = 1;
    uint8 internal constant STATUS_DEGRADED = 2;
    uint8 internal constant STATUS_FAILED = 3;
    uint8 internal constant STATUS_OFFLINE = 4;

    /// Bytes before the payload: six head words and the payload's length word.
    uint256 internal constant HEADER_LENGTH = 0xe0;
    /// Offset of the payload's length word (the sixth head word must hold it).
    uint256 internal constant PAYLOAD_OFFSET = 0xc0;

    /// The report or a payload is not the canonical ABI encoding of its type.
    error MalformedReport();
    error MalformedPayload();

    /// @notice The 32-byte message the committee signs for `report` at `verifyingContract`.
    function message(uint256 chainId, address verifyingContract, bytes memory report) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(chainId, verifyingContract, report));
    }

    /// @notice `message` over a calldata report without copying it twice.
    function messageCalldata(uint256 chainId, address verifyingContract, bytes calldata report)
        internal
        pure
        returns (bytes32 m)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, chainId)
            mstore(add(ptr, 0x20), shl(96, verifyingContract))
            calldatacopy(add(ptr, 0x34), report.offset, report.length)
            m := keccak256(ptr, add(0x34, report.length))
        }
    }

    /// @notice Decodes and validates the envelope. Rejects (MalformedReport) anything but
    /// the canonical encoding: fields in range, payload offset 0xc0, total length exactly
    /// 0xe0 + the payload length rounded up to a word. `sequence` is left 0.
    function decodeHeader(bytes calldata report)
        internal
        pure
        returns (ReportHeader memory header, bytes calldata payload)
    {
        uint256 len = report.length;
        if (len < HEADER_LENGTH) revert MalformedReport();
        bool malformed;
        uint256 plen;
        assembly ("memory-safe") {
            let o := report.offset
            let epoch := calldataload(add(o, 0x20))
            let round := calldataload(add(o, 0x40))
            let ts := calldataload(add(o, 0x60))
            let kind := calldataload(add(o, 0x80))
            plen := calldataload(add(o, 0xc0))
            // Fields in range, payload offset 0xc0, and (plen bounded by len first, so the
            // rounding cannot overflow) length exactly 0xe0 + plen rounded up to a word.
            malformed := or(
                or(shr(32, or(epoch, round)), or(shr(64, ts), shr(8, kind))),
                or(
                    iszero(eq(calldataload(add(o, 0xa0)), PAYLOAD_OFFSET)),
                    or(gt(plen, len), iszero(eq(len, add(HEADER_LENGTH, and(add(plen, 31), not(31))))))
                )
            )
            // The named return struct is freshly allocated and zeroed; fill it in place.
            mstore(header, calldataload(o))
            mstore(add(header, 0x20), epoch)
            mstore(add(header, 0x40), round)
            mstore(add(header, 0x60), ts)
            mstore(add(header, 0x80), kind)
        }
        if (malformed) revert MalformedReport();
        payload = report[HEADER_LENGTH:HEADER_LENGTH + plen];
    }

    /// @notice PRICES payload as calldata arrays (no copy). Reverts MalformedPayload
    /// unless it is the canonical encoding with equal-length arrays.
    function decodePrices(bytes calldata payload)
        internal
        pure
        returns (bytes32[] calldata feedIds, int256[] calldata values)
    {
        uint256 n = _twoArrays(payload);
        assembly ("memory-safe") {
            feedIds.offset := add(payload.offset, 0x60)
            feedIds.length := n
            values.offset := add(payload.offset, add(0x80, shl(5, n)))
            values.length := n
        }
    }

    /// @notice VALUATIONS payload as calldata arrays (no copy), canonical encoding only.
    function decodeValuations(bytes calldata payload)
        internal
        pure
        returns (bytes32[] calldata assetIds, uint256[] calldata values, bytes32[] calldata reportHashes)
    {
        uint256 n = _threeArrays(payload);
        assembly ("memory-safe") {
            assetIds.offset := add(payload.offset, 0x80)
            assetIds.length := n
            values.offset := add(payload.offset, add(0xa0, shl(5, n)))
            values.length := n
            reportHashes.offset := add(payload.offset, add(0xc0, shl(6, n)))
            reportHashes.length := n
        }
    }

    /// @notice HARDWARE payload as calldata arrays (no copy), canonical encoding only;
    /// every status must fit a uint8 (values above STATUS_OFFLINE are the caller's to reject).
    function decodeHardware(bytes calldata payload)
        internal
        pure
        returns (bytes32[] calldata deviceIds, uint8[] calldata statuses, bytes32[] calldata fingerprints)
    {
        uint256 n = _threeArrays(payload);
        assembly ("memory-safe") {
            deviceIds.offset := add(payload.offset, 0x80)
            deviceIds.length := n
            statuses.offset := add(payload.offset, add(0xa0, shl(5, n)))
            statuses.length := n
            fingerprints.offset := add(payload.offset, add(0xc0, shl(6, n)))
            fingerprints.length := n
        }
        // Solidity checks the range of a uint8 calldata element only when it is read;
        // check all of them here so a dirty word is a malformed payload, not a panic later.
        for (uint256 i; i < n; ++i) {
            uint256 word;
            assembly ("memory-safe") {
                word := calldataload(add(statuses.offset, shl(5, i)))
            }
            if (word > type(uint8).max) revert MalformedPayload();
        }
    }

    /// @notice UPTIME payload.
    function decodeUptime(bytes calldata payload)
        internal
        pure
        returns (uint64 uptimeEpoch, bytes32 merkleRoot, uint32 leafCount)
    {
        if (payload.length != 0x60) revert MalformedPayload();
        uint256 e;
        uint256 c;
        assembly ("memory-safe") {
            e := calldataload(payload.offset)
            merkleRoot := calldataload(add(payload.offset, 0x20))
            c := calldataload(add(payload.offset, 0x40))
        }
        if (e >> 64 != 0 || c >> 32 != 0) revert MalformedPayload();
        return (uint64(e), merkleRoot, uint32(c));
    }

    /// @notice KEY_ROTATION payload (see XonCommittee).
    function decodeKeyRotation(bytes calldata payload)
        internal
        pure
        returns (uint256 groupKeyX, uint8 groupKeyParity, uint8 threshold, uint8 committeeSize, bytes32 membersHash)
    {
        if (payload.length != 0xa0) revert MalformedPayload();
        uint256 parity;
        uint256 t;
        uint256 n;
        assembly ("memory-safe") {
            groupKeyX := calldataload(payload.offset)
            parity := calldataload(add(payload.offset, 0x20))
            t := calldataload(add(payload.offset, 0x40))
            n := calldataload(add(payload.offset, 0x60))
            membersHash := calldataload(add(payload.offset, 0x80))
        }
        if ((parity | t | n) >> 8 != 0) revert MalformedPayload();
        return (groupKeyX, uint8(parity), uint8(t), uint8(n), membersHash);
    }

    /// Canonical (T[] a, T[] b) with static 32-byte elements: offsets 0x40 and
    /// 0x60 + 32·n, equal lengths, no trailing bytes. Returns n.
    function _twoArrays(bytes calldata payload) private pure returns (uint256 n) {
        uint256 len = payload.length;
        if (len < 0x80) revert MalformedPayload();
        uint256 offA;
        uint256 offB;
        uint256 lenB;
        assembly ("memory-safe") {
            offA := calldataload(payload.offset)
            offB := calldataload(add(payload.offset, 0x20))
            n := calldataload(add(payload.offset, 0x40))
        }
        // n is bounded by len before any arithmetic on it.
        if (offA != 0x40 || n > len || len != 0x80 + (n << 6) || offB != 0x60 + (n << 5)) revert MalformedPayload();
        assembly ("memory-safe") {
            lenB := calldataload(add(payload.offset, offB))
        }
        if (lenB != n) revert MalformedPayload();
    }

    /// Canonical (T[] a, U[] b, V[] c) with static 32-byte elements. Returns n.
    function _threeArrays(bytes calldata payload) private pure returns (uint256 n) {
        uint256 len = payload.length;
        if (len < 0xc0) revert MalformedPayload();
        uint256 offA;
        uint256 offB;
        uint256 offC;
        uint256 lenB;
        uint256 lenC;
        assembly ("memory-safe") {
            offA := calldataload(payload.offset)
            offB := calldataload(add(payload.offset, 0x20))
            offC := calldataload(add(payload.offset, 0x40))
            n := calldataload(add(payload.offset, 0x60))
        }
        if (offA != 0x60 || n > len || len != 0xc0 + 0x60 * n || offB != 0x80 + (n << 5) || offC != 0xa0 + (n << 6)) {
            revert MalformedPayload();
        }
        assembly ("memory-safe") {
            lenB := calldataload(add(payload.offset, offB))
            lenC := calldataload(add(payload.offset, offC))
        }
        if (lenB != n || lenC != n) revert MalformedPayload();
    }
}
