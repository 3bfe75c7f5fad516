"""Merkle trees match OpenZeppelin's StandardMerkleTree and their proofs verify."""

from __future__ import annotations

from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from aggregation.merkle import MerkleTree, uptime_leaf, verify_proof

# Reference vector made with OpenZeppelin's JavaScript library (@openzeppelin/merkle-tree
# 1.0.8), StandardMerkleTree.of(values, ["bytes32", "uint64", "uint16"]) with values[i] =
# [keccak256("xon-device-" + i), 4242, bps[i]]; the same vector is asserted in
# contracts/test/UptimeRegistry.t.sol.
VECTOR_ROOT = bytes.fromhex("de0a90b87765f1711ccd1aa64162375d80bf411c9a555280974de7d4d14d50f9")
VECTOR_BPS = (10000, 9950, 0, 5000, 1)
VECTOR_LEAF_0 = bytes.fromhex("09cfb67d1c0b6f200fe94d0f302dca0d738b074c4ad22c8f013bc63d290c7496")
VECTOR_PROOF_2 = [
    bytes.fromhex("c7a557301c1a6040a06e24e162aa9b0397508482abda899fb42c4e364ad32a61"),
    bytes.fromhex("87b1114826b92ea60e2f9a9cdb45e916007bd0bbd3adc9606d0cd010c35d2c78"),
]


def _vector_leaves() -> list[bytes]:
    return [
        uptime_leaf(keccak(f"xon-device-{i}".encode()), 4242, bps)
        for i, bps in enumerate(VECTOR_BPS)
    ]


def test_openzeppelin_vector() -> None:
    leaves = _vector_leaves()
    assert leaves[0] == VECTOR_LEAF_0
    tree = MerkleTree.of(leaves)
    assert tree.root == VECTOR_ROOT
    assert tree.proof(leaves[2]) == VECTOR_PROOF_2
    for leaf in leaves:
        assert verify_proof(tree.root, leaf, tree.proof(leaf))


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True))
def test_every_leaf_proves_and_no_outsider_does(leaves: list[bytes]) -> None:
    tree = MerkleTree.of(leaves)
    assert MerkleTree.of(list(reversed(leaves))).root == tree.root  # order-independent
    for leaf in leaves:
        assert verify_proof(tree.root, leaf, tree.proof(leaf))
    outsider = keccak(b"".join(leaves))
    assert not verify_proof(tree.root, outsider, tree.proof(leaves[0]))
