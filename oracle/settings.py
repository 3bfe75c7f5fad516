"""Node settings: one TOML file (``xon node run --config node.toml``) plus env overrides.

Precedence, highest first: environment variables ``XON_<FIELD>`` (nested tables with
``__``: ``XON_BROKER__PORT=1884``, ``XON_TIMING__DELTA_ROUND=2``), then the TOML file,
then the defaults below. Unknown keys are errors (a typo must not silently fall back to a
default), and every error names the offending key: ``broker.port: Input should be ...``.

Relative paths (in the file or in env overrides) are relative to the directory of the
config file, so a node directory can be moved as a whole. No secret is ever a setting:
settings name the *environment variable* or the *file* that holds a passphrase or a broker
password, so they never end up in a config file, a log line or a ``repr``.

Example (every key; only ``network``, ``[keys]``, ``[store]`` and the chain parameters are
required)::

    network = "devnet"
    log_level = "INFO"

    [broker]
    host = "127.0.0.1"
    port = 1883
    username = "node-1"                    # optional
    password_env = "XON_BROKER_PASSWORD"   # optional: env var holding the broker password
    tls = false                            # TLS with the system CAs, or:
    # ca_file = "ca.pem"                   # (with tls = true) a private CA
    keepalive = 30

    [keys]
    identity = "node-1/identity.json"      # Ethereum keystore v3 (xon keys new / dealer)
    frost_share = "node-1/frost-share.json"
    committee = "committee.json"
    passphrase_env = "XON_KEY_PASSPHRASE"  # or passphrase_file = "node-1/passphrase"

    [store]
    path = "node-1/node.sqlite"

    [feeds]
    config = "feeds.toml"                  # optional: default is the shipped feeds/default.toml
    replay_dir = "recording/"              # optional: replay recorded responses, else live
    replay_now = "2026-10-12T12:00:00Z"    # optional: staleness "now" in replay mode
    refresh_s = 30.0                       # optional: default 30 s live, delta_round replay
    heartbeat_s = 3600                     # optional: override every feed's heartbeat
    deviation_bps = 50                     # optional: override every feed's deviation

    [chain]
    deployment = "deployment.json"         # from `xon contracts deploy`, or instead:
    # chain_id = 31337
    # verifying_contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"   # PriceFeedStore
    # config_digest = "0x…(32 bytes)"

    [timing]                               # oracle.protocol.config.Timing, seconds
    delta_round = 5.0
    delta_grace = 0.5
    delta_progress = 30.0
    delta_resend = 30.0
    delta_stage = 30.0
    signing_timeout = 2.0
    commitment_ttl = 900.0
    max_observation_age = 300.0
    max_clock_skew = 30.0

    [protocol]
    commitment_batch = 16
    commitment_low_water = 8

Everything in ``[chain]``, ``[timing]``, ``[protocol]`` and the feed overrides is part of
the committee's agreed configuration: every member must use the same values.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oracle.errors import OracleError
from oracle.protocol.config import Timing
from oracle.transport.topics import validate_network

__all__ = [
    "BrokerSettings",
    "ChainSettings",
    "FeedSettings",
    "KeySettings",
    "NodeSettings",
    "ProtocolSettings",
    "SettingsError",
    "StoreSettings",
    "TimingSettings",
    "describe",
    "load_settings",
]

log = logging.getLogger("xon.settings")

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SettingsError(OracleError):
    """The node configuration is missing, unreadable or invalid; the message says where."""


def _hex_bytes(size: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        text = value.removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{what} must be 0x-prefixed hex") from None
        if not value.startswith("0x") or len(raw) != size:
            raise ValueError(f"{what} must be 0x followed by {2 * size} hex digits")
        return value

    return AfterValidator(check)


Address = Annotated[str, _hex_bytes(20, "an address")]
Bytes32 = Annotated[str, _hex_bytes(32, "a 32-byte value")]
EnvName = Annotated[str, Field(pattern=_ENV_NAME)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password_env: EnvName | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls = false")
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env needs a username")
        return self


class KeySettings(_Section):
    identity: Path
    frost_share: Path
    committee: Path
    passphrase_env: EnvName | None = None
    passphrase_file: Path | None = None

    @model_validator(mode="after")
    def _one_passphrase_source(self) -> Self:
        if (self.passphrase_env is None) == (self.passphrase_file is None):
            raise ValueError("set exactly one of passphrase_env and passphrase_file")
        return self


class StoreSettings(_Section):
    path: Path


class FeedSettings(_Section):
    config: Path | None = None
    replay_dir: Path | None = None
    replay_now: AwareDatetime | None = None
    refresh_s: float | None = Field(default=None, gt=0)
    heartbeat_s: int | None = Field(default=None, ge=1)
    deviation_bps: int | None = Field(default=None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _replay_only(self) -> Self:
        if self.replay_now is not None and self.replay_dir is None:
            raise ValueError("replay_now needs replay_dir")
        return self

    @property
    def live(self) -> bool:
        return self.replay_dir is None


class ChainSettings(_Section):
    deployment: Path | None = None
    chain_id: int | None = Field(default=None, gt=0)
    verifying_contract: Address | None = None
    config_digest: Bytes32 | None = None
    # Transmission (off while empty): JSON-RPC endpoints in failover order. The node pays
    # gas from its identity key's address unless ``transmitter_key`` names another
    # keystore (same passphrase). Needs ``deployment`` for the receivers' addresses.
    rpc_urls: tuple[str, ...] = ()
    transmitter_key: Path | None = None
    max_fee_gwei: int = Field(default=500, gt=0)

    @model_validator(mode="after")
    def _deployment_or_values(self) -> Self:
        explicit = (self.chain_id, self.verifying_contract, self.config_digest)
        if self.deployment is not None:
            if any(v is not None for v in explicit):
                raise ValueError(
                    "give either deployment or chain_id/verifying_contract/config_digest"
                )
            return self
        if self.rpc_urls:
            raise ValueError("rpc_urls (transmission) needs a deployment file")
        if any(v is None for v in explicit):
            raise ValueError(
                "without a deployment file, chain_id, verifying_contract and config_digest "
                "are all required"
            )
        return self


class ApiSettings(_Section):
    """The node's HTTP API (docs/api.md); loopback by default, ``enabled = false`` turns it off."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9470, ge=0, le=65535)


_TIMING_DEFAULTS = Timing()


class TimingSettings(_Section):
    """Seconds; see :class:`oracle.protocol.config.Timing` for what each one bounds."""

    delta_round: float = Field(default=_TIMING_DEFAULTS.delta_round, gt=0)
    delta_grace: float = Field(default=_TIMING_DEFAULTS.delta_grace, gt=0)
    delta_progress: float = Field(default=_TIMING_DEFAULTS.delta_progress, gt=0)
    delta_resend: float = Field(default=_TIMING_DEFAULTS.delta_resend, gt=0)
    delta_stage: float = Field(default=_TIMING_DEFAULTS.delta_stage, gt=0)
    signing_timeout: float = Field(default=_TIMING_DEFAULTS.signing_timeout, gt=0)
    commitment_ttl: float = Field(default=_TIMING_DEFAULTS.commitment_ttl, gt=0)
    max_observation_age: float = Field(default=_TIMING_DEFAULTS.max_observation_age, gt=0)
    max_clock_skew: float = Field(default=_TIMING_DEFAULTS.max_clock_skew, gt=0)

    @model_validator(mode="after")
    def _protocol_rules(self) -> Self:
        self.to_timing()  # the protocol's own cross-field rules, with its messages
        return self

    def to_timing(self) -> Timing:
        return Timing(**self.model_dump())


class ProtocolSettings(_Section):
    commitment_batch: int = Field(default=16, ge=1, le=256)
    commitment_low_water: int = Field(default=8, ge=0)

    @model_validator(mode="after")
    def _low_water_below_batch(self) -> Self:
        if self.commitment_low_water >= self.commitment_batch:
            raise ValueError("commitment_low_water must be below commitment_batch")
        return self


class NodeSettings(BaseSettings):
    """Everything ``xon node run`` needs; see the module docstring for the file format."""

    model_config = SettingsConfigDict(
        env_prefix="XON_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    network: Annotated[str, AfterValidator(validate_network)]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    broker: BrokerSettings = BrokerSettings()
    keys: KeySettings
    store: StoreSettings
    feeds: FeedSettings = FeedSettings()
    chain: ChainSettings
    timing: TimingSettings = TimingSettings()
    protocol: ProtocolSettings = ProtocolSettings()
    api: ApiSettings = ApiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML document arrives as init arguments (see load_settings); the environment
        # must win over it, so it comes first. No dotenv or secrets directory: one file and
        # the process environment are the whole configuration.
        return (env_settings, init_settings)

    def resolved(self, base: Path) -> NodeSettings:
        """A copy with every relative path made relative to ``base``."""

        def fix(path: Path | None) -> Path | None:
            if path is None or path.is_absolute():
                return path
            return base / path

        keys = self.keys.model_copy(
            update={
                "identity": fix(self.keys.identity),
                "frost_share": fix(self.keys.frost_share),
                "committee": fix(self.keys.committee),
                "passphrase_file": fix(self.keys.passphrase_file),
            }
        )
        feeds = self.feeds.model_copy(
            update={"config": fix(self.feeds.config), "replay_dir": fix(self.feeds.replay_dir)}
        )
        return self.model_copy(
            update={
                "keys": keys,
                "store": self.store.model_copy(update={"path": fix(self.store.path)}),
                "feeds": feeds,
                "chain": self.chain.model_copy(
                    update={
                        "deployment": fix(self.chain.deployment),
                        "transmitter_key": fix(self.chain.transmitter_key),
                    }
                ),
                "broker": self.broker.model_copy(update={"ca_file": fix(self.broker.ca_file)}),
            }
        )

    @property
    def observation_refresh_s(self) -> float:
        """How often the node re-observes its feeds (see FeedSettings.refresh_s)."""
        if self.feeds.refresh_s is not None:
            return self.feeds.refresh_s
        # Live: providers rate-limit, so not every round; replay: re-stamping is free.
        return 30.0 if self.feeds.live else self.timing.delta_round


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "<config>"
        lines.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def load_settings(path: Path | str | None = None, **overrides: Any) -> NodeSettings:
    """Read ``path`` (TOML), apply ``XON_*`` env overrides, validate, resolve paths.

    ``overrides`` (top-level keys, e.g. ``network=...``) sit between the file and the
    environment; tests use them. Raises :class:`SettingsError` with every problem listed.
    """
    document: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        base = path.parent.resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read node config {path}: {exc.strerror}") from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: invalid TOML: {exc}") from None
    document.update(overrides)
    try:
        settings = NodeSettings(**document)
    except ValidationError as exc:
        raise SettingsError(f"{path or '<settings>'}: {_format(exc)}") from None
    return settings.resolved(base)


def describe(settings: NodeSettings) -> Mapping[str, object]:
    """A loggable summary (paths and names only; the settings hold no secrets anyway)."""
    return {
        "network": settings.network,
        "broker": f"{settings.broker.host}:{settings.broker.port}"
        + (" tls" if settings.broker.tls else ""),
        "store": str(settings.store.path),
        "feeds": "live" if settings.feeds.live else f"replay {settings.feeds.replay_dir}",
        "chain": str(settings.chain.deployment)
        if settings.chain.deployment is not None
        else f"chain_id={settings.chain.chain_id}",
        "delta_round": settings.timing.delta_round,
    }
