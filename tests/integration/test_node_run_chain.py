"""``xon node run`` end to end: four nodes (the CLI's own ``run_node``) on a real mosquitto
finalize PRICES reports, transmit them to a real anvil through the staged transmitter, and
serve the posted values on the HTTP API."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from web3 import Web3

from aggregation.report import PricesPayload, Report, feed_name
from contracts.deploy import Deployment, contract_at, deploy_all
from feeds.config import load_default_config
from oracle.cli import main
from oracle.contracts_cli import committee_spec, feed_specs
from oracle.keystore import read_committee
from oracle.node_cli import run_node
from oracle.settings import load_settings
from tests.conftest import ANVIL_KEY_0, NODE_BIN, ROOT, Broker, _stop, free_port, wait_for_port

pytestmark = pytest.mark.integration

NET = "noderun"
PASSWORD_ENV = "XON_NODE_RUN_IT_PASSPHRASE"
REPLAY = ROOT / "feeds" / "replay" / "default"


@pytest.fixture
def ticking_anvil() -> Iterator[str]:
    # A block every second, like a real chain: reports are stamped with the wall clock and
    # the contracts refuse an observation newer than the block that includes it.
    port = free_port()
    process = subprocess.Popen(
        [str(NODE_BIN / "anvil"), "--port", str(port), "--block-time", "1", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def node_toml(keys: Path, index: int, broker: int, rpc: str, tmp: Path, *, api: int | None) -> str:
    return f"""
network = "{NET}"

[broker]
port = {broker}

[keys]
identity = "{keys}/node-{index}/identity.json"
frost_share = "{keys}/node-{index}/frost-share.json"
committee = "{keys}/committee.json"
passphrase_env = "{PASSWORD_ENV}"

[store]
path = "{tmp}/node-{index}.sqlite"

[feeds]
replay_dir = "{REPLAY}"
heartbeat_s = 1

[chain]
deployment = "{tmp}/deployment.json"
rpc_urls = ["{rpc}"]

[api]
enabled = {"true" if api else "false"}
port = {api or 0}

[timing]
delta_round = 0.5
delta_grace = 0.05
delta_progress = 5.0
delta_resend = 1.0
delta_stage = 2.0
signing_timeout = 1.0
max_observation_age = 30.0
"""


async def test_nodes_transmit_finalized_reports_and_serve_them(
    tmp_path: Path, mosquitto: Broker, ticking_anvil: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "node run integration test")
    keys = tmp_path / "keys"
    dealer = ["keys", "dealer", "--n", "4", "--t", "3", "--out", str(keys), "--network", NET]
    dealer += ["--password-env", PASSWORD_ENV, "--insecure-fast-kdf"]
    assert await asyncio.to_thread(main, dealer) == 0
    committee = await asyncio.to_thread(read_committee, keys / "committee.json")

    def deploy() -> Deployment:
        w3 = Web3(Web3.HTTPProvider(ticking_anvil))
        for member in committee.members:  # each node pays gas from its identity address
            w3.provider.make_request("anvil_setBalance", [member.node_id, hex(10**20)])  # type: ignore[arg-type]
        feeds = feed_specs(load_default_config())
        return deploy_all(w3, Account.from_key(ANVIL_KEY_0), committee_spec(committee), feeds)

    deployment = await asyncio.to_thread(deploy)
    deployment.write(tmp_path / "deployment.json")
    configs = []
    api_port = free_port()
    for member in committee.members:
        path = tmp_path / f"node-{member.identifier}.toml"
        path.write_text(
            node_toml(
                keys,
                member.identifier,
                mosquitto.port,
                ticking_anvil,
                tmp_path,
                api=api_port if member.identifier == 1 else None,
            )
        )
        configs.append(load_settings(path))

    w3 = Web3(Web3.HTTPProvider(ticking_anvil))
    store = contract_at(w3, "PriceFeedStore", deployment.price_feed_store)

    def posted() -> tuple[int, int]:
        epoch, round_ = store.functions.latestEpochAndRound().call()
        return int(epoch), int(round_)

    stop = asyncio.Event()
    async with asyncio.TaskGroup() as nodes:
        runs = [nodes.create_task(run_node(settings, stop)) for settings in configs]
        try:
            # Polling the chain and the API: there is nothing to subscribe to.
            async with asyncio.timeout(90):
                while (await asyncio.to_thread(posted)) == (0, 0):  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                first = await asyncio.to_thread(posted)
                # One more, later report lands too (transmission keeps up with rounds).
                while (await asyncio.to_thread(posted)) <= first:  # noqa: ASYNC110
                    await asyncio.sleep(0.5)
                # Node 1's API serves what it read back from the chain (cached reads).
                while True:
                    feeds_view = await _get_json(f"http://127.0.0.1:{api_port}/v1/feeds")
                    if any(f["on_chain"] is not None for f in feeds_view["feeds"]):
                        break
                    await asyncio.sleep(0.5)
        finally:
            stop.set()
    assert [run.result() for run in runs] == [0, 0, 0, 0]

    epoch, round_ = await asyncio.to_thread(posted)
    # The posted report is one the nodes finalized (node 1's store holds it) ...
    with sqlite3.connect(tmp_path / "node-1.sqlite") as db:
        row = db.execute(
            "SELECT report FROM committed_reports WHERE kind = 1 AND epoch = ? AND round = ?",
            (epoch, round_),
        ).fetchone()
    assert row is not None, "the on-chain round is not in the node's store"
    report = Report.decode(bytes(row[0]))
    prices = PricesPayload.decode(report.payload)
    # ... and every feed it carried reads back through its proxy with the report's values.
    for fid, value in zip(prices.feed_ids, prices.values, strict=True):
        proxy = contract_at(w3, "FeedProxy", deployment.feed_proxies[feed_name(fid)])
        _, answer, started_at, _, _ = proxy.functions.latestRoundData().call()
        if started_at == report.observations_timestamp:
            assert answer == value
    served = {f["feed"]: f for f in feeds_view["feeds"]}
    assert set(served) == set(deployment.feed_proxies)
    for name, feed in served.items():
        if feed["on_chain"] is not None:
            assert feed["on_chain"]["proxy"] == deployment.feed_proxies[name]


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.json()
