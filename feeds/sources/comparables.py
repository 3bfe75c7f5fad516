"""Comparable hardware sales: a CSV or JSON file/URL of recent GPU sales.

This is the "market method" input of the valuation model and the source of the
``<model>/USD`` (new) and ``<model>/USD-USED`` (secondary market) feeds. Each row is one
sale; one offer per sale, priced in USD per GPU.

Row fields (CSV header names / JSON keys):

``model``      GPU name as the registry knows it ("H100 SXM5 80GB", "RTX 4090", ...)
``condition``  ``new`` → HARDWARE_NEW; ``used`` / ``refurbished`` → HARDWARE_USED
``price_usd``  per unit (default) or for the whole lot (option ``price_basis``)
``date``       ISO date or date-time of the sale (naive = UTC)
``venue``      where it sold (broker, marketplace, auction house ...)
``quantity``   units sold (positive integer)
``id``         optional listing id (else ``<venue>:<date>:<row>``)
``currency``   optional; when present it must be ``USD``

JSON bodies are a list of such objects or ``{"sales": [...]}``; numbers may be JSON
numbers or decimal strings. The format is detected from the first non-blank character
unless ``format`` says otherwise.

Options (``ComparablesOptions``):

``base_url``      required: ``https://...``, ``http://...`` or ``file:///...`` (the fetcher
                  reads files; there is no default endpoint)
``format``        ``auto`` (default), ``csv`` or ``json``
``max_age_days``  sales older than this before ``now`` are rejected ``stale`` (default 90)
``price_basis``   ``per_unit`` (default) or ``lot_total``

Per-row outcomes: ``stale``, ``future_date`` (more than a day after ``now``),
``condition``, ``currency``, ``unknown_gpu``, ``mig``, ``absurd_price`` (per GPU ≤ 0,
non-finite or outside $100 – $500k), ``missing_field`` / ``wrong_type``. A CSV without
the required header columns, or a JSON body that is not a list / ``{"sales": [...]}``, is a
``ParseError``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, Literal

from pydantic import Field

from feeds.errors import ParseError
from feeds.model import HttpRequest, ParseResult, PriceKind, RawResponse, SourceId
from feeds.sources._common import (
    Adapter,
    Collector,
    RateLimit,
    RowError,
    RowScope,
    SourceKind,
    SourceOptions,
    as_list,
    as_object,
    decode_json,
    decode_text,
    get_decimal,
    get_opt_str,
    get_str,
    listing_id,
)

REQUIRED_COLUMNS = ("model", "condition", "price_usd", "date", "venue", "quantity")
_CONDITIONS: Mapping[str, PriceKind] = {
    "new": PriceKind.HARDWARE_NEW,
    "used": PriceKind.HARDWARE_USED,
    "refurbished": PriceKind.HARDWARE_USED,
}
# A sale dated slightly after `now` is clock skew between the seller and us; more is bad data.
_FUTURE_SLACK = timedelta(days=1)


class ComparablesOptions(SourceOptions):
    ALLOWED_SCHEMES: ClassVar[frozenset[str]] = frozenset({"http", "https", "file"})

    base_url: str  # required: the comparables file / URL has no default
    format: Literal["auto", "csv", "json"] = "auto"
    max_age_days: int = Field(default=90, ge=1, le=3650)
    price_basis: Literal["per_unit", "lot_total"] = "per_unit"


def _parse_when(text: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), UTC)
        when = datetime.fromisoformat(text)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RowError("wrong_type", f"date: {text[:40]!r}") from None


def _quantity(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RowError("wrong_type", f"quantity: {str(value)[:20]!r}")
    return value


class ComparablesSource(Adapter):
    RATE_LIMIT: ClassVar[RateLimit] = RateLimit(requests=1, per_seconds=1.0)
    DEFAULT_BASE_URL: ClassVar[str] = ""

    def __init__(
        self, source_id: SourceId, options: ComparablesOptions, secrets: Mapping[str, str]
    ) -> None:
        super().__init__(source_id, options.base_url)
        self.options = options

    def first_request(self) -> HttpRequest:
        return HttpRequest("GET", self.base_url, {"Accept": "text/csv, application/json"})

    def parse(self, response: RawResponse, now: datetime) -> ParseResult:
        text = decode_text(self.source_id, response)
        if now.tzinfo is None:  # a naive `now` is taken as UTC, like naive sale dates
            now = now.replace(tzinfo=UTC)
        fmt = self.options.format
        if fmt == "auto":
            fmt = "json" if text.lstrip()[:1] in ("{", "[") else "csv"
        rows = self._json_rows(response) if fmt == "json" else self._csv_rows(text)
        out = Collector(self.source_id)
        for index, row in enumerate(rows):
            with out.row(f"row {index + 1}") as scope:
                self._sale(out, as_object(row, "sale"), index + 1, now, scope)
        return out.result()

    def _json_rows(self, response: RawResponse) -> Sequence[object]:
        doc = decode_json(self.source_id, response)
        try:
            if isinstance(doc, dict):
                return as_list(doc.get("sales"), "sales")
            return as_list(doc, "top level")
        except RowError as exc:
            raise ParseError(self.source_id, "bad_shape", exc.detail) from None

    def _csv_rows(self, text: str) -> Sequence[object]:
        if text.lstrip().startswith("<"):
            raise ParseError(self.source_id, "html", text.lstrip()[:80])
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
            header = [h.strip().lower() for h in reader.fieldnames or ()]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise ParseError(self.source_id, "bad_shape", f"CSV lacks columns {missing}")
            reader.fieldnames = header
            rows: list[object] = []
            for record in reader:
                if None in record:  # more cells than header columns: keep the row, flag it
                    record.pop(None)
                    record["_extra_cells"] = "yes"
                rows.append(dict(record))
        except csv.Error as exc:
            raise ParseError(self.source_id, "invalid_csv", str(exc)[:200]) from None
        return rows

    def _sale(
        self,
        out: Collector,
        row: Mapping[str, object],
        number: int,
        now: datetime,
        scope: RowScope,
    ) -> None:
        venue = get_str(row, "venue").strip()
        when_text = get_str(row, "date")
        row_id = row.get("id")
        scope.listing = (
            listing_id(row_id)
            if row_id not in (None, "")
            else f"{venue[:40]}:{when_text[:25]}:{number}"
        )
        if row.get("_extra_cells") == "yes":
            raise RowError("wrong_type", "more cells than header columns")
        when = _parse_when(when_text)
        if when > now + _FUTURE_SLACK:
            raise RowError("future_date", when.isoformat())
        if now - when > timedelta(days=self.options.max_age_days):
            raise RowError("stale", f"{when.date()} older than {self.options.max_age_days} days")
        condition = get_str(row, "condition").strip().lower()
        kind = _CONDITIONS.get(condition)
        if kind is None:
            raise RowError("condition", condition[:20])
        currency = (get_opt_str(row, "currency") or "USD").strip().upper()
        if currency != "USD":
            raise RowError("currency", currency[:10])
        match = out.resolve(get_str(row, "model"))
        quantity = _quantity(row.get("quantity"))
        price = get_decimal(row, "price_usd", allow_str=True)
        gpus = quantity * match.gpus
        out.offer(
            listing=scope.listing,
            model=match.model,
            kind=kind,
            total=price,
            gpus=gpus,
            divisor=gpus if self.options.price_basis == "lot_total" else match.gpus,
            observed_at=when,
            attributes={"venue": venue[:60], "condition": condition, "quantity": str(quantity)},
        )


KIND: SourceKind[ComparablesOptions] = SourceKind(
    name="comparables",
    options_type=ComparablesOptions,
    adapter=ComparablesSource,
    rate_limit=ComparablesSource.RATE_LIMIT,
    default_base_url=None,
    summary="Comparable hardware sales (CSV/JSON file or URL); USD per GPU, new or used",
)
