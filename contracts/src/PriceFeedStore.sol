// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

import {FeedProxy} from "./FeedProxy.sol";
import {ReportReceiver} from "./ReportReceiver.sol";
import {XonReport, ReportHeader} from "./XonReport.sol";
import {IPriceFeedStore} from "./interfaces/IPriceFeedStore.sol";

/// @title PriceFeedStore
/// @notice Every XON price feed in one contract. One PRICES report (signed by the
/// committee for this contract) updates any number of feeds; each feed keeps its last
/// values in an 8-entry ring and has a `FeedProxy` implementing `AggregatorV3Interface`.
///
/// Rounds: the store's round id is the receiver's report sequence number k (1, 2, ...).
/// A feed updated by report k has round k; rounds in which a feed was not updated do not
/// exist for that feed (getRoundData reverts RoundNotFound), as rounds of a Chainlink
/// aggregator are not contiguous across proxies either.
///
/// Storage: the entry for report k goes to ring slot k % 8 of each feed it updates, so a
/// report costs exactly one storage write per feed (plus the receiver's state slot). The
/// ring slots are written non-zero at registration, which both marks the feed as known
/// (checked on the write, for free, since the slot is loaded anyway) and keeps every later
/// write a non-zero → non-zero one. The ring holds the feed's entries from the last 8
/// reports of the store; the latest entry of a feed survives however long ago it was written.
///
/// Entry layout (bit 0 = least significant):
///   [  0,  8) flags: bit 0 registered
///   [ 16, 56) updatedAt: block timestamp of the report's transaction
///   [ 56, 96) startedAt: the report's observationsTimestamp
///   [ 96,128) round id k (0 = no data yet)
///   [128,256) answer, int128 two's complement
///
/// A report that names an unregistered feed, the same feed twice, or a value outside
/// int128 reverts as a whole (UnknownFeed / DuplicateFeed / ValueOutOfRange): a report
/// never half-applies. Off-chain nodes read the registered feeds from `feedIds()`.
contract PriceFeedStore is ReportReceiver, Ownable2Step, IPriceFeedStore {
    uint256 public constant HISTORY = 8;

    uint256 private constant _REGISTERED = 1;

    // FrostVerifier's constants, for its verification inlined in `transmitCompact_14743166`
    // (inline assembly cannot read a library's constants).
    uint256 private constant _ADDRESS_MASK = (1 << 160) - 1;
    uint256 private constant _P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    uint256 private constant _N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 private constant _XMD_SUFFIX = 0x00300046524f53542d736563703235366b312d5348413235362d76316368616c;
    uint256 private constant _DST_PRIME = 0x46524f53542d736563703235366b312d5348413235362d76316368616c1d0000;

    struct FeedConfig {
        bool registered;
        uint8 decimals;
        /// Minimum change (basis points of the last value) that triggers an update off-chain.
        uint16 deviationThresholdBps;
        /// Maximum seconds between updates; consumers treat older values as stale.
        uint32 heartbeat;
        address proxy;
        string description;
    }

    mapping(bytes32 feedId => FeedConfig) private _feeds;
    mapping(bytes32 feedId => uint256[HISTORY]) private _rings;
    bytes32[] private _feedIds;

    event FeedRegistered(
        bytes32 indexed feedId,
        address proxy,
        uint8 decimals,
        uint16 deviationThresholdBps,
        uint32 heartbeat,
        string description
    );
    event FeedParametersSet(bytes32 indexed feedId, uint16 deviationThresholdBps, uint32 heartbeat);

    error EmptyReport();
    error UnknownFeed(bytes32 feedId);
    error DuplicateFeed(bytes32 feedId);
    error ValueOutOfRange(bytes32 feedId, int256 value);
    error FeedAlreadyRegistered(bytes32 feedId);
    error FeedNotFound(bytes32 feedId);
    error InvalidFeedId();
    error NoDataPresent(bytes32 feedId);
    error RoundNotFound(bytes32 feedId, uint80 roundId);

    constructor(address committee_, address initialOwner, uint64 maxReportAge_)
        ReportReceiver(committee_, XonReport.KIND_PRICES, maxReportAge_)
        Ownable(initialOwner)
    {}

    // ---------------------------------------------------------------- owner

    /// @notice Registers a feed and deploys its FeedProxy. Decimals and description are
    /// fixed for the feed's life (consumers cache them).
    function registerFeed(
        bytes32 feedId,
        uint8 decimals,
        string calldata description,
        uint16 deviationThresholdBps,
        uint32 heartbeat
    ) external onlyOwner returns (address proxy) {
        if (feedId == bytes32(0)) revert InvalidFeedId();
        if (_feeds[feedId].registered) revert FeedAlreadyRegistered(feedId);
        proxy = address(new FeedProxy(this, feedId, decimals));
        _feeds[feedId] = FeedConfig(true, decimals, deviationThresholdBps, heartbeat, proxy, description);
        _feedIds.push(feedId);
        uint256[HISTORY] storage ring = _rings[feedId];
        for (uint256 i; i < HISTORY; ++i) {
            ring[i] = _REGISTERED;
        }
        emit FeedRegistered(feedId, proxy, decimals, deviationThresholdBps, heartbeat, description);
    }

    function setFeedParameters(bytes32 feedId, uint16 deviationThresholdBps, uint32 heartbeat) external onlyOwner {
        FeedConfig storage f = _feeds[feedId];
        if (!f.registered) revert FeedNotFound(feedId);
        f.deviationThresholdBps = deviationThresholdBps;
        f.heartbeat = heartbeat;
        emit FeedParametersSet(feedId, deviationThresholdBps, heartbeat);
    }

    // ---------------------------------------------------------------- reports

    /// @notice Applies a PRICES report signed by the committee for this contract.
    /// Permissionless: anyone may relay it. `signature` is Rx ‖ Ry ‖ z ‖ groupKeyX (128 bytes).
    function transmit(bytes calldata report, bytes calldata signature) external {
        (ReportHeader memory header, bytes calldata payload) = _acceptReport(report, signature);
        uint256 k = header.sequence;
        uint256 tail = (k << 96) | (uint256(header.observationsTimestamp) << 56) | (block.timestamp << 16) | _REGISTERED;
        // Payload: the canonical abi.encode(bytes32[] feedIds, int256[] values) with n ≥ 1
        // (the checks of XonReport.decodePrices, inlined for gas):
        //   [0x00] 0x40  [0x20] 0x60 + 32n  [0x40] n  ids...  [0x60 + 32n] n  values...
        uint256 n;
        bool malformed;
        assembly ("memory-safe") {
            let o := payload.offset
            let len := payload.length
            n := calldataload(add(o, 0x40))
            malformed := or(
                or(lt(len, 0x80), iszero(eq(calldataload(o), 0x40))),
                or(gt(n, len), iszero(eq(len, add(0x80, shl(6, n)))))
            )
            if iszero(malformed) {
                let offB := add(0x60, shl(5, n))
                malformed := or(iszero(eq(calldataload(add(o, 0x20)), offB)), iszero(eq(calldataload(add(o, offB)), n)))
            }
        }
        if (malformed) revert XonReport.MalformedPayload();
        if (n == 0) revert EmptyReport();
        assembly ("memory-safe") {
            let index := and(k, 7)
            let idPtr := add(payload.offset, 0x60)
            let valuePtr := add(idPtr, add(0x20, shl(5, n)))
            let end := add(idPtr, shl(5, n))
            mstore(0x20, _rings.slot)
            for {} lt(idPtr, end) {
                idPtr := add(idPtr, 0x20)
                valuePtr := add(valuePtr, 0x20)
            } {
                let id := calldataload(idPtr)
                let value := calldataload(valuePtr)
                mstore(0x00, id)
                let slot := add(keccak256(0x00, 0x40), index)
                let old := sload(slot)
                // Custom errors: selector and arguments in memory, then revert.
                if iszero(and(old, _REGISTERED)) {
                    mstore(0x00, 0x08a47fe2) // UnknownFeed(bytes32)
                    mstore(0x20, id)
                    revert(0x1c, 0x24)
                }
                if eq(and(shr(96, old), 0xffffffff), k) {
                    mstore(0x00, 0xb6868f59) // DuplicateFeed(bytes32)
                    mstore(0x20, id)
                    revert(0x1c, 0x24)
                }
                if iszero(eq(signextend(15, value), value)) {
                    let ptr := mload(0x40)
                    mstore(ptr, shl(224, 0x4e7a150c)) // ValueOutOfRange(bytes32,int256)
                    mstore(add(ptr, 0x04), id)
                    mstore(add(ptr, 0x24), value)
                    revert(ptr, 0x44)
                }
                sstore(slot, or(shl(128, value), tail))
            }
        }
    }

    /// @notice Applies a PRICES report given in the compact calldata layout, the cheapest
    /// way to post one (docs/contracts.md §6.1):
    ///
    ///     selector ‖ Rx ‖ Ry ‖ z ‖ groupKeyX ‖ configDigest ‖ epoch (4 bytes) ‖ round (4)
    ///     ‖ observationsTimestamp (8) ‖ n × (feedId (32) ‖ value (16, int128))
    ///
    /// with n ≥ 1 and nothing after. The contract rebuilds the canonical ABI report of
    /// `transmit` from these fields (kind PRICES, values sign-extended to int256) and checks
    /// the signature over its usual message, so the committee signs the same bytes for both
    /// entry points and every check and effect is the same; only ABI padding is not sent.
    function transmitCompact_14743166() external {
        uint256 s = _state;
        uint256 failure; // 0 applied; 1 envelope/time/replay check; 2 signature; 3 sequence
        // One block, no internal calls: ReportReceiver._accept and FrostVerifier.verify
        // inlined, because the 40k gas target leaves no room for Solidity's glue (docs §7).
        // Not marked memory-safe on purpose: it uses fixed addresses from 0x80 as scratch.
        assembly {
            let size := calldatasize()
            let n := div(sub(size, 0xb4), 0x30) // garbage when size < 0xb4: rejected next
            if or(lt(size, 0xe4), sub(size, add(0xb4, mul(n, 0x30)))) {
                mstore(0x00, 0x28ed90e8) // MalformedReport()
                revert(0x1c, 0x04)
            }
            let px := calldataload(0x64)
            let digest := calldataload(0x84)
            let w := calldataload(0xa4)
            let epochAndRound := shr(192, w)
            let ts := and(shr(128, w), 0xffffffffffffffff)
            // ReportReceiver._accept's checks (see there), kind PRICES by construction.
            mstore(0x00, px)
            mstore(0x20, digest)
            let time := timestamp()
            failure := iszero(
                and(
                    and(
                        eq(and(s, or(_FLAG_ATTACHED, _FLAG_PAUSED)), _FLAG_ATTACHED),
                        iszero(shr(128, xor(keccak256(0x00, 0x40), s)))
                    ),
                    and(
                        iszero(gt(ts, time)),
                        and(
                            iszero(lt(add(ts, and(shr(96, s), 0xffffff)), time)),
                            gt(epochAndRound, and(shr(32, s), 0xffffffffffffffff))
                        )
                    )
                )
            )
            if iszero(failure) {
                // chainId ‖ address(this) ‖ report at [0x8c, 0x8c + 0x194 + 64n). Nothing has
                // been allocated in this call, so memory from 0x80 up is free scratch (the
                // free memory pointer stays 0x80); the report starts word-aligned at 0xc0.
                let m
                {
                    mstore(0xa0, address()) // [0xac, 0xc0)
                    mstore(0x8c, chainid()) // [0x8c, 0xac), over the address word's zero padding
                    mstore(0xc0, digest)
                    mstore(0xe0, shr(224, w))
                    mstore(0x100, and(epochAndRound, 0xffffffff))
                    mstore(0x120, ts)
                    mstore(0x140, 1) // KIND_PRICES
                    mstore(0x160, 0xc0)
                    let idBytes := shl(5, n)
                    mstore(0x180, add(0x80, shl(6, n))) // payload length
                    mstore(0x1a0, 0x40)
                    mstore(0x1c0, add(0x60, idBytes))
                    mstore(0x1e0, n)
                    let end := add(0x200, idBytes)
                    mstore(end, n)
                    let toValue := add(idBytes, 0x20)
                    // n ≥ 1, so test at the bottom (saves a jump per loop).
                    let src := 0xb4
                    let dst := 0x200
                    for {} 1 {} {
                        mstore(dst, calldataload(src))
                        mstore(add(dst, toValue), sar(128, calldataload(add(src, 0x20))))
                        src := add(src, 0x30)
                        dst := add(dst, 0x20)
                        if eq(dst, end) { break }
                    }
                    m := keccak256(0x8c, add(0x194, shl(6, n)))
                }
                // FrostVerifier.verify inlined, as in ReportReceiver._accept.
                let ok
                {
                    let rx := calldataload(0x04)
                    let ry := calldataload(0x24)
                    let z := calldataload(0x44)
                    let parity := and(shr(120, s), 1)
                    ok := and(and(lt(rx, _P), lt(ry, _P)), lt(sub(z, 1), sub(_N, 1)))
                    ok := and(ok, eq(mulmod(ry, ry, _P), addmod(mulmod(rx, mulmod(rx, rx, _P), _P), 7, _P)))
                    mstore(0x80, 0)
                    mstore(0xa0, 0)
                    mstore8(0xc0, add(2, and(ry, 1)))
                    mstore(0xc1, rx)
                    mstore8(0xe1, add(2, parity))
                    mstore(0xe2, px)
                    mstore(0x102, m)
                    mstore(0x122, _XMD_SUFFIX)
                    mstore8(0x142, 29)
                    ok := and(ok, staticcall(gas(), 0x02, 0x80, 0xc3, 0x180, 0x20))
                    let b0 := mload(0x180)
                    mstore8(0x1a0, 1)
                    mstore(0x1a1, _DST_PRIME)
                    ok := and(ok, staticcall(gas(), 0x02, 0x180, 0x3f, 0x1e0, 0x20))
                    let b1 := mload(0x1e0)
                    mstore(0x180, xor(b0, b1))
                    mstore8(0x1a0, 2)
                    ok := and(ok, staticcall(gas(), 0x02, 0x180, 0x3f, 0x1e0, 0x20))
                    let c := addmod(mulmod(b1, shl(128, 1), _N), shr(128, mload(0x1e0)), _N)
                    mstore(0x80, mulmod(z, px, _N))
                    mstore(0xa0, add(27, parity))
                    mstore(0xc0, px)
                    mstore(0xe0, mulmod(c, px, _N))
                    mstore(0x00, 0)
                    ok := and(ok, staticcall(gas(), 0x01, 0x80, 0x80, 0x00, 0x20))
                    let recovered := mload(0x00)
                    mstore(0x00, rx)
                    mstore(0x20, sub(_P, ry))
                    ok := and(
                        and(ok, iszero(iszero(recovered))),
                        eq(recovered, and(keccak256(0x00, 0x40), _ADDRESS_MASK))
                    )
                }
                let k := add(and(s, 0xffffffff), 1)
                failure := add(shl(1, iszero(ok)), mul(3, and(ok, shr(32, k))))
                if iszero(failure) {
                    sstore(_state.slot, or(and(s, not(0xffffffffffffffffffffffff)), or(shl(32, epochAndRound), k)))
                    let tail := or(or(shl(96, k), shl(56, ts)), or(shl(16, timestamp()), _REGISTERED))
                    let index := and(k, 7)
                    mstore(0x20, _rings.slot)
                    let src := 0xb4
                    for {} 1 {} {
                        let id := calldataload(src)
                        mstore(0x00, id)
                        let slot := add(keccak256(0x00, 0x40), index)
                        let old := sload(slot)
                        if iszero(and(old, _REGISTERED)) {
                            mstore(0x00, 0x08a47fe2) // UnknownFeed(bytes32)
                            mstore(0x20, id)
                            revert(0x1c, 0x24)
                        }
                        if eq(and(shr(96, old), 0xffffffff), k) {
                            mstore(0x00, 0xb6868f59) // DuplicateFeed(bytes32)
                            mstore(0x20, id)
                            revert(0x1c, 0x24)
                        }
                        // The value's 16 bytes go to the entry's high half as they are.
                        sstore(
                            slot,
                            or(and(calldataload(add(src, 0x20)), not(0xffffffffffffffffffffffffffffffff)), tail)
                        )
                        src := add(src, 0x30)
                        if eq(src, size) { break }
                    }
                    // Applied: end the call here (nothing to return, nothing left to clean up).
                    stop()
                }
            }
        }
        _revertCompact(failure, s);
    }

    /// The named error for a failed `transmitCompact` (cold path).
    function _revertCompact(uint256 failure, uint256 s) private view {
        if (failure == 2) revert BadSignature();
        if (failure == 3) revert SequenceExhausted();
        uint256 w = uint256(bytes32(msg.data[0xa4:0xc4]));
        _revertFailure(bytes32(msg.data[0x84:0xa4]), w >> 192, (w >> 128) & type(uint64).max, reportKind, 4, s);
    }

    // ---------------------------------------------------------------- views

    /// @notice The feed's latest entry (AggregatorV3 semantics; answeredInRound = roundId,
    /// startedAt = observationsTimestamp, updatedAt = block time of the update).
    /// Reverts FeedNotFound for an unknown feed and NoDataPresent before its first update.
    function latestRoundData(bytes32 feedId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint256[HISTORY] storage ring = _rings[feedId];
        uint256 k = _sequence();
        uint256 best;
        // The entry of report k − j sits at (k − j) % 8; the first exact hit going back is
        // the latest. If none of the last 8 reports touched the feed, the latest is the
        // entry with the highest round among the 8 slots.
        for (uint256 j; j < HISTORY && j < k; ++j) {
            uint256 e = ring[(k - j) & 7];
            uint256 r = (e >> 96) & 0xffffffff;
            if (r == k - j) return _unpack(e);
            if (r > (best >> 96) & 0xffffffff) best = e;
        }
        // (With k < 8 the slots not read above hold no data yet.)
        if (ring[0] & _REGISTERED == 0) revert FeedNotFound(feedId);
        if (best == 0) revert NoDataPresent(feedId);
        return _unpack(best);
    }

    /// @notice The feed's entry of round `roundId`, if still in its ring (the last 8 reports
    /// of the store). Reverts RoundNotFound otherwise.
    function getRoundData(bytes32 feedId, uint80 roundId)
        external
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint256 e = _rings[feedId][roundId & 7];
        if (e & _REGISTERED == 0) revert FeedNotFound(feedId);
        if (roundId == 0 || (e >> 96) & 0xffffffff != roundId) revert RoundNotFound(feedId, roundId);
        return _unpack(e);
    }

    function feedConfig(bytes32 feedId) external view returns (FeedConfig memory) {
        return _feeds[feedId];
    }

    function feedDescription(bytes32 feedId) external view returns (string memory) {
        return _feeds[feedId].description;
    }

    function proxyOf(bytes32 feedId) external view returns (address) {
        return _feeds[feedId].proxy;
    }

    /// @notice All registered feed ids, in registration order.
    function feedIds() external view returns (bytes32[] memory) {
        return _feedIds;
    }

    function feedCount() external view returns (uint256) {
        return _feedIds.length;
    }

    function _unpack(uint256 e)
        private
        pure
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        roundId = uint80((e >> 96) & 0xffffffff);
        answer = int256(e) >> 128;
        startedAt = (e >> 56) & 0xffffffffff;
        updatedAt = (e >> 16) & 0xffffffffff;
        answeredInRound = roundId;
    }
}
