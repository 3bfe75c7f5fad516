"""The relayer core (oracle.relay) on the in-process transport and the in-memory chain:
FINAL verification before any gas is spent, and two relayers that never both send."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
from eth_account import Account

from aggregation.report import PricesPayload, Report, ReportKind, feed_id, signing_message
from oracle.chain import (
    FeePolicy,
    Outcome,
    TransmitResult,
    Transmitter,
    TransmitTiming,
    address,
    gwei,
)
from oracle.chain.memory import MemoryChain
from oracle.identity import Roster
from oracle.keystore import DealtCommittee, committee_params, deal_committee
from oracle.metrics import NodeMetrics
from oracle.protocol.messages import FinalReport
from oracle.relay import FinalVerifier, InvalidFinal, Relayer
from oracle.transport import Channel, MessageType
from oracle.transport.envelope import JsonValue, Received
from oracle.transport.memory import MemoryBus, MemoryTransport

NET = "relaytest"
STORE = address("0x" + "5a" * 20)
RECEIVERS = {int(ReportKind.PRICES): STORE}
TIMING = TransmitTiming(poll_interval=0.01, bump_after=0.5, retry_initial=0.02, retry_max=0.1)
RNG = random.Random(9)
DEALT: DealtCommittee = deal_committee(committee_params(4), network=NET, rng=RNG.randbytes)
ROSTER = Roster(m.identity_public_key for m in DEALT.committee.members)


def final(epoch: int, round_: int, *, forge: bool = False) -> FinalReport:
    from aggregation.frost import sign_with_committee

    payload = PricesPayload((feed_id("H100/USD-HR"),), (3_00000000 + round_,)).encode()
    report = Report(b"\x01" * 32, epoch, round_, int(time.time()), ReportKind.PRICES, payload)
    data = report.encode()
    message = signing_message(31337, STORE, data + (b"x" if forge else b""))
    shares = {m.share.metadata.identifier: m.share.key_package for m in DEALT.members}
    public = DEALT.committee.public_key_package
    signature = sign_with_committee(shares, public, [1, 2, 3], message, RNG.randbytes)
    return FinalReport(epoch, round_, data, signature.encode())


def received(payload: dict[str, JsonValue], *, type_: MessageType = MessageType.FINAL) -> Received:
    sender = DEALT.members[0].identity.node_id
    return Received(
        net=NET,
        type=type_,
        sender=sender,
        seq=1,
        payload=payload,
        to=None,
        frame=b"\x00" * 70,
        topic=f"xon/{NET}/reports/prices",
    )


VERIFIER = FinalVerifier.create(31337, RECEIVERS, DEALT.committee.group_key)


def test_a_valid_final_becomes_a_transmit_request() -> None:
    good = final(1, 1)
    request = VERIFIER.check(received(dict(good.to_payload())), not_before=12.5)
    assert (request.key.kind, request.key.epoch, request.key.round) == (1, 1, 1)
    assert request.report == good.report and request.signature == good.signature
    assert request.not_before == 12.5


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda p: {**p, "signature": final(1, 1, forge=True).to_payload()["signature"]},
            "bad_signature",
        ),
        (lambda p: {**p, "signature": "0x02" + "ff" * 64}, "bad_signature"),
        (lambda p: {**p, "r": 2}, "malformed"),
        (lambda p: {**p, "report": "0x1234"}, "malformed"),
        (lambda p: {k: v for k, v in p.items() if k != "e"}, "malformed"),
    ],
)
def test_invalid_finals_name_the_sender(
    mutate: Callable[[dict[str, JsonValue]], dict[str, JsonValue]], reason: str
) -> None:
    message = received(mutate(dict(final(1, 1).to_payload())))
    with pytest.raises(InvalidFinal) as caught:
        VERIFIER.check(message, not_before=0)
    assert caught.value.reason == reason
    assert caught.value.culprit == message.sender
    assert caught.value.evidence == message.frame


def test_a_kind_without_receiver_is_refused() -> None:
    verifier = FinalVerifier.create(31337, {}, DEALT.committee.group_key)
    with pytest.raises(InvalidFinal) as caught:
        verifier.check(received(dict(final(1, 1).to_payload())), not_before=0)
    assert caught.value.reason == "unknown_kind"


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (counters have no event to wait on)
            await asyncio.sleep(0.005)


class RelayRig:
    def __init__(self, bus: MemoryBus, chain: MemoryChain, delay: float) -> None:
        self.metrics = NodeMetrics()
        self.account = Account.create()
        self.results: list[TransmitResult] = []
        self.transmitter = Transmitter(
            chain,
            self.account,
            chain_id=31337,
            receivers=RECEIVERS,
            group_key_x=DEALT.committee.chain_key.x,
            fee_policy=FeePolicy(gwei(50)),
            timing=TIMING,
            metrics=self.metrics,
            on_result=self.results.append,
        )
        self.transport: MemoryTransport = bus.transport(
            network=NET, roster=ROSTER, metrics=self.metrics, channels={Channel.REPORTS}
        )
        self.relayer = Relayer(self.transport, self.transmitter, VERIFIER, delay=delay)

    def count(self, result: str) -> float:
        return self.metrics.sample("xon_relay_finals_total", {"result": result})


async def test_two_relayers_send_each_report_once() -> None:
    bus = MemoryBus()
    chain = MemoryChain(group_key=DEALT.committee.group_key)
    chain.add_receiver(STORE, int(ReportKind.PRICES))
    fast, slow = RelayRig(bus, chain, 0.0), RelayRig(bus, chain, 0.2)
    leader = bus.transport(network=NET, roster=ROSTER, identity=DEALT.members[0].identity)
    async with AsyncExitStack() as stack, asyncio.TaskGroup() as group:
        await stack.enter_async_context(leader)
        for rig in (fast, slow):
            for context in (rig.transmitter, rig.transport, rig.relayer):
                await stack.enter_async_context(context)
            group.create_task(rig.relayer.run())
        await leader.publish(
            Channel.REPORTS, MessageType.FINAL, final(1, 1, forge=True).to_payload(),
            report_kind="prices",
        )  # fmt: skip
        for round_ in (1, 2, 3):
            message = final(1, round_).to_payload()
            await leader.publish(Channel.REPORTS, MessageType.FINAL, message, report_kind="prices")
        await until(lambda: len(fast.results) == 3 and len(slow.results) == 3)
        # The same FINAL again (a re-published retained message) is recognised.
        await leader.publish(
            Channel.REPORTS, MessageType.FINAL, final(1, 3).to_payload(), report_kind="prices"
        )
        await until(lambda: fast.count("duplicate") == 1)
        await stack.aclose()
    assert [r.outcome for r in fast.results] == [Outcome.SENT] * 3
    assert {r.outcome for r in slow.results} <= {Outcome.ONCHAIN, Outcome.SUPERSEDED}
    assert [tx.nonce for tx in chain.sent_by(fast.account.address)] == [0, 1, 2]
    assert chain.sent_by(slow.account.address) == []
    assert chain.calls.get("eth_sendRawTransaction") == 3
    for rig in (fast, slow):
        assert rig.count("bad_signature") == 1
        assert rig.count("accepted") == 3
