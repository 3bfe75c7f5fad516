"""``kill -9`` of a node in the middle of signing, then a restart: no nonce is used twice
and nothing is signed twice.

Set-up: a committee of 7 from ``xon keys dealer --insecure-fast-kdf``; the victim runs as a
real ``xon node run --config`` subprocess (replayed feeds), four more members run in this
process over their own MQTT clients, and two members are absent — so every observation
quorum and every signing session (t = 5) needs the victim. A raw MQTT client subscribed
to ``xon/<net>/#`` records every frame on the wire.

The victim is SIGKILLed right after the wire shows a PROPOSE naming it as a signer (it is
then receiving that PROPOSE, recording its promise, or sending its share), restarted, and
finally stopped with SIGTERM. Then:

* on the wire, no commitment id of the victim is used for two shares (so no nonce reuse,
  and no two different shares for one commitment), every share after the restart uses a
  commitment the second incarnation announced, and its first announcement withdraws
  every commitment the first one left unused;
* in its store, every commitment from before the crash is consumed before the crash or
  invalidated, never consumed after it; one digest per (kind, epoch, round), and the
  finalized digest wherever that round finalized;
* FINALs resume after the restart and every FINAL verifies under the group key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aggregation.frost import Signature, verify
from aggregation.report import signing_message
from feeds.config import load_default_config
from oracle.identity import NodeId
from oracle.keystore import read_committee
from oracle.node import FeedsSource, NodeObservation, OracleNode, load_setup, node_from_setup
from oracle.protocol.messages import Commitments, FinalReport, Propose, Share
from oracle.settings import load_settings
from oracle.transport import MessageType, SignedEnvelope, open_frame
from tests.conftest import ROOT, Broker

pytestmark = pytest.mark.integration

NET = "crash-it"
PASSWORD_ENV = "XON_CRASH_IT_PASSPHRASE"
PASSWORD = "crash integration test"
XON = ROOT / ".venv" / "bin" / "xon"
REPLAY = ROOT / "feeds" / "replay" / "default"
DIGEST = "0x" + "5a" * 32
CONTRACT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"


def node_toml(keys: Path, index: int, port: int, store: Path) -> str:
    return f"""
network = "{NET}"
log_level = "INFO"

[broker]
port = {port}
keepalive = 5

[keys]
identity = "{keys}/node-{index}/identity.json"
frost_share = "{keys}/node-{index}/frost-share.json"
committee = "{keys}/committee.json"
passphrase_env = "{PASSWORD_ENV}"

[store]
path = "{store}"

[feeds]
replay_dir = "{REPLAY}"
heartbeat_s = 1        # the replayed market never moves: publish every second

[chain]
chain_id = 31337
verifying_contract = "{CONTRACT}"
config_digest = "{DIGEST}"

[timing]
delta_round = 0.4
delta_grace = 0.05
delta_progress = 4.0
delta_resend = 1.0
delta_stage = 1.0
signing_timeout = 0.6
max_observation_age = 30.0
"""


@dataclass
class Wire:
    """Every verified frame seen on ``xon/<net>/#``, with the time it arrived."""

    frames: list[tuple[float, SignedEnvelope]] = field(default_factory=list)

    def of(self, type_: MessageType, sender: NodeId | None = None) -> list[tuple[float, Any]]:
        decoders: dict[MessageType, Any] = {
            MessageType.PROPOSE: Propose,
            MessageType.SHARE: Share,
            MessageType.COMMITMENTS: Commitments,
            MessageType.FINAL: FinalReport,
        }
        return [
            (at, decoders[type_].from_payload(env.payload))
            for at, env in self.frames
            if env.type is type_ and (sender is None or env.sender == sender)
        ]


async def observe_wire(broker: Broker, roster: Any, wire: Wire, ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="crash-it-observer") as client:
        await client.subscribe(f"xon/{NET}/#", qos=1)
        ready.set()
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                continue
            opened = open_frame(payload, network=NET, roster=roster)
            if isinstance(opened, SignedEnvelope):
                wire.frames.append((time.time(), opened))


async def eventually(predicate: Callable[[], bool], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        # Polling: the predicates read what the wire observer and the nodes collected.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def rows(path: Path, query: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(query).fetchall())
    finally:
        conn.close()


@pytest.fixture
def dealt(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    subprocess.run(
        [
            str(XON),
            *("keys", "dealer", "--n", "7", "--out", str(keys), "--network", NET),
            *("--password-env", PASSWORD_ENV, "--insecure-fast-kdf"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, PASSWORD_ENV: PASSWORD},
        timeout=60,
    )
    return keys


@pytest.fixture(scope="module")
def replayed() -> NodeObservation:
    async def once() -> NodeObservation:
        async with FeedsSource(load_default_config(), replay_dir=REPLAY, environ={}) as source:
            return await source.observe()

    return asyncio.run(once())


class Victim:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(XON),
                "node",
                "run",
                "--config",
                str(self.config),
                stdout=out,
                stderr=out,
                env={**os.environ, PASSWORD_ENV: PASSWORD},
            )

    async def signal(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        async with asyncio.timeout(20):
            return await self.process.wait()

    async def kill_if_running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.signal(signal.SIGKILL)


async def test_kill_9_mid_signing_never_reuses_a_nonce_or_double_signs(
    mosquitto: Broker, dealt: Path, tmp_path: Path, replayed: NodeObservation
) -> None:
    committee = read_committee(dealt / "committee.json")
    configs = {
        m.identifier: load_settings(
            _write(
                tmp_path / f"node-{m.identifier}.toml",
                node_toml(dealt, m.identifier, mosquitto.port, tmp_path / f"s{m.identifier}.db"),
            )
        )
        for m in committee.members
    }
    setups = {
        i: await asyncio.to_thread(load_setup, s, {PASSWORD_ENV: PASSWORD})
        for i, s in configs.items()
    }
    config = setups[1].config
    by_id = {m.frost_id: m.node_id for m in config.members}
    # The victim and the two absent members lead none of the first epochs: rounds run, and
    # the victim signs as a follower (its shares are on the wire), even when its slow start
    # as a subprocess on a loaded machine costs an epoch change or two.
    leaders = {config.leader(epoch) for epoch in range(1, 5)}
    others = [i for i in sorted(by_id) if by_id[i] not in leaders]
    assert len(others) >= 3, "the committee's first leaders leave too few members"
    victim_id, absent = others[0], set(others[1:3])
    victim = by_id[victim_id]
    in_process = [i for i in sorted(by_id) if i != victim_id and i not in absent]
    finals: list[tuple[NodeId, Any]] = []
    wire = Wire()
    victim_proc = Victim(tmp_path / f"node-{victim_id}.toml", tmp_path / "victim.log")
    victim_store = configs[victim_id].store.path

    async with AsyncExitStack() as stack, asyncio.TaskGroup() as group:
        stack.push_async_callback(victim_proc.kill_if_running)
        ready = asyncio.Event()
        observer = group.create_task(
            observe_wire(mosquitto, config.roster, wire, ready), name="wire-observer"
        )
        await asyncio.wait_for(ready.wait(), 10)
        nodes: list[OracleNode] = []
        for i in in_process:
            node = node_from_setup(
                setups[i],
                _Static(replayed),
                on_finalized=lambda a, n=by_id[i]: finals.append((n, a)),  # type: ignore[misc]
            )
            nodes.append(await stack.enter_async_context(node))
        await victim_proc.start()

        def victim_shares() -> int:
            return len(wire.of(MessageType.SHARE, victim))

        # Rounds are running and the victim signs in them.
        await eventually(lambda: len(finals) >= 2 * len(nodes) and victim_shares() >= 2, 60)
        # Wait for the next PROPOSE naming the victim, then kill it at once: mid-signing.
        seen = len(wire.of(MessageType.PROPOSE))
        await eventually(
            lambda: any(
                victim in {e.node for e in p.signers}
                for _, p in wire.of(MessageType.PROPOSE)[seen:]
            )
        )
        killed_at = time.time()
        assert await victim_proc.signal(signal.SIGKILL) == -signal.SIGKILL
        published_before = {
            bytes(cid): (str(status), closed)
            for cid, status, closed in await asyncio.to_thread(
                rows,
                victim_store,
                "SELECT commitment_id, status, closed_at FROM nonce_commitments",
            )
        }
        await victim_proc.start()
        restarted_at = time.time()
        await eventually(
            lambda: (
                len({(a.epoch, a.round) for _, a in finals if a.finalized_at > restarted_at}) >= 2
                and any(at > restarted_at for at, _ in wire.of(MessageType.SHARE, victim))
            ),
            within=40,
        )
        exit_code = await victim_proc.signal(signal.SIGTERM)
        observer.cancel()

    assert exit_code == 0, (tmp_path / "victim.log").read_text()[-3000:]
    _check_wire(wire, victim, killed_at, restarted_at, published_before)
    _check_store(victim_store, killed_at, published_before, finals)
    group_key = committee.group_key
    finalized: dict[tuple[int, int], bytes] = {}
    for _, final in wire.of(MessageType.FINAL):
        digest = signing_message(config.chain_id, config.verifying_contract, final.report)
        assert verify(group_key, digest, Signature.decode(final.signature))
        assert finalized.setdefault((final.epoch, final.round), digest) == digest


def _check_wire(
    wire: Wire,
    victim: NodeId,
    killed_at: float,
    restarted_at: float,
    published_before: dict[bytes, tuple[str, Any]],
) -> None:
    # (epoch, round, session) -> the victim's commitment id in that session.
    sessions: dict[tuple[int, int, int], bytes] = {}
    for _, propose in wire.of(MessageType.PROPOSE):
        for entry in propose.signers:
            if entry.node == victim:
                key = (propose.epoch, propose.round, propose.session)
                assert sessions.setdefault(key, entry.commitment_id) == entry.commitment_id
    shares = wire.of(MessageType.SHARE, victim)
    assert shares, "the victim never signed"
    used: dict[bytes, bytes] = {}
    for _, share in shares:
        cid = sessions[(share.epoch, share.round, share.session)]
        # A second share with one commitment would be a second use of its nonce pair.
        assert cid not in used, f"commitment {cid.hex()} used for two shares"
        used[cid] = share.share
    announced_after = {
        entry.commitment_id
        for at, message in wire.of(MessageType.COMMITMENTS, victim)
        if at > killed_at
        for entry in message.entries
    }
    for at, share in shares:
        if at > restarted_at:
            cid = sessions[(share.epoch, share.round, share.session)]
            assert cid in announced_after and cid not in published_before
    unused_before = {cid for cid, (status, _) in published_before.items() if status == "published"}
    # The second incarnation's first announcement: the first with ids the store did not
    # hold at the kill. (Not merely the first seen after the kill: the observer stamps a
    # message when this busy test process reads it, so a re-announcement the first
    # incarnation sent just before its death can carry a later stamp.)
    first_after = next(
        m
        for at, m in wire.of(MessageType.COMMITMENTS, victim)
        if at > killed_at and any(e.commitment_id not in published_before for e in m.entries)
    )
    assert unused_before <= set(first_after.invalidated)


def _check_store(
    store: Path,
    killed_at: float,
    published_before: dict[bytes, tuple[str, Any]],
    finals: list[tuple[NodeId, Any]],
) -> None:
    after = {
        bytes(cid): (str(status), closed)
        for cid, status, closed in rows(
            store, "SELECT commitment_id, status, closed_at FROM nonce_commitments"
        )
    }
    assert published_before, "the victim published commitments before the crash"
    for cid, (status, closed) in published_before.items():
        if status == "published":
            assert after[cid][0] == "invalidated"  # withdrawn at restart, never consumed
        else:
            assert after[cid] == (status, closed) and closed <= killed_at
    assert any(s == "consumed" and cid not in published_before for cid, (s, _) in after.items())
    signed = rows(store, "SELECT kind, epoch, round, digest FROM sign_protection")
    assert len({(k, e, r) for k, e, r, _ in signed}) == len(signed)
    digests = {(a.epoch, a.round): a.digest for _, a in finals}
    for _, epoch, round_, digest in signed:
        if (epoch, round_) in digests:
            assert bytes(digest) == digests[(epoch, round_)]


class _Static:
    def __init__(self, observation: NodeObservation) -> None:
        self.observation = observation

    async def observe(self) -> NodeObservation:
        return self.observation


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
