"""``xon relay`` over a real mosquitto and a real anvil.

A committee member publishes FINAL messages on the retained ``reports/prices`` topic the
way the node does; two relayers follow the topic read-only. Each report is sent by exactly
one of them (the one with the shorter delay) and only looked at by the other; a FINAL
with a forged FROST signature is sent by neither; a relayer that starts late gets the
retained report and finds it on-chain. The last test runs the ``xon relay`` command as a
process and stops it with SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from aggregation.report import ReportKind
from oracle.chain import (
    Outcome,
    TransmitRequest,
    TransmitResult,
    Transmitter,
    Web3ChainClient,
)
from oracle.identity import IdentityKey, Roster
from oracle.keystore import (
    INSECURE_FAST_KDF,
    Passphrase,
    write_committee,
    write_identity_keystore,
)
from oracle.metrics import NodeMetrics
from oracle.protocol.messages import FinalReport
from oracle.relay import FinalVerifier, Relayer
from oracle.transport import Backoff, Channel, MessageType, MqttSettings, MqttTransport
from tests.conftest import ROOT, Broker
from tests.integration.test_chain_fixtures import FAST, NETWORK, POLICY, ChainNet, chain_net

pytestmark = pytest.mark.integration

__all__ = ["chain_net"]  # the fixture, re-exported for pytest


def _mqtt(broker: Broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        keepalive=5,
        timeout=2.0,
        backoff=Backoff(initial=0.05, maximum=0.3),
        close_flush_timeout=0.5,
    )


async def _until(predicate: Callable[[], bool], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (counters have no event to wait on)
            await asyncio.sleep(0.02)


def _roster(net: ChainNet) -> Roster:
    return Roster(m.identity_public_key for m in net.dealt.committee.members)


class _RelayerUnderTest:
    def __init__(self, net: ChainNet, broker: Broker, delay: float) -> None:
        self.account: LocalAccount = net.funded_account()
        self.results: list[TransmitResult] = []
        self.metrics = NodeMetrics()
        self.client = Web3ChainClient([net.anvil.url], chain_id=net.deployment.chain_id)
        self.transmitter = Transmitter(
            self.client,
            self.account,
            chain_id=net.deployment.chain_id,
            receivers=net.deployment.receiver_for_kind(),
            group_key_x=net.group_key_x,
            fee_policy=POLICY,
            timing=FAST,
            metrics=self.metrics,
            on_result=self.results.append,
        )
        self.transport = MqttTransport(
            _mqtt(broker),
            network=NETWORK,
            roster=_roster(net),
            identity=None,
            metrics=self.metrics,
            channels={Channel.REPORTS},
        )
        verifier = FinalVerifier.create(
            net.deployment.chain_id,
            net.deployment.receiver_for_kind(),
            net.dealt.committee.group_key,
        )
        self.relayer = Relayer(
            self.transport, self.transmitter, verifier, delay=delay, metrics=self.metrics
        )

    async def start(self, stack: AsyncExitStack, group: asyncio.TaskGroup) -> None:
        await stack.enter_async_context(self.client)
        await stack.enter_async_context(self.transmitter)
        await stack.enter_async_context(self.transport)
        await stack.enter_async_context(self.relayer)
        group.create_task(self.relayer.run())
        async with asyncio.timeout(10):
            await self.transport.wait_connected()

    def finals(self, result: str) -> float:
        return self.metrics.sample("xon_relay_finals_total", {"result": result})


async def _publish_final(publisher: MqttTransport, request: TransmitRequest) -> None:
    final = FinalReport(request.key.epoch, request.key.round, request.report, request.signature)
    await publisher.publish(
        Channel.REPORTS, MessageType.FINAL, final.to_payload(), report_kind="prices"
    )


async def test_two_relayers_send_each_report_once(chain_net: ChainNet, mosquitto: Broker) -> None:
    net = chain_net
    leader: IdentityKey = net.dealt.members[0].identity
    fast = _RelayerUnderTest(net, mosquitto, delay=0.0)
    slow = _RelayerUnderTest(net, mosquitto, delay=1.0)
    good = [net.request(6, r) for r in (1, 2, 3)]
    forged_report = net.prices_report(6, 4, (1, 2))
    forged = TransmitRequest.create(forged_report, net.sign(b"not this report"), 0.0)
    publisher = MqttTransport(
        _mqtt(mosquitto), network=NETWORK, roster=_roster(net), identity=leader
    )
    async with AsyncExitStack() as stack, asyncio.TaskGroup() as group:
        await stack.enter_async_context(publisher)
        for relayer in (fast, slow):
            await relayer.start(stack, group)
        async with asyncio.timeout(10):
            await publisher.wait_connected()
        await _publish_final(publisher, forged)
        for request in good:
            await _publish_final(publisher, request)
            await asyncio.sleep(0.2)
        await _until(lambda: len(fast.results) == 3 and len(slow.results) == 3)
        # A relayer started now gets the retained FINAL and finds it on-chain.
        late = _RelayerUnderTest(net, mosquitto, delay=0.0)
        await late.start(stack, group)
        await _until(lambda: len(late.results) == 1)
        for relayer in (fast, slow, late):
            await asyncio.wait_for(relayer.transmitter.wait_idle(), 10)
        await stack.aclose()
    assert [(r.key.round, r.outcome) for r in fast.results] == [
        (1, Outcome.SENT),
        (2, Outcome.SENT),
        (3, Outcome.SENT),
    ]
    assert {r.outcome for r in slow.results} <= {Outcome.ONCHAIN, Outcome.SUPERSEDED}
    assert [(r.key.round, r.outcome) for r in late.results] == [(3, Outcome.ONCHAIN)]
    assert len(await asyncio.to_thread(net.transactions_from, fast.account.address)) == 3
    assert await asyncio.to_thread(net.transactions_from, slow.account.address) == []
    assert await asyncio.to_thread(net.transactions_from, late.account.address) == []
    for relayer in (fast, slow):
        assert relayer.finals("bad_signature") == 1
        assert relayer.finals("accepted") == 3
    assert fast.relayer.spend.mined == 3 and slow.relayer.spend.mined == 0
    assert fast.relayer.spend.gas_used > 0
    assert net.latest_epoch_and_round() == (6, 3)


async def test_xon_relay_command(chain_net: ChainNet, mosquitto: Broker, tmp_path: Path) -> None:
    """The CLI end to end: a FINAL published on the broker lands; SIGINT exits 0 with the
    gas summary; the journal file is written."""
    net = chain_net
    account = net.funded_account()
    key_file, committee_file = tmp_path / "relayer.json", tmp_path / "committee.json"
    deployment_file, journal = tmp_path / "deployment.json", tmp_path / "journal.json"
    await asyncio.to_thread(
        write_identity_keystore,
        key_file,
        IdentityKey(bytes(account.key)),
        Passphrase("relay-test"),
        kdf=INSECURE_FAST_KDF,
    )
    write_committee(committee_file, net.dealt.committee)
    net.deployment.write(deployment_file)
    env = {**os.environ, "RELAY_PW": "relay-test"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oracle.cli", "relay",
        "--broker", f"{mosquitto.host}:{mosquitto.port}",
        "--network", NETWORK,
        "--rpc", net.anvil.url,
        "--deployment", str(deployment_file),
        "--committee", str(committee_file),
        "--key-file", str(key_file),
        "--password-env", "RELAY_PW",
        "--journal", str(journal),
        "--max-fee-gwei", "50",
        cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    publisher = MqttTransport(
        _mqtt(mosquitto),
        network=NETWORK,
        roster=_roster(net),
        identity=net.dealt.members[1].identity,
    )
    lines: list[str] = []

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            lines.append(line.decode())

    try:
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(read_stderr())
            request = net.request(7, 1)
            async with publisher:
                async with asyncio.timeout(10):
                    await publisher.wait_connected()
                # Retained: the relayer gets it whenever it has subscribed.
                await _publish_final(publisher, request)
                await _until(lambda: any("transmit.sent" in line for line in lines), within=30)
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                await process.wait()
                await reader
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(lines)
    assert process.returncode == 0, text[-2000:]
    assert "xon relay: stopped; txs_mined=1 reverted=0" in text
    assert "reports: sent=1" in text
    assert journal.exists()
    txs = await asyncio.to_thread(net.transactions_from, account.address)
    assert len(txs) == 1 and txs[0]["maxFeePerGas"] <= 50 * 10**9
    assert int(ReportKind.PRICES) == request.key.kind
