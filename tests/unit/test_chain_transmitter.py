"""The transmitter on the in-memory chain: staging, cancellation of a stuck transaction
whose report landed elsewhere, lost answers, nonces consumed by someone else, retryable
and final simulation reverts, no overtaking within a report kind, and the entry point
per kind (PRICES through ``transmitCompact``, simulated with the calldata that is sent)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from aggregation.frost import DealerOutput, sign_with_committee, trusted_dealer_keygen
from aggregation.report import (
    PricesPayload,
    Report,
    ReportKind,
    ValuationsPayload,
    feed_id,
    signing_message,
)
from contracts.encoding import TRANSMIT_COMPACT_SELECTOR, decode_compact_prices_calldata
from oracle.chain import (
    Address,
    CallRequest,
    FeePolicy,
    Outcome,
    TransmitRequest,
    TransmitResult,
    Transmitter,
    TransmitTiming,
    address,
    gwei,
)
from oracle.chain.memory import CANCEL_GAS_USED, MemoryChain
from oracle.chain.receivers import LATEST_EPOCH_AND_ROUND_SELECTOR, TRANSMIT_SELECTOR
from oracle.metrics import NodeMetrics

STORE = address("0x" + "5a" * 20)
DIGEST = b"\x42" * 32
TIMING = TransmitTiming(
    poll_interval=0.01, bump_after=0.15, retry_initial=0.02, retry_max=0.1, fee_retry=0.05
)
RNG = random.Random(5)
DEALER: DealerOutput = trusted_dealer_keygen(3, 2, RNG.randbytes)


def signed(
    epoch: int, round_: int, *, not_before: float = 0.0, forge: bool = False
) -> TransmitRequest:
    payload = PricesPayload((feed_id("H100/USD-HR"),), (2_00000000 + round_,)).encode()
    report = Report(DIGEST, epoch, round_, int(time.time()), ReportKind.PRICES, payload).encode()
    message = signing_message(31337, STORE, b"forged" + report if forge else report)
    public = DEALER.public_key_package
    signature = sign_with_committee(DEALER.key_packages, public, [1, 2], message, RNG.randbytes)
    return TransmitRequest.create(report, signature.encode(), not_before)


class Rig:
    def __init__(
        self,
        chain: MemoryChain | None = None,
        receivers: dict[int, Address] | None = None,
        **policy: object,
    ) -> None:
        self.chain = chain or MemoryChain(group_key=DEALER.public_key_package.group_key)
        receivers = receivers or {int(ReportKind.PRICES): STORE}
        for kind, receiver in receivers.items():
            self.chain.add_receiver(receiver, kind)
        self.account: LocalAccount = Account.create()
        self.results: list[TransmitResult] = []
        self.metrics = NodeMetrics()
        self.transmitter = Transmitter(
            self.chain,
            self.account,
            chain_id=31337,
            receivers=receivers,
            group_key_x=DEALER.public_key_package.chain_key.x,
            fee_policy=FeePolicy(max_fee_cap=policy.pop("cap", gwei(100))),  # type: ignore[arg-type]
            timing=TIMING,
            metrics=self.metrics,
            on_result=self.results.append,
        )

    def outcomes(self) -> list[tuple[int, Outcome]]:
        return [(r.key.round, r.outcome) for r in self.results]

    def mined_by_us(self) -> list[tuple[int, int]]:
        return [(tx.nonce, tx.status) for tx in self.chain.sent_by(self.account.address)]


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (the fake chain has no events)
            await asyncio.sleep(0.005)


async def test_staged_member_waits_and_skips_what_the_leader_sent() -> None:
    chain = MemoryChain(group_key=DEALER.public_key_package.group_key)
    leader, follower = Rig(chain), Rig(chain)
    now = time.time()
    async with leader.transmitter as lead, follower.transmitter as follow:
        # The follower is stage 2 with ΔStage 0.15 s, the leader stage 0.
        follow.submit(signed(1, 1, not_before=now + 0.3))
        await asyncio.sleep(0.1)
        assert chain.mined == []  # the follower waits its turn
        lead.submit(signed(1, 1, not_before=now))
        await asyncio.wait_for(follow.wait_idle(), 5)
        await asyncio.wait_for(lead.wait_idle(), 5)
        # A report nobody else sends: the follower sends it after its delay, not before.
        start = time.time()
        follow.submit(signed(1, 2, not_before=start + 0.2))
        await asyncio.wait_for(follow.wait_idle(), 5)
    assert leader.outcomes() == [(1, Outcome.SENT)]
    assert follower.outcomes() == [(1, Outcome.ONCHAIN), (2, Outcome.SENT)]
    assert follower.mined_by_us() == [(0, 1)]
    assert (
        chain.sent_by(follower.account.address)[0].block
        > chain.sent_by(leader.account.address)[0].block
    )
    assert follower.metrics.sample("xon_tx_skipped_total", {"reason": "onchain"}) == 1


async def test_stuck_transaction_is_cancelled_when_the_report_lands_elsewhere() -> None:
    rig = Rig(MemoryChain(automine=False, group_key=DEALER.public_key_package.group_key))
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(2, 1))
        await until(lambda: len(rig.chain.pool) == 1)
        rig.chain._receivers[STORE].latest = (2, 1)  # someone else's transaction landed it
        await until(lambda: [tx.to for tx in rig.chain.pool] == [rig.transmitter.address])
        rig.chain.mine()
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert rig.outcomes() == [(1, Outcome.ONCHAIN)]
    [cancel] = rig.chain.sent_by(rig.account.address)
    assert (cancel.to, cancel.data, cancel.status, cancel.gas_used) == (
        rig.transmitter.address,
        b"",
        1,
        CANCEL_GAS_USED,
    )
    assert rig.transmitter.spend.cancellations == 1
    assert rig.metrics.sample("xon_tx_bumped_total") == 1


async def test_lost_answer_to_a_broadcast_sends_nothing_twice() -> None:
    rig = Rig()
    rig.chain.lose_next_answer("eth_sendRawTransaction")
    async with rig.transmitter as transmitter:
        for round_ in (1, 2):
            transmitter.submit(signed(3, round_))
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert rig.outcomes() == [(1, Outcome.SENT), (2, Outcome.SENT)]
    assert rig.mined_by_us() == [(0, 1), (1, 1)]


async def test_nonce_consumed_by_another_process_is_detected() -> None:
    rig = Rig(MemoryChain(automine=False, group_key=DEALER.public_key_package.group_key))
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(4, 1))
        await until(lambda: len(rig.chain.pool) == 1)
        # The same key sent something else at that nonce (another process, a wallet).
        rig.chain._pool.clear()
        rig.chain._nonces[rig.transmitter.address] = 1
        rig.chain.automine = True
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert rig.outcomes() == [(1, Outcome.SENT)]
    assert rig.mined_by_us() == [(1, 1)]  # re-sent at the next free nonce


async def test_race_lost_inside_a_block_settles_without_retrying() -> None:
    rig = Rig(MemoryChain(automine=False, group_key=DEALER.public_key_package.group_key))
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(5, 1))
        await until(lambda: len(rig.chain.pool) == 1)
        rig.chain._receivers[STORE].latest = (5, 1)  # landed just before ours in the block
        rig.chain.mine()
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert rig.outcomes() == [(1, Outcome.ONCHAIN)]
    assert rig.mined_by_us() == [(0, 0)]
    assert rig.transmitter.spend.reverted == 1
    assert rig.metrics.sample("xon_tx_failed_total") == 1


async def test_simulation_reverts_retry_or_settle() -> None:
    rig = Rig()
    rig.chain.set_paused(STORE, True)
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(6, 1))
        transmitter.submit(signed(6, 2, forge=True))
        await until(lambda: rig.metrics.sample("xon_tx_skipped_total", {"reason": "retry"}) >= 3)
        assert rig.chain.mined == []
        rig.chain.set_paused(STORE, False)
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert sorted(rig.outcomes()) == [(1, Outcome.SENT), (2, Outcome.REJECTED)]
    assert rig.mined_by_us() == [(0, 1)]
    rejected = next(r for r in rig.results if r.outcome is Outcome.REJECTED)
    assert rejected.detail == "simulation: BadSignature()"


async def test_later_report_does_not_overtake_an_earlier_one() -> None:
    rig = Rig()
    now = time.time()
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(7, 2, not_before=now))  # as leader of the later round
        transmitter.submit(signed(7, 1, not_before=now + 60))  # late stage of the earlier
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert rig.outcomes() == [(1, Outcome.SENT), (2, Outcome.SENT)]
    assert rig.chain.latest(STORE) == (7, 2)


async def test_fee_cap_holds_transactions_back() -> None:
    rig = Rig(cap=gwei(5))
    rig.chain.base_fee = gwei(6)
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(8, 1))
        await until(lambda: rig.metrics.sample("xon_tx_skipped_total", {"reason": "fee_cap"}) >= 2)
        assert rig.chain.mined == []
        rig.chain.base_fee = gwei(2)
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    [tx] = rig.chain.sent_by(rig.account.address)
    assert tx.max_fee <= gwei(5)


async def test_malformed_signature_and_unknown_kind_are_rejected() -> None:
    rig = Rig()
    good = signed(9, 1)
    bad_signature = TransmitRequest(good.key, good.report, b"\x02" + b"\xff" * 64, 0.0)
    valuations = Report(DIGEST, 9, 1, 1, ReportKind.VALUATIONS, b"").encode()
    async with rig.transmitter as transmitter:
        transmitter.submit(bad_signature)
        transmitter.submit(TransmitRequest.create(valuations, good.signature, 0.0))
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert {r.outcome for r in rig.results} == {Outcome.REJECTED}
    assert rig.chain.mined == []
    # Settled reports are not taken again.
    assert not transmitter.submit(bad_signature)


class RecordingChain(MemoryChain):
    """Remembers the calldata of every simulation and gas estimate."""

    def __init__(self) -> None:
        super().__init__(group_key=DEALER.public_key_package.group_key)
        self.simulated: list[bytes] = []

    async def call(self, request: CallRequest) -> bytes:
        self.simulated.append(request.data)
        return await super().call(request)

    async def estimate_gas(self, request: CallRequest) -> int:
        self.simulated.append(request.data)
        return await super().estimate_gas(request)


async def test_prices_go_compact_other_kinds_through_transmit() -> None:
    registry = address("0x" + "5b" * 20)
    chain = RecordingChain()
    rig = Rig(chain, {int(ReportKind.PRICES): STORE, int(ReportKind.VALUATIONS): registry})
    payload = ValuationsPayload((b"\x07" * 32,), (5,), (b"\x08" * 32,)).encode()
    valuation = Report(DIGEST, 11, 1, int(time.time()), ReportKind.VALUATIONS, payload).encode()
    message = signing_message(31337, registry, valuation)
    public = DEALER.public_key_package
    signature = sign_with_committee(DEALER.key_packages, public, [1, 3], message, RNG.randbytes)
    price = signed(11, 1)
    async with rig.transmitter as transmitter:
        transmitter.submit(price)
        await asyncio.wait_for(transmitter.wait_idle(), 5)
        transmitter.submit(TransmitRequest.create(valuation, signature.encode(), 0.0))
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert [r.outcome for r in rig.results] == [Outcome.SENT, Outcome.SENT]
    assert chain.latest(STORE) == (11, 1) and chain.latest(registry) == (11, 1)
    compact, abi = rig.chain.sent_by(rig.account.address)
    assert (compact.to, compact.status, compact.data[:4]) == (STORE, 1, TRANSMIT_COMPACT_SELECTOR)
    assert decode_compact_prices_calldata(compact.data)[0].encode() == price.report
    assert (abi.to, abi.status, abi.data[:4]) == (registry, 1, TRANSMIT_SELECTOR)
    # What was simulated and estimated is exactly what was sent.
    transmits = [d for d in chain.simulated if d[:4] != LATEST_EPOCH_AND_ROUND_SELECTOR]
    assert transmits == [compact.data, compact.data, abi.data, abi.data]


async def test_store_without_compact_entry_point_gets_abi_transmit() -> None:
    chain = RecordingChain()
    rig = Rig(chain)
    # A PriceFeedStore deployed before transmitCompact existed: the call reverts, no data.
    chain.add_receiver(STORE, int(ReportKind.PRICES), compact=False)
    async with rig.transmitter as transmitter:
        transmitter.submit(signed(12, 1))
        await asyncio.wait_for(transmitter.wait_idle(), 5)
        transmitter.submit(signed(12, 2))
        await asyncio.wait_for(transmitter.wait_idle(), 5)
    assert [r.outcome for r in rig.results] == [Outcome.SENT, Outcome.SENT]
    assert chain.latest(STORE) == (12, 2)
    assert [tx.data[:4] for tx in chain.sent_by(rig.account.address)] == [TRANSMIT_SELECTOR] * 2
    # The compact call was simulated once, then never again for this store.
    selectors = [d[:4] for d in chain.simulated if d[:4] != LATEST_EPOCH_AND_ROUND_SELECTOR]
    assert selectors == [TRANSMIT_COMPACT_SELECTOR] + [TRANSMIT_SELECTOR] * 4


def test_timing_checks() -> None:
    with pytest.raises(ValueError):
        TransmitTiming(poll_interval=0)
    with pytest.raises(ValueError):
        TransmitTiming(retry_initial=5, retry_max=1)


def test_request_from_the_cores_action_is_staged() -> None:
    from oracle.identity import NodeId
    from oracle.protocol.actions import ReportFinalized

    request = signed(10, 3)
    action = ReportFinalized(
        report=Report.decode(request.report),
        report_bytes=request.report,
        signature=request.signature,
        digest=b"\x00" * 32,
        epoch=10,
        round=3,
        leader=NodeId("0x" + "00" * 20),
        is_leader=False,
        transmit_delay=60.0,  # stage 2 with ΔStage 30 s
        finalized_at=1_000.0,
        latency=None,
    )
    staged = TransmitRequest.from_finalized(action)
    assert staged.not_before == 1_060.0
    assert (staged.key.kind, staged.key.epoch, staged.key.round) == (1, 10, 3)
    assert staged.report == request.report and staged.signature == request.signature
