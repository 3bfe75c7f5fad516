"""What ``xon node run`` serves on its HTTP API: an :class:`oracle.api.NodeView` over a
running :class:`OracleNode`, plus a small cache of the feeds' on-chain values.

The API's contract is that views do no I/O, so on-chain values are read by a background
task (:meth:`OnChainCache.run`, owned by the node's runner) and served from memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry
from web3 import AsyncWeb3
from web3.exceptions import Web3Exception

from contracts.artifacts import load_artifact
from oracle import api
from oracle.node import OracleNode

log = logging.getLogger(__name__)


class OnChainCache:
    """``latestRoundData`` of every feed proxy, re-read every ``interval`` seconds."""

    def __init__(
        self,
        rpc_url: str,
        proxies: Mapping[str, str],
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        abi = load_artifact("FeedProxy").abi
        self._proxies = {
            name: self._w3.eth.contract(address=AsyncWeb3.to_checksum_address(a), abi=abi)
            for name, a in proxies.items()
        }
        self._interval = interval
        self._clock = clock
        self._values: dict[str, api.OnChainValue] = {}
        self._decimals: dict[str, int] = {}
        self._last_ok: float | None = None
        self._last_error = "not read yet"

    def cached(self, feed: str) -> api.OnChainValue | None:
        return self._values.get(feed)

    def health(self) -> api.Check:
        if self._last_ok is not None and self._clock() - self._last_ok < 3 * self._interval + 10:
            return api.Check.passing(f"read {int(self._clock() - self._last_ok)} s ago")
        return api.Check.failing(self._last_error)

    async def refresh(self) -> None:
        try:
            block = int(await self._w3.eth.block_number)
            for name, proxy in self._proxies.items():
                if name not in self._decimals:  # fixed at the proxy's construction
                    self._decimals[name] = int(await proxy.functions.decimals().call())
                decimals = self._decimals[name]
                try:
                    # Every read of one refresh at the same block, the one reported with it.
                    latest = await proxy.functions.latestRoundData().call(block_identifier=block)
                    round_id, answer, _, updated_at, _ = latest
                except Web3Exception:
                    continue  # NoDataPresent: the feed has no value on-chain yet
                self._values[name] = api.OnChainValue(
                    value=api.Fixed(int(answer), decimals),
                    round_id=int(round_id),
                    updated_at=int(updated_at),
                    read_at=int(self._clock()),
                    proxy=str(proxy.address),
                    block_number=block,
                )
            self._last_ok = self._clock()
        except (TimeoutError, Web3Exception, OSError, ValueError) as exc:
            self._last_error = f"rpc: {type(exc).__name__}"
            log.warning("node.onchain_read_failed error=%s", type(exc).__name__)

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)


class OracleNodeView:
    """Maps ``OracleNode.status()`` onto the API's view types (docs/api.md)."""

    def __init__(
        self,
        node: OracleNode,
        chain: OnChainCache | None,
        *,
        max_observation_age_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._node = node
        self._chain = chain
        self._max_age = max_observation_age_s
        self._clock = clock
        self._specs = {spec.name: spec for spec in node.config.feeds}

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self._node.metrics.registry

    def _fixed(self, values: Mapping[str, int]) -> dict[str, api.Fixed]:
        return {
            feed: api.Fixed(value, self._specs[feed].decimals if feed in self._specs else 8)
            for feed, value in values.items()
        }

    def status(self) -> api.StatusView:
        s, config = self._node.status(), self._node.config
        obs = s.observation
        return api.StatusView(
            node_id=s.node_id,
            network=s.network,
            running=s.running,
            connected=s.connected,
            n=s.n,
            f=s.f,
            t=s.t,
            epoch=s.epoch,
            leader=s.leader,
            members=tuple(
                api.MemberView(m.node_id, m.frost_id, m.credibility, m.misbehaviour)
                for m in s.members
            ),
            last_reports={
                kind: api.ReportView(
                    kind=r.kind,
                    epoch=r.epoch,
                    round=r.round,
                    digest=r.digest,
                    observations_timestamp=r.observations_timestamp,
                    values=self._fixed(r.values),
                    leader=r.leader,
                    finalized_at=r.finalized_at,
                    latency=r.latency,
                    report=r.report,
                    signature=r.signature,
                )
                for kind, r in s.last_reports.items()
            },
            observation=None
            if obs is None
            else api.ObservationView(
                obs.timestamp, self._fixed(obs.values), obs.missing_feeds, obs.failed_sources
            ),
            unused_commitments=s.unused_commitments,
            rounds_finalized=s.rounds_finalized,
            config_digest=config.config_digest,
            chain_id=config.chain_id,
        )

    def feeds(self) -> list[api.FeedView]:
        obs = self._node.status().observation
        views: list[api.FeedView] = []
        for spec in self._node.config.feeds:
            observed = None
            if obs is not None and spec.name in obs.values:
                observed = api.ObservedValue(
                    api.Fixed(obs.values[spec.name], spec.decimals), obs.timestamp
                )
            views.append(
                api.FeedView(
                    name=spec.name,
                    observed=observed,
                    on_chain=self._chain.cached(spec.name) if self._chain else None,
                    deviation_threshold_bps=spec.deviation_bps,
                    heartbeat_s=spec.heartbeat_s,
                )
            )
        return views

    def readiness(self) -> api.Readiness:
        s = self._node.status()
        return api.Readiness(
            broker=api.Check(s.connected, "connected" if s.connected else "not connected"),
            rpc=self._chain.health() if self._chain else api.Check.passing("not configured"),
            feeds=api.observation_check(
                s.observation.timestamp if s.observation else None, self._clock(), self._max_age
            ),
            committee_key=api.Check(
                s.running, f"member of a committee of {s.n}" if s.running else "node not running"
            ),
        )
