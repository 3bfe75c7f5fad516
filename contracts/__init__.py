"""XON's Solidity contracts: committed build artifacts and a small deploy module."""
