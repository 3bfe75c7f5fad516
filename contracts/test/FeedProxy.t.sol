// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonFixture} from "./utils/XonFixture.sol";
import {ReportBuilder} from "./utils/ReportBuilder.sol";
import {PriceFeedStore} from "../src/PriceFeedStore.sol";
import {FeedProxy} from "../src/FeedProxy.sol";
import {XonReport} from "../src/XonReport.sol";
import {AggregatorV3Interface} from "../src/interfaces/AggregatorV3Interface.sol";

/// A consumer written against Chainlink's interface, as a lending protocol would.
contract ChainlinkConsumer {
    error StalePrice(uint256 updatedAt);

    function price(AggregatorV3Interface feed, uint256 maxAge) external view returns (int256) {
        (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredInRound) = feed.latestRoundData();
        if (answer <= 0 || answeredInRound < roundId || block.timestamp - updatedAt > maxAge) {
            revert StalePrice(updatedAt);
        }
        return answer;
    }
}

contract FeedProxyTest is XonFixture {
    bytes32 internal constant H100 = bytes32("H100-SXM-80GB/USD-HR");
    bytes32 internal constant A100 = bytes32("A100-SXM-80GB/USD-HR");

    PriceFeedStore internal store;
    AggregatorV3Interface internal h100;
    AggregatorV3Interface internal a100;
    uint32 internal round;

    function setUp() public {
        _deployCommittee(3);
        store = new PriceFeedStore(address(committee), OWNER, MAX_AGE);
        _addReceiver(address(store));
        vm.startPrank(OWNER);
        h100 = AggregatorV3Interface(store.registerFeed(H100, 8, "H100 SXM 80GB / USD per GPU-hour", 50, 3600));
        a100 = AggregatorV3Interface(store.registerFeed(A100, 8, "A100 SXM 80GB / USD per GPU-hour", 50, 3600));
        vm.stopPrank();
    }

    function _post(bytes32 id, int256 value, uint64 observed) internal {
        bytes memory r = ReportBuilder.report(
            committee.configDigest(),
            1,
            ++round,
            observed,
            XonReport.KIND_PRICES,
            ReportBuilder.pricesPayload(id, value)
        );
        store.transmit(r, _sign(address(store), r));
    }

    function test_metadata() public view {
        vm.assertEq(uint256(h100.decimals()), 8, "decimals");
        vm.assertEq(keccak256(bytes(h100.description())), keccak256("H100 SXM 80GB / USD per GPU-hour"), "description");
        vm.assertEq(h100.version(), 1, "version");
        vm.assertEq(address(FeedProxy(address(h100)).store()), address(store), "store");
        vm.assertEq(FeedProxy(address(h100)).feedId(), H100, "feed id");
    }

    function test_latestRoundDataMatchesStore() public {
        uint64 observed = uint64(block.timestamp - 12);
        _post(H100, 2_49000000, observed);
        vm.warp(block.timestamp + 100);
        _post(A100, 1_29000000, uint64(block.timestamp));
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            h100.latestRoundData();
        vm.assertEq(uint256(roundId), 1, "round");
        vm.assertEq(answer, 2_49000000, "answer");
        vm.assertEq(startedAt, observed, "startedAt");
        vm.assertEq(updatedAt, START_TIME, "updatedAt");
        vm.assertEq(uint256(answeredInRound), 1, "answeredInRound");
        (roundId, answer,,,) = a100.latestRoundData();
        vm.assertEq(uint256(roundId), 2, "a100 round");
        vm.assertEq(answer, 1_29000000, "a100 answer");
        (uint80 r2, int256 a2,,,) = h100.getRoundData(1);
        vm.assertEq(uint256(r2), 1, "getRoundData round");
        vm.assertEq(a2, 2_49000000, "getRoundData answer");
    }

    function test_revertsPropagate() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.NoDataPresent.selector, H100));
        h100.latestRoundData();
        _post(H100, 1, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, H100, uint80(2)));
        h100.getRoundData(2);
        vm.expectRevert(abi.encodeWithSelector(PriceFeedStore.RoundNotFound.selector, A100, uint80(1)));
        a100.getRoundData(1);
    }

    function test_chainlinkStyleConsumer() public {
        ChainlinkConsumer consumer = new ChainlinkConsumer();
        _post(H100, 2_50000000, uint64(block.timestamp));
        vm.assertEq(consumer.price(h100, 3600), 2_50000000, "fresh price");
        vm.warp(block.timestamp + 3601);
        vm.expectRevert(abi.encodeWithSelector(ChainlinkConsumer.StalePrice.selector, START_TIME));
        consumer.price(h100, 3600);
    }

    function test_gas_consumerRead() public {
        _post(H100, 2_50000000, uint64(block.timestamp));
        vm.cool(address(store));
        vm.cool(address(h100));
        h100.latestRoundData();
        uint256 g = vm.lastCallGas().gasTotalUsed;
        emit log_named_uint("FeedProxy.latestRoundData (cold, latest in last report)", g);
        vm.assertLe(g, 10_000, "proxy read");
    }

    event log_named_uint(string key, uint256 val);
}
