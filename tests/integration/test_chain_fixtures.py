"""Shared setup for the chain/relay integration tests (no tests here).

A real anvil with the XON suite deployed by ``contracts.deploy.deploy_all``, a committee
dealt by ``oracle.keystore.deal_committee`` (identity keys for the MQTT roster and FROST
shares), PRICES reports signed with ``aggregation.frost.sign_with_committee`` exactly as
the contracts verify them, and :class:`RpcProxy` — a TCP proxy in front of anvil that a
test can stop and restart (and make drop responses) while anvil keeps its chain state.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from aggregation.frost import sign_with_committee
from aggregation.report import PricesPayload, Report, ReportKind, feed_id, signing_message
from contracts.deploy import CommitteeSpec, Deployment, FeedSpec, contract_at, deploy_all
from oracle.chain import FeePolicy, TransmitRequest, TransmitTiming, gwei
from oracle.keystore import DealtCommittee, committee_params, deal_committee
from tests.conftest import ANVIL_KEY_0, Anvil

FEEDS = (FeedSpec("H100-SXM/USD-HR", 8), FeedSpec("RTX-4090/USD-HR", 8))
NETWORK = "chaintest"

#: Fast timings for tests: poll often, bump quickly, retry soon.
FAST = TransmitTiming(
    poll_interval=0.05,
    bump_after=1.0,
    retry_initial=0.1,
    retry_max=0.5,
    fee_retry=0.3,
    rescan_interval=0.5,
)
POLICY = FeePolicy(max_fee_cap=gwei(100))


@dataclass
class ChainNet:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    dealt: DealtCommittee
    rng: random.Random

    @property
    def group_key_x(self) -> int:
        return self.dealt.committee.chain_key.x

    @property
    def store_address(self) -> str:
        return self.deployment.price_feed_store

    def funded_account(self) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.w3.provider.make_request(
            "anvil_setBalance",  # type: ignore[arg-type]
            [account.address, hex(10**20)],
        )
        return account

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def prices_report(self, epoch: int, round_: int, values: tuple[int, int]) -> bytes:
        digest = bytes.fromhex(self.deployment.config_digest.removeprefix("0x"))
        payload = PricesPayload(tuple(feed_id(f.name) for f in FEEDS), values).encode()
        return Report(digest, epoch, round_, self.now(), ReportKind.PRICES, payload).encode()

    def sign(self, report: bytes, receiver: str | None = None) -> bytes:
        """The 65-byte RFC 9591 signature of the committee over the report's message."""
        message = signing_message(self.deployment.chain_id, receiver or self.store_address, report)
        shares = {m.share.metadata.identifier: m.share.key_package for m in self.dealt.members}
        public = self.dealt.committee.public_key_package
        signers = sorted(self.rng.sample(sorted(shares), public.threshold))
        return sign_with_committee(shares, public, signers, message, self.rng.randbytes).encode()

    def request(self, epoch: int, round_: int, not_before: float = 0.0) -> TransmitRequest:
        report = self.prices_report(epoch, round_, (2_00000000 + round_, 40_000000 + epoch))
        return TransmitRequest.create(report, self.sign(report), not_before)

    def latest_epoch_and_round(self) -> tuple[int, int]:
        store = contract_at(self.w3, "PriceFeedStore", self.store_address)
        epoch, round_ = store.functions.latestEpochAndRound().call()
        return int(epoch), int(round_)

    def feed_answer(self, name: str) -> int:
        proxy = contract_at(self.w3, "FeedProxy", self.deployment.feed_proxies[name])
        return int(proxy.functions.latestRoundData().call()[1])

    def transactions_from(self, sender: str) -> list[dict[str, Any]]:
        """Every mined transaction sent by ``sender`` (scans anvil's blocks)."""
        found = []
        for number in range(self.w3.eth.block_number + 1):
            block = self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if not isinstance(tx, bytes) and tx["from"] == sender:
                    found.append(dict(tx))
        return found


@pytest.fixture
def chain_net(anvil: Anvil) -> Iterator[ChainNet]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    owner = Account.from_key(ANVIL_KEY_0)
    rng = random.Random(11)
    dealt = deal_committee(committee_params(4), network=NETWORK, rng=rng.randbytes)
    key = dealt.committee.chain_key
    spec = CommitteeSpec(
        key.x, key.parity, dealt.committee.params.t, tuple(dealt.committee.node_ids.values())
    )
    deployment = deploy_all(w3, owner, spec, FEEDS, uptime_capacity=2)
    yield ChainNet(anvil, w3, deployment, dealt, rng)


class RpcProxy:
    """A TCP proxy to anvil on a fixed local port that a test can stop and restart.

    ``drop_responses(method, n)``: forward the next ``n`` requests whose body names
    ``method`` to anvil but close the client connection instead of answering — the
    ambiguous failure where the node did the work and the caller never heard back.
    (web3's HTTP provider opens one connection per request, so one connection = one
    request here.)
    """

    def __init__(self, target_port: int, port: int) -> None:
        self.target_port = target_port
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._drop: dict[bytes, int] = {}
        self.dropped = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if server is not None:
            await server.wait_closed()

    def drop_responses(self, method: str, count: int = 1) -> None:
        self._drop[method.encode()] = count

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
            request = await _read_http_message(reader)
            drop = False
            for method, left in self._drop.items():
                if left > 0 and b'"' + method + b'"' in request:
                    self._drop[method] = left - 1
                    drop = True
            upstream_writer.write(request)
            await upstream_writer.drain()
            response = await _read_http_message(upstream_reader)
            if drop:
                self.dropped += 1
                writer.transport.abort()
                return
            writer.write(response)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            if upstream_writer is not None:
                upstream_writer.close()
            with contextlib.suppress(OSError):
                writer.close()


async def _read_http_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (what web3 and anvil speak)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body
