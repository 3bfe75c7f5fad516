"""The transmitter: gets finalized reports on-chain, once, without wasting gas.

One implementation serves the node (staged, fed from its store) and ``xon relay`` (fed
from the ``reports`` topic, with an optional delay).

::

    async with Transmitter(client, account, chain_id=..., receivers=deployment.receiver_for_kind(),
                           group_key_x=committee.chain_key.x, fee_policy=FeePolicy(cap),
                           store=store, journal_path=state_dir / "tx-journal.json") as tx:
        tx.submit(TransmitRequest.from_finalized(action))   # non-blocking

**Per report** (a :class:`TransmitRequest`: report bytes, 65-byte FROST signature, and the
time it may be sent — 0 for the leader, k·ΔStage later for the k-th member after it):

1. wait until ``not_before``;
2. read the receiver's ``latestEpochAndRound()``; if it is ≥ the report's (epoch, round),
   the report (or a later one) is on-chain already: settle it, send nothing;
3. simulate the call with ``eth_call``: ``transmitCompact`` for a PRICES report,
   ``transmit`` otherwise (:func:`~oracle.chain.receivers.encode_report_calldata`; the
   calldata simulated is the calldata estimated and sent; a store whose compact call
   reverts without data was deployed before that entry point and gets ``transmit`` from
   then on). A revert is decoded to the
   contract's error name and decides (:func:`~oracle.chain.receivers.classify_revert`):
   ``NotIncreasing`` → superseded; ``StaleReport``, ``WrongConfigDigest``,
   ``BadSignature``, … → rejected for good; anything else (``Paused``, ``FutureReport``,
   …) → try again later. A transaction that simulation says reverts is never sent;
4. estimate gas (+25 %), pick EIP-1559 fees under the cap (:mod:`oracle.chain.fees`);
   base fee above the cap → wait ``fee_retry`` and start again at 2;
5. take the next nonce, sign, write the journal (:mod:`oracle.chain.nonces`), broadcast;
6. poll for the receipt; after ``bump_after`` without one, re-check the report: still
   needed → replace the transaction at the same nonce with fees +12.5 % (up to the cap);
   landed by someone else meanwhile → replace it with a 0-value self-transfer (a
   cancellation: 21,000 gas instead of a reverting ``transmit``);
7. settle: mark it transmitted in the store (with the tx hash when ours landed it),
   count gas and fees.

**Settled** means ``store.mark_transmitted`` was called: with our tx hash when our
transaction landed it, with none when it is on-chain by someone else's transaction, was
superseded, or can never be accepted (the log line and
``xon_tx_skipped_total{reason}`` say which). A report that reverted on-chain
``max_reverts`` times although simulation passed is left pending (outcome FAILED) and
retried after a restart.

**Durability.** On start the transmitter first resumes the journal's in-flight
transaction, then queues everything in ``store.pending_transmission()`` (and re-reads it
every ``rescan_interval``): a report not yet transmitted when the node stopped is
transmitted after the restart, and one whose transaction was already broadcast is not
sent twice.

**Failures.** RPC outages (:class:`~oracle.chain.errors.RpcUnavailable`, after the
client's own failover) and refusals put the report back in the queue with jittered
exponential backoff; it stays there until it lands, is superseded, or goes stale — a
stale report is refused by simulation, which settles it. There is at most one
transaction in flight (one nonce lane per account), so a failure can never leave a nonce
gap.

Everything runs in one worker task (plus a store rescan task) inside a ``TaskGroup``
owned by ``async with``; leaving the block cancels them, and cancellation at any await
leaves the store and the journal consistent (every write is atomic, and the journal is
written before a broadcast).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from eth_account.signers.local import LocalAccount

from aggregation.errors import XonError
from aggregation.report import Report
from contracts.encoding import transmit_signature
from oracle.chain.client import ChainClient
from oracle.chain.errors import (
    ChainError,
    ExecutionReverted,
    FeeCapExceeded,
    RpcUnavailable,
    TxRejected,
    TxRejection,
)
from oracle.chain.fees import FeePolicy, Fees, bump_fees, compute_fees
from oracle.chain.nonces import Attempt, InFlight, NonceManager, ReportKey
from oracle.chain.receivers import (
    TRANSMIT_COMPACT_SELECTOR,
    RevertClass,
    classify_revert,
    encode_report_calldata,
    encode_transmit,
    latest_epoch_and_round,
)
from oracle.chain.schedule import StageQueue
from oracle.chain.types import GWEI, Address, CallRequest, Receipt, TxHash, Wei, address
from oracle.errors import StoreError
from oracle.metrics import NodeMetrics

if TYPE_CHECKING:
    from oracle.protocol.actions import ReportFinalized
    from oracle.store import AsyncNodeStore, CommittedReport

__all__ = [
    "GasSpend",
    "Outcome",
    "TransmitRequest",
    "TransmitResult",
    "TransmitTiming",
    "Transmitter",
]

log = logging.getLogger("xon.chain.transmit")

CANCEL_GAS: Final = 21_000
_NO_FEE: Final = Wei(0)
_DONE_MEMORY: Final = 4_096  # settled keys remembered to ignore late duplicates cheaply


class Outcome(StrEnum):
    SENT = "sent"  # our transaction put it on-chain
    ONCHAIN = "onchain"  # someone else's transaction did (the receiver's latest == it)
    SUPERSEDED = "superseded"  # a later report is on-chain; this one can never land
    REJECTED = "rejected"  # the receiver can never accept it (stale, other config, bad sig)
    FAILED = "failed"  # reverted on-chain repeatedly; left pending for a restart


@dataclass(frozen=True, slots=True)
class TransmitTiming:
    """Timing of the transmitter (seconds)."""

    poll_interval: float = 1.0
    """Receipt polling period."""
    bump_after: float = 30.0
    """A transaction not mined after this long is replaced with higher fees."""
    retry_initial: float = 1.0
    retry_max: float = 60.0
    """Backoff of a report after an RPC failure or a retryable revert."""
    fee_retry: float = 15.0
    """Base fee above the cap: look again after this long."""
    rescan_interval: float = 30.0
    """Re-read the store's pending reports this often (catches anything not submitted)."""
    max_reverts: int = 3
    gas_margin_bps: int = 2_500
    max_gas: int = 5_000_000

    def __post_init__(self) -> None:
        if min(self.poll_interval, self.bump_after, self.retry_initial, self.rescan_interval) <= 0:
            raise ValueError("transmitter intervals must be positive")
        if self.retry_max < self.retry_initial or self.fee_retry <= 0:
            raise ValueError("bad transmitter retry timing")


@dataclass(frozen=True, slots=True)
class TransmitRequest:
    """A finalized report and when it may be sent (unix time)."""

    key: ReportKey
    report: bytes
    signature: bytes  # the RFC 9591 65-byte FROST signature
    not_before: float

    @classmethod
    def create(cls, report: bytes, signature: bytes, not_before: float) -> Self:
        """Raises :class:`~aggregation.errors.EncodingError` if ``report`` is malformed."""
        decoded = Report.decode(report)
        key = ReportKey(int(decoded.kind), decoded.epoch, decoded.round)
        return cls(key, bytes(report), bytes(signature), not_before)

    @classmethod
    def from_finalized(cls, action: ReportFinalized) -> Self:
        """From the consensus core's action: staged by its ``transmit_delay``."""
        return cls.create(
            action.report_bytes, action.signature, action.finalized_at + action.transmit_delay
        )

    @classmethod
    def from_committed(cls, record: CommittedReport, not_before: float) -> Self:
        key = ReportKey(record.kind, record.epoch, record.round)
        return cls(key, record.report, record.signature, not_before)


@dataclass(frozen=True, slots=True)
class TransmitResult:
    key: ReportKey
    outcome: Outcome
    detail: str = ""
    tx_hash: TxHash | None = None
    gas_used: int = 0
    fee: Wei = _NO_FEE


@dataclass(slots=True)
class GasSpend:
    """What this transmitter's account spent (every mined transaction of ours counts,
    reverted ones and cancellations included)."""

    broadcasts: int = 0  # signed transactions handed to a node (bumps included)
    mined: int = 0
    reverted: int = 0
    cancellations: int = 0
    gas_used: int = 0
    fees_wei: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        from decimal import Decimal

        eth = Decimal(self.fees_wei) / Decimal(10**18)
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.by_outcome.items())) or "-"
        return (
            f"txs_mined={self.mined} reverted={self.reverted} cancelled={self.cancellations} "
            f"broadcasts={self.broadcasts} gas_used={self.gas_used} fees_eth={eth:f} "
            f"reports: {outcomes}"
        )


@dataclass(slots=True)
class _Job:
    request: TransmitRequest
    failures: int = 0
    reverts: int = 0


class _Broadcast(StrEnum):
    OK = "ok"
    AMBIGUOUS = "ambiguous"  # no endpoint answered: it may or may not have arrived
    NONCE_USED = "nonce_used"
    UNDERPRICED = "underpriced"
    REFUSED = "refused"


def _onchain_outcome(latest: tuple[int, int], key: ReportKey) -> Outcome | None:
    mine = (key.epoch, key.round)
    if latest == mine:
        return Outcome.ONCHAIN
    if latest > mine:
        return Outcome.SUPERSEDED
    return None


class Transmitter:
    """Staged, durable, de-duplicating transmission of signed reports; see the module."""

    def __init__(
        self,
        client: ChainClient,
        account: LocalAccount,
        *,
        chain_id: int,
        receivers: Mapping[int, str],
        group_key_x: int,
        fee_policy: FeePolicy,
        store: AsyncNodeStore | None = None,
        journal_path: Path | None = None,
        timing: TransmitTiming | None = None,
        metrics: NodeMetrics | None = None,
        restart_delay: Callable[[CommittedReport], float] | None = None,
        on_result: Callable[[TransmitResult], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._account = account
        self.address: Address = address(account.address)
        self.chain_id = chain_id
        self._receivers = {int(k): address(v) for k, v in receivers.items()}
        # Receivers that turned out to lack transmitCompact (stores deployed before it).
        self._abi_only: set[Address] = set()
        self._group_key_x = group_key_x
        self._fees = fee_policy
        self._store = store
        self._timing = timing or TransmitTiming()
        self.metrics = metrics if metrics is not None else NodeMetrics()
        self._restart_delay = restart_delay or (lambda _record: 0.0)
        self._on_result = on_result
        self._clock = clock
        self._rng = rng or random.Random()
        self._nonces = NonceManager(client, self.address, chain_id, path=journal_path)
        self._queue: StageQueue[ReportKey, _Job] = StageQueue()
        self._done: OrderedDict[ReportKey, Outcome] = OrderedDict()
        self._active: ReportKey | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._counted: set[TxHash] = set()  # attempts already counted as sent
        self.spend = GasSpend()

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("the transmitter is already running")
        await self._nonces.load()  # a foreign or corrupt journal fails here, loudly
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._task_group = group
        self._tasks = [group.create_task(self._worker(), name="transmit-worker")]
        if self._store is not None:
            self._tasks.append(group.create_task(self._rescan_loop(), name="transmit-rescan"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._task_group = self._task_group, None
        if group is None:
            return
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        await group.__aexit__(exc_type, exc, tb)

    # -- public ------------------------------------------------------------------------
    def submit(self, request: TransmitRequest) -> bool:
        """Queue a report (non-blocking). False if it is queued, in progress or settled
        already (a second submission may only move its time earlier)."""
        key = request.key
        if key in self._done or key == self._active:
            return False
        order = (request.key.epoch, request.key.round)
        new = self._queue.push(key, _Job(request), request.not_before, order, lane=key.kind)
        self._idle.clear()
        self._wakeup.set()
        return new

    def set_group_key(self, group_key_x: int) -> None:
        """After a key rotation: the key x the receivers now expect with signatures."""
        self._group_key_x = group_key_x

    @property
    def queued(self) -> int:
        return len(self._queue)

    def outcome(self, key: ReportKey) -> Outcome | None:
        return self._done.get(key)

    async def wait_idle(self) -> None:
        """Return once nothing is queued, in progress or in flight (tests, shutdown)."""
        while True:
            await self._idle.wait()
            if self._is_idle():
                return
            self._idle.clear()

    def _is_idle(self) -> bool:
        return (
            self._started
            and not len(self._queue)
            and self._active is None
            and self._nonces.inflight is None
        )

    # -- worker ------------------------------------------------------------------------
    async def _resume_safely(self) -> None:
        try:
            await self._resume_inflight()
        except ChainError:
            # Only a journal write can fail here (RPC errors are waited out): new
            # transactions stay blocked behind the unresolved nonce, loudly.
            log.exception("transmit.resume_failed")
            await asyncio.sleep(self._timing.retry_max)

    async def _worker(self) -> None:
        await self._resume_safely()
        if self._store is not None:
            await self._load_pending()
        self._started = True
        while True:
            popped = self._queue.pop_due(self._clock())
            if popped is None:
                if self._is_idle():
                    self._idle.set()
                # No await between pop_due and clear(): a submit cannot slip in between.
                self._wakeup.clear()
                due = self._queue.next_due()
                timeout = None if due is None else max(0.0, due - self._clock())
                try:
                    async with asyncio.timeout(timeout):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                continue
            key, job = popped
            if self._nonces.inflight is not None:
                # Never start a new transaction behind an unresolved one.
                self._requeue(job, 0.0)
                await self._resume_safely()
                continue
            self._active = key
            try:
                await self._process(job)
            finally:
                self._active = None

    async def _rescan_loop(self) -> None:
        while True:
            await asyncio.sleep(self._timing.rescan_interval)
            await self._load_pending()

    async def _load_pending(self) -> None:
        assert self._store is not None
        try:
            pending = await self._store.pending_transmission()
        except StoreError:
            log.exception("transmit.store_error op=pending_transmission")
            return
        added = 0
        for record in pending:
            request = TransmitRequest.from_committed(
                record, record.committed_at + self._restart_delay(record)
            )
            if self.submit(request):
                added += 1
        if added:
            log.info("transmit.pending_loaded count=%d", added)

    async def _resume_inflight(self) -> None:
        inflight = self._nonces.inflight
        if inflight is None:
            return
        log.info(
            "transmit.resume nonce=%d report=%s attempts=%d",
            inflight.nonce,
            inflight.report,
            len(inflight.attempts),
        )
        found = await self._confirm(rebroadcast=True)
        key = inflight.report
        if key is None or found is None:
            return
        receipt, attempt = found
        if receipt.succeeded and not attempt.cancel:
            self._queue.discard(key)
            await self._settle(key, Outcome.SENT, "resumed after restart", receipt)
        # Otherwise the report (if still pending) is re-checked like any other.

    # -- one report --------------------------------------------------------------------
    async def _process(self, job: _Job) -> None:
        request = job.request
        key = request.key
        receiver = self._receivers.get(key.kind)
        if receiver is None:
            await self._settle(key, Outcome.REJECTED, f"no receiver for report kind {key.kind}")
            return
        try:
            outcome = _onchain_outcome(await self._latest(receiver), key)
            if outcome is not None:
                await self._settle(key, outcome, "already on-chain")
                return
            try:
                signature = transmit_signature(request.signature, self._group_key_x)
            except (XonError, ValueError) as exc:
                await self._settle(key, Outcome.REJECTED, f"malformed signature: {exc}")
                return
            # Simulated, estimated and sent as is (replacements reuse it too).
            if receiver in self._abi_only:
                calldata = encode_transmit(request.report, signature)
            else:
                calldata = encode_report_calldata(request.report, signature)
            try:
                gas = await self._simulate(receiver, calldata)
            except ExecutionReverted as exc:
                if not (calldata[:4] == TRANSMIT_COMPACT_SELECTOR and not exc.data):
                    await self._simulation_reverted(job, exc)
                    return
                # No revert data for the compact call: a store deployed before
                # transmitCompact existed (no such function). Use `transmit` there.
                log.warning(
                    "transmit.compact_unsupported receiver=%s: %s has no transmitCompact; "
                    "sending ABI transmit to it from now on (redeploy to save ~3.6k gas/report)",
                    receiver,
                    receiver,
                )
                self._abi_only.add(receiver)
                calldata = encode_transmit(request.report, signature)
                try:
                    gas = await self._simulate(receiver, calldata)
                except ExecutionReverted as exc2:
                    await self._simulation_reverted(job, exc2)
                    return
            fees = compute_fees(await self._client.fee_snapshot(), self._fees)
            found = await self._transact(key, receiver, calldata, self._gas_limit(gas), fees)
        except FeeCapExceeded as exc:
            log.warning(
                "transmit.fee_cap_exceeded %s base_fee_gwei=%s cap_gwei=%s retry_in=%.0fs: "
                "not sending a transaction that could not be included",
                key,
                _gwei(exc.base_fee),
                _gwei(exc.cap),
                self._timing.fee_retry,
            )
            self.metrics.tx_skipped.labels(reason="fee_cap").inc()
            self._requeue(job, self._timing.fee_retry)
            return
        except TxRejected as exc:
            self.metrics.tx_failed.inc()
            log.error("transmit.tx_rejected %s reason=%s: %s", key, exc.reason, exc.rpc_message)
            self._retry(job, str(exc))
            return
        except ChainError as exc:  # RpcUnavailable, RpcError, NonceError, all endpoints off
            self._retry(job, str(exc))
            return
        if found is None:
            # Our nonce was consumed by a transaction we do not know: look at the chain again.
            self._requeue(job, 0.0)
            return
        await self._mined(job, *found)

    async def _simulate(self, receiver: Address, calldata: bytes) -> int:
        """eth_call then eth_estimateGas of ``calldata``; raises ExecutionReverted."""
        call = CallRequest(self.address, receiver, calldata)
        await self._client.call(call)
        return await self._client.estimate_gas(call)

    async def _latest(self, receiver: Address) -> tuple[int, int]:
        return await latest_epoch_and_round(self._client, receiver, self.address)

    async def _simulation_reverted(self, job: _Job, exc: ExecutionReverted) -> None:
        key = job.request.key
        verdict = classify_revert(exc.error_name)
        if verdict is RevertClass.SUPERSEDED:
            await self._settle(key, Outcome.SUPERSEDED, f"simulation: {exc.error}")
        elif verdict is RevertClass.TERMINAL:
            await self._settle(key, Outcome.REJECTED, f"simulation: {exc.error}")
        else:
            self.metrics.tx_skipped.labels(reason="retry").inc()
            log.info("transmit.simulation_reverted %s error=%s (will retry)", key, exc.error)
            # A reason of its own: later reports of the kind may go ahead (no starving).
            self._retry(job, f"simulation: {exc.error}", blocking=False)

    async def _mined(self, job: _Job, receipt: Receipt, attempt: Attempt) -> None:
        key = job.request.key
        if receipt.succeeded and not attempt.cancel:
            await self._settle(key, Outcome.SENT, "", receipt)
            return
        # Reverted, or our cancellation was mined: the report is normally on-chain by
        # someone else's hand now (we lost a race, or cancelled because of it).
        try:
            outcome = _onchain_outcome(await self._latest(self._receivers[key.kind]), key)
        except ChainError as exc:
            self._retry(job, str(exc))
            return
        what = "cancelled" if attempt.cancel else "reverted"
        if outcome is not None:
            await self._settle(key, outcome, f"our transaction {what}; landed by another")
            return
        job.reverts += 1
        if job.reverts >= self._timing.max_reverts:
            await self._settle(key, Outcome.FAILED, f"{job.reverts} transactions {what}")
            return
        self._retry(job, f"transaction {what} on-chain")

    def _gas_limit(self, estimate: int) -> int:
        margin = -(-estimate * (10_000 + self._timing.gas_margin_bps) // 10_000)
        return min(margin, self._timing.max_gas)

    def _retry(self, job: _Job, reason: str, *, blocking: bool = True) -> None:
        job.failures += 1
        ceiling = min(
            self._timing.retry_max, self._timing.retry_initial * 2 ** min(job.failures - 1, 32)
        )
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        log.warning(
            "transmit.retry %s failures=%d retry_in=%.2fs reason=%s",
            job.request.key,
            job.failures,
            delay,
            reason,
        )
        self._requeue(job, delay, blocking=blocking)

    def _requeue(self, job: _Job, delay: float, *, blocking: bool = True) -> None:
        key = job.request.key
        self._queue.push(
            key,
            job,
            self._clock() + delay,
            (key.epoch, key.round),
            lane=key.kind,
            blocking=blocking,
        )

    async def _settle(
        self, key: ReportKey, outcome: Outcome, detail: str, receipt: Receipt | None = None
    ) -> None:
        tx_hash = receipt.tx_hash if receipt is not None and outcome is Outcome.SENT else None
        if outcome is not Outcome.FAILED and self._store is not None:
            try:
                await self._store.mark_transmitted(key.kind, key.epoch, key.round, tx_hash)
            except StoreError as exc:
                # Not stored (a relayer-fed report) or a store fault: the next rescan or
                # restart re-checks the chain and settles it again.
                log.debug("transmit.store_mark_failed %s: %s", key, exc)
        self._done[key] = outcome
        while len(self._done) > _DONE_MEMORY:
            self._done.popitem(last=False)
        self.spend.by_outcome[outcome.value] = self.spend.by_outcome.get(outcome.value, 0) + 1
        self.metrics.transmissions.labels(outcome=outcome.value).inc()
        if outcome in (Outcome.ONCHAIN, Outcome.SUPERSEDED, Outcome.REJECTED):
            self.metrics.tx_skipped.labels(reason=outcome.value).inc()
        gas = receipt.gas_used if receipt is not None else 0
        level = logging.WARNING if outcome in (Outcome.REJECTED, Outcome.FAILED) else logging.INFO
        log.log(
            level,
            "transmit.%s %s tx=%s gas_used=%d %s",
            outcome.value,
            key,
            "-" if tx_hash is None else "0x" + tx_hash.hex(),
            gas,
            detail,
        )
        if self._on_result is not None:
            self._on_result(
                TransmitResult(
                    key,
                    outcome,
                    detail,
                    tx_hash,
                    gas,
                    receipt.fee if receipt is not None else Wei(0),
                )
            )

    # -- transactions ------------------------------------------------------------------
    def _sign(
        self, nonce: int, to: Address, data: bytes, gas: int, fees: Fees, *, cancel: bool
    ) -> Attempt:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "data": data,
        }
        signed = self._account.sign_transaction(tx)
        return Attempt(
            tx_hash=TxHash(bytes(signed.hash)),
            raw=bytes(signed.raw_transaction),
            fees=fees,
            cancel=cancel,
            sent_at=self._clock(),
        )

    async def _transact(
        self, key: ReportKey, to: Address, data: bytes, gas: int, fees: Fees
    ) -> tuple[Receipt, Attempt] | None:
        nonce = await self._nonces.allocate()
        self._counted.clear()
        attempt = self._sign(nonce, to, data, gas, fees, cancel=False)
        await self._nonces.begin(InFlight(nonce, to, data, gas, Wei(0), key, (attempt,)))
        log.info(
            "transmit.sending %s nonce=%d tx=0x%s gas=%d max_fee_gwei=%s tip_gwei=%s",
            key,
            nonce,
            attempt.tx_hash.hex(),
            gas,
            _gwei(fees.max_fee_per_gas),
            _gwei(fees.max_priority_fee_per_gas),
        )
        status = await self._broadcast(attempt)
        if status is _Broadcast.REFUSED:
            # Refused outright and never seen elsewhere: the nonce stays free.
            await self._nonces.abandon()
            raise TxRejected(TxRejection.OTHER, "the node refused the transaction")
        return await self._confirm(
            rebroadcast=status is _Broadcast.AMBIGUOUS,
            check_nonce=status is _Broadcast.NONCE_USED,
        )

    async def _broadcast(self, attempt: Attempt) -> _Broadcast:
        status = await self._send(attempt)
        if status is _Broadcast.OK:
            self._count_sent(attempt)
        return status

    def _count_sent(self, attempt: Attempt) -> None:
        """Count a signed transaction once, when a node took it or it was mined (an
        answer lost on the way still counts once its receipt shows up)."""
        if attempt.tx_hash not in self._counted:
            self._counted.add(attempt.tx_hash)
            self.spend.broadcasts += 1
            self.metrics.tx_sent.inc()

    async def _send(self, attempt: Attempt) -> _Broadcast:
        try:
            await self._client.send_raw_transaction(attempt.raw)
        except RpcUnavailable as exc:
            log.warning("transmit.broadcast_unanswered tx=0x%s: %s", attempt.tx_hash.hex(), exc)
            return _Broadcast.AMBIGUOUS
        except TxRejected as exc:
            if exc.reason is TxRejection.ALREADY_KNOWN:
                return _Broadcast.OK
            if exc.reason is TxRejection.NONCE_TOO_LOW:
                return _Broadcast.NONCE_USED
            if exc.reason is TxRejection.UNDERPRICED:
                log.warning("transmit.underpriced tx=0x%s: %s", attempt.tx_hash.hex(), exc)
                return _Broadcast.UNDERPRICED
            self.metrics.tx_failed.inc()
            log.error("transmit.refused tx=0x%s: %s", attempt.tx_hash.hex(), exc)
            return _Broadcast.REFUSED
        return _Broadcast.OK

    async def _find_receipt(self, inflight: InFlight) -> tuple[Receipt, Attempt] | None:
        for attempt in reversed(inflight.attempts):
            receipt = await self._client.receipt(attempt.tx_hash)
            if receipt is not None:
                return receipt, attempt
        return None

    async def _confirm(
        self, *, rebroadcast: bool = False, check_nonce: bool = False
    ) -> tuple[Receipt, Attempt] | None:
        """Wait for the in-flight transaction to be mined (bumping it when stuck).

        Returns the receipt and the attempt that was mined, or None when the nonce was
        consumed by a transaction we do not know (or ours was refused everywhere). RPC
        outages are waited out here: the in-flight transaction is never forgotten.
        """
        inflight = self._nonces.inflight
        assert inflight is not None
        last_action = self._clock()
        failures = 0
        while True:
            try:
                found = await self._find_receipt(inflight)
                if found is not None:
                    await self._nonces.settle()
                    self._account_receipt(*found)
                    return found
                if rebroadcast:
                    status = await self._broadcast(inflight.latest)
                    rebroadcast = status is _Broadcast.AMBIGUOUS
                    check_nonce = check_nonce or status is _Broadcast.NONCE_USED
                    if status is _Broadcast.REFUSED and await self._nonce_free(inflight):
                        await self._nonces.abandon()
                        return None
                stuck = self._clock() - last_action >= self._timing.bump_after
                if check_nonce or stuck:
                    check_nonce = False
                    if await self._client.nonce(self.address, "latest") > inflight.nonce:
                        found = await self._find_receipt(inflight)
                        await self._nonces.settle()
                        if found is not None:
                            self._account_receipt(*found)
                            return found
                        log.warning(
                            "transmit.nonce_consumed_elsewhere nonce=%d report=%s",
                            inflight.nonce,
                            inflight.report,
                        )
                        return None
                if stuck:
                    last_action = self._clock()
                    inflight, rebroadcast = await self._replace(inflight)
                failures = 0
            except ChainError as exc:  # RPC outage or error, journal write: keep waiting
                failures += 1
                log.warning(
                    "transmit.confirm_error nonce=%d failures=%d: %s",
                    inflight.nonce,
                    failures,
                    exc,
                )
                ceiling = min(self._timing.retry_max, self._timing.poll_interval * 2**failures)
                await asyncio.sleep(ceiling / 2 + self._rng.uniform(0, ceiling / 2))
                continue
            await asyncio.sleep(self._timing.poll_interval)

    async def _nonce_free(self, inflight: InFlight) -> bool:
        return await self._client.nonce(self.address, "pending") <= inflight.nonce

    async def _replace(self, inflight: InFlight) -> tuple[InFlight, bool]:
        """Bump the stuck transaction (or cancel it if its report landed meanwhile).
        Returns the in-flight record and whether a re-broadcast is still owed."""
        cancel = inflight.latest.cancel
        if not cancel and inflight.report is not None:
            receiver = self._receivers.get(inflight.report.kind)
            if receiver is not None:
                latest = await self._latest(receiver)
                cancel = _onchain_outcome(latest, inflight.report) is not None
        fees = bump_fees(inflight.latest.fees, await self._client.fee_snapshot(), self._fees)
        if fees is None:
            log.warning(
                "transmit.bump_capped nonce=%d max_fee_gwei=%s cap_gwei=%s: waiting, re-sending",
                inflight.nonce,
                _gwei(inflight.latest.fees.max_fee_per_gas),
                _gwei(self._fees.max_fee_cap),
            )
            status = await self._broadcast(inflight.latest)
            return inflight, status is _Broadcast.AMBIGUOUS
        if cancel:
            to, data, gas = self.address, b"", CANCEL_GAS
        else:
            to, data, gas = inflight.to, inflight.data, inflight.gas
        attempt = self._sign(inflight.nonce, to, data, gas, fees, cancel=cancel)
        inflight = await self._nonces.add_attempt(attempt, to=to, data=data, gas=gas)
        self.metrics.tx_bumped.inc()
        log.info(
            "transmit.%s nonce=%d tx=0x%s max_fee_gwei=%s tip_gwei=%s report=%s",
            "cancelling" if cancel else "bumped",
            inflight.nonce,
            attempt.tx_hash.hex(),
            _gwei(fees.max_fee_per_gas),
            _gwei(fees.max_priority_fee_per_gas),
            inflight.report,
        )
        status = await self._broadcast(attempt)
        return inflight, status is _Broadcast.AMBIGUOUS

    def _account_receipt(self, receipt: Receipt, attempt: Attempt) -> None:
        self._count_sent(attempt)
        spend = self.spend
        spend.mined += 1
        spend.gas_used += receipt.gas_used
        spend.fees_wei += receipt.fee
        self.metrics.tx_gas_used.inc(receipt.gas_used)
        self.metrics.tx_fees_gwei.inc(receipt.fee / GWEI)
        self.metrics.tx_confirmation.observe(max(0.0, self._clock() - attempt.sent_at))
        if attempt.cancel:
            spend.cancellations += 1
        if not receipt.succeeded:
            spend.reverted += 1
            self.metrics.tx_failed.inc()


def _gwei(wei: int) -> str:
    from decimal import Decimal

    return f"{Decimal(wei) / GWEI:f}"
