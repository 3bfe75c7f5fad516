// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {IPriceFeedStore} from "./interfaces/IPriceFeedStore.sol";

/// @title FeedProxy
/// @notice One XON price feed behind Chainlink's `AggregatorV3Interface`, for consumers
/// written against Chainlink. Deployed by `PriceFeedStore.registerFeed`; stateless.
///
/// - roundId: the store's report sequence number of the update (increasing, not
///   contiguous per feed); answeredInRound = roundId.
/// - answer: fixed-point with `decimals()` decimals.
/// - startedAt: the report's observationsTimestamp (when the committee observed the value);
///   updatedAt: block timestamp of the transaction that stored it.
/// - latestRoundData reverts NoDataPresent(feedId) before the first update, like
///   Chainlink's newer aggregators; getRoundData reverts RoundNotFound(feedId, roundId) for
///   a round in which this feed was not updated or that left the 8-entry history.
/// - Consumers should check updatedAt against the feed's heartbeat
///   (PriceFeedStore.feedConfig) and treat older answers as stale.
contract FeedProxy is AggregatorV3Interface {
    /// Version of this proxy's semantics (bumped if they ever change).
    uint256 public constant version = 1;

    IPriceFeedStore public immutable store;
    bytes32 public immutable feedId;
    uint8 public immutable decimals;

    constructor(IPriceFeedStore store_, bytes32 feedId_, uint8 decimals_) {
        store = store_;
        feedId = feedId_;
        decimals = decimals_;
    }

    function description() external view returns (string memory) {
        return store.feedDescription(feedId);
    }

    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return store.getRoundData(feedId, roundId_);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return store.latestRoundData(feedId);
    }
}
