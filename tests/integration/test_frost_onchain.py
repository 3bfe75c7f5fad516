"""Python FROST signatures checked by the Solidity FrostVerifier on a real anvil node."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from aggregation.frost import (
    Signature,
    sign_with_committee,
    trusted_dealer_keygen,
)
from contracts.artifacts import load_artifact
from contracts.encoding import onchain_signature
from tests.conftest import Anvil

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def harness(anvil_module: Anvil) -> Iterator[Any]:
    w3 = Web3(Web3.HTTPProvider(anvil_module.url))
    artifact = load_artifact("FrostVerifierHarness")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor().transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    yield w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def _rng(seed: int) -> Any:
    generator = random.Random(seed)
    return generator.randbytes


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("seed", range(8))
def test_random_committees_verify_on_chain(harness: Any, seed: int) -> None:
    chooser = random.Random(seed)
    n = chooser.randint(2, 12)
    t = chooser.randint(2, n)
    rng = _rng(seed)
    dealer = trusted_dealer_keygen(n, t, rng)
    key = dealer.public_key_package.chain_key
    signers = sorted(chooser.sample(range(1, n + 1), t))
    message = chooser.randbytes(32)
    packages = dealer.key_packages
    signature = sign_with_committee(packages, dealer.public_key_package, signers, message, rng)
    sig96 = onchain_signature(signature)
    sig65 = signature.encode()

    assert harness.functions.verify(key.x, key.parity, message, sig96).call()
    assert harness.functions.verifyCompressed(key.x, key.parity, message, sig65).call()
    assert harness.functions.isValidGroupKey(key.x, key.parity).call()

    # Tampering with the message, the key, R or z is rejected on-chain.
    assert not harness.functions.verify(key.x, key.parity, _flip(message, 0), sig96).call()
    assert not harness.functions.verify(key.x, key.parity ^ 1, message, sig96).call()
    for index in (0, 31, 32, 63, 64, 95):
        assert not harness.functions.verify(key.x, key.parity, message, _flip(sig96, index)).call()
    for index in (1, 32, 33, 64):
        tampered = _flip(sig65, index)
        assert not harness.functions.verifyCompressed(key.x, key.parity, message, tampered).call()
    other = trusted_dealer_keygen(n, t, rng).public_key_package.chain_key
    assert not harness.functions.verify(other.x, other.parity, message, sig96).call()


def test_rfc_vector_verifies_on_chain(harness: Any) -> None:
    import json

    from tests.conftest import SHARED

    vector = json.loads((SHARED / "vectors" / "frost-secp256k1-sha256-rfc9591.json").read_text())
    group_key = bytes.fromhex(vector["inputs"]["group_public_key"])
    message = bytes.fromhex(vector["inputs"]["message"])
    signature = bytes.fromhex(vector["final_output"]["sig"])
    x, parity = int.from_bytes(group_key[1:], "big"), group_key[0] - 2
    assert harness.functions.verifyCompressed(x, parity, message, signature).call()
    sig96 = onchain_signature(Signature.decode(signature))
    assert harness.functions.verifyMessage(x, parity, message, sig96).call()
    assert not harness.functions.verifyMessage(x, parity, message + b"\0", sig96).call()
