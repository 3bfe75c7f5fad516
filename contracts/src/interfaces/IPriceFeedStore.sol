// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The per-feed read API of PriceFeedStore (what FeedProxy forwards to).
interface IPriceFeedStore {
    function feedDescription(bytes32 feedId) external view returns (string memory);

    function getRoundData(bytes32 feedId, uint80 roundId)
        external
        view
        returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);

    function latestRoundData(bytes32 feedId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
