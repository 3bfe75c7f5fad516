"""Shared machinery of the sans-io provider adapters.

Adapters never do I/O; this module gives them one way to

* turn a :class:`~feeds.model.RawResponse` into JSON (:func:`decode_json`): HTTP error
  statuses become :class:`~feeds.errors.FetchError` (429 → reason ``rate_limited`` with the
  ``Retry-After`` value as detail, anything else → ``http_status`` with the status code as
  detail); HTML pages, bad encodings and truncated JSON become
  :class:`~feeds.errors.ParseError`. Numbers are decoded with ``parse_float=Decimal`` so no
  float ever touches a price;
* read typed fields from decoded rows (``get_*``), raising :class:`RowError` on a missing
  field or a wrong type;
* collect offers and rejections (:class:`Collector`). ``Collector.body()`` turns a
  ``RowError`` into a ``ParseError`` (reason ``bad_shape``: the body as a whole is not the
  expected shape); ``Collector.row()`` turns it into a per-row ``Rejection`` (one bad row
  does not poison the page). Every price goes through one sanity check: non-finite, ≤ 0 or
  outside the per-kind band of :data:`SANITY_BANDS` → rejection ``absurd_price``.

Rejection reasons used across adapters (stable labels, usable as metric labels):
``missing_field``, ``wrong_type``, ``absurd_price``, ``unknown_gpu``, ``mig``, ``spot``,
``low_priority``, ``windows``, ``reservation``, ``commitment``, ``dev_test``, ``currency``,
``unit``, ``os``, ``unverified``, ``unreliable``, ``not_rentable``, ``fractional``,
``unavailable``, ``sold_out``, ``offline``, ``stale``, ``future_date``, ``condition``,
``no_bids``, ``tenancy``, ``capacity_reservation``, ``preinstalled_software``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from aggregation import jsonsafe
from aggregation.errors import EncodingError
from feeds.errors import ConfigError, FetchError, MissingApiKey, ParseError, UnknownGpuName
from feeds.gpus import GpuMatch, MigSliceName, normalise
from feeds.model import (
    HttpRequest,
    ModelId,
    Offer,
    ParseResult,
    PriceKind,
    PriceSource,
    RawResponse,
    Rejection,
    SourceId,
)

# One explicit context for every price computation, so a node whose global decimal
# context was changed by some library still computes the same digits as its peers.
PRICE_CONTEXT = Context(
    prec=28,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

# Inclusive per-kind bounds for a per-GPU price. Outside = "absurd_price", never used.
SANITY_BANDS: Mapping[PriceKind, tuple[Decimal, Decimal]] = {
    PriceKind.RENTAL_HOURLY: (Decimal("0.01"), Decimal("100")),
    PriceKind.HARDWARE_NEW: (Decimal("100"), Decimal("500000")),
    PriceKind.HARDWARE_USED: (Decimal("100"), Decimal("500000")),
}


@dataclass(frozen=True)
class RateLimit:
    """A provider's polite request rate: at most ``requests`` per ``per_seconds``."""

    requests: int
    per_seconds: float


class SourceConfigError(ConfigError):
    """A source answered in a way that only a wrong configuration explains (e.g. GCP's
    empty catalog for a bad service id). Carries ``source`` and ``reason`` like
    ``SourceError`` so the caller can log and count it the same way."""

    def __init__(self, source: str, reason: str, detail: str = "") -> None:
        super().__init__(
            f"{source}: configuration error: {reason}" + (f" ({detail})" if detail else "")
        )
        self.source = source
        self.reason = reason
        self.detail = detail


class RowError(Exception):
    """A field is missing or has the wrong type. Internal: never leaves ``parse``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- options and the factory entry --------------------------------------------------


class SourceOptions(BaseModel):
    """Options every adapter accepts. Unknown keys are a ConfigError (typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ALLOWED_SCHEMES: ClassVar[frozenset[str]] = frozenset({"http", "https"})

    base_url: str | None = None  # overrides the adapter's default endpoint (tests, proxies)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in cls.ALLOWED_SCHEMES or not (parts.netloc or parts.path):
            raise ValueError(f"base_url must be a {'/'.join(sorted(cls.ALLOWED_SCHEMES))} URL")
        return value

    def secret_env_vars(self) -> tuple[str, ...]:
        """Names of the env vars holding this source's secrets (all required)."""
        return ()


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


@dataclass(frozen=True)
class SourceKind(Generic[OptionsT]):
    """One entry of the factory table: how to build and pace one kind of source."""

    name: str
    options_type: type[OptionsT]
    adapter: Callable[[SourceId, OptionsT, Mapping[str, str]], PriceSource]
    rate_limit: RateLimit
    default_base_url: str | None
    summary: str

    def parse_options(self, source_id: SourceId, options: Mapping[str, object]) -> OptionsT:
        try:
            return self.options_type.model_validate(dict(options))
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"source {source_id!r} (kind {self.name}): bad options: {exc}"
            ) from None

    def build(
        self, source_id: SourceId, options: Mapping[str, object], env: Mapping[str, str]
    ) -> PriceSource:
        opts = self.parse_options(source_id, options)
        secrets: dict[str, str] = {}
        for var in opts.secret_env_vars():
            value = env.get(var, "")
            if not value.strip():
                raise MissingApiKey(source_id, var)
            secrets[var] = value
        return self.adapter(source_id, opts, secrets)


class Adapter:
    """Common state of an adapter: its id, its endpoint and its rate limit."""

    RATE_LIMIT: ClassVar[RateLimit]
    DEFAULT_BASE_URL: ClassVar[str]

    def __init__(self, source_id: SourceId, base_url: str | None) -> None:
        self._source_id = source_id
        self.base_url = base_url or self.DEFAULT_BASE_URL

    @property
    def source_id(self) -> SourceId:
        return self._source_id

    @property
    def rate_limit(self) -> RateLimit:
        return self.RATE_LIMIT

    def __repr__(self) -> str:  # never includes secrets
        return f"{type(self).__name__}({self._source_id!r}, base_url={self.base_url!r})"


# --- responses --------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for a plain dict too."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def check_status(source: SourceId, response: RawResponse) -> None:
    status = response.status
    if status == 429:
        raise FetchError(source, "rate_limited", header(response.headers, "Retry-After") or "")
    if not 200 <= status < 300:
        raise FetchError(source, "http_status", str(status))


def decode_text(source: SourceId, response: RawResponse) -> str:
    check_status(source, response)
    try:
        return response.body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(source, "bad_encoding", str(exc)[:200]) from None


def decode_json(source: SourceId, response: RawResponse) -> object:
    """Status check, then the body as JSON with every non-integer number a Decimal."""
    text = decode_text(source, response)
    stripped = text.lstrip()
    if stripped.startswith("<"):
        raise ParseError(source, "html", stripped[:80])
    try:
        # parse_constant keeps NaN/Infinity as non-finite Decimals so that the row they
        # sit in is rejected as absurd_price rather than the whole page failing.
        return jsonsafe.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError, EncodingError) as exc:  # JSONDecodeError: ValueError
        raise ParseError(source, "invalid_json", str(exc)[:200]) from None


def decode_object(source: SourceId, response: RawResponse) -> Mapping[str, object]:
    doc = decode_json(source, response)
    if not isinstance(doc, dict):
        raise ParseError(source, "bad_shape", f"top level is {type(doc).__name__}, not an object")
    return doc


# --- typed field access -------------------------------------------------------------


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def as_object(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise RowError("wrong_type", f"{what}: expected object, got {_type_name(value)}")
    return value


def as_list(value: object, what: str) -> Sequence[object]:
    if not isinstance(value, list):
        raise RowError("wrong_type", f"{what}: expected list, got {_type_name(value)}")
    return value


def _get(row: Mapping[str, object], key: str) -> object:
    if key not in row:
        raise RowError("missing_field", key)
    return row[key]


def get_object(row: Mapping[str, object], key: str) -> Mapping[str, object]:
    return as_object(_get(row, key), key)


def get_list(row: Mapping[str, object], key: str) -> Sequence[object]:
    return as_list(_get(row, key), key)


def get_str(row: Mapping[str, object], key: str) -> str:
    value = _get(row, key)
    if not isinstance(value, str):
        raise RowError("wrong_type", f"{key}: expected string, got {_type_name(value)}")
    return value


def get_opt_str(row: Mapping[str, object], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError("wrong_type", f"{key}: expected string, got {_type_name(value)}")
    return value


def get_bool(row: Mapping[str, object], key: str) -> bool:
    value = _get(row, key)
    if not isinstance(value, bool):
        raise RowError("wrong_type", f"{key}: expected boolean, got {_type_name(value)}")
    return value


def get_int(row: Mapping[str, object], key: str) -> int:
    value = _get(row, key)
    # bool is an int subclass; a JSON true is never a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError("wrong_type", f"{key}: expected integer, got {_type_name(value)}")
    return value


def to_decimal(value: object, what: str, *, allow_str: bool = False) -> Decimal:
    """A JSON number (int or Decimal from parse_float) as Decimal; optionally a numeric
    string, for APIs that send prices as strings (AWS, GCP units)."""
    if isinstance(value, bool):
        raise RowError("wrong_type", f"{what}: expected number, got bool")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if allow_str and isinstance(value, str):
        text = value.strip()
        # Bound the length: Decimal() of a megabyte-long digit string is a cheap DoS.
        if 0 < len(text) <= 64:
            try:
                number = Decimal(text)
            except InvalidOperation:
                pass
            else:
                # A signalling NaN would raise on the first comparison; make it quiet so
                # the price check rejects it as absurd_price like any other NaN.
                return Decimal("NaN") if number.is_snan() else number
        raise RowError("wrong_type", f"{what}: not a decimal number: {value[:40]!r}")
    raise RowError("wrong_type", f"{what}: expected number, got {_type_name(value)}")


def get_decimal(row: Mapping[str, object], key: str, *, allow_str: bool = False) -> Decimal:
    return to_decimal(_get(row, key), key, allow_str=allow_str)


def get_opt_decimal(
    row: Mapping[str, object], key: str, *, allow_str: bool = False
) -> Decimal | None:
    value = row.get(key)
    if value is None:
        return None
    return to_decimal(value, key, allow_str=allow_str)


def listing_id(value: object) -> str:
    """A provider id (string or integer) as a listing label; anything else is a bad row."""
    if isinstance(value, str) and value:
        return value[:200]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RowError("wrong_type", f"id: expected string or integer, got {_type_name(value)}")


# --- prices -------------------------------------------------------------------------


def per_gpu(total: Decimal, gpus: int) -> Decimal:
    """``total / gpus`` in :data:`PRICE_CONTEXT`; overflow etc. → RowError absurd_price."""
    if gpus <= 0:
        raise RowError("wrong_type", f"GPU count {gpus} is not positive")
    if not total.is_finite():
        raise RowError("absurd_price", f"non-finite price {total}")
    try:
        return PRICE_CONTEXT.divide(total, Decimal(gpus))
    except DecimalException as exc:
        raise RowError("absurd_price", f"{total}/{gpus}: {type(exc).__name__}") from None


def add_prices(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` in :data:`PRICE_CONTEXT`; overflow etc. → RowError absurd_price."""
    try:
        return PRICE_CONTEXT.add(a, b)
    except DecimalException as exc:
        raise RowError("absurd_price", f"{a}+{b}: {type(exc).__name__}") from None


def scaled(value: Decimal, exponent: int) -> Decimal:
    """``value × 10^exponent`` (cents → dollars) in :data:`PRICE_CONTEXT`."""
    try:
        return value.scaleb(exponent, PRICE_CONTEXT)
    except DecimalException as exc:
        raise RowError("absurd_price", f"{value}e{exponent}: {type(exc).__name__}") from None


def check_price(price: Decimal, kind: PriceKind) -> None:
    if not price.is_finite():
        raise RowError("absurd_price", f"non-finite price {price}")
    low, high = SANITY_BANDS[kind]
    if price <= 0 or not low <= price <= high:
        raise RowError("absurd_price", f"{price} outside [{low}, {high}] for {kind.value}")


# --- result collection ------------------------------------------------------------


@dataclass
class RowScope:
    """The listing label of the row being parsed; code may refine it once it knows more."""

    listing: str


@dataclass
class Collector:
    source: SourceId
    offers: list[Offer] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @contextmanager
    def body(self) -> Iterator[None]:
        """Shape errors here mean the whole body is unusable: ParseError(bad_shape)."""
        try:
            yield
        except RowError as exc:
            raise ParseError(self.source, "bad_shape", f"{exc.reason}: {exc.detail}") from None

    @contextmanager
    def row(self, listing: str) -> Iterator[RowScope]:
        """Errors here reject this one row; parsing continues with the next."""
        scope = RowScope(listing)
        try:
            yield scope
        except RowError as exc:
            self.reject(scope.listing, exc.reason, exc.detail)

    def reject(self, listing: str, reason: str, detail: str = "") -> None:
        self.rejections.append(Rejection(self.source, listing, reason, detail[:300]))

    def resolve(self, name: str, *fallbacks: str) -> GpuMatch:
        """Registry lookup of ``name``, then of each fallback spelling (e.g. the name plus
        the memory size a provider reports separately). A MIG slice rejects the row as
        ``mig``; if nothing matches, ``name`` is recorded as unknown and the row rejected."""
        for candidate in (name, *fallbacks):
            try:
                return normalise(candidate)
            except MigSliceName:
                raise RowError("mig", candidate[:100]) from None
            except UnknownGpuName:
                continue
        short = name[:100]
        if short not in self.unknown:
            self.unknown.append(short)
        raise RowError("unknown_gpu", short)

    def offer(
        self,
        *,
        listing: str,
        model: ModelId,
        kind: PriceKind,
        total: Decimal,
        gpus: int,
        divisor: int | None = None,
        observed_at: datetime | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Add an offer priced ``total`` for ``gpus`` GPUs; sanity-checked per GPU.

        ``divisor`` (default ``gpus``) is what ``total`` is divided by, for listings whose
        price covers fewer GPUs than the listing holds (a unit price for a lot of many)."""
        price = per_gpu(total, gpus if divisor is None else divisor)
        check_price(price, kind)
        self.offers.append(
            Offer(
                source=self.source,
                model=model,
                kind=kind,
                price=price,
                gpus=gpus,
                listing=listing,
                observed_at=observed_at,
                attributes=dict(attributes or {}),
            )
        )

    def result(self, next_request: HttpRequest | None = None) -> ParseResult:
        return ParseResult(
            offers=tuple(self.offers),
            rejections=tuple(self.rejections),
            unknown_names=tuple(self.unknown),
            next_request=next_request,
        )


def json_body(payload: Mapping[str, Any]) -> bytes:
    """Deterministic JSON request body (sorted keys), so replayed requests match."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
