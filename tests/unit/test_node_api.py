"""The HTTP API served over a running OracleNode (the adapter ``xon node run`` uses)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from oracle.api import ApiConfig, ApiServer
from oracle.node_view import OracleNodeView
from tests.unit.test_node import Ramp, make_net, running


async def test_status_feeds_readiness_and_metrics_of_a_live_node(tmp_path: Path) -> None:
    net = make_net(4, tmp_path)
    feeds = net.committee.config.feeds_by_name
    nodes = [net.node(i, Ramp(feeds, offset=i)) for i in range(4)]
    async with running(*nodes):
        await net.wait_for(lambda: all(len(net.rounds(n.node_id)) >= 2 for n in nodes))
        view = OracleNodeView(nodes[0], None, max_observation_age_s=60)
        async with (
            ApiServer(view, ApiConfig(port=0, process_metrics=False)) as server,
            aiohttp.ClientSession() as http,
        ):
            async with http.get(f"{server.url}/v1/status") as response:
                assert response.status == 200
                status = await response.json()
            async with http.get(f"{server.url}/v1/feeds") as response:
                assert response.status == 200
                listing = await response.json()
            async with http.get(f"{server.url}/readyz") as response:
                ready = await response.json()
                assert response.status == (200 if ready["ready"] else 503)
            async with http.get(f"{server.url}/metrics") as response:
                metrics_text = await response.text()

    assert status["node_id"] == nodes[0].node_id
    assert status["committee"]["n"] == 4
    assert {m["node_id"] for m in status["committee"]["members"]} == set(
        net.committee.config.by_node
    )
    prices = status["last_reports"]["prices"]
    assert prices["epoch"] >= 1 and set(prices["values"]) <= set(feeds)
    assert {f["feed"] for f in listing["feeds"]} == set(feeds)
    assert all(f["on_chain"] is None for f in listing["feeds"])  # no chain configured
    assert ready["checks"]["rpc"]["ok"] and ready["checks"]["broker"]["ok"]
    names = {family.name for family in text_string_to_metric_families(metrics_text)}
    assert {"xon_rounds_finalized", "xon_messages_received"} <= names
