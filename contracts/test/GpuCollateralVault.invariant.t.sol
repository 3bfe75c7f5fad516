// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GpuCollateralVault} from "../src/GpuCollateralVault.sol";
import {HardwareRegistry} from "../src/HardwareRegistry.sol";
import {XonReport} from "../src/XonReport.sol";
import {MockStablecoin} from "../src/test/MockStablecoin.sol";
import {XonTest} from "./utils/XonTest.sol";
import {RegistryFixture} from "./utils/RegistryFixture.sol";

/// @title VaultHandler
/// @notice Drives the vault, the valuation oracle, the hardware oracle and the clock with
/// random but bounded actions, and checks every outcome against an independent model of
/// the vault's rules (ghost flags). The handler plays the committee (it holds the group
/// key), the lender (it owns the vault), two borrowers and a liquidator.
contract VaultHandler is RegistryFixture {
    uint256 internal constant N = 4; // devices
    uint256 internal constant MAX_AGE_VALUATION = 1 days;
    uint256 internal constant GRACE = 12 hours;
    address internal constant LIQUIDATOR = address(0x11C1D);

    MockStablecoin public usd;
    GpuCollateralVault public vault;
    uint256[N] internal tokens;
    address[N] internal initialOwners;
    uint256 public clock; // the handler's block time; every action warps to it first

    // ---- ghosts
    mapping(uint256 tokenId => uint256) public borrowableAtLastBorrow;
    uint256 public supplied;
    uint256 public lenderWithdrawn;
    bool public borrowedWhileStale;
    bool public borrowedOverLimit;
    bool public liquidatedHealthy;
    bool public liquidatedWhileStale;
    bool public modelDisagrees;
    string public disagreement;
    // coverage counters (printed by the invariant test's afterInvariant-free summary)
    uint256 public borrows;
    uint256 public liquidations;
    uint256 public staleRejections;

    constructor() {
        _deployRegistries();
        clock = block.timestamp;
        usd = new MockStablecoin("Mock USD", "mUSD", 6);
        vault = new GpuCollateralVault(
            address(this),
            usd,
            hardware,
            valuations,
            GpuCollateralVault.Config({
                maxLtvBps: 6_000,
                liquidationThresholdBps: 7_500,
                maxValuationAge: uint64(MAX_AGE_VALUATION),
                failureGracePeriod: uint64(GRACE)
            })
        );
        supplied = 200_000e6;
        usd.mint(address(this), supplied);
        usd.approve(address(vault), type(uint256).max);
        vault.supplyLiquidity(supplied);

        for (uint256 i; i < N; ++i) {
            uint256 ownerKey = 0xB0B0 + i % 2; // two borrowers, two devices each
            bytes32 fp = keccak256(abi.encode("invariant device", i));
            tokens[i] = _attestedDevice(ownerKey, 0xD000 + i, fp);
            initialOwners[i] = vm.addr(ownerKey);
            _postValuation(fp, 20_000e8 + i * 5_000e8);
        }
        // Devices start deposited; withdraw / deposit move them in and out.
        for (uint256 i; i < N; ++i) {
            vm.startPrank(initialOwners[i]);
            nft.approve(address(vault), tokens[i]);
            vault.deposit(tokens[i]);
            vm.stopPrank();
        }
        for (uint256 j; j < 2; ++j) {
            address b = vm.addr(0xB0B0 + j);
            usd.mint(b, 1_000_000e6);
            vm.startPrank(b);
            usd.approve(address(vault), type(uint256).max);
            nft.setApprovalForAll(address(vault), true);
            vm.stopPrank();
        }
        usd.mint(LIQUIDATOR, 100_000_000e6);
        vm.startPrank(LIQUIDATOR);
        usd.approve(address(vault), type(uint256).max);
        nft.setApprovalForAll(address(vault), true);
        vm.stopPrank();
    }

    modifier synced() {
        vm.warp(clock);
        _;
    }

    function tokenAt(uint256 i) external view returns (uint256) {
        return tokens[i];
    }

    function deviceCount() external pure returns (uint256) {
        return N;
    }

    // ------------------------------------------------------------------ actions

    /// Up to 8 hours a step, so valuations go stale (1 day) within a few steps unless revalued.
    function advanceTime(uint32 dt) external {
        clock += dt % 8 hours;
        vm.warp(clock);
    }

    function revalue(uint256 i, uint256 value) external synced {
        // $0 .. $60,000 with cents-level noise, so thresholds get hit from both sides.
        _postValuation(bytes32(tokens[i % N]), value % 60_000e8);
    }

    /// Moves a device's value to 40%..130% of its current value: drives positions across
    /// the liquidation threshold far more often than a uniform revaluation would.
    function shock(uint256 i, uint256 bps) external synced {
        bytes32 id = bytes32(tokens[i % N]);
        (uint256 raw,,) = valuations.getValuation(id);
        _postValuation(id, raw * (4_000 + bps % 9_001) / 10_000);
    }

    /// Any status, ACTIVE more often (codes 5..9 map to ACTIVE) so positions can borrow.
    function setStatus(uint256 i, uint8 status) external synced {
        status %= 10;
        _postStatus(bytes32(tokens[i % N]), status > XonReport.STATUS_OFFLINE ? XonReport.STATUS_ACTIVE : status);
    }

    function deposit(uint256 i) external synced {
        uint256 t = tokens[i % N];
        address holder = nft.ownerOf(t);
        if (holder == address(vault)) return;
        vm.prank(holder);
        vault.deposit(t);
    }

    function withdraw(uint256 i) external synced {
        uint256 t = tokens[i % N];
        (address owner, uint256 debt) = vault.positionOf(t);
        if (owner == address(0) || debt != 0) return;
        vm.prank(owner);
        vault.withdraw(t);
        borrowableAtLastBorrow[t] = 0;
    }

    /// Deposits first if needed; the amount is 80%..110% of the remaining headroom, so both
    /// sides of the max-LTV limit are hit and positions sit near it.
    function borrow(uint256 i, uint256 amount) external synced {
        uint256 t = tokens[i % N];
        (address owner, uint256 debt) = vault.positionOf(t);
        if (owner == address(0)) {
            owner = nft.ownerOf(t);
            vm.prank(owner);
            vault.deposit(t);
        }
        (bool fresh, uint256 value) = _oracle(t);
        (HardwareRegistry.DeviceStatus status,,) = hardware.deviceStatus(bytes32(t));
        uint256 maxDebt = value * 6_000 / 10_000;
        uint256 headroom = maxDebt > debt ? maxDebt - debt : 1_000e6;
        amount = 1 + headroom * (8_000 + amount % 3_001) / 10_000;
        bool allowed = fresh && status == HardwareRegistry.DeviceStatus.ACTIVE && debt + amount <= maxDebt
            && amount <= usd.balanceOf(address(vault));
        vm.prank(owner);
        try vault.borrow(t, amount) {
            ++borrows;
            if (!fresh) borrowedWhileStale = true;
            if (debt + amount > maxDebt) borrowedOverLimit = true;
            if (!allowed) _disagree("borrow succeeded against the model");
            borrowableAtLastBorrow[t] = maxDebt;
        } catch {
            if (!fresh) ++staleRejections;
            if (allowed) _disagree("borrow reverted although allowed");
        }
    }

    function repay(uint256 i, uint256 amount) external synced {
        uint256 t = tokens[i % N];
        (address owner, uint256 debt) = vault.positionOf(t);
        if (debt == 0) return;
        vm.prank(owner);
        vault.repay(t, 1 + amount % (debt + debt / 2));
    }

    /// Tries the first device from `i` on that has debt (or `i` itself when none has).
    function liquidate(uint256 i) external synced {
        i %= N;
        uint256 t = tokens[i];
        for (uint256 k; k < N; ++k) {
            (, uint256 d) = vault.positionOf(tokens[(i + k) % N]);
            if (d != 0) {
                t = tokens[(i + k) % N];
                break;
            }
        }
        (address owner, uint256 debt) = vault.positionOf(t);
        (bool fresh, uint256 value) = _oracle(t);
        bool unhealthy = debt * 10_000 > value * 7_500;
        bool hwFailed = _failedPastGrace(t);
        bool allowed = owner != address(0) && debt != 0 && fresh && (unhealthy || hwFailed);
        vm.prank(LIQUIDATOR);
        try vault.liquidate(t) {
            ++liquidations;
            if (!fresh) liquidatedWhileStale = true;
            if (!unhealthy && !hwFailed) liquidatedHealthy = true;
            if (!allowed) _disagree("liquidation succeeded against the model");
            borrowableAtLastBorrow[t] = 0;
        } catch {
            if (allowed) _disagree("liquidation reverted although allowed");
        }
    }

    /// Takes up to 5% of the idle pool (more would starve borrowing for the rest of the run).
    function lenderWithdraw(uint256 amount) external synced {
        uint256 idle = usd.balanceOf(address(vault));
        if (idle == 0) return;
        amount = 1 + amount % (idle / 20 + 1);
        if (amount > idle) amount = idle;
        vault.withdrawLiquidity(amount, address(this));
        lenderWithdrawn += amount;
    }

    function lenderSupply(uint256 amount) external synced {
        amount = 1 + amount % 50_000e6;
        usd.mint(address(this), amount);
        vault.supplyLiquidity(amount);
        supplied += amount;
    }

    // ------------------------------------------------------------------ model

    /// Freshness and stablecoin value (8 -> 6 decimals), computed here, not by the vault.
    function _oracle(uint256 t) internal view returns (bool fresh, uint256 value) {
        (uint256 raw,, uint64 at) = valuations.getValuation(bytes32(t));
        fresh = at != 0 && clock - at <= MAX_AGE_VALUATION;
        value = raw / 100;
    }

    function _failedPastGrace(uint256 t) internal view returns (bool) {
        (HardwareRegistry.DeviceStatus s, uint64 since,) = hardware.deviceStatus(bytes32(t));
        bool down = s == HardwareRegistry.DeviceStatus.FAILED || s == HardwareRegistry.DeviceStatus.OFFLINE;
        return down && clock > since + GRACE;
    }

    function _disagree(string memory what) internal {
        if (!modelDisagrees) disagreement = what;
        modelDisagrees = true;
    }
}

contract GpuCollateralVaultInvariantTest is XonTest {
    VaultHandler internal handler;

    function setUp() public {
        handler = new VaultHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](11);
        selectors[0] = VaultHandler.advanceTime.selector;
        selectors[1] = VaultHandler.revalue.selector;
        selectors[2] = VaultHandler.setStatus.selector;
        selectors[3] = VaultHandler.deposit.selector;
        selectors[4] = VaultHandler.withdraw.selector;
        selectors[5] = VaultHandler.borrow.selector;
        selectors[6] = VaultHandler.repay.selector;
        selectors[7] = VaultHandler.liquidate.selector;
        selectors[8] = VaultHandler.lenderWithdraw.selector;
        selectors[9] = VaultHandler.shock.selector;
        selectors[10] = VaultHandler.lenderSupply.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    // Two invariant campaigns (each invariant function gets its own 256 x 64 campaign, so
    // the properties are grouped); every check runs after every handler call.

    /// Accounting: debts, cash and custody.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_accounting() public view {
        _checkTotalDebtIsSumOfPositions();
        _checkDebtWithinBorrowableAtBorrowTime();
        _checkCashIsConserved();
        _checkCustodyMatchesPositions();
    }

    /// Oracle safety: no borrow against a stale valuation, no liquidation of a healthy
    /// position or on a stale valuation, and every outcome as the model predicts.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_oracleSafety() public view {
        vm.assertFalse(handler.borrowedWhileStale(), "borrowed against a stale valuation");
        vm.assertFalse(handler.borrowedOverLimit(), "a borrow exceeded max LTV");
        vm.assertFalse(handler.liquidatedHealthy(), "liquidated a healthy position");
        vm.assertFalse(handler.liquidatedWhileStale(), "liquidated on a stale valuation");
        vm.assertFalse(handler.modelDisagrees(), handler.disagreement());
    }

    /// totalDebt is exactly the sum of the positions' debts.
    function _checkTotalDebtIsSumOfPositions() internal view {
        GpuCollateralVault vault = handler.vault();
        uint256 sum;
        for (uint256 i; i < handler.deviceCount(); ++i) {
            (, uint256 debt) = vault.positionOf(handler.tokenAt(i));
            sum += debt;
        }
        vm.assertEq(vault.totalDebt(), sum, "totalDebt != sum of position debts");
    }

    /// Every position's debt is within what it could borrow when it last borrowed, hence
    /// total debt <= sum of borrowable value at the time of borrowing.
    function _checkDebtWithinBorrowableAtBorrowTime() internal view {
        GpuCollateralVault vault = handler.vault();
        uint256 total;
        for (uint256 i; i < handler.deviceCount(); ++i) {
            uint256 t = handler.tokenAt(i);
            (, uint256 debt) = vault.positionOf(t);
            vm.assertLe(debt, handler.borrowableAtLastBorrow(t), "debt > borrowable at borrow time");
            total += handler.borrowableAtLastBorrow(t);
        }
        vm.assertLe(vault.totalDebt(), total, "total debt > sum of borrowable at borrow time");
    }

    /// Zero interest: pool cash + outstanding debt = supplied - withdrawn by the lender.
    function _checkCashIsConserved() internal view {
        GpuCollateralVault vault = handler.vault();
        vm.assertEq(
            handler.usd().balanceOf(address(vault)) + vault.totalDebt(),
            handler.supplied() - handler.lenderWithdrawn(),
            "cash + debt != supplied - withdrawn"
        );
    }

    /// A token is in the vault exactly when it has a position.
    function _checkCustodyMatchesPositions() internal view {
        GpuCollateralVault vault = handler.vault();
        for (uint256 i; i < handler.deviceCount(); ++i) {
            uint256 t = handler.tokenAt(i);
            (address owner, uint256 debt) = vault.positionOf(t);
            bool held = vault.deviceNft().ownerOf(t) == address(vault);
            vm.assertEq(held, owner != address(0), "custody != position");
            if (owner == address(0)) vm.assertEq(debt, 0, "debt without position");
        }
    }
}
