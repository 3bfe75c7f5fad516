// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {GpuCollateralVault} from "../src/GpuCollateralVault.sol";
import {HardwareRegistry} from "../src/HardwareRegistry.sol";
import {ValuationRegistry} from "../src/ValuationRegistry.sol";
import {XonReport} from "../src/XonReport.sol";
import {MockStablecoin} from "../src/test/MockStablecoin.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// Shared set-up: one attested device worth $20,000 owned by BORROWER, a vault with the
/// default parameters and a 1,000,000 USDC-like (6 decimals) pool.
abstract contract VaultFixture is RegistryFixture {
    uint256 internal constant BORROWER_KEY = 0xB0B;
    uint256 internal constant DEVICE_KEY = 0xDE71CE;
    address internal constant LENDER = address(0x1E4D);
    address internal constant LIQUIDATOR = address(0x11C1D);
    bytes32 internal constant FP = keccak256("H100 SXM5 80GB serial 1654922009999");
    uint256 internal constant POOL = 1_000_000e6;

    MockStablecoin internal usd;
    GpuCollateralVault internal vault;
    address internal borrower;
    uint256 internal tokenId;

    function _setUpVault(uint8 stableDecimals) internal {
        _deployRegistries();
        usd = new MockStablecoin("Mock USD", "mUSD", stableDecimals);
        vault = new GpuCollateralVault(LENDER, usd, hardware, valuations, _defaultConfig());
        borrower = vm.addr(BORROWER_KEY);
        tokenId = _attestedDevice(BORROWER_KEY, DEVICE_KEY, FP);
        _postValuation(FP, 20_000e8);

        usd.mint(LENDER, POOL);
        vm.startPrank(LENDER);
        usd.approve(address(vault), type(uint256).max);
        vault.supplyLiquidity(POOL);
        vm.stopPrank();

        usd.mint(LIQUIDATOR, 10_000_000e18);
        vm.prank(LIQUIDATOR);
        usd.approve(address(vault), type(uint256).max);
        vm.prank(borrower);
        usd.approve(address(vault), type(uint256).max);
    }

    function _defaultConfig() internal pure returns (GpuCollateralVault.Config memory) {
        return GpuCollateralVault.Config({
            maxLtvBps: 6_000, liquidationThresholdBps: 7_500, maxValuationAge: 1 days, failureGracePeriod: 12 hours
        });
    }

    function _deposit() internal {
        vm.startPrank(borrower);
        nft.approve(address(vault), tokenId);
        vault.deposit(tokenId);
        vm.stopPrank();
    }

    function _borrow(uint256 amount) internal {
        vm.prank(borrower);
        vault.borrow(tokenId, amount);
    }

    function _debt() internal view returns (uint256 debt) {
        (, debt) = vault.positionOf(tokenId);
    }
}

contract GpuCollateralVaultTest is VaultFixture {
    event log_named_uint(string key, uint256 val);

    function setUp() public {
        _setUpVault(6);
    }

    // ------------------------------------------------------------------ config

    function test_defaults() public view {
        GpuCollateralVault.Config memory c = vault.defaultConfig();
        vm.assertEq(uint256(c.maxLtvBps), 6_000, "max LTV 60%");
        vm.assertEq(uint256(c.liquidationThresholdBps), 7_500, "threshold 75%");
        vm.assertEq(uint256(vault.maxLtvBps()), 6_000, "deployed max LTV");
        vm.assertEq(uint256(vault.liquidationThresholdBps()), 7_500, "deployed threshold");
        vm.assertEq(address(vault.deviceNft()), address(nft), "nft from registry");
    }

    function test_invalidConfigRejected() public {
        GpuCollateralVault.Config memory c = _defaultConfig();
        c.maxLtvBps = 7_500; // not below the threshold
        vm.expectRevert(GpuCollateralVault.InvalidConfig.selector);
        new GpuCollateralVault(LENDER, usd, hardware, valuations, c);
        c = _defaultConfig();
        c.liquidationThresholdBps = 10_001;
        vm.expectRevert(GpuCollateralVault.InvalidConfig.selector);
        new GpuCollateralVault(LENDER, usd, hardware, valuations, c);
        c = _defaultConfig();
        c.maxLtvBps = 0;
        vm.expectRevert(GpuCollateralVault.InvalidConfig.selector);
        new GpuCollateralVault(LENDER, usd, hardware, valuations, c);
        c = _defaultConfig();
        c.maxValuationAge = 0;
        vm.expectRevert(GpuCollateralVault.InvalidConfig.selector);
        new GpuCollateralVault(LENDER, usd, hardware, valuations, c);
    }

    // ------------------------------------------------------------------ deposit / withdraw

    function test_depositTakesCustody() public {
        vm.startPrank(borrower);
        nft.approve(address(vault), tokenId);
        vm.expectEmit(address(vault));
        emit GpuCollateralVault.Deposited(tokenId, borrower);
        vault.deposit(tokenId);
        vm.stopPrank();
        vm.assertEq(nft.ownerOf(tokenId), address(vault), "custody");
        (address owner, uint256 debt) = vault.positionOf(tokenId);
        vm.assertEq(owner, borrower, "position owner");
        vm.assertEq(debt, 0, "no debt");
    }

    function test_depositRequiresTokenOwner() public {
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NotTokenOwner.selector, tokenId, LIQUIDATOR));
        vault.deposit(tokenId);
    }

    function test_withdrawReturnsTokenWhenDebtFree() public {
        _deposit();
        _borrow(1_000e6);
        vm.prank(borrower);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.OutstandingDebt.selector, tokenId, 1_000e6));
        vault.withdraw(tokenId);
        vm.prank(borrower);
        vault.repay(tokenId, 1_000e6);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NotPositionOwner.selector, tokenId, LIQUIDATOR));
        vault.withdraw(tokenId);
        // Withdrawal does not need the oracle: even a stale valuation lets the owner leave.
        vm.warp(block.timestamp + 30 days);
        vm.prank(borrower);
        vm.expectEmit(address(vault));
        emit GpuCollateralVault.Withdrawn(tokenId, borrower);
        vault.withdraw(tokenId);
        vm.assertEq(nft.ownerOf(tokenId), borrower, "returned");
        (address owner,) = vault.positionOf(tokenId);
        vm.assertEq(owner, address(0), "position closed");
    }

    // ------------------------------------------------------------------ borrow

    function test_borrowUpToMaxLtv() public {
        _deposit();
        vm.assertEq(vault.maxDebtOf(tokenId), 12_000e6, "60% of $20,000");
        vm.expectEmit(address(vault));
        emit GpuCollateralVault.Borrowed(tokenId, borrower, 12_000e6, 12_000e6);
        _borrow(12_000e6);
        vm.assertEq(usd.balanceOf(borrower), 12_000e6, "paid out");
        vm.assertEq(vault.totalDebt(), 12_000e6, "total debt");
        vm.prank(borrower);
        vm.expectRevert(
            abi.encodeWithSelector(GpuCollateralVault.BorrowExceedsMaxLtv.selector, tokenId, 12_000e6 + 1, 12_000e6)
        );
        vault.borrow(tokenId, 1);
    }

    function test_borrowOnlyByPositionOwner() public {
        _deposit();
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NotPositionOwner.selector, tokenId, LIQUIDATOR));
        vault.borrow(tokenId, 1e6);
        vm.prank(borrower);
        vm.expectRevert(GpuCollateralVault.ZeroAmount.selector);
        vault.borrow(tokenId, 0);
    }

    function test_borrowRequiresActiveDevice() public {
        _deposit();
        vm.warp(block.timestamp + 1);
        _postStatus(FP, XonReport.STATUS_DEGRADED);
        vm.prank(borrower);
        vm.expectRevert(
            abi.encodeWithSelector(
                GpuCollateralVault.DeviceNotActive.selector, tokenId, HardwareRegistry.DeviceStatus.DEGRADED
            )
        );
        vault.borrow(tokenId, 1e6);
    }

    function test_borrowPausedWhileValuationStale() public {
        _deposit();
        (,, uint64 at) = valuations.getValuation(FP);
        vm.warp(uint256(at) + 1 days);
        _borrow(1e6); // exactly max age: still fresh
        vm.warp(uint256(at) + 1 days + 1);
        vm.prank(borrower);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.StaleValuation.selector, tokenId, at, 1 days));
        vault.borrow(tokenId, 1e6);
        // A fresh valuation resumes borrowing.
        _postValuation(FP, 20_000e8);
        _borrow(1e6);
        vm.assertEq(_debt(), 2e6, "debt");
    }

    function test_borrowNeedsAValuation() public {
        bytes32 fp2 = keccak256("unvalued");
        uint256 token2 = _attestedDevice(BORROWER_KEY, DEVICE_KEY, fp2);
        vm.startPrank(borrower);
        nft.approve(address(vault), token2);
        vault.deposit(token2);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NoValuation.selector, token2));
        vault.borrow(token2, 1);
        vm.stopPrank();
    }

    function test_borrowLimitedByLiquidity() public {
        _postValuation(FP, 10_000_000e8);
        _deposit();
        vm.prank(borrower);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.InsufficientLiquidity.selector, POOL + 1, POOL));
        vault.borrow(tokenId, POOL + 1);
    }

    /// Success exactly when the new debt is within 60% of the value (in stablecoin units,
    /// rounded down).
    function testFuzz_borrowLimit(uint96 value, uint64 amount) public {
        _postValuation(FP, value);
        _deposit();
        uint256 maxDebt = (uint256(value) / 100) * 6_000 / 10_000; // 8 -> 6 decimals, then 60%
        vm.prank(borrower);
        if (amount == 0) {
            vm.expectRevert(GpuCollateralVault.ZeroAmount.selector);
        } else if (amount > maxDebt) {
            vm.expectRevert(
                abi.encodeWithSelector(GpuCollateralVault.BorrowExceedsMaxLtv.selector, tokenId, amount, maxDebt)
            );
        } else if (amount > POOL) {
            vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.InsufficientLiquidity.selector, amount, POOL));
        }
        vault.borrow(tokenId, amount);
        bool ok = amount != 0 && amount <= maxDebt && amount <= POOL;
        vm.assertEq(_debt(), ok ? amount : 0, "debt");
        vm.assertEq(vault.totalDebt(), _debt(), "total");
    }

    // ------------------------------------------------------------------ repay

    function test_repayPartialFullAndCapped() public {
        _deposit();
        _borrow(10_000e6);
        vm.prank(borrower);
        vm.expectEmit(address(vault));
        emit GpuCollateralVault.Repaid(tokenId, borrower, 4_000e6, 6_000e6);
        vault.repay(tokenId, 4_000e6);
        vm.assertEq(_debt(), 6_000e6, "partial");
        // A third party may repay; more than the debt is capped.
        usd.mint(address(this), 100_000e6);
        usd.approve(address(vault), type(uint256).max);
        uint256 repaid = vault.repay(tokenId, 100_000e6);
        vm.assertEq(repaid, 6_000e6, "capped");
        vm.assertEq(_debt(), 0, "repaid");
        vm.assertEq(vault.totalDebt(), 0, "total");
        vm.assertEq(usd.balanceOf(address(this)), 94_000e6, "only the debt was taken");
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NoDebt.selector, tokenId));
        vault.repay(tokenId, 1);
    }

    // ------------------------------------------------------------------ liquidation

    function test_healthyPositionCannotBeLiquidated() public {
        _deposit();
        _borrow(12_000e6);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(
            abi.encodeWithSelector(GpuCollateralVault.PositionHealthy.selector, tokenId, 12_000e6, 15_000e6)
        );
        vault.liquidate(tokenId);
        vm.assertFalse(vault.isLiquidatable(tokenId), "view agrees");
    }

    function test_liquidationAtThresholdIsRefusedAboveIsAllowed() public {
        _deposit();
        _borrow(12_000e6);
        // Value falls to $16,000: LTV exactly 75% -> still healthy.
        _postValuation(FP, 16_000e8);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(
            abi.encodeWithSelector(GpuCollateralVault.PositionHealthy.selector, tokenId, 12_000e6, 12_000e6)
        );
        vault.liquidate(tokenId);
        // $15,999.99999999: LTV just above 75%.
        _postValuation(FP, 16_000e8 - 1);
        vm.assertTrue(vault.isLiquidatable(tokenId), "view agrees");
        uint256 before = usd.balanceOf(LIQUIDATOR);
        vm.prank(LIQUIDATOR);
        vm.expectEmit(address(vault));
        emit GpuCollateralVault.Liquidated(
            tokenId, LIQUIDATOR, borrower, 12_000e6, GpuCollateralVault.LiquidationReason.LTV_ABOVE_THRESHOLD
        );
        vault.liquidate(tokenId);
        vm.assertEq(nft.ownerOf(tokenId), LIQUIDATOR, "liquidator gets the device");
        vm.assertEq(before - usd.balanceOf(LIQUIDATOR), 12_000e6, "liquidator paid the debt");
        vm.assertEq(vault.totalDebt(), 0, "debt cleared");
        vm.assertEq(usd.balanceOf(address(vault)), POOL, "pool made whole");
        (address owner,) = vault.positionOf(tokenId);
        vm.assertEq(owner, address(0), "position closed");
    }

    function test_liquidationPausedWhileValuationStale() public {
        _deposit();
        _borrow(12_000e6);
        _postValuation(FP, 1e8); // deeply underwater
        (,, uint64 at) = valuations.getValuation(FP);
        vm.warp(uint256(at) + 1 days + 1);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.StaleValuation.selector, tokenId, at, 1 days));
        vault.liquidate(tokenId);
        vm.assertFalse(vault.isLiquidatable(tokenId), "view agrees");
        // Also for the hardware rule.
        _postStatus(FP, XonReport.STATUS_FAILED);
        vm.warp(block.timestamp + 13 hours);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.StaleValuation.selector, tokenId, at, 1 days));
        vault.liquidate(tokenId);
    }

    function test_failedDeviceLiquidatableAfterGracePeriod() public {
        _deposit();
        _borrow(1_000e6); // healthy by value
        vm.warp(block.timestamp + 1);
        _postStatus(FP, XonReport.STATUS_FAILED);
        uint256 failedAt = block.timestamp;
        vm.warp(failedAt + 12 hours);
        _postValuation(FP, 20_000e8);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.PositionHealthy.selector, tokenId, 1_000e6, 15_000e6));
        vault.liquidate(tokenId); // exactly the grace period: not yet
        vm.warp(failedAt + 12 hours + 1);
        vm.prank(LIQUIDATOR);
        GpuCollateralVault.LiquidationReason reason = vault.liquidate(tokenId);
        vm.assertEq(uint256(reason), uint256(GpuCollateralVault.LiquidationReason.HARDWARE_FAILURE), "reason");
        vm.assertEq(nft.ownerOf(tokenId), LIQUIDATOR, "liquidated");
    }

    function test_offlineCountsFromFirstOfflineReport() public {
        _deposit();
        _borrow(1_000e6);
        vm.warp(block.timestamp + 1);
        _postStatus(FP, XonReport.STATUS_OFFLINE);
        uint256 offlineAt = block.timestamp;
        // Repeated OFFLINE reports keep the original start.
        vm.warp(offlineAt + 6 hours);
        _postStatus(FP, XonReport.STATUS_OFFLINE);
        vm.warp(offlineAt + 12 hours + 1);
        _postValuation(FP, 20_000e8);
        vm.assertTrue(vault.isLiquidatable(tokenId), "offline past grace");
        // Coming back online before anyone liquidates cancels it.
        _postStatus(FP, XonReport.STATUS_ACTIVE);
        vm.assertFalse(vault.isLiquidatable(tokenId), "back online");
    }

    function test_degradedIsNotAFailure() public {
        _deposit();
        _borrow(1_000e6);
        vm.warp(block.timestamp + 1);
        _postStatus(FP, XonReport.STATUS_DEGRADED);
        vm.warp(block.timestamp + 30 days);
        _postValuation(FP, 20_000e8);
        vm.prank(LIQUIDATOR);
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.PositionHealthy.selector, tokenId, 1_000e6, 15_000e6));
        vault.liquidate(tokenId);
    }

    function test_liquidateNeedsDebtAndDeposit() public {
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NotDeposited.selector, tokenId));
        vault.liquidate(tokenId);
        _deposit();
        vm.expectRevert(abi.encodeWithSelector(GpuCollateralVault.NoDebt.selector, tokenId));
        vault.liquidate(tokenId);
    }

    /// Liquidation succeeds exactly when debt · 10000 > value · 7500 (stablecoin units).
    function testFuzz_liquidationThreshold(uint64 newValue, uint16 borrowBps) public {
        _deposit();
        uint256 debt = 1 + uint256(borrowBps) % 6_000 * 20_000e6 / 10_000; // up to 60% of $20,000
        _borrow(debt);
        _postValuation(FP, newValue);
        uint256 valueStable = uint256(newValue) / 100;
        bool unhealthy = debt * 10_000 > valueStable * 7_500;
        vm.assertEq(vault.isLiquidatable(tokenId), unhealthy, "view");
        vm.prank(LIQUIDATOR);
        if (!unhealthy) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    GpuCollateralVault.PositionHealthy.selector, tokenId, debt, valueStable * 7_500 / 10_000
                )
            );
        }
        vault.liquidate(tokenId);
        vm.assertEq(nft.ownerOf(tokenId), unhealthy ? LIQUIDATOR : address(vault), "custody");
    }

    // ------------------------------------------------------------------ lender

    function test_onlyOwnerManagesLiquidity() public {
        vm.prank(borrower);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, borrower));
        vault.supplyLiquidity(1);
        vm.prank(borrower);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, borrower));
        vault.withdrawLiquidity(1, borrower);
    }

    function test_lenderWithdrawsOnlyIdleFunds() public {
        _deposit();
        _borrow(12_000e6);
        vm.prank(LENDER);
        vm.expectRevert(
            abi.encodeWithSelector(GpuCollateralVault.InsufficientLiquidity.selector, POOL, POOL - 12_000e6)
        );
        vault.withdrawLiquidity(POOL, LENDER);
        vm.prank(LENDER);
        vault.withdrawLiquidity(POOL - 12_000e6, LENDER);
        vm.assertEq(usd.balanceOf(LENDER), POOL - 12_000e6, "withdrawn");
    }

    function test_gas_vaultOperations() public {
        vm.startPrank(borrower);
        nft.approve(address(vault), tokenId);
        uint256 g = gasleft();
        vault.deposit(tokenId);
        emit log_named_uint("deposit gas (warm, in-test)", g - gasleft());
        vm.stopPrank();
        (uint256 borrowExec,) = _measureBorrow();
        emit log_named_uint("borrow execution gas (cold)", borrowExec);
        _postValuation(FP, 1e8);
        vm.prank(LIQUIDATOR);
        (uint256 liqExec,) = _measureTx(address(vault), abi.encodeCall(GpuCollateralVault.liquidate, (tokenId)));
        emit log_named_uint("liquidate execution gas (cold)", liqExec);
        vm.assertEq(nft.ownerOf(tokenId), LIQUIDATOR, "liquidated");
    }

    function _measureBorrow() internal returns (uint256 execution, uint256 total) {
        vm.prank(borrower);
        return _measureTx(address(vault), abi.encodeCall(GpuCollateralVault.borrow, (tokenId, 1_000e6)));
    }
}

/// The conversion from the registry's 8 decimals to an 18-decimal stablecoin.
contract GpuCollateralVault18DecimalsTest is VaultFixture {
    function setUp() public {
        _setUpVault(18);
    }

    function test_scalesUpTo18Decimals() public view {
        (uint256 value, bool fresh) = vault.collateralValue(tokenId);
        vm.assertEq(value, 20_000e18, "value in 18 decimals");
        vm.assertTrue(fresh, "fresh");
        vm.assertEq(vault.maxDebtOf(tokenId), 12_000e18, "max debt");
    }
}
