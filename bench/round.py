"""Observe→FINAL latency of one consensus round over a real local mosquitto.

    .venv/bin/python bench/round.py                    # n = 4, 7, 16, 31; 30 rounds each
    .venv/bin/python bench/round.py --n 7 --rounds 50
    .venv/bin/python bench/round.py --n 16 --profile   # cProfile of the whole run (top 15)

For each committee size a fresh mosquitto is started on a free port (``mosquitto`` on PATH,
as in tests/conftest.py), n :class:`~oracle.node.OracleNode` s run in this process, each with
its own MQTT client and SQLite store, and observations move 1 % every 0.1 s so that every
round carries a report. The latency of a round is the leader's own measure (OBSERVE
broadcast → FINAL aggregated and verified), i.e. what ``xon_round_latency_seconds``
records; the first rounds (commitment exchange) are skipped.

All n nodes share one Python process, hence one core: every signature recovery, FROST
operation and SQLite commit of every member is serialised, so the figures are an upper
bound for a committee of n separate machines (where each node does 1/n of this CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import pstats
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

from oracle.metrics import NodeMetrics
from oracle.node import NodeKeys, NodeObservation, OracleNode
from oracle.protocol.actions import ReportFinalized
from oracle.protocol.config import Timing
from oracle.protocol.sim import make_committee
from oracle.transport import Backoff, MqttSettings, MqttTransport

NET = "bench"
WARMUP = 3  # rounds skipped: the first ones wait for everybody's commitments


class Ramp:
    def __init__(self, feeds: list[str], offset: int) -> None:
        self.feeds = sorted(feeds)
        self.offset = offset

    async def observe(self) -> NodeObservation:
        step = int(time.time() * 10) % 40
        return NodeObservation(
            {
                name: 2_00000000 + 2_000_000 * step + 1_000_000 * i + self.offset
                for i, name in enumerate(self.feeds)
            }
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mosquitto(directory: Path) -> Iterator[int]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 100000\nset_tcp_nodelay true\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def measure(n: int, rounds: int, port: int, directory: Path) -> list[float]:
    # Generous timers: they only bound failures; a healthy round never waits on them. One
    # process does the CPU work of all n members, so ΔRound (which also bounds the
    # observation phase) grows with n, and commitments are re-announced rarely (each
    # re-announcement costs n² signature checks here).
    timing = Timing(
        delta_round=max(0.5, 0.05 * n),
        delta_grace=0.05,
        delta_progress=30.0,
        delta_resend=10.0,
        delta_stage=5.0,
        signing_timeout=5.0,
        commitment_ttl=600.0,
        max_observation_age=60.0,
    )
    committee = make_committee(n, timing=timing, network=NET)
    config = committee.config
    latencies: list[float] = []
    done = asyncio.Event()

    def finalized(action: ReportFinalized) -> None:
        if action.is_leader and action.latency is not None:
            latencies.append(action.latency)
            if len(latencies) >= rounds + WARMUP:
                done.set()

    settings = MqttSettings(
        port=port, keepalive=10, backoff=Backoff(initial=0.05, maximum=0.5), max_inflight=256
    )
    async with AsyncExitStack() as stack:
        for index, member in enumerate(config.members):
            metrics = NodeMetrics()
            identity = committee.identities[member.node_id]
            transport = MqttTransport(
                settings, network=NET, roster=config.roster, identity=identity, metrics=metrics
            )
            keys = NodeKeys(
                identity,
                committee.dealer.key_packages[member.frost_id],
                committee.dealer.public_key_package,
            )
            node = OracleNode(
                config,
                keys,
                transport,
                directory / f"n{n}-{index}.sqlite",
                Ramp(list(config.feeds_by_name), index),
                metrics=metrics,
                refresh_s=0.1,
                on_finalized=finalized if member.node_id == config.leader(1) else None,
            )
            await stack.enter_async_context(node)
        async with asyncio.timeout(60 + 10 * (rounds + WARMUP)):
            await done.wait()
    return latencies[WARMUP:]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="committee size (repeatable)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds measured per size")
    parser.add_argument("--profile", action="store_true", help="cProfile the run (top 15)")
    args = parser.parse_args()
    sizes = args.n or [4, 7, 16, 31]
    logging.basicConfig(level=logging.WARNING)
    profiler = cProfile.Profile() if args.profile else None
    print(f"observe→FINAL latency, leader's view, {args.rounds} rounds, one process, mosquitto")
    print(f"{'n':>4} {'t':>4} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            directory = Path(tmp) / f"n{n}"
            directory.mkdir()
            with mosquitto(directory) as port:
                if profiler is not None:
                    profiler.enable()
                values = asyncio.run(measure(n, args.rounds, port, directory))
                if profiler is not None:
                    profiler.disable()
            f = (n - 1) // 3
            print(
                f"{n:>4} {max(2, 2 * f + 1):>4} {1000 * statistics.median(values):>10.1f} "
                f"{1000 * percentile(values, 0.99):>8.1f} {1000 * max(values):>8.1f}"
            )
    print(
        "note: CPU-bound. All n members share this one process and each checks every "
        "envelope (signer recovery is memoised per frame), so the cost grows ~n²; the "
        "latency includes the leader's 50 ms ΔGrace. --profile shows where the time goes."
    )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            r"(oracle|aggregation|feeds)/", 25
        )
        print(out.getvalue())


if __name__ == "__main__":
    main()
