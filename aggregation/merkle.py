"""Merkle trees compatible with OpenZeppelin's ``StandardMerkleTree`` and ``MerkleProof``.

Conventions (those of OpenZeppelin's JavaScript ``@openzeppelin/merkle-tree`` library,
so proofs made here verify with ``MerkleProof.verify`` on-chain):

* a leaf is double-hashed: ``keccak256(keccak256(abi.encode(values...)))`` — the second
  hash keeps a 64-byte leaf preimage from ever being read as an inner node;
* inner nodes hash the *sorted* pair: ``keccak256(min(a, b) ‖ max(a, b))``;
* leaves are sorted by hash, then laid out as a complete binary tree in an array whose
  last ``n`` entries are the leaves (so the tree shape, hence the root, matches theirs).

XON's uptime leaf is ``(bytes32 deviceId, uint64 uptimeEpoch, uint16 uptimeBps)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from aggregation.errors import EncodingError

UPTIME_LEAF_TYPES = ("bytes32", "uint64", "uint16")


def leaf_hash(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """OpenZeppelin's standard leaf: keccak256(bytes.concat(keccak256(abi.encode(values))))."""
    try:
        encoded = abi_encode(list(types), list(values))
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"cannot encode Merkle leaf {values!r} as {types}: {exc}") from exc
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def uptime_leaf(device_id: bytes, uptime_epoch: int, uptime_bps: int) -> bytes:
    if not 0 <= uptime_bps <= 10_000:
        raise EncodingError(f"uptime {uptime_bps} bps is outside 0..10000")
    return leaf_hash(UPTIME_LEAF_TYPES, (device_id, uptime_epoch, uptime_bps))


@dataclass(frozen=True)
class MerkleTree:
    """A tree over already-hashed leaves; build it with :meth:`of`."""

    nodes: tuple[bytes, ...]  # the OpenZeppelin array layout; nodes[0] is the root
    leaves: tuple[bytes, ...]  # sorted, as placed in the tree

    @classmethod
    def of(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise EncodingError("a Merkle tree needs at least one leaf")
        if any(len(leaf) != 32 for leaf in leaves):
            raise EncodingError("Merkle leaves are 32-byte hashes")
        ordered = tuple(sorted(leaves))
        size = 2 * len(ordered) - 1
        nodes: list[bytes] = [b""] * size
        for i, leaf in enumerate(ordered):
            nodes[size - 1 - i] = leaf
        for i in range(size - 1 - len(ordered), -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(tuple(nodes), ordered)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from ``leaf`` up to (not including) the root."""
        try:
            index = len(self.nodes) - 1 - self.leaves.index(leaf)
        except ValueError as exc:
            raise EncodingError("leaf is not in the tree") from exc
        path: list[bytes] = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            path.append(self.nodes[sibling])
            index = (index - 1) // 2
        return path


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Same computation as OpenZeppelin ``MerkleProof.verify``."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
