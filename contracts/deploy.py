"""Deploy the whole XON contract suite, in order, from the committed artifacts.

Order (docs/contracts.md §9.6): ``XonCommittee`` (+ ``setConfig`` with the group key),
``PriceFeedStore`` (+ one ``FeedProxy`` per feed via ``registerFeed``),
``HardwareRegistry`` (creates ``DeviceNFT``), ``ValuationRegistry``, ``UptimeRegistry``,
``addReceiver`` for each receiver, then the reference ``GpuCollateralVault`` on a
stablecoin (a ``MockStablecoin`` is deployed when none is given, for test networks).

This is synchronous web3 on purpose: deployment is a one-shot command, not a coroutine.
Every transaction is signed locally by the owner account and must succeed, or
:class:`DeployError` names the step that failed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception

from aggregation.report import ReportKind, feed_id
from contracts.artifacts import load_artifact
from contracts.errors import DeployError

log = logging.getLogger(__name__)

DEFAULT_MAX_REPORT_AGE = 3600  # seconds a signed report may travel before it is stale
DEFAULT_UPTIME_CAPACITY = 24  # uptime epochs kept provable (≈45k gas each at deployment)


@dataclass(frozen=True)
class FeedSpec:
    """A price feed to register: its name is its on-chain id (ASCII, ≤ 32 chars)."""

    name: str
    decimals: int = 8
    description: str = ""
    deviation_bps: int = 50
    heartbeat: int = 3600


@dataclass(frozen=True)
class CommitteeSpec:
    """The committee's group key (x < n) and membership, as ``setConfig`` takes them."""

    group_key_x: int
    group_key_parity: int
    threshold: int
    members: tuple[str, ...]  # node ids (checksummed addresses), in roster order

    @property
    def members_hash(self) -> bytes:
        """keccak256(abi.encode(address[] members)): opaque to the contracts, binds the roster."""
        return members_hash(self.members)


def members_hash(members: Sequence[str]) -> bytes:
    return keccak(abi_encode(["address[]"], [[Web3.to_checksum_address(m) for m in members]]))


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    owner: str
    committee: str
    price_feed_store: str
    hardware_registry: str
    device_nft: str
    valuation_registry: str
    uptime_registry: str
    vault: str
    stablecoin: str
    config_digest: str
    block_number: int
    feed_proxies: Mapping[str, str] = field(default_factory=dict)  # feed name -> FeedProxy

    def receiver_for_kind(self) -> dict[int, str]:
        """Report kind (a ReportKind value) -> the contract that accepts it."""
        return {
            ReportKind.PRICES: self.price_feed_store,
            ReportKind.VALUATIONS: self.valuation_registry,
            ReportKind.HARDWARE: self.hardware_registry,
            ReportKind.UPTIME: self.uptime_registry,
            ReportKind.KEY_ROTATION: self.committee,
        }

    def to_json(self) -> str:
        data = asdict(self)
        data["feed_proxies"] = dict(self.feed_proxies)
        return json.dumps({"format": "xon-deployment/1", **data}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        data = json.loads(text)
        if data.pop("format", None) != "xon-deployment/1":
            raise DeployError("not an xon-deployment/1 file")
        try:
            return cls(**data)
        except TypeError as exc:
            raise DeployError(f"malformed deployment file: {exc}") from exc

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


class TransactionSender:
    """Signs with a local account, tracks the nonce, waits for and checks receipts."""

    def __init__(self, w3: Web3, account: LocalAccount, *, receipt_timeout: float = 120) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = int(w3.eth.chain_id)
        self.nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
        self.receipt_timeout = receipt_timeout

    def _send(self, step: str, tx: dict[str, Any]) -> Any:
        tx.setdefault("from", self.account.address)
        tx["nonce"] = self.nonce
        tx["chainId"] = self.chain_id
        try:
            if "gas" not in tx:
                tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 1.2) + 10_000  # type: ignore[arg-type]
            signed = self.account.sign_transaction(tx)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            self.nonce += 1
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout
            )
        except ContractLogicError as exc:
            raise DeployError(f"{step}: reverted: {exc}") from exc
        except (Web3Exception, ValueError, OSError) as exc:
            raise DeployError(f"{step}: {exc}") from exc
        if receipt["status"] != 1:
            raise DeployError(f"{step}: transaction {tx_hash.hex()} failed")
        return receipt

    def deploy(self, name: str, *args: Any) -> Any:
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction(
            {"from": self.account.address, "nonce": self.nonce, "chainId": self.chain_id}
        )
        receipt = self._send(f"deploy {name}", dict(tx))
        address = receipt["contractAddress"]
        if not address:
            raise DeployError(f"deploy {name}: no contract address in the receipt")
        return self.w3.eth.contract(address=address, abi=artifact.abi)

    def transact(self, step: str, function: Any) -> Any:
        tx = function.build_transaction(
            {"from": self.account.address, "nonce": self.nonce, "chainId": self.chain_id}
        )
        return self._send(step, dict(tx))


def contract_at(w3: Web3, name: str, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def deploy_all(
    w3: Web3,
    owner: LocalAccount,
    committee: CommitteeSpec,
    feeds: Sequence[FeedSpec],
    *,
    max_report_age: int = DEFAULT_MAX_REPORT_AGE,
    uptime_capacity: int = DEFAULT_UPTIME_CAPACITY,
    stablecoin: str | None = None,
    vault_config: tuple[int, int, int, int] = (6_000, 7_500, 86_400, 43_200),
    progress: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy and wire the whole suite; return the addresses.

    ``vault_config`` is (max LTV bps, liquidation threshold bps, max valuation age s,
    failure grace period s); the defaults are the vault's own defaults.
    """
    say = progress or (lambda step: log.info("deploy.step %s", step))
    sender = TransactionSender(w3, owner)
    say("XonCommittee")
    committee_contract = sender.deploy("XonCommittee", owner.address, max_report_age)
    say("PriceFeedStore")
    store = sender.deploy(
        "PriceFeedStore", committee_contract.address, owner.address, max_report_age
    )
    say("HardwareRegistry + DeviceNFT")
    hardware = sender.deploy("HardwareRegistry", committee_contract.address, max_report_age)
    say("ValuationRegistry")
    valuations = sender.deploy("ValuationRegistry", committee_contract.address, max_report_age)
    say(f"UptimeRegistry (capacity {uptime_capacity} epochs)")
    uptime = sender.deploy(
        "UptimeRegistry", committee_contract.address, max_report_age, uptime_capacity
    )
    for receiver in (store, hardware, valuations, uptime):
        sender.transact("addReceiver", committee_contract.functions.addReceiver(receiver.address))
    say("setConfig (group key)")
    sender.transact(
        "setConfig",
        committee_contract.functions.setConfig(
            committee.group_key_x,
            committee.group_key_parity,
            committee.threshold,
            len(committee.members),
            committee.members_hash,
        ),
    )
    proxies: dict[str, str] = {}
    for spec in feeds:
        say(f"feed {spec.name}")
        fid = feed_id(spec.name)
        sender.transact(
            f"registerFeed {spec.name}",
            store.functions.registerFeed(
                fid,
                spec.decimals,
                spec.description or spec.name,
                spec.deviation_bps,
                spec.heartbeat,
            ),
        )
        proxies[spec.name] = str(store.functions.proxyOf(fid).call())
    if stablecoin is None:
        say("MockStablecoin (test networks only)")
        stablecoin = str(sender.deploy("MockStablecoin", "XON Test USD", "xUSD", 6).address)
    say("GpuCollateralVault")
    vault = sender.deploy(
        "GpuCollateralVault",
        owner.address,
        Web3.to_checksum_address(stablecoin),
        hardware.address,
        valuations.address,
        vault_config,
    )
    return Deployment(
        chain_id=sender.chain_id,
        owner=owner.address,
        committee=committee_contract.address,
        price_feed_store=store.address,
        hardware_registry=hardware.address,
        device_nft=str(hardware.functions.deviceNft().call()),
        valuation_registry=valuations.address,
        uptime_registry=uptime.address,
        vault=vault.address,
        stablecoin=Web3.to_checksum_address(stablecoin),
        config_digest="0x" + bytes(committee_contract.functions.configDigest().call()).hex(),
        block_number=int(w3.eth.block_number),
        feed_proxies=proxies,
    )
