// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockStablecoin
/// @notice Test-only ERC-20 with configurable decimals (our tests use 6, like USDC) and an
/// open `mint`, for the forge tests and the Python integration tests / devnet. Never deploy
/// it anywhere that matters.
contract MockStablecoin is ERC20 {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// Anyone may mint: this is a faucet for tests.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
