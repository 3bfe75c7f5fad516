"""``xon relay``: a permissionless relayer of the committee's signed reports.

A relayer follows the ``xon/{network}/reports/+`` topics **read-only** (its transport has
no identity key, so it cannot publish), and for every FINAL message:

1. the transport has already checked the envelope (a committee member's identity
   signature over the exact frame, network, replay window);
2. :class:`FinalVerifier` decodes the FINAL payload and the report, looks up the contract
   that accepts the report's kind in the deployment, and verifies the **FROST group
   signature** over ``signing_message(chain_id, receiver, report)`` under the committee's
   group key — before a single gas unit is spent. A FINAL that fails is the publishing
   member's provable fault (:class:`InvalidFinal`, a ``PeerMisbehaviour`` carrying the
   frame): counted in ``xon_relay_finals_total{result}``, logged, never sent;
3. a verified report goes to the same :class:`~oracle.chain.transmitter.Transmitter` the
   nodes use, due ``delay`` seconds after it arrived. The transmitter checks the
   receiver's ``latestEpochAndRound()`` and simulates before sending, so a report already
   on-chain (posted by the committee's transmitters or another relayer) or superseded
   costs at most an ``eth_call``, never a transaction.

Running several relayers side by side wastes nothing as long as their delays differ by
more than a block time (the later one finds the report on-chain); with equal delays two
of them can race inside one block and the loser's transaction reverts (about 25k gas).

The relayer logs its gas spend every ``report_interval`` seconds and once more on exit
(:class:`~oracle.chain.transmitter.GasSpend`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

from aggregation.errors import CryptoError, EncodingError, PeerMisbehaviour
from aggregation.frost import Point, Signature, verify
from aggregation.report import Report, signing_message
from oracle.chain.transmitter import GasSpend, TransmitRequest, Transmitter
from oracle.chain.types import Address, address
from oracle.errors import TransportClosed
from oracle.metrics import NodeMetrics
from oracle.protocol.messages import FinalReport
from oracle.transport.base import Transport
from oracle.transport.envelope import MessageType, Received

__all__ = ["FinalVerifier", "InvalidFinal", "Relayer"]

log = logging.getLogger("xon.relay")

DEFAULT_REPORT_INTERVAL: Final = 60.0


class InvalidFinal(PeerMisbehaviour):
    """A committee member published a FINAL that is not a valid signed report.

    ``reason`` is a metric label (``bad_signature``, ``malformed``, ``unknown_kind``);
    ``culprit`` the member's node id, ``evidence`` the exact signed frame."""

    def __init__(self, reason: str, detail: str, *, culprit: str, evidence: bytes) -> None:
        super().__init__(
            f"invalid FINAL from {culprit} ({reason}): {detail}", culprit=culprit, evidence=evidence
        )
        self.reason = reason


@dataclass(frozen=True)
class FinalVerifier:
    """Checks FINAL messages against the committee's group key and the deployment."""

    chain_id: int
    receivers: Mapping[int, Address]
    group_key: Point

    @classmethod
    def create(cls, chain_id: int, receivers: Mapping[int, str], group_key: Point) -> Self:
        return cls(chain_id, {int(k): address(v) for k, v in receivers.items()}, group_key)

    def check(self, received: Received, *, not_before: float) -> TransmitRequest:
        """The transmit request for a verified FINAL; raises :class:`InvalidFinal`."""

        def fault(reason: str, detail: str) -> InvalidFinal:
            return InvalidFinal(reason, detail, culprit=received.sender, evidence=received.frame)

        try:
            final = FinalReport.from_payload(received.payload)
            report = Report.decode(final.report)
        except EncodingError as exc:
            raise fault("malformed", str(exc)) from None
        if (report.epoch, report.round) != (final.epoch, final.round):
            raise fault("malformed", "payload epoch/round differ from the report's")
        receiver = self.receivers.get(int(report.kind))
        if receiver is None:
            raise fault("unknown_kind", f"no receiver for report kind {int(report.kind)}")
        message = signing_message(self.chain_id, receiver, final.report)
        try:
            valid = verify(self.group_key, message, Signature.decode(final.signature))
        except CryptoError as exc:
            raise fault("bad_signature", f"undecodable signature: {exc}") from None
        if not valid:
            raise fault("bad_signature", "the FROST signature does not verify")
        return TransmitRequest.create(final.report, final.signature, not_before)


class Relayer:
    """Feeds verified FINALs from a read-only transport into a transmitter.

    ``async with Relayer(...) as relayer: await relayer.run()`` — ``run`` returns when the
    transport closes; leaving the block logs the gas summary.
    """

    def __init__(
        self,
        transport: Transport,
        transmitter: Transmitter,
        verifier: FinalVerifier,
        *,
        delay: float = 0.0,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        metrics: NodeMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if delay < 0 or report_interval <= 0:
            raise ValueError("delay must be >= 0 and report_interval > 0")
        self._transport = transport
        self._transmitter = transmitter
        self._verifier = verifier
        self._delay = delay
        self._report_interval = report_interval
        self.metrics = metrics if metrics is not None else transmitter.metrics
        self._clock = clock
        for result in ("accepted", "bad_signature", "malformed", "unknown_kind", "duplicate"):
            self.metrics.relay_finals.labels(result=result)

    @property
    def spend(self) -> GasSpend:
        return self._transmitter.spend

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        log.info("relay.summary %s", self.spend.describe())

    def handle(self, received: Received) -> bool:
        """Verify one received message and queue it; True if a report was queued."""
        if received.type is not MessageType.FINAL:
            return False
        try:
            request = self._verifier.check(received, not_before=self._clock() + self._delay)
        except InvalidFinal as exc:
            self.metrics.relay_finals.labels(result=exc.reason).inc()
            log.warning(
                "relay.invalid_final sender=%s reason=%s topic=%s: %s",
                exc.culprit,
                exc.reason,
                received.topic,
                exc,
            )
            return False
        if not self._transmitter.submit(request):
            self.metrics.relay_finals.labels(result="duplicate").inc()
            log.debug("relay.duplicate %s", request.key)
            return False
        self.metrics.relay_finals.labels(result="accepted").inc()
        log.info(
            "relay.final %s sender=%s retained=%s due_in=%.1fs",
            request.key,
            received.sender,
            received.retained,
            self._delay,
        )
        return True

    async def run(self) -> None:
        """Consume the transport until it closes; log the gas spend periodically."""
        async with asyncio.TaskGroup() as group:
            reporter = group.create_task(self._report_loop(), name="relay-report")
            try:
                while True:
                    try:
                        received = await self._transport.receive()
                    except TransportClosed:
                        return
                    self.handle(received)
            finally:
                reporter.cancel()

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self._report_interval)
            log.info(
                "relay.gas_spent %s queued=%d", self.spend.describe(), self._transmitter.queued
            )
