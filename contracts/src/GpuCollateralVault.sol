// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {DeviceNFT} from "./DeviceNFT.sol";
import {HardwareRegistry} from "./HardwareRegistry.sol";
import {ValuationRegistry} from "./ValuationRegistry.sol";

/// @title GpuCollateralVault
/// @notice Reference lending market on XON's oracles: deposit a DeviceNFT, borrow a
/// stablecoin against the device's committee valuation.
///
/// Rules (all ratios in basis points of the collateral value):
/// - collateral value = the device's latest ValuationRegistry value (asset id = device id =
///   `bytes32(tokenId)`), USD with the registry's decimals, converted to the stablecoin's
///   decimals at 1 stablecoin = 1 USD (no stablecoin price feed; rounded down).
/// - borrow: only the depositor, only while the device is ACTIVE in the HardwareRegistry,
///   only up to `maxLtvBps` (default 60%): `debt * 10000 <= value * maxLtvBps`.
/// - liquidate (anyone) when
///   (a) `debt * 10000 > value * liquidationThresholdBps` (default 75%), or
///   (b) the device has been FAILED or OFFLINE for more than `failureGracePeriod` seconds
///       (measured from the `statusSince` observation time of the HardwareRegistry).
///   The liquidator pays the whole debt and receives the NFT (no partial liquidation, no
///   separate bonus: the bonus is the equity above the debt, at least 25% of the value under
///   rule (a)). The lender is repaid in full, so the pool never carries bad debt.
/// - oracle sentinel: new borrows and all liquidations revert `StaleValuation` while the
///   device's valuation is older than `maxValuationAge` (or `NoValuation` if it has none).
///   Repay and withdraw never depend on the oracle.
/// - interest is zero: debt only changes by borrow, repay and liquidation.
/// - liquidity: the owner (the lender) supplies and withdraws the stablecoin pool.
contract GpuCollateralVault is Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct Config {
        uint16 maxLtvBps;
        uint16 liquidationThresholdBps;
        uint64 maxValuationAge;
        uint64 failureGracePeriod;
    }

    struct Position {
        address owner; // depositor; zero when the token is not deposited
        uint256 debt; // in stablecoin units
    }

    enum LiquidationReason {
        LTV_ABOVE_THRESHOLD,
        HARDWARE_FAILURE
    }

    uint256 public constant BPS = 10_000;
    uint16 public constant DEFAULT_MAX_LTV_BPS = 6_000;
    uint16 public constant DEFAULT_LIQUIDATION_THRESHOLD_BPS = 7_500;
    uint64 public constant DEFAULT_MAX_VALUATION_AGE = 1 days;
    uint64 public constant DEFAULT_FAILURE_GRACE_PERIOD = 12 hours;

    IERC20 public immutable stablecoin;
    DeviceNFT public immutable deviceNft;
    HardwareRegistry public immutable hardwareRegistry;
    ValuationRegistry public immutable valuationRegistry;

    uint16 public immutable maxLtvBps;
    uint16 public immutable liquidationThresholdBps;
    uint64 public immutable maxValuationAge;
    uint64 public immutable failureGracePeriod;

    // value_in_stablecoin = value * _scaleNum / _scaleDen (one of them is 1)
    uint256 private immutable _scaleNum;
    uint256 private immutable _scaleDen;

    uint256 public totalDebt;
    mapping(uint256 tokenId => Position) private _positions;

    event Deposited(uint256 indexed tokenId, address indexed owner);
    event Withdrawn(uint256 indexed tokenId, address indexed owner);
    event Borrowed(uint256 indexed tokenId, address indexed owner, uint256 amount, uint256 debt);
    event Repaid(uint256 indexed tokenId, address indexed payer, uint256 amount, uint256 debt);
    event Liquidated(
        uint256 indexed tokenId,
        address indexed liquidator,
        address indexed owner,
        uint256 debtRepaid,
        LiquidationReason reason
    );
    event LiquiditySupplied(address indexed from, uint256 amount);
    event LiquidityWithdrawn(address indexed to, uint256 amount);

    error InvalidConfig();
    error ZeroAmount();
    error NotTokenOwner(uint256 tokenId, address caller);
    error NotPositionOwner(uint256 tokenId, address caller);
    error NotDeposited(uint256 tokenId);
    error DeviceNotActive(uint256 tokenId, HardwareRegistry.DeviceStatus status);
    error NoValuation(uint256 tokenId);
    error StaleValuation(uint256 tokenId, uint64 updatedAt, uint64 maxAge);
    error BorrowExceedsMaxLtv(uint256 tokenId, uint256 debtAfter, uint256 maxDebt);
    error InsufficientLiquidity(uint256 requested, uint256 available);
    error NoDebt(uint256 tokenId);
    error OutstandingDebt(uint256 tokenId, uint256 debt);
    error PositionHealthy(uint256 tokenId, uint256 debt, uint256 liquidationDebt);

    constructor(
        address owner_,
        IERC20 stablecoin_,
        HardwareRegistry hardwareRegistry_,
        ValuationRegistry valuationRegistry_,
        Config memory config
    ) Ownable(owner_) {
        if (
            config.maxLtvBps == 0 || config.maxLtvBps >= config.liquidationThresholdBps
                || config.liquidationThresholdBps > BPS || config.maxValuationAge == 0
        ) revert InvalidConfig();
        stablecoin = stablecoin_;
        hardwareRegistry = hardwareRegistry_;
        deviceNft = hardwareRegistry_.deviceNft();
        valuationRegistry = valuationRegistry_;
        maxLtvBps = config.maxLtvBps;
        liquidationThresholdBps = config.liquidationThresholdBps;
        maxValuationAge = config.maxValuationAge;
        failureGracePeriod = config.failureGracePeriod;

        uint8 stableDecimals = IERC20Metadata(address(stablecoin_)).decimals();
        uint8 valueDecimals = valuationRegistry_.decimals();
        if (stableDecimals > 36 || valueDecimals > 36) revert InvalidConfig();
        if (stableDecimals >= valueDecimals) {
            _scaleNum = 10 ** (stableDecimals - valueDecimals);
            _scaleDen = 1;
        } else {
            _scaleNum = 1;
            _scaleDen = 10 ** (valueDecimals - stableDecimals);
        }
    }

    /// The defaults: 60% max LTV, 75% liquidation threshold, 1 day max valuation age, 12 h
    /// grace period for FAILED/OFFLINE devices.
    function defaultConfig() external pure returns (Config memory) {
        return Config({
            maxLtvBps: DEFAULT_MAX_LTV_BPS,
            liquidationThresholdBps: DEFAULT_LIQUIDATION_THRESHOLD_BPS,
            maxValuationAge: DEFAULT_MAX_VALUATION_AGE,
            failureGracePeriod: DEFAULT_FAILURE_GRACE_PERIOD
        });
    }

    // ---------------------------------------------------------------- borrower

    /// @notice Deposits the caller's DeviceNFT (approve the vault first).
    function deposit(uint256 tokenId) external nonReentrant {
        if (deviceNft.ownerOf(tokenId) != msg.sender) revert NotTokenOwner(tokenId, msg.sender);
        _positions[tokenId].owner = msg.sender;
        emit Deposited(tokenId, msg.sender);
        deviceNft.transferFrom(msg.sender, address(this), tokenId);
    }

    /// @notice Borrows `amount` stablecoin against a deposited device, to the caller.
    function borrow(uint256 tokenId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Position storage position = _positions[tokenId];
        if (position.owner != msg.sender) revert NotPositionOwner(tokenId, msg.sender);
        (HardwareRegistry.DeviceStatus status,,) = hardwareRegistry.deviceStatus(bytes32(tokenId));
        if (status != HardwareRegistry.DeviceStatus.ACTIVE) revert DeviceNotActive(tokenId, status);
        uint256 value = _freshCollateralValue(tokenId);
        uint256 debtAfter = position.debt + amount;
        uint256 maxDebt = Math.mulDiv(value, maxLtvBps, BPS);
        if (debtAfter > maxDebt) revert BorrowExceedsMaxLtv(tokenId, debtAfter, maxDebt);
        uint256 available = stablecoin.balanceOf(address(this));
        if (amount > available) revert InsufficientLiquidity(amount, available);

        position.debt = debtAfter;
        totalDebt += amount;
        emit Borrowed(tokenId, msg.sender, amount, debtAfter);
        stablecoin.safeTransfer(msg.sender, amount);
    }

    /// @notice Repays up to `amount` of a position's debt from the caller (anyone may repay
    /// for anyone); the amount is capped at the debt. Returns what was repaid.
    function repay(uint256 tokenId, uint256 amount) external nonReentrant returns (uint256 repaid) {
        Position storage position = _positions[tokenId];
        uint256 debt = position.debt;
        if (debt == 0) revert NoDebt(tokenId);
        if (amount == 0) revert ZeroAmount();
        repaid = amount < debt ? amount : debt;
        position.debt = debt - repaid;
        totalDebt -= repaid;
        emit Repaid(tokenId, msg.sender, repaid, debt - repaid);
        stablecoin.safeTransferFrom(msg.sender, address(this), repaid);
    }

    /// @notice Returns the NFT of a debt-free position to its depositor.
    function withdraw(uint256 tokenId) external nonReentrant {
        Position storage position = _positions[tokenId];
        if (position.owner != msg.sender) revert NotPositionOwner(tokenId, msg.sender);
        if (position.debt != 0) revert OutstandingDebt(tokenId, position.debt);
        delete _positions[tokenId];
        emit Withdrawn(tokenId, msg.sender);
        deviceNft.transferFrom(address(this), msg.sender, tokenId);
    }

    // ---------------------------------------------------------------- liquidator

    /// @notice Liquidates an unhealthy position: the caller pays its whole debt (approve the
    /// vault first) and receives the NFT. See the contract notes for when a position is
    /// unhealthy; reverts `PositionHealthy` otherwise, `StaleValuation` while the oracle is
    /// stale.
    function liquidate(uint256 tokenId) external nonReentrant returns (LiquidationReason reason) {
        Position memory position = _positions[tokenId];
        if (position.owner == address(0)) revert NotDeposited(tokenId);
        if (position.debt == 0) revert NoDebt(tokenId);
        uint256 value = _freshCollateralValue(tokenId);
        uint256 liquidationDebt = Math.mulDiv(value, liquidationThresholdBps, BPS);
        if (position.debt > liquidationDebt) {
            reason = LiquidationReason.LTV_ABOVE_THRESHOLD;
        } else if (_hardwareFailedPastGrace(tokenId)) {
            reason = LiquidationReason.HARDWARE_FAILURE;
        } else {
            revert PositionHealthy(tokenId, position.debt, liquidationDebt);
        }

        delete _positions[tokenId];
        totalDebt -= position.debt;
        emit Liquidated(tokenId, msg.sender, position.owner, position.debt, reason);
        stablecoin.safeTransferFrom(msg.sender, address(this), position.debt);
        deviceNft.transferFrom(address(this), msg.sender, tokenId);
    }

    // ---------------------------------------------------------------- lender

    /// @notice The owner adds stablecoin to the lending pool (approve the vault first).
    function supplyLiquidity(uint256 amount) external onlyOwner nonReentrant {
        if (amount == 0) revert ZeroAmount();
        emit LiquiditySupplied(msg.sender, amount);
        stablecoin.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice The owner takes idle stablecoin out of the pool (lent-out funds come back
    /// through repayments and liquidations).
    function withdrawLiquidity(uint256 amount, address to) external onlyOwner nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 available = stablecoin.balanceOf(address(this));
        if (amount > available) revert InsufficientLiquidity(amount, available);
        emit LiquidityWithdrawn(to, amount);
        stablecoin.safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    function positionOf(uint256 tokenId) external view returns (address owner, uint256 debt) {
        Position storage position = _positions[tokenId];
        return (position.owner, position.debt);
    }

    /// @notice The collateral value in stablecoin units, whatever the valuation's age (0 if
    /// never valued), and whether it is fresh enough to borrow or liquidate against.
    function collateralValue(uint256 tokenId) public view returns (uint256 value, bool fresh) {
        (uint256 raw,, uint64 updatedAt) = valuationRegistry.getValuation(bytes32(tokenId));
        value = Math.mulDiv(raw, _scaleNum, _scaleDen);
        fresh = updatedAt != 0 && !_isStale(updatedAt);
    }

    /// @notice The most the position may owe after a borrow (oracle freshness not checked).
    function maxDebtOf(uint256 tokenId) external view returns (uint256) {
        (uint256 value,) = collateralValue(tokenId);
        return Math.mulDiv(value, maxLtvBps, BPS);
    }

    /// @notice Whether `liquidate(tokenId)` would succeed now (the caller's allowance and
    /// balance aside).
    function isLiquidatable(uint256 tokenId) external view returns (bool) {
        Position storage position = _positions[tokenId];
        if (position.owner == address(0) || position.debt == 0) return false;
        (uint256 value, bool fresh) = collateralValue(tokenId);
        if (!fresh) return false;
        return position.debt > Math.mulDiv(value, liquidationThresholdBps, BPS) || _hardwareFailedPastGrace(tokenId);
    }

    // ---------------------------------------------------------------- internals

    function _freshCollateralValue(uint256 tokenId) private view returns (uint256) {
        (uint256 raw,, uint64 updatedAt) = valuationRegistry.getValuation(bytes32(tokenId));
        if (updatedAt == 0) revert NoValuation(tokenId);
        if (_isStale(updatedAt)) revert StaleValuation(tokenId, updatedAt, maxValuationAge);
        return Math.mulDiv(raw, _scaleNum, _scaleDen);
    }

    function _isStale(uint64 updatedAt) private view returns (bool) {
        return block.timestamp > updatedAt && block.timestamp - updatedAt > maxValuationAge;
    }

    function _hardwareFailedPastGrace(uint256 tokenId) private view returns (bool) {
        (HardwareRegistry.DeviceStatus status, uint64 since,) = hardwareRegistry.deviceStatus(bytes32(tokenId));
        if (status != HardwareRegistry.DeviceStatus.FAILED && status != HardwareRegistry.DeviceStatus.OFFLINE) {
            return false;
        }
        return block.timestamp > since && block.timestamp - since > failureGracePeriod;
    }
}
