"""``xon devnet`` end to end: real anvil, real mosquitto, 7 nodes of which 2 are Byzantine.

What must hold: at least 5 PRICES reports are finalized and posted; every attempted round
finalized; for each feed the value read back through its FeedProxy equals the value of the
last FINAL report carrying that feed, lies within the honest nodes' observed range, and
``latestRoundData`` gives startedAt = that report's observationsTimestamp and updatedAt =
the timestamp of the block holding its posting transaction; the summary has the shape
docs/devnet.md documents; no child process outlives the devnet. The command itself runs
once to completion and once stopped by SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oracle.devnet import Devnet, DevnetError, DevnetOptions, mosquitto_binary, run_devnet
from oracle.protocol.rules import report_values
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

REPORT_KEYS = {"epoch", "round", "gas_used", "tx_hash", "latency_ms"}
FEED_KEYS = {"onchain", "decimals", "honest_min", "honest_max"}


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by whoever adopted it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _check_shape(summary: dict[str, Any], min_reports: int) -> None:
    rounds = summary["rounds"]
    assert isinstance(rounds["attempted"], int) and isinstance(rounds["finalized"], int)
    posted = [r for r in summary["reports"] if r["tx_hash"] is not None]
    assert len(posted) >= min_reports
    for report in posted:
        assert report.keys() >= REPORT_KEYS
        assert report["gas_used"] > 21_000 and report["latency_ms"] >= 0
        assert re.fullmatch(r"0x[0-9a-f]{64}", report["tx_hash"])
    latency = summary["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p99"]
    assert summary["feeds"]
    for feed in summary["feeds"].values():
        assert feed.keys() >= FEED_KEYS
        for key in ("onchain", "honest_min", "honest_max"):
            Decimal(feed[key])  # a decimal string
            assert isinstance(feed[key], str)


async def test_devnet_seven_nodes_two_byzantine() -> None:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto binary not found (the python-svc machine ships it)")
    seen: dict[str, Any] = {}

    async def inspect(devnet: Devnet) -> None:
        """Read the chain while anvil still runs: each feed's proxy against the last
        FINAL report that carried it."""
        from contracts.deploy import contract_at

        assert devnet.w3 is not None and devnet.tracker is not None
        w3 = devnet.w3
        seen["pids"] = [c.pid for c in devnet.children]
        seen["byzantine"] = [m.kind for m in devnet.members if m.kind is not None]
        last: dict[str, Any] = {}
        for record in devnet.tracker.finalized_rounds():
            assert record.finalized is not None
            for name, value in report_values(record.finalized.report).items():
                last[name] = (value, record)
        checked = {}
        for name, (value, record) in last.items():
            proxy = contract_at(w3, "FeedProxy", devnet.deployment.feed_proxies[name])
            data = await asyncio.to_thread(proxy.functions.latestRoundData().call)
            receipt = await asyncio.to_thread(w3.eth.get_transaction_receipt, record.posted.tx_hash)
            block = await asyncio.to_thread(w3.eth.get_block, receipt["blockNumber"])
            checked[name] = {
                "answer": int(data[1]),
                "started_at": int(data[2]),
                "updated_at": int(data[3]),
                "value": value,
                "observations_timestamp": record.finalized.report.observations_timestamp,
                "block_timestamp": int(block["timestamp"]),
            }
        seen["checked"] = checked

    result = await asyncio.wait_for(
        run_devnet(DevnetOptions(nodes=7, byzantine=2, rounds=5, seed=3), inspect=inspect),
        timeout=150,
    )
    summary = dict(result.summary)
    assert result.ok, result.problems
    assert summary["broker"].startswith("mosquitto")
    assert len(seen["byzantine"]) == 2 and len(set(seen["byzantine"])) == 2
    _check_shape(summary, min_reports=5)
    rounds = summary["rounds"]
    assert rounds["attempted"] >= 1 and rounds["finalized"] == rounds["attempted"]
    assert rounds["posted"] >= 5

    checked = seen["checked"]
    assert set(checked) == set(summary["feeds"])
    for name, c in checked.items():
        feed = summary["feeds"][name]
        scale = Decimal(10) ** feed["decimals"]
        assert c["answer"] == c["value"], name  # on-chain == the last FINAL report's value
        assert Decimal(feed["onchain"]) * scale == c["answer"]
        assert (
            Decimal(feed["honest_min"]) <= Decimal(feed["onchain"]) <= Decimal(feed["honest_max"])
        ), name
        assert Decimal(feed["honest_min"]) < Decimal(feed["honest_max"])  # honest views differ
        assert c["started_at"] == c["observations_timestamp"]
        assert c["updated_at"] == c["block_timestamp"]

    assert len(seen["pids"]) == 2  # anvil and mosquitto
    assert not any(_alive(pid) for pid in seen["pids"])
    assert result.child_pids == tuple(seen["pids"])


def _pids(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]


async def test_xon_devnet_command(tmp_path: Path) -> None:
    summary_file = tmp_path / "out.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oracle.cli", "devnet", "--rounds", "2", "--nodes", "4",
        "--summary", str(summary_file),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode()
    assert process.returncode == 0, err[-3000:]
    assert "broker: mosquitto" in err
    assert len(stdout.decode().splitlines()) >= 2  # one line per posted report (not a TTY)
    summary = json.loads(summary_file.read_text())
    _check_shape(summary, min_reports=2)
    assert summary["rounds"]["finalized"] == summary["rounds"]["attempted"]
    pids = _pids(err)
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)


async def test_xon_devnet_sigterm_stops_every_child(tmp_path: Path) -> None:
    """SIGTERM stops the devnet gracefully: exit 130, a summary marked interrupted, and no
    child left running."""
    summary_file = tmp_path / "out.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oracle.cli", "devnet", "--nodes", "4", "--duration", "120",
        "--summary", str(summary_file),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            async for raw in process.stderr:
                lines.append(raw.decode())
                if "nodes running" in lines[-1]:
                    break
        pids = _pids("".join(lines))
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await process.stderr.read()
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, rest.decode()[-2000:]
    assert not any(_alive(pid) for pid in pids)
    assert json.loads(summary_file.read_text())["interrupted"] is True


async def test_devnet_in_process_broker() -> None:
    """Without mosquitto the nodes share the in-process bus; everything else is real."""
    result = await asyncio.wait_for(
        run_devnet(DevnetOptions(nodes=4, byzantine=1, rounds=2, broker="memory", seed=1)),
        timeout=120,
    )
    summary = dict(result.summary)
    assert result.ok, result.problems
    assert summary["broker"] == "in-process"
    assert list(summary["byzantine"].values()) == ["extreme_observer"]
    _check_shape(summary, min_reports=2)
    assert len(result.child_pids) == 1 and not _alive(result.child_pids[0])  # anvil only


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 3}, "at least 4 nodes"),
        ({"nodes": 7, "byzantine": 3}, r"\[0, 2\]"),
        ({"rounds": 0}, "--rounds"),
        ({"round_interval": 0.1}, "--round-interval"),
    ],
)
def test_devnet_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DevnetError, match=message):
        DevnetOptions(**kwargs)


async def test_children_die_with_a_killed_devnet() -> None:
    """SIGKILL leaves no ``finally`` to run: the children get SIGTERM from the kernel."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oracle.cli", "devnet", "--nodes", "4", "--duration", "120",
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stderr is not None
        async with asyncio.timeout(60):
            async for raw in process.stderr:
                lines.append(raw.decode())
                if "nodes running" in lines[-1]:
                    break
        pids = _pids("".join(lines))
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    finally:
        process.kill()
        await process.wait()
    async with asyncio.timeout(10):
        while any(_alive(pid) for pid in pids):  # noqa: ASYNC110  (nothing to wait on)
            await asyncio.sleep(0.1)
