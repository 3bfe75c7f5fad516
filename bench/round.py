"""Observe→FINAL latency of one consensus round over a real local mosquitto.

    .venv/bin/python bench/round.py                    # n = 4, 7, 16, 31; 30 rounds each
    .venv/bin/python bench/round.py --n 7 --rounds 50
    .venv/bin/python bench/round.py --n 31 --processes 2
    .venv/bin/python bench/round.py --n 16 --processes 1 --profile   # cProfile (top 15)

For each committee size a fresh mosquitto is started on a free port (``mosquitto`` on PATH,
as in tests/conftest.py), n :class:`~oracle.node.OracleNode` s run, each with its own MQTT
client and SQLite store, and observations move 1 % every 0.1 s so that every round carries
a report. The latency of a round is the leader's own measure (OBSERVE broadcast → FINAL
aggregated and verified), i.e. what ``xon_round_latency_seconds`` records; the first rounds
(commitment exchange) are skipped.

Each size runs twice by default: all n members in this one process (one event loop, one
core: every signature recovery, FROST operation and SQLite commit of every member is
serialised), and the members dealt round-robin over one worker process per core, which is
how a machine with that many cores runs them. Both are upper bounds for a committee of n
separate machines, where each node does 1/n of this CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import multiprocessing
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
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


def bench_timing(n: int) -> Timing:
    # Generous timers: they only bound failures; a healthy round never waits on them. One
    # process does the CPU work of many members, so ΔRound (which also bounds the
    # observation phase) grows with n, and commitments are re-announced rarely (each
    # re-announcement costs n² signature checks here).
    return Timing(
        delta_round=max(0.5, 0.05 * n),
        delta_grace=0.05,
        delta_progress=30.0,
        delta_resend=10.0,
        delta_stage=5.0,
        signing_timeout=5.0,
        commitment_ttl=600.0,
        max_observation_age=60.0,
    )


async def run_members(
    n: int,
    indices: Sequence[int],
    *,
    port: int,
    directory: Path,
    on_latency: Callable[[float], None],
    stopped: Callable[[], bool],
) -> None:
    """Run the members at ``indices`` of the (deterministic) n-committee until ``stopped``;
    the leader of epoch 1, if among them, reports each round's latency to ``on_latency``."""
    committee = make_committee(n, timing=bench_timing(n), network=NET)
    config = committee.config

    def finalized(action: ReportFinalized) -> None:
        if action.is_leader and action.latency is not None:
            on_latency(action.latency)

    settings = MqttSettings(
        port=port, keepalive=10, backoff=Backoff(initial=0.05, maximum=0.5), max_inflight=256
    )
    async with AsyncExitStack() as stack:
        for index in indices:
            member = config.members[index]
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
        # Polling: in a worker, the stop signal is a multiprocessing.Event.
        while not stopped():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _deadline(rounds: int) -> float:
    return 60 + 10 * (rounds + WARMUP)


async def measure(n: int, rounds: int, port: int, directory: Path) -> list[float]:
    """Every member in this process (and event loop)."""
    latencies: list[float] = []
    async with asyncio.timeout(_deadline(rounds)):
        await run_members(
            n,
            range(n),
            port=port,
            directory=directory,
            on_latency=latencies.append,
            stopped=lambda: len(latencies) >= rounds + WARMUP,
        )
    return latencies[WARMUP:]


def _worker(
    n: int,
    rounds: int,
    *,
    port: int,
    directory: Path,
    indices: list[int],
    results: Queue[list[float]],
    stop: EventType,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    latencies: list[float] = []

    def on_latency(value: float) -> None:
        latencies.append(value)
        if len(latencies) == rounds + WARMUP:
            results.put(latencies[WARMUP:])

    asyncio.run(
        run_members(
            n, indices, port=port, directory=directory, on_latency=on_latency, stopped=stop.is_set
        )
    )


def measure_processes(
    n: int, rounds: int, port: int, directory: Path, processes: int
) -> list[float]:
    """The members dealt round-robin over ``processes`` worker processes (one event loop
    each), as members on separate machines would run side by side."""
    context = multiprocessing.get_context("spawn")
    results: Queue[list[float]] = context.Queue()
    stop = context.Event()
    workers = [
        context.Process(
            target=_worker,
            args=(n, rounds),
            kwargs={
                "port": port,
                "directory": directory,
                "indices": list(range(p, n, processes)),
                "results": results,
                "stop": stop,
            },
            daemon=True,
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        return results.get(timeout=_deadline(rounds))
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="committee size (repeatable)")
    parser.add_argument("--rounds", type=int, default=30, help="rounds measured per size")
    parser.add_argument(
        "--processes",
        type=int,
        action="append",
        help="worker processes the members are dealt over (repeatable; default: 1 and, "
        "on a multi-core machine, one per core)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the run (top 15; one process only)"
    )
    args = parser.parse_args()
    sizes = args.n or [4, 7, 16, 31]
    cores = os.cpu_count() or 1
    layouts = args.processes or sorted({1, cores})
    if any(p < 1 for p in layouts):
        parser.error("--processes must be at least 1")
    if args.profile and layouts != [1]:
        parser.error("--profile measures one process: add --processes 1")
    logging.basicConfig(level=logging.WARNING)
    profiler = cProfile.Profile() if args.profile else None
    print(f"observe→FINAL latency, leader's view, {args.rounds} rounds, mosquitto, {cores} core(s)")
    print(f"{'n':>4} {'t':>4} {'procs':>5} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for processes in layouts:
                directory = Path(tmp) / f"n{n}-p{processes}"
                directory.mkdir()
                with mosquitto(directory) as port:
                    if processes == 1:
                        if profiler is not None:
                            profiler.enable()
                        values = asyncio.run(measure(n, args.rounds, port, directory))
                        if profiler is not None:
                            profiler.disable()
                    else:
                        values = measure_processes(
                            n, args.rounds, port, directory, min(processes, n)
                        )
                f = (n - 1) // 3
                print(
                    f"{n:>4} {max(2, 2 * f + 1):>4} {processes:>5} "
                    f"{1000 * statistics.median(values):>10.1f} "
                    f"{1000 * percentile(values, 0.99):>8.1f} {1000 * max(values):>8.1f}",
                    flush=True,
                )
    print(
        "note: CPU-bound. The members share the machine's cores (and a process's members "
        "one event loop), and each checks every envelope, so the cost grows ~n²; on n "
        "separate machines each member does 1/n of it. The latency includes the leader's "
        "50 ms ΔGrace. --profile shows where the time goes."
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
