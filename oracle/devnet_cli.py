"""``xon devnet``: a local chain, a broker, the contracts and a committee in one command.

``xon devnet [--nodes 7] [--byzantine K] [--rounds N | --duration S] [--live]
[--replay DIR] [--summary FILE] [--round-interval S] [--no-table] [--in-process-broker]``

Progress goes to stderr; stdout shows a live table (a TTY, unless ``--no-table``) or one
line per posted report. Exit status: 0 when every attempted round finalized and every
finalized PRICES report was posted (docs/devnet.md), 1 otherwise, 2 when it could not
start, 130 on Ctrl-C / SIGTERM (a first one stops gracefully and the summary is still
written, with ``"interrupted": true``; a second one aborts without a summary).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from oracle.devnet import DevnetError, DevnetOptions, DevnetResult, run_devnet, write_summary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "devnet",
        help="run a whole local network: anvil, a broker, the contracts and n nodes",
        description="Run the whole XON network on this machine until Ctrl-C, --rounds or "
        "--duration (see docs/devnet.md).",
    )
    parser.add_argument("--nodes", type=int, default=7, help="committee size (default 7)")
    parser.add_argument(
        "--byzantine", type=int, default=0, metavar="K", help="K members misbehave (K <= f)"
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument(
        "--rounds", type=int, metavar="N", help="stop after N PRICES reports are posted"
    )
    stop.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--live", action="store_true", help="observe the live provider APIs")
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="recorded responses (default: feeds/replay/default)",
    )
    parser.add_argument("--summary", type=Path, metavar="FILE", help="write a JSON summary")
    parser.add_argument(
        "--round-interval", type=float, default=1.0, metavar="S", help="ΔRound (default 1 s)"
    )
    parser.add_argument("--no-table", action="store_true", help="no live table")
    parser.add_argument("--in-process-broker", action="store_true", help="do not start mosquitto")
    parser.add_argument("--seed", type=int, help="which members are Byzantine (default: random)")
    parser.set_defaults(handler=main)


def _say(message: str) -> None:
    print(f"xon devnet: {message}", file=sys.stderr, flush=True)


def _line(message: str) -> None:
    print(message, flush=True)


async def _run(options: DevnetOptions, table: bool) -> DevnetResult:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stop = asyncio.Event()

    def on_signal() -> None:
        # First Ctrl-C / SIGTERM: a graceful stop (nodes, then transmitters, then the
        # children; the summary is still made). A second one cancels outright; every
        # context manager still terminates the children on the way out.
        if not stop.is_set():
            _say("stopping (again to abort)")
            stop.set()
        else:
            task.cancel()

    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, on_signal)
    try:
        return await run_devnet(options, progress=_say, table=table, lines=_line, stop=stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def main(args: argparse.Namespace) -> int:
    if not args.verbose:
        # Seven nodes log every round; the table and the progress lines are the output.
        for name in ("xon", "feeds", "contracts", "web3", "aiomqtt"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.replay is not None and args.live:
        _say("--replay and --live exclude each other")
        return 2
    try:
        options = DevnetOptions(
            nodes=args.nodes,
            byzantine=args.byzantine,
            rounds=args.rounds,
            duration=args.duration,
            live=args.live,
            replay_dir=args.replay,
            round_interval=args.round_interval,
            broker="memory" if args.in_process_broker else "auto",
            seed=args.seed,
        )
        table = sys.stdout.isatty() and not args.no_table
        result = asyncio.run(_run(options, table))
    except DevnetError as exc:
        _say(f"error: {exc}")
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        _say("interrupted; everything stopped")
        return 130
    if args.summary is not None:
        write_summary(args.summary, result.summary)
        _say(f"summary written to {args.summary}")
    if result.interrupted:
        _say("interrupted; everything stopped")
        return 130
    rounds = result.summary["rounds"]
    latency = result.summary["latency_ms"]
    _say(
        f"rounds attempted={rounds['attempted']} finalized={rounds['finalized']} "
        f"posted={rounds['posted']} latency_ms p50={latency['p50']} p99={latency['p99']}"
    )
    for problem in result.problems:
        _say(f"problem: {problem}")
    return 0 if result.ok else 1
