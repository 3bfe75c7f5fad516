"""The node HTTP API against a real aiohttp server on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from feeds.fetch import FetchMetrics
from oracle.api import (
    DEFAULT_HOST,
    ApiConfig,
    ApiError,
    ApiServer,
    Check,
    ErrorResponse,
    FeedsResponse,
    FeedView,
    Fixed,
    HealthResponse,
    MemberView,
    ObservationView,
    ObservedValue,
    OnChainValue,
    Readiness,
    ReadinessResponse,
    ReportView,
    StaticNodeView,
    StatusResponse,
    StatusView,
)
from oracle.identity import IdentityKey, NodeId
from oracle.metrics import NodeMetrics
from oracle.protocol.credibility import CredibilityScore

NOW = 1_750_000_000  # 2025-06-15T15:06:40Z
HR = "H100-SXM-80GB/USD-HR"
USED = "H100-SXM-80GB/USD-USED"


def node_ids(n: int) -> list[NodeId]:
    return [IdentityKey((i + 1).to_bytes(32, "big")).node_id for i in range(n)]


NODES = node_ids(4)
PROXY = "0x" + "ab" * 20


def sample_view(registry: CollectorRegistry | None = None) -> StaticNodeView:
    members = tuple(
        MemberView(
            node_id=node,
            frost_id=i + 1,
            credibility=CredibilityScore(
                deviation=0.0123456789 if i == 3 else 0.001,
                outlier_rate=0.5 if i == 3 else 0.0,
                rounds=40,
                outliers=20 if i == 3 else 0,
                per_feed={HR: 0.002, USED: 0.0},
                signing_reliability=0.75 if i == 3 else 1.0,
                invalid_shares=3 if i == 3 else 0,
            ),
            misbehaviour={"invalid_share": 3} if i == 3 else {},
        )
        for i, node in enumerate(NODES)
    )
    report = ReportView(
        kind="prices",
        epoch=3,
        round=17,
        digest=bytes(range(32)),
        observations_timestamp=NOW - 30,
        values={HR: Fixed(245_000_000, 8), USED: Fixed(2_150_000_000_000, 8)},
        leader=NODES[1],
        finalized_at=NOW - 29.6,
        latency=0.41234,
        report=b"\x01\x02",
        signature=b"\xaa" * 65,
    )
    status = StatusView(
        node_id=NODES[0],
        network="devnet",
        running=True,
        connected=True,
        n=4,
        f=1,
        t=3,
        members=members,
        epoch=3,
        leader=NODES[1],
        last_reports={"prices": report},
        observation=ObservationView(
            timestamp=NOW - 10,
            values={HR: Fixed(246_000_000, 8)},
            missing_feeds=(USED,),
            failed_sources={"runpod": "timeout"},
        ),
        unused_commitments=12,
        rounds_finalized=17,
        config_digest=b"\x11" * 32,
        chain_id=31337,
    )
    feeds = (
        FeedView(
            name=USED,
            observed=None,
            on_chain=OnChainValue(
                value=Fixed(2_150_000_000_000, 8),
                round_id=(1 << 64) + 5,  # a phase-1 Chainlink-style id, beyond 2**53
                updated_at=NOW - 90_000,
                read_at=NOW - 5,
                proxy=PROXY,
                block_number=123,
            ),
            deviation_threshold_bps=100,
            heartbeat_s=86_400,
        ),
        FeedView(
            name=HR,
            observed=ObservedValue(value=Fixed(246_000_000, 8), timestamp=NOW - 10, sources=5),
            on_chain=OnChainValue(
                value=Fixed(245_000_000, 8), round_id=17, updated_at=NOW - 30, read_at=NOW - 5
            ),
            deviation_threshold_bps=50,
            heartbeat_s=3_600,
        ),
    )
    return StaticNodeView(
        status_view=status,
        feed_views=feeds,
        registry=registry if registry is not None else NodeMetrics().registry,
    )


class _Api:
    def __init__(self, server: ApiServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def get(self, path: str) -> tuple[int, CIMultiDict[str], bytes]:
        async with self.session.get(self.server.url + path) as response:
            return response.status, response.headers.copy(), await response.read()


@pytest.fixture
def metrics() -> NodeMetrics:
    return NodeMetrics()


@pytest.fixture
def view(metrics: NodeMetrics) -> StaticNodeView:
    return sample_view(metrics.registry)


@pytest.fixture
async def api(view: StaticNodeView) -> AsyncIterator[_Api]:
    async with (
        ApiServer(view, ApiConfig(port=0), clock=lambda: NOW + 0.9) as server,
        aiohttp.ClientSession() as session,
    ):
        yield _Api(server, session)


async def test_server_binds_loopback_on_an_ephemeral_port(api: _Api) -> None:
    assert DEFAULT_HOST == "127.0.0.1"
    assert ApiConfig().host == "127.0.0.1"
    assert api.server.port > 0
    assert api.server.url == f"http://127.0.0.1:{api.server.port}"


async def test_healthz(api: _Api) -> None:
    status, headers, body = await api.get("/healthz")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert len(headers["X-Request-Id"]) == 16
    assert HealthResponse.model_validate_json(body) == HealthResponse(status="ok")


async def test_readyz_200_when_every_check_passes(api: _Api) -> None:
    status, _, body = await api.get("/readyz")
    assert status == 200
    ready = ReadinessResponse.model_validate_json(body)
    assert ready.ready
    assert set(ready.checks) == {"broker", "rpc", "feeds", "committee_key"}


async def test_readyz_503_lists_the_failing_check(api: _Api, view: StaticNodeView) -> None:
    view.readiness_view = replace(
        view.readiness_view, rpc=Check.failing("eth_blockNumber failed 40s ago: timeout")
    )
    status, _, body = await api.get("/readyz")
    assert status == 503
    ready = ReadinessResponse.model_validate_json(body)
    assert not ready.ready
    assert not ready.checks["rpc"].ok
    assert ready.checks["rpc"].detail == "eth_blockNumber failed 40s ago: timeout"
    assert all(ready.checks[name].ok for name in ("broker", "feeds", "committee_key"))


def _families(text: str) -> dict[str, list[Sample]]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


async def test_metrics_parse_and_carry_the_node_labels(api: _Api, metrics: NodeMetrics) -> None:
    metrics.rounds_started.inc(3)
    metrics.rounds_finalized.inc(2)
    metrics.epoch_changes.inc()
    metrics.messages_dropped.labels(reason="replayed").inc(4)
    metrics.shares_rejected.labels(member=NODES[3]).inc()
    metrics.source_failures.labels(provider="vastai").inc(2)
    metrics.tx_sent.inc(5)
    metrics.tx_failed.inc()
    metrics.tx_gas_used.inc(210_000)
    metrics.round_latency.observe(0.3)
    # The node's fetcher counts on the node's registry too (FeedsSource(metrics_registry=...)).
    FetchMetrics(metrics.registry).retries.labels(source="vastai", reason="timeout").inc(3)

    status, headers, body = await api.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    families = _families(body.decode())

    def value(name: str, **labels: str) -> float:
        family = name.removesuffix("_total").removesuffix("_count")
        matches = [s.value for s in families[family] if s.name == name and s.labels == labels]
        assert len(matches) == 1, (name, labels)
        return matches[0]

    assert value("xon_rounds_started_total") == 3
    assert value("xon_rounds_finalized_total") == 2
    assert value("xon_epoch_changes_total") == 1
    assert value("xon_messages_dropped_total", reason="replayed") == 4
    assert value("xon_shares_rejected_total", member=NODES[3]) == 1
    assert value("xon_source_failures_total", provider="vastai") == 2
    assert value("xon_tx_sent_total") == 5
    assert value("xon_tx_failed_total") == 1
    assert value("xon_tx_gas_used_total") == 210_000
    latency = families["xon_round_latency_seconds"]
    assert {s.name for s in latency} >= {
        "xon_round_latency_seconds_bucket",
        "xon_round_latency_seconds_count",
        "xon_round_latency_seconds_sum",
    }
    assert [s.value for s in latency if s.name.endswith("_count")] == [1]
    assert value("xon_feed_fetch_retries_total", source="vastai", reason="timeout") == 3
    # The process-wide default registry is appended by default (python_info, process_*).
    assert "python_info" in families


async def test_metrics_serve_only_this_nodes_registry(view: StaticNodeView) -> None:
    other = NodeMetrics()
    other.rounds_started.inc(99)
    mine = NodeMetrics()
    mine.rounds_started.inc(1)
    view.registry = mine.registry
    async with (
        ApiServer(view, ApiConfig(port=0, process_metrics=False)) as server,
        aiohttp.ClientSession() as session,
        session.get(server.url + "/metrics") as response,
    ):
        families = _families(await response.text())
    assert [s.value for s in families["xon_rounds_started"] if s.name.endswith("_total")] == [1]
    # Without the process registry: nothing from the default registry.
    assert not any(name.startswith(("process_", "python_", "xon_feed_")) for name in families)


async def test_status_shape(api: _Api) -> None:
    status, headers, body = await api.get("/v1/status")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    parsed = StatusResponse.model_validate_json(body)
    data = json.loads(body)
    assert data["node_id"] == NODES[0]
    assert data["generated_at"] == {"unix": NOW, "iso": "2025-06-15T15:06:40Z"}
    assert data["epoch"] == 3
    assert data["leader"] == NODES[1]
    assert data["is_leader"] is False
    assert data["chain_id"] == 31337
    committee = data["committee"]
    assert (committee["n"], committee["f"], committee["t"]) == (4, 1, 3)
    assert committee["config_digest"] == "0x" + "11" * 32
    assert [m["node_id"] for m in committee["members"]] == NODES
    assert [(m["is_self"], m["is_leader"]) for m in committee["members"]] == [
        (True, False),
        (False, True),
        (False, False),
        (False, False),
    ]
    liar = committee["members"][3]
    assert liar["credibility"] == {
        "deviation": 0.012346,
        "outlier_rate": 0.5,
        "rounds": 40,
        "outliers": 20,
        "is_outlier": False,
        "signing_reliability": 0.75,
        "invalid_shares": 3,
        "per_feed": {HR: 0.002, USED: 0.0},
    }
    assert liar["misbehaviour"] == {"invalid_share": 3}
    report = data["last_reports"]["prices"]
    assert report["digest"] == "0x" + bytes(range(32)).hex()
    assert report["values"][HR] == {"value": "2.45000000", "raw": "245000000", "decimals": 8}
    assert report["values"][USED]["value"] == "21500.00000000"
    assert report["observations_timestamp"] == {"unix": NOW - 30, "iso": "2025-06-15T15:06:10Z"}
    assert report["finalized_at"]["unix"] == NOW - 30  # 29.6 s ago, floored
    assert report["latency_s"] == 0.412
    assert report["signature"] == "0x" + "aa" * 65
    observation = data["observation"]
    assert observation["age_s"] == 10
    assert observation["missing_feeds"] == [USED]
    assert observation["failed_sources"] == {"runpod": "timeout"}
    assert parsed.rounds_finalized == 17
    assert parsed.unused_commitments == 12


async def test_status_before_the_core_started(api: _Api, view: StaticNodeView) -> None:
    view.status_view = replace(
        view.status_view,
        running=False,
        connected=False,
        epoch=None,
        leader=None,
        last_reports={},
        observation=None,
        # a view may hand over lowercase addresses; the wire is always EIP-55
        node_id=NODES[0].lower(),
    )
    status, _, body = await api.get("/v1/status")
    assert status == 200
    parsed = StatusResponse.model_validate_json(body)
    assert parsed.node_id == NODES[0]
    assert parsed.epoch is None and parsed.leader is None and not parsed.is_leader
    assert parsed.last_reports == {} and parsed.observation is None
    assert parsed.committee.members[0].is_self


async def test_feeds_shape(api: _Api) -> None:
    status, _, body = await api.get("/v1/feeds")
    assert status == 200
    parsed = FeedsResponse.model_validate_json(body)
    data = json.loads(body)
    assert [f["feed"] for f in data["feeds"]] == [HR, USED]  # sorted by name
    hr, used = data["feeds"]
    assert hr["observed"] == {
        "value": {"value": "2.46000000", "raw": "246000000", "decimals": 8},
        "timestamp": {"unix": NOW - 10, "iso": "2025-06-15T15:06:30Z"},
        "age_s": 10,
        "sources": 5,
    }
    assert hr["on_chain"]["value"]["value"] == "2.45000000"
    assert hr["on_chain"]["age_s"] == 30
    assert hr["on_chain"]["stale"] is False
    assert hr["on_chain"]["proxy"] is None
    assert hr["deviation_bps"] == "40.82"  # |2.46 - 2.45| / 2.45 = 40.816... bps
    assert hr["deviation_threshold_bps"] == 50
    assert used["observed"] is None
    assert used["deviation_bps"] is None
    assert used["on_chain"]["round_id"] == str((1 << 64) + 5)
    assert used["on_chain"]["stale"] is True  # 90 000 s old, heartbeat 86 400 s
    assert used["on_chain"]["proxy"] == parsed.feeds[1].on_chain.proxy  # type: ignore[union-attr]
    assert used["on_chain"]["proxy"] != PROXY and used["on_chain"]["proxy"].lower() == PROXY
    assert used["on_chain"]["read_at"]["unix"] == NOW - 5
    assert used["on_chain"]["block_number"] == 123


async def test_unknown_path_is_a_json_404(api: _Api) -> None:
    status, headers, body = await api.get("/v1/nope")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    error = ErrorResponse.model_validate_json(body)
    assert error.error == "not_found"
    assert error.request_id == headers["X-Request-Id"]


async def test_wrong_method_is_a_json_405(api: _Api) -> None:
    async with api.session.post(api.server.url + "/v1/status", data=b"{}") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET,HEAD"
        error = ErrorResponse.model_validate_json(await response.read())
    assert error.error == "method_not_allowed"


class _Broken(StaticNodeView):
    def status(self) -> StatusView:
        raise RuntimeError("secret-internal-state /etc/xon/node.toml")


async def test_a_failing_view_is_a_500_without_traceback(
    view: StaticNodeView, caplog: pytest.LogCaptureFixture
) -> None:
    broken = _Broken(status_view=view.status_view, registry=view.registry)
    caplog.set_level(logging.ERROR, logger="oracle.api")
    async with (
        ApiServer(broken, ApiConfig(port=0)) as server,
        aiohttp.ClientSession() as session,
        session.get(server.url + "/v1/status") as response,
    ):
        body = await response.read()
        assert response.status == 500
        request_id = response.headers["X-Request-Id"]
        # the server keeps serving after a failed request
        async with session.get(server.url + "/healthz") as again:
            assert again.status == 200
    error = ErrorResponse.model_validate_json(body)
    assert error == ErrorResponse(
        error="internal_error", message="internal server error", request_id=request_id
    )
    assert b"secret-internal-state" not in body and b"Traceback" not in body
    [record] = [r for r in caplog.records if r.getMessage().startswith("api.request_failed")]
    assert request_id in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_a_malformed_view_is_a_500_not_a_malformed_body(
    api: _Api, view: StaticNodeView
) -> None:
    view.status_view = replace(view.status_view, node_id="0x1234")  # not an address
    status, _, body = await api.get("/v1/status")
    assert status == 500
    assert ErrorResponse.model_validate_json(body).error == "internal_error"


async def test_port_in_use_is_an_api_error(api: _Api, view: StaticNodeView) -> None:
    with pytest.raises(ApiError) as raised:
        async with ApiServer(view, ApiConfig(port=api.server.port)):
            pass
    assert raised.value.port == api.server.port


async def test_exit_closes_the_listener(view: StaticNodeView) -> None:
    async with ApiServer(view, ApiConfig(port=0)) as server:
        url = server.url
    with pytest.raises(RuntimeError):
        _ = server.port
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url + "/healthz"):
                pass


def test_readiness_ready_only_when_all_pass() -> None:
    ok = Check.passing()
    assert Readiness(ok, ok, ok, ok).ready
    assert not Readiness(ok, ok, Check.failing("no observation yet"), ok).ready
