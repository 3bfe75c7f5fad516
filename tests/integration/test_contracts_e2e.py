"""The whole contract suite on a real anvil, fed reports signed by a Python FROST committee.

Deploys with ``contracts.deploy.deploy_all``, posts every report kind (PRICES, VALUATIONS,
HARDWARE, UPTIME, KEY_ROTATION) encoded by ``aggregation.report`` and signed with
``aggregation.frost``, and reads each back through the proxies and registries; PRICES
also through ``PriceFeedStore.transmitCompact`` (``contracts.encoding``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError

from aggregation.frost import DealerOutput, sign_with_committee, trusted_dealer_keygen
from aggregation.merkle import MerkleTree, uptime_leaf
from aggregation.report import (
    DeviceStatus,
    HardwarePayload,
    PricesPayload,
    Report,
    ReportKind,
    UptimePayload,
    ValuationsPayload,
    feed_id,
    signing_message,
)
from contracts.artifacts import decode_revert
from contracts.deploy import CommitteeSpec, Deployment, FeedSpec, contract_at, deploy_all
from contracts.encoding import (
    compact_prices_calldata,
    decode_compact_prices_calldata,
    transmit_signature,
)
from tests.conftest import ANVIL_KEY_0, Anvil

pytestmark = pytest.mark.integration

FEEDS = (
    FeedSpec("H100-SXM/USD-HR", 8, "H100 SXM rental, USD per GPU-hour"),
    FeedSpec("RTX-4090/USD-HR"),
)


@dataclass
class Network:
    w3: Web3
    owner: LocalAccount
    deployment: Deployment
    dealer: DealerOutput
    rng: random.Random

    @property
    def key(self) -> Any:
        return self.dealer.public_key_package.chain_key

    def sign(self, message: bytes, dealer: DealerOutput | None = None) -> bytes:
        dealer = dealer or self.dealer
        threshold = dealer.public_key_package.threshold
        signers = sorted(self.rng.sample(sorted(dealer.key_packages), threshold))
        signature = sign_with_committee(
            dealer.key_packages, dealer.public_key_package, signers, message, self.rng.randbytes
        )
        return transmit_signature(signature, dealer.public_key_package.chain_key.x)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def report(self, kind: ReportKind, payload: bytes, epoch: int, round_: int) -> bytes:
        digest = bytes(
            contract_at(self.w3, "XonCommittee", self.deployment.committee)
            .functions.configDigest()
            .call()
        )
        return Report(digest, epoch, round_, self.now(), kind, payload).encode()

    def post(self, kind: ReportKind, report: bytes, signature: bytes | None = None) -> Any:
        receiver = self.deployment.receiver_for_kind()[int(kind)]
        if signature is None:
            signature = self.sign(signing_message(self.deployment.chain_id, receiver, report))
        name = {
            ReportKind.PRICES: "PriceFeedStore",
            ReportKind.VALUATIONS: "ValuationRegistry",
            ReportKind.HARDWARE: "HardwareRegistry",
            ReportKind.UPTIME: "UptimeRegistry",
            ReportKind.KEY_ROTATION: "XonCommittee",
        }[kind]
        contract = contract_at(self.w3, name, receiver)
        tx = contract.functions.transmit(report, signature).transact({"from": self.owner.address})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return receipt

    def rejects(self, kind: ReportKind, report: bytes, signature: bytes | None, error: str) -> None:
        receiver = self.deployment.receiver_for_kind()[int(kind)]
        if signature is None:
            signature = self.sign(signing_message(self.deployment.chain_id, receiver, report))
        contract = contract_at(self.w3, "PriceFeedStore", receiver)  # same transmit ABI
        with pytest.raises(ContractCustomError) as caught:
            contract.functions.transmit(report, signature).call({"from": self.owner.address})
        decoded = decode_revert(str(caught.value.data))
        assert decoded.split("(")[0] == error, decoded

    def send_raw(self, to: str, data: bytes) -> Any:
        """A signed raw transaction from the owner; its receipt (status not checked)."""
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.deployment.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.owner.address),
            "to": to,
            "value": 0,
            "gas": 1_000_000,  # no estimate: a reverting call is sent as well
            "maxFeePerGas": 2 * int(self.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "data": data,
        }
        raw = self.owner.sign_transaction(tx).raw_transaction
        return self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(raw))

    def compact_rejects(self, data: bytes, error: str) -> None:
        """``transmitCompact`` with ``data`` reverts ``error``, in a call and in a transaction."""
        store = self.deployment.price_feed_store
        with pytest.raises(ContractCustomError) as caught:
            self.w3.eth.call({"from": self.owner.address, "to": store, "data": data})
        decoded = decode_revert(str(caught.value.data))
        assert decoded.split("(")[0] == error, decoded
        assert self.send_raw(store, data)["status"] == 0


@pytest.fixture
def network(anvil: Anvil) -> Iterator[Network]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    owner = Account.from_key(ANVIL_KEY_0)
    rng = random.Random(7)
    dealer = trusted_dealer_keygen(4, 3, rng.randbytes)
    key = dealer.public_key_package.chain_key
    members = tuple(Account.create().address for _ in range(4))
    spec = CommitteeSpec(key.x, key.parity, 3, members)
    deployment = deploy_all(w3, owner, spec, FEEDS, uptime_capacity=4)
    yield Network(w3, owner, deployment, dealer, rng)


def test_prices_through_feed_proxies(network: Network) -> None:
    values = (2_34000000, 44_250000)
    ids = tuple(feed_id(f.name) for f in FEEDS)
    report = network.report(ReportKind.PRICES, PricesPayload(ids, values).encode(), 1, 1)
    observed_at = Report.decode(report).observations_timestamp
    receipt = network.post(ReportKind.PRICES, report)
    block_time = network.w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    for spec, value in zip(FEEDS, values, strict=True):
        proxy = contract_at(network.w3, "FeedProxy", network.deployment.feed_proxies[spec.name])
        round_id, answer, started_at, updated_at, answered_in = (
            proxy.functions.latestRoundData().call()
        )
        assert answer == value
        assert started_at == observed_at
        assert updated_at == block_time
        assert answered_in == round_id
        assert proxy.functions.decimals().call() == spec.decimals
        assert proxy.functions.getRoundData(round_id).call()[1] == value

    # A replay, a reordered (older) report and a forged signature are all refused.
    network.rejects(ReportKind.PRICES, report, None, "NotIncreasing")
    older = network.report(ReportKind.PRICES, PricesPayload(ids, values).encode(), 1, 0)
    network.rejects(ReportKind.PRICES, older, None, "NotIncreasing")
    newer = network.report(ReportKind.PRICES, PricesPayload(ids[:1], (2_40000000,)).encode(), 1, 2)
    forged = bytearray(network.sign(b"\x00" * 32))
    network.rejects(ReportKind.PRICES, newer, bytes(forged), "BadSignature")
    # A report signed for another contract is refused at this one.
    wrong_message = signing_message(network.deployment.chain_id, network.deployment.vault, newer)
    network.rejects(ReportKind.PRICES, newer, network.sign(wrong_message), "BadSignature")
    network.post(ReportKind.PRICES, newer)
    proxy = contract_at(network.w3, "FeedProxy", network.deployment.feed_proxies[FEEDS[0].name])
    assert proxy.functions.latestRoundData().call()[1] == 2_40000000


def test_prices_through_compact_calldata(network: Network) -> None:
    w3, dep = network.w3, network.deployment
    store = dep.price_feed_store
    ids = tuple(feed_id(f.name) for f in FEEDS)
    values = (2_34000000, -44_250000)  # a negative value: sign-extended from 16 bytes
    report = network.report(ReportKind.PRICES, PricesPayload(ids, values).encode(), 1, 1)
    # Signed as for ABI transmit: the store checks the same message on both paths.
    signature = network.sign(signing_message(dep.chain_id, store, report))
    data = compact_prices_calldata(report, signature)
    assert data[:4] == bytes.fromhex("00000029")
    receipt = network.send_raw(store, data)
    assert receipt["status"] == 1
    block_time = w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    observed_at = Report.decode(report).observations_timestamp
    for spec, value in zip(FEEDS, values, strict=True):
        proxy = contract_at(w3, "FeedProxy", dep.feed_proxies[spec.name])
        round_id, answer, started_at, updated_at, answered_in = (
            proxy.functions.latestRoundData().call()
        )
        assert (answer, started_at, updated_at, answered_in) == (
            value,
            observed_at,
            block_time,
            round_id,
        )
    latest = contract_at(w3, "PriceFeedStore", store).functions.latestEpochAndRound().call()
    assert tuple(latest) == (1, 1)

    # The same report again, by either entry point: NotIncreasing.
    network.compact_rejects(data, "NotIncreasing")
    network.rejects(ReportKind.PRICES, report, signature, "NotIncreasing")
    # Malformed lengths, a forged signature, a signature over another report.
    network.compact_rejects(data[:-1], "MalformedReport")
    network.compact_rejects(data + b"\x00", "MalformedReport")
    network.compact_rejects(data[:180], "MalformedReport")
    nxt = network.report(ReportKind.PRICES, PricesPayload(ids, values).encode(), 1, 2)
    forged = network.sign(b"\x00" * 32)
    network.compact_rejects(compact_prices_calldata(nxt, forged), "BadSignature")
    network.compact_rejects(compact_prices_calldata(nxt, signature), "BadSignature")
    # A repeated feed: the signature over the report the store rebuilds checks out, then
    # the duplicate is refused, as ABI transmit refuses it.
    dup_payload = abi_encode(["bytes32[]", "int256[]"], [[ids[0], ids[0]], [1, 2]])
    dup_report = network.report(ReportKind.PRICES, dup_payload, 1, 2)
    dup_signature = network.sign(signing_message(dep.chain_id, store, dup_report))
    header = Report.decode(dup_report)
    single = replace(header, payload=PricesPayload(ids[:1], (1,)).encode())
    dup_data = compact_prices_calldata(single, dup_signature) + ids[0] + (2).to_bytes(16, "big")
    assert decode_compact_prices_calldata(dup_data) == (header, dup_signature)
    network.compact_rejects(dup_data, "DuplicateFeed")
    network.rejects(ReportKind.PRICES, dup_report, dup_signature, "DuplicateFeed")

    # Cheaper than ABI transmit of the next report (same feeds, same values).
    abi_receipt = network.post(ReportKind.PRICES, nxt)
    assert receipt["gasUsed"] < abi_receipt["gasUsed"]
    # And the other way round: compact after ABI, one signature valid for both calls.
    third = network.report(ReportKind.PRICES, PricesPayload(ids, values).encode(), 1, 3)
    third_signature = network.sign(signing_message(dep.chain_id, store, third))
    contract_at(w3, "PriceFeedStore", store).functions.transmit(third, third_signature).call(
        {"from": network.owner.address}
    )  # ABI transmit would accept it ...
    compact_receipt = network.send_raw(store, compact_prices_calldata(third, third_signature))
    assert compact_receipt["status"] == 1  # ... and so does the compact call
    assert compact_receipt["gasUsed"] < abi_receipt["gasUsed"]
    network.rejects(ReportKind.PRICES, third, third_signature, "NotIncreasing")


def test_valuations_hardware_uptime(network: Network) -> None:
    w3, dep = network.w3, network.deployment
    owner = Account.create()
    device_key = Account.create()
    fingerprint = keccak(b"GPU-7f1c2e6a serial 1654321098765")
    hardware = contract_at(w3, "HardwareRegistry", dep.hardware_registry)
    nonce = 0
    typed = {
        "domain": {
            "name": "XON HardwareRegistry",
            "version": "1",
            "chainId": dep.chain_id,
            "verifyingContract": dep.hardware_registry,
        },
        "types": {
            "DeviceBinding": [
                {"name": "fingerprint", "type": "bytes32"},
                {"name": "deviceKey", "type": "address"},
                {"name": "owner", "type": "address"},
                {"name": "nonce", "type": "uint256"},
            ]
        },
        "primaryType": "DeviceBinding",
        "message": {
            "fingerprint": fingerprint,
            "deviceKey": device_key.address,
            "owner": owner.address,
            "nonce": nonce,
        },
    }
    owner_sig = Account.sign_typed_data(owner.key, full_message=typed).signature
    device_sig = Account.sign_typed_data(device_key.key, full_message=typed).signature
    tx = hardware.functions.register(
        fingerprint, device_key.address, owner.address, nonce, owner_sig, device_sig
    ).transact({"from": network.owner.address})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1

    payload = HardwarePayload((fingerprint,), (DeviceStatus.ACTIVE,), (fingerprint,)).encode()
    network.post(ReportKind.HARDWARE, network.report(ReportKind.HARDWARE, payload, 1, 1))
    status, _, _ = hardware.functions.deviceStatus(fingerprint).call()
    assert status == DeviceStatus.ACTIVE
    tx = hardware.functions.mintDeviceNft(fingerprint).transact({"from": network.owner.address})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    nft = contract_at(w3, "DeviceNFT", dep.device_nft)
    assert nft.functions.ownerOf(int.from_bytes(fingerprint, "big")).call() == owner.address

    valuation = 21_500_00000000
    report_hash = keccak(b"valuation inputs")
    payload = ValuationsPayload((fingerprint,), (valuation,), (report_hash,)).encode()
    report = network.report(ReportKind.VALUATIONS, payload, 1, 1)
    network.post(ReportKind.VALUATIONS, report)
    value, stored_hash, timestamp = (
        contract_at(w3, "ValuationRegistry", dep.valuation_registry)
        .functions.getValuation(fingerprint)
        .call()
    )
    assert (value, bytes(stored_hash)) == (valuation, report_hash)
    assert timestamp == Report.decode(report).observations_timestamp

    devices = [fingerprint, *(keccak(bytes([i])) for i in range(6))]
    uptimes = [9_950, 10_000, 0, 5_000, 1, 7_777, 9_999]
    leaves = [uptime_leaf(d, 17, bps) for d, bps in zip(devices, uptimes, strict=True)]
    tree = MerkleTree.of(leaves)
    payload = UptimePayload(17, tree.root, len(leaves)).encode()
    network.post(ReportKind.UPTIME, network.report(ReportKind.UPTIME, payload, 1, 1))
    registry = contract_at(w3, "UptimeRegistry", dep.uptime_registry)
    root, count, _ = registry.functions.epochRoot(17).call()
    assert (bytes(root), count) == (tree.root, len(leaves))
    for device, bps, leaf in zip(devices, uptimes, leaves, strict=True):
        proof = tree.proof(leaf)
        assert registry.functions.verifyUptime(device, 17, bps, proof).call()
        assert not registry.functions.verifyUptime(device, 17, (bps + 1) % 10_001, proof).call()


def test_key_rotation_by_report(network: Network) -> None:
    w3, dep = network.w3, network.deployment
    successor = trusted_dealer_keygen(5, 4, network.rng.randbytes)
    new_key = successor.public_key_package.chain_key
    members = tuple(Account.create().address for _ in range(5))
    spec = CommitteeSpec(new_key.x, new_key.parity, 4, members)
    payload = abi_encode(
        ["uint256", "uint8", "uint8", "uint8", "bytes32"],
        [new_key.x, new_key.parity, 4, 5, spec.members_hash],
    )
    network.post(ReportKind.KEY_ROTATION, network.report(ReportKind.KEY_ROTATION, payload, 1, 1))
    committee = contract_at(w3, "XonCommittee", dep.committee)
    assert tuple(committee.functions.groupKey().call()) == (new_key.x, new_key.parity)

    ids = (feed_id(FEEDS[0].name),)
    report = network.report(ReportKind.PRICES, PricesPayload(ids, (3_00000000,)).encode(), 1, 1)
    receiver = dep.price_feed_store
    message = signing_message(dep.chain_id, receiver, report)
    old_signature = network.sign(message)  # the rotated-out committee
    network.rejects(ReportKind.PRICES, report, old_signature, "WrongGroupKey")
    network.post(ReportKind.PRICES, report, network.sign(message, successor))
    proxy = contract_at(w3, "FeedProxy", dep.feed_proxies[FEEDS[0].name])
    assert proxy.functions.latestRoundData().call()[1] == 3_00000000
