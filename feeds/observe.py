"""One node's observation of every configured feed: build sources, fetch, split, aggregate.

Pipeline::

    FeedsConfig ──build_sources──► PriceSource per declared source (or a skip reason)
                ──Fetcher.fetch_all──► SourceFetch | SourceFailure per source
                ──observe_feeds (pure)──► per feed: offers of (model, kind) per source
                                          → aggregation.stats.aggregate → FeedObservation

Only :func:`observe` awaits; :func:`observe_feeds` is a pure function of the fetch
outcomes and ``now``, so a replayed recording always yields the same observation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from aggregation.stats import (
    AggregationParams,
    Dropped,
    FeedAggregate,
    SourceInput,
    aggregate,
    from_fixed_point,
)
from feeds.config import FeedConfig, FeedsConfig, FeedSourceFilter
from feeds.errors import ConfigError, MissingApiKey
from feeds.fetch import Fetcher, SourceFailure, SourceFetch, SourceOutcome
from feeds.model import FeedId, Offer, PriceSource, SourceId

__all__ = [
    "FeedObservation",
    "Observation",
    "build_sources",
    "observe",
    "observe_feeds",
    "offer_matches",
    "secret_env_vars",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedObservation:
    feed: FeedConfig
    result: FeedAggregate

    @property
    def feed_id(self) -> FeedId:
        return self.feed.feed_id

    @property
    def value(self) -> Decimal | None:
        """The published value as a Decimal with exactly ``decimals`` places."""
        if self.result.value is None:
            return None
        return from_fixed_point(self.result.value, self.result.decimals)

    def to_json(self) -> dict[str, object]:
        r = self.result
        return {
            "value": None if self.value is None else f"{self.value:f}",
            "value_fixed": r.value,
            "decimals": r.decimals,
            "sources_used": list(r.sources_used),
            "sources_dropped": [
                {"source": d.source, "reason": d.reason, "detail": d.detail}
                for d in r.sources_dropped
            ],
            "dispersion": None if r.dispersion is None else f"{r.dispersion:f}",
            "snapshots": list(r.snapshots),
            "source_values": {s: f"{v:f}" for s, v in r.source_values},
            "reason": r.reason,
        }


@dataclass(frozen=True)
class Observation:
    now: datetime
    feeds: tuple[FeedObservation, ...]
    outcomes: Mapping[SourceId, SourceOutcome]

    @property
    def complete(self) -> bool:
        """Every feed has a value."""
        return all(f.result.value is not None for f in self.feeds)

    def to_json(self) -> dict[str, object]:
        return {f.feed.id: f.to_json() for f in self.feeds}


def secret_env_vars(config: FeedsConfig) -> tuple[str, ...]:
    """Env var names holding the API keys of the used sources: what the snapshot store
    redacts, and what replay mode sets to ``REDACTED``."""
    from feeds.sources import SOURCE_KINDS

    names: list[str] = []
    for sid, src in config.used_sources().items():
        kind = SOURCE_KINDS.get(src.kind)
        if kind is None:
            raise ConfigError(f"source {sid!r}: unknown kind {src.kind!r}")
        for name in kind.parse_options(sid, src.options).secret_env_vars():
            if name not in names:
                names.append(name)
    return tuple(names)


def build_sources(
    config: FeedsConfig, env: Mapping[str, str]
) -> tuple[list[PriceSource], dict[SourceId, SourceFailure]]:
    """An adapter per used source; a source that cannot be built is skipped with a reason
    (``missing_api_key``) — a bad configuration is a ``ConfigError`` and stops the run."""
    from feeds.sources import build_source

    built: list[PriceSource] = []
    skipped: dict[SourceId, SourceFailure] = {}
    for sid, src in config.used_sources().items():
        try:
            built.append(build_source(src.kind, sid, src.options, env))
        except MissingApiKey as exc:
            log.warning("source.skipped source=%s reason=missing_api_key env=%s", sid, exc.env_var)
            skipped[sid] = SourceFailure(
                sid, "missing_api_key", f"env var {exc.env_var} unset", error="MissingApiKey"
            )
        except ConfigError as exc:
            raise ConfigError(f"source {sid!r}: {exc}") from exc
    return built, skipped


def offer_matches(feed: FeedConfig, offer: Offer, flt: FeedSourceFilter | None) -> bool:
    if offer.model != feed.model or offer.kind != feed.kind:
        return False
    if flt is None:
        return True
    if any(offer.attributes.get(k) != v for k, v in flt.attributes.items()):
        return False
    if flt.min_gpus is not None and offer.gpus < flt.min_gpus:
        return False
    return flt.max_gpus is None or offer.gpus <= flt.max_gpus


def _observe_feed(
    feed: FeedConfig, outcomes: Mapping[SourceId, SourceOutcome], now: datetime
) -> FeedObservation:
    inputs: list[SourceInput] = []
    failed: list[Dropped] = []
    for name in feed.sources:
        sid = SourceId(name)
        outcome = outcomes.get(sid)
        if outcome is None:
            failed.append(Dropped(sid, "not_fetched"))
        elif isinstance(outcome, SourceFailure):
            failed.append(Dropped(sid, outcome.reason, outcome.detail))
        else:
            flt = feed.filters.get(name)
            prices = tuple(o.price for o in outcome.offers if offer_matches(feed, o, flt))
            inputs.append(
                SourceInput(
                    source=sid,
                    prices=prices,
                    observed_at=int(outcome.observed_at.timestamp()),
                    snapshots=outcome.snapshots,
                )
            )
    params = AggregationParams(
        max_age=feed.max_age_s, min_sources=feed.min_sources, decimals=feed.decimals
    )
    result = aggregate(inputs, params, int(now.timestamp()))
    dropped = tuple(sorted((*result.sources_dropped, *failed), key=lambda d: d.source))
    return FeedObservation(feed, replace(result, sources_dropped=dropped))


def observe_feeds(
    config: FeedsConfig, outcomes: Mapping[SourceId, SourceOutcome], now: datetime
) -> tuple[FeedObservation, ...]:
    """Pure: every configured feed from the fetch outcomes, staleness judged at ``now``."""
    observations = tuple(_observe_feed(f, outcomes, now) for f in config.feeds)
    for obs in observations:
        r = obs.result
        if r.value is None:
            log.warning("feed.no_value feed=%s reason=%s", obs.feed.id, r.reason)
        else:
            log.info(
                "feed.observed feed=%s value=%s used=%d dropped=%d dispersion=%s",
                obs.feed.id, obs.value, len(r.sources_used), len(r.sources_dropped), r.dispersion,
            )  # fmt: skip
    return observations


async def observe(
    config: FeedsConfig,
    fetcher: Fetcher,
    env: Mapping[str, str],
    now: datetime | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Observation:
    """Fetch every used source once and observe every feed. ``now`` (for staleness)
    defaults to the wall clock after fetching."""
    sources, skipped = build_sources(config, env)
    fetched = await fetcher.fetch_all(sources)
    outcomes: dict[SourceId, SourceOutcome] = {**fetched, **skipped}
    for sid, outcome in sorted(outcomes.items()):
        if isinstance(outcome, SourceFetch) and outcome.unknown_names:
            log.info("source.unknown_gpu_names source=%s names=%s", sid, outcome.unknown_names)
    if now is None:
        now = clock()
    return Observation(now, observe_feeds(config, outcomes, now), outcomes)
