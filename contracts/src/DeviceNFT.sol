// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title DeviceNFT
/// @notice One ERC-721 token per attested GPU device. The token id is the device id read
/// as a number (`tokenId == uint256(deviceId)`, and XON's device id is the fingerprint the
/// device was registered with), so a fingerprint can be minted at most once and any
/// consumer can go from a token to the device's registry entry without a lookup table.
/// @dev Only `minter` (the HardwareRegistry, fixed at construction) can mint. There is no
/// burn: a minted fingerprint stays taken forever, which is what makes "minted once" hold.
contract DeviceNFT is ERC721 {
    /// The only address allowed to mint (the HardwareRegistry).
    address public immutable minter;

    error NotMinter(address caller);
    error DeviceAlreadyMinted(bytes32 deviceId);
    error ZeroMinter();

    constructor(address minter_) ERC721("XON Attested GPU", "XGPU") {
        if (minter_ == address(0)) revert ZeroMinter();
        minter = minter_;
    }

    /// @notice Mints the token of `deviceId` to `to`. Reverts `DeviceAlreadyMinted` the
    /// second time for the same device id.
    /// @dev `_mint`, not `_safeMint`: the registry mints to the wallet the owner bound with
    /// its own signature, and a receiver callback here would only add a re-entrancy path.
    function mint(address to, bytes32 deviceId) external returns (uint256 tokenId) {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        tokenId = uint256(deviceId);
        if (_ownerOf(tokenId) != address(0)) revert DeviceAlreadyMinted(deviceId);
        _mint(to, tokenId);
    }

    /// @notice The device id (registration fingerprint) a token stands for.
    function deviceIdOf(uint256 tokenId) external pure returns (bytes32) {
        return bytes32(tokenId);
    }

    /// @notice Whether the token of `deviceId` exists.
    function isMinted(bytes32 deviceId) external view returns (bool) {
        return _ownerOf(uint256(deviceId)) != address(0);
    }
}
