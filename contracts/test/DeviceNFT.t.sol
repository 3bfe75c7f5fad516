// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {DeviceNFT} from "../src/DeviceNFT.sol";
import {XonTest} from "./utils/XonTest.sol";

contract DeviceNFTTest is XonTest {
    DeviceNFT internal nft;
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);

    function setUp() public {
        nft = new DeviceNFT(address(this));
    }

    function test_metadata() public view {
        vm.assertEq(keccak256(bytes(nft.name())), keccak256("XON Attested GPU"), "name");
        vm.assertEq(keccak256(bytes(nft.symbol())), keccak256("XGPU"), "symbol");
        vm.assertEq(nft.minter(), address(this), "minter");
    }

    function test_zeroMinterRejected() public {
        vm.expectRevert(DeviceNFT.ZeroMinter.selector);
        new DeviceNFT(address(0));
    }

    function test_mintUsesDeviceIdAsTokenId() public {
        bytes32 deviceId = keccak256("gpu-1");
        uint256 tokenId = nft.mint(ALICE, deviceId);
        vm.assertEq(tokenId, uint256(deviceId), "token id");
        vm.assertEq(nft.ownerOf(tokenId), ALICE, "owner");
        vm.assertEq(nft.deviceIdOf(tokenId), deviceId, "device id");
        vm.assertTrue(nft.isMinted(deviceId), "minted");
        vm.assertFalse(nft.isMinted(keccak256("gpu-2")), "other not minted");
    }

    function test_secondMintOfSameDeviceReverts() public {
        bytes32 deviceId = keccak256("gpu-1");
        nft.mint(ALICE, deviceId);
        vm.expectRevert(abi.encodeWithSelector(DeviceNFT.DeviceAlreadyMinted.selector, deviceId));
        nft.mint(BOB, deviceId);
        // Still reverts after the token moved on: "once" is per fingerprint, not per holder.
        vm.prank(ALICE);
        nft.transferFrom(ALICE, BOB, uint256(deviceId));
        vm.expectRevert(abi.encodeWithSelector(DeviceNFT.DeviceAlreadyMinted.selector, deviceId));
        nft.mint(ALICE, deviceId);
    }

    function test_onlyMinterMints() public {
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(DeviceNFT.NotMinter.selector, ALICE));
        nft.mint(ALICE, keccak256("gpu-1"));
    }

    function test_mintToZeroAddressReverts() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(0)));
        nft.mint(address(0), keccak256("gpu-1"));
    }

    function testFuzz_mintOncePerDevice(bytes32 deviceId, address to, address caller) public {
        vm.assume(to != address(0) && to.code.length == 0);
        if (caller != address(this)) {
            vm.prank(caller);
            vm.expectRevert(abi.encodeWithSelector(DeviceNFT.NotMinter.selector, caller));
            nft.mint(to, deviceId);
        }
        nft.mint(to, deviceId);
        vm.assertEq(nft.ownerOf(uint256(deviceId)), to, "owner");
        vm.assertEq(nft.balanceOf(to), 1, "balance");
        vm.expectRevert(abi.encodeWithSelector(DeviceNFT.DeviceAlreadyMinted.selector, deviceId));
        nft.mint(to, deviceId);
    }
}
