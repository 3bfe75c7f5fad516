"""Nonces and the in-flight transaction journal of one sending account.

The transmitter keeps **at most one transaction in flight per account** (one nonce at a
time, replaced in place when bumped). That rules out nonce gaps by construction: a nonce
is only ever reused for a replacement of the same in-flight transaction, or handed out
again after the chain proved it unused.

**Next nonce** = max(the chain's *pending* transaction count, last nonce we saw consumed
+ 1), read from the chain every time a new transaction starts — so after a restart, an
RPC error, a failover to a lagging endpoint or a transaction sent by someone else with the
same key, the manager re-synchronises instead of trusting a counter.

**Journal** (write-ahead, JSON, one file per account and chain): before a signed
transaction is broadcast for the first time, the journal records it — nonce, what it is
for, its destination, calldata, gas and every attempt's raw signed bytes and fees — with
an atomic replace (write temp file, fsync, rename, fsync the directory). A process that
dies anywhere after that point finds the transaction on restart and resumes it: re-sends
the exact same bytes (same hash: the chain includes it at most once), polls all attempt
hashes for a receipt, bumps it if it stays stuck. Without the journal a restart would
either forget a transaction that was broadcast (and send the report again at the next
nonce, paying twice) or wait forever on one that was never broadcast. File format::

    {"format": "xon-tx-journal/1", "chain_id": 31337, "account": "0x…",
     "last_nonce": 6,                       # last nonce seen consumed (null: none yet)
     "inflight": null | {
        "nonce": 7, "to": "0x…", "data": "0x…", "gas": 61234, "value": 0,
        "report": {"kind": 1, "epoch": 3, "round": 9} | null,
        "attempts": [{"tx_hash": "0x…", "raw": "0x…", "max_fee_per_gas": …,
                      "max_priority_fee_per_gas": …, "cancel": false, "sent_at": …}]}}

A journal written for another account or chain is refused (:class:`NonceError`), so two
keys can never share one by mistake. ``path=None`` keeps the journal in memory only (a
relayer that accepts losing track of an in-flight transaction across restarts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from oracle.chain.client import ChainClient
from oracle.chain.errors import NonceError
from oracle.chain.fees import Fees
from oracle.chain.types import Address, TxHash, Wei, address

__all__ = ["JOURNAL_FORMAT", "Attempt", "InFlight", "NonceManager", "ReportKey"]

log = logging.getLogger("xon.chain.nonces")

JOURNAL_FORMAT: Final = "xon-tx-journal/1"


@dataclass(frozen=True, slots=True, order=True)
class ReportKey:
    """Which report: receivers order by (epoch, round) within a kind."""

    kind: int
    epoch: int
    round: int

    def to_json(self) -> dict[str, int]:
        return {"kind": self.kind, "epoch": self.epoch, "round": self.round}

    def __str__(self) -> str:
        return f"kind={self.kind} epoch={self.epoch} round={self.round}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One signed version of the in-flight transaction (the first, or a replacement)."""

    tx_hash: TxHash
    raw: bytes
    fees: Fees
    cancel: bool  # a 0-value self-transfer that only frees the nonce
    sent_at: float


@dataclass(frozen=True, slots=True)
class InFlight:
    """The account's one unconfirmed transaction and all its attempts (oldest first)."""

    nonce: int
    to: Address
    data: bytes
    gas: int
    value: Wei
    report: ReportKey | None
    attempts: tuple[Attempt, ...]

    @property
    def latest(self) -> Attempt:
        return self.attempts[-1]

    def attempt_for(self, tx_hash: TxHash) -> Attempt | None:
        return next((a for a in self.attempts if a.tx_hash == tx_hash), None)


class NonceManager:
    """Nonce allocation and the journal for one account. Used by one task at a time."""

    def __init__(
        self,
        client: ChainClient,
        account: Address,
        chain_id: int,
        *,
        path: Path | None = None,
    ) -> None:
        self._client = client
        self.account = account
        self.chain_id = chain_id
        self.path = path
        self._last_nonce: int | None = None
        self._inflight: InFlight | None = None
        self._loaded = False

    @property
    def inflight(self) -> InFlight | None:
        return self._inflight

    @property
    def last_nonce(self) -> int | None:
        return self._last_nonce

    async def load(self) -> None:
        """Read the journal (if any). Call once before anything else."""
        if self.path is not None:
            document = await asyncio.to_thread(_read, self.path)
            if document is not None:
                self._last_nonce, self._inflight = _parse(document, self.account, self.chain_id)
                if self._inflight is not None:
                    log.info(
                        "nonces.resume_inflight account=%s nonce=%d attempts=%d report=%s",
                        self.account,
                        self._inflight.nonce,
                        len(self._inflight.attempts),
                        self._inflight.report,
                    )
        self._loaded = True

    async def allocate(self) -> int:
        """The nonce for a new transaction (none may be in flight)."""
        if not self._loaded:
            raise NonceError("NonceManager.load() was not called")
        if self._inflight is not None:
            raise NonceError(f"nonce {self._inflight.nonce} is still in flight")
        pending = await self._client.nonce(self.account, "pending")
        ours = -1 if self._last_nonce is None else self._last_nonce
        nonce = max(pending, ours + 1)
        if pending > ours + 1 and self._last_nonce is not None:
            # Someone else sent with this key, or a tx of ours we lost track of is pending.
            log.warning(
                "nonces.chain_ahead account=%s chain_pending=%d journal_next=%d",
                self.account,
                pending,
                ours + 1,
            )
        return nonce

    async def begin(self, inflight: InFlight) -> None:
        """Record a new in-flight transaction, durably, *before* it is broadcast."""
        if self._inflight is not None:
            raise NonceError(f"nonce {self._inflight.nonce} is still in flight")
        await self._save(self._last_nonce, inflight)  # durable first: a failed write
        self._inflight = inflight  # leaves nothing in flight (nothing was broadcast)

    async def add_attempt(
        self, attempt: Attempt, *, to: Address, data: bytes, gas: int
    ) -> InFlight:
        """Record a replacement (bump or cancel) before broadcasting it."""
        if self._inflight is None:
            raise NonceError("no transaction in flight to replace")
        updated = replace(
            self._inflight,
            to=to,
            data=data,
            gas=gas,
            attempts=(*self._inflight.attempts, attempt),
        )
        await self._save(self._last_nonce, updated)
        self._inflight = updated
        return updated

    async def settle(self) -> None:
        """The in-flight nonce is consumed (one of ours was mined, or someone else's)."""
        if self._inflight is None:
            return
        nonce = self._inflight.nonce
        # Memory first: if the write fails, this process is right and the stale file only
        # makes a restart look at a transaction that is already mined (harmless).
        self._last_nonce = nonce if self._last_nonce is None else max(self._last_nonce, nonce)
        self._inflight = None
        await self._save(self._last_nonce, None)

    async def abandon(self) -> None:
        """The in-flight transaction was refused everywhere: its nonce stays unused."""
        if self._inflight is None:
            return
        log.info("nonces.abandoned account=%s nonce=%d", self.account, self._inflight.nonce)
        self._inflight = None
        await self._save(self._last_nonce, None)

    async def _save(self, last_nonce: int | None, inflight: InFlight | None) -> None:
        if self.path is None:
            return
        document = _dump(self.account, self.chain_id, last_nonce, inflight)
        await asyncio.to_thread(_atomic_write, self.path, document)


# -- file format -------------------------------------------------------------------------
def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _dump(
    account: Address, chain_id: int, last_nonce: int | None, inflight: InFlight | None
) -> str:
    body: dict[str, Any] = {
        "format": JOURNAL_FORMAT,
        "chain_id": chain_id,
        "account": account,
        "last_nonce": last_nonce,
        "inflight": None,
    }
    if inflight is not None:
        body["inflight"] = {
            "nonce": inflight.nonce,
            "to": inflight.to,
            "data": _hex(inflight.data),
            "gas": inflight.gas,
            "value": inflight.value,
            "report": None if inflight.report is None else inflight.report.to_json(),
            "attempts": [
                {
                    "tx_hash": _hex(a.tx_hash),
                    "raw": _hex(a.raw),
                    "max_fee_per_gas": a.fees.max_fee_per_gas,
                    "max_priority_fee_per_gas": a.fees.max_priority_fee_per_gas,
                    "cancel": a.cancel,
                    "sent_at": a.sent_at,
                }
                for a in inflight.attempts
            ],
        }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NonceError(f"cannot read the nonce journal {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NonceError(f"the nonce journal {path} is not JSON: {exc}") from None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        # The rename itself must survive a power loss, not only the file's bytes.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise NonceError(f"cannot write the nonce journal {path}: {exc.strerror}") from None


def _int(value: object, what: str, *, optional: bool = False) -> int:
    if value is None and optional:
        return -1
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NonceError(f"nonce journal: {what} must be a non-negative integer")
    return value


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise NonceError(f"nonce journal: {what} must be 0x hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise NonceError(f"nonce journal: {what} must be 0x hex") from None


def _parse(document: Any, account: Address, chain_id: int) -> tuple[int | None, InFlight | None]:
    if not isinstance(document, Mapping) or document.get("format") != JOURNAL_FORMAT:
        raise NonceError(f"not a {JOURNAL_FORMAT} file")
    if document.get("chain_id") != chain_id:
        raise NonceError(
            f"the nonce journal is for chain {document.get('chain_id')}, not {chain_id}"
        )
    try:
        journal_account = address(str(document.get("account")))
    except ValueError:
        raise NonceError("nonce journal: bad account") from None
    if journal_account != account:
        raise NonceError(f"the nonce journal belongs to {journal_account}, not {account}")
    last = _int(document.get("last_nonce"), "last_nonce", optional=True)
    raw_inflight = document.get("inflight")
    if raw_inflight is None:
        return (None if last < 0 else last), None
    if not isinstance(raw_inflight, Mapping):
        raise NonceError("nonce journal: inflight must be an object")
    report_json = raw_inflight.get("report")
    report = None
    if report_json is not None:
        if not isinstance(report_json, Mapping):
            raise NonceError("nonce journal: report must be an object")
        report = ReportKey(
            _int(report_json.get("kind"), "report.kind"),
            _int(report_json.get("epoch"), "report.epoch"),
            _int(report_json.get("round"), "report.round"),
        )
    attempts_json = raw_inflight.get("attempts")
    if not isinstance(attempts_json, list) or not attempts_json:
        raise NonceError("nonce journal: an in-flight transaction needs attempts")
    attempts = []
    for a in attempts_json:
        if not isinstance(a, Mapping):
            raise NonceError("nonce journal: an attempt must be an object")
        sent_at = a.get("sent_at")
        if not isinstance(sent_at, int | float) or isinstance(sent_at, bool):
            raise NonceError("nonce journal: sent_at must be a number")
        try:
            fees = Fees(
                Wei(_int(a.get("max_fee_per_gas"), "max_fee_per_gas")),
                Wei(_int(a.get("max_priority_fee_per_gas"), "max_priority_fee_per_gas")),
            )
        except ValueError as exc:
            raise NonceError(f"nonce journal: {exc}") from None
        attempts.append(
            Attempt(
                tx_hash=TxHash(_bytes(a.get("tx_hash"), "tx_hash")),
                raw=_bytes(a.get("raw"), "raw"),
                fees=fees,
                cancel=bool(a.get("cancel", False)),
                sent_at=float(sent_at),
            )
        )
    try:
        to = address(str(raw_inflight.get("to")))
    except ValueError:
        raise NonceError("nonce journal: bad destination address") from None
    inflight = InFlight(
        nonce=_int(raw_inflight.get("nonce"), "nonce"),
        to=to,
        data=_bytes(raw_inflight.get("data"), "data"),
        gas=_int(raw_inflight.get("gas"), "gas"),
        value=Wei(_int(raw_inflight.get("value", 0), "value")),
        report=report,
        attempts=tuple(attempts),
    )
    return (None if last < 0 else last), inflight
