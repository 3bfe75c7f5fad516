"""Feed configuration: TOML parsed into validated pydantic models.

Layout (see ``feeds/default.toml``, the shipped configuration)::

    [defaults]                      # applied to every feed that does not set the key
    decimals = 8
    deviation_bps = 50              # report when the value moved >= 0.5 % ...
    heartbeat_s = 86400             # ... or this long after the last report
    min_sources = 3
    max_age_s = 3600                # a source snapshot older than this is stale

    [sources.vastai]                # one entry per source, fetched once per run
    kind = "vastai"                 # adapter kind (feeds.sources factory)
    options = { min_reliability = "0.95" }   # adapter options: base_url, api_key_env, ...

    [[feeds]]
    id = "H100-SXM/USD-HR"          # "<model>/<kind>", ASCII, <= 32 chars (on-chain bytes32)
    model = "H100-SXM"              # canonical model id (feeds.gpus)
    kind = "USD-HR"                 # USD-HR rental per GPU-hour, USD new, USD-USED used
    sources = ["vastai", "runpod"]
    [feeds.filters.vastai]          # optional: only offers whose attributes match
    attributes = { verification = "verified" }

A source is declared once and may serve several feeds: its offers are split by
(model, kind). Every error names the offending key, e.g.
``feeds[2].id: feed id 'X' is 40 bytes; at most 32 fit a bytes32``.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from feeds.errors import ConfigError
from feeds.gpus import MODELS
from feeds.model import FeedId, ModelId, PriceKind, SourceId

__all__ = [
    "DEFAULT_CONFIG_RESOURCE",
    "FeedConfig",
    "FeedDefaults",
    "FeedSourceFilter",
    "FeedsConfig",
    "SourceConfig",
    "feed_id_bytes32",
    "load_config",
    "load_default_config",
    "parse_config",
]

DEFAULT_CONFIG_RESOURCE = "default.toml"

SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", strict=True)]


def feed_id_bytes32(feed_id: str) -> bytes:
    """The on-chain feed id: the ASCII feed name left-aligned in 32 bytes, zero-padded."""
    if not feed_id or not feed_id.isascii() or not feed_id.isprintable() or " " in feed_id:
        raise ConfigError(f"feed id {feed_id!r} must be printable ASCII without spaces")
    raw = feed_id.encode("ascii")
    if len(raw) > 32:
        raise ConfigError(f"feed id {feed_id!r} is {len(raw)} bytes; at most 32 fit a bytes32")
    return raw.ljust(32, b"\x00")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceConfig(_Model):
    kind: SourceName
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def api_key_env(self) -> str | None:
        value = self.options.get("api_key_env")
        return value if isinstance(value, str) else None


class FeedSourceFilter(_Model):
    """Feed-level narrowing of one source's offers (the adapter already filtered them)."""

    attributes: dict[str, str] = Field(default_factory=dict)  # all must match exactly
    min_gpus: int | None = Field(default=None, ge=1)  # listing size, e.g. 8 for 8-GPU nodes
    max_gpus: int | None = Field(default=None, ge=1)


class FeedDefaults(_Model):
    decimals: int = Field(default=8, ge=0, le=18)
    deviation_bps: int = Field(default=50, ge=1, le=10_000)
    heartbeat_s: int = Field(default=86_400, ge=60)
    min_sources: int = Field(default=3, ge=1)
    max_age_s: int = Field(default=3_600, ge=1)


class FeedConfig(_Model):
    id: str
    model: str
    kind: PriceKind
    sources: tuple[SourceName, ...] = Field(min_length=1)
    decimals: int = Field(ge=0, le=18)
    deviation_bps: int = Field(ge=1, le=10_000)
    heartbeat_s: int = Field(ge=60)
    min_sources: int = Field(ge=1)
    max_age_s: int = Field(ge=1)
    filters: dict[str, FeedSourceFilter] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_fits_bytes32(cls, value: str) -> str:
        try:
            feed_id_bytes32(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if ModelId(value) not in MODELS:
            raise ValueError(f"unknown model {value!r}; known: {', '.join(sorted(MODELS))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        expected = f"{self.model}/{self.kind.value}"
        if self.id != expected:
            raise ValueError(f"feed id {self.id!r} must be '<model>/<kind>' = {expected!r}")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"feed {self.id}: a source is listed twice")
        if self.min_sources > len(self.sources):
            raise ValueError(
                f"feed {self.id}: min_sources {self.min_sources} > {len(self.sources)} sources"
            )
        stray = set(self.filters) - set(self.sources)
        if stray:
            raise ValueError(f"feed {self.id}: filters for unlisted sources {sorted(stray)}")
        return self

    @property
    def feed_id(self) -> FeedId:
        return FeedId(self.id)

    @property
    def model_id(self) -> ModelId:
        return ModelId(self.model)

    @property
    def bytes32(self) -> bytes:
        return feed_id_bytes32(self.id)


class FeedsConfig(_Model):
    defaults: FeedDefaults = Field(default_factory=FeedDefaults)
    sources: dict[SourceName, SourceConfig]
    feeds: tuple[FeedConfig, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Merge the raw values; the ``defaults`` table itself is validated as a field, so
        # its errors are reported under ``defaults.<key>``.
        raw = data.get("defaults")
        defaults = FeedDefaults().model_dump()
        if isinstance(raw, dict):
            defaults.update({k: v for k, v in raw.items() if k in defaults})
        feeds = data.get("feeds")
        if isinstance(feeds, list):
            data = {
                **data,
                "feeds": [{**defaults, **f} if isinstance(f, dict) else f for f in feeds],
            }
        return data

    @model_validator(mode="after")
    def _references(self) -> Self:
        ids = [f.id for f in self.feeds]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate feed ids {dupes}")
        for feed in self.feeds:
            missing = [s for s in feed.sources if s not in self.sources]
            if missing:
                raise ValueError(f"feed {feed.id}: undeclared sources {missing}")
        return self

    def feed(self, feed_id: str) -> FeedConfig:
        for f in self.feeds:
            if f.id == feed_id:
                return f
        raise ConfigError(f"no feed {feed_id!r}")

    def used_sources(self) -> dict[SourceId, SourceConfig]:
        """The declared sources that at least one feed uses, in declaration order."""
        used = {s for f in self.feeds for s in f.sources}
        return {SourceId(k): v for k, v in self.sources.items() if k in used}


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc or '<config>'}: {msg}")
    return "; ".join(lines)


def parse_config(data: Mapping[str, Any], origin: str = "<config>") -> FeedsConfig:
    try:
        return FeedsConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_format_validation_error(exc)}") from None


def _parse_toml(text: str, origin: str) -> FeedsConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from None
    return parse_config(data, origin)


def load_config(path: Path | str) -> FeedsConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read feed config {path}: {exc}") from None
    return _parse_toml(text, str(path))


def load_default_config() -> FeedsConfig:
    """The shipped ``feeds/default.toml`` (package data, read via importlib.resources)."""
    resource = importlib.resources.files("feeds").joinpath(DEFAULT_CONFIG_RESOURCE)
    return _parse_toml(resource.read_text(encoding="utf-8"), f"feeds/{DEFAULT_CONFIG_RESOURCE}")
