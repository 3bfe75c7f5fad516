"""``xon node run --config node.toml``: run one committee member until stopped.

Reads the settings (:mod:`oracle.settings`: the TOML file, then ``XON_*`` environment
overrides), decrypts the identity key and the FROST share (passphrase from the env var or
file the settings name), checks them against ``committee.json``, and runs an
:class:`~oracle.node.OracleNode` over MQTT with observations from ``feeds/`` (live, or a
recording with ``feeds.replay_dir``).

SIGINT (Ctrl-C) and SIGTERM stop it cleanly: the node's tasks are cancelled between two
actions, queued MQTT frames get a short flush, the store is closed. A ``kill -9`` is safe
too (see the restart notes in :mod:`oracle.node`), only less tidy.

Exit codes: 0 stopped by a signal, 1 the node failed while running, 2 refused to start
(bad settings, unreadable or wrong keys, bad feed configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from feeds.errors import FeedError
from oracle.errors import KeystoreError, StoreError
from oracle.settings import SettingsError, describe, load_settings

if TYPE_CHECKING:
    from oracle.settings import NodeSettings

__all__ = ["main_run", "register"]

log = logging.getLogger("xon.node.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = subparsers.add_parser("node", help="run an oracle node")
    sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    sub.required = True
    run = sub.add_parser("run", help="run one committee member until SIGINT / SIGTERM")
    run.add_argument(
        "--config", type=Path, required=True, metavar="FILE", help="node settings (TOML)"
    )
    run.set_defaults(handler=main_run)


def main_run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"xon node run: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(settings.log_level)
    return asyncio.run(run_node(settings))


async def run_node(settings: NodeSettings, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set (by default: until SIGINT or SIGTERM)."""
    # Imported here so that `xon --help` does not load the whole node.
    from oracle.node import feeds_source, load_setup, node_from_setup

    try:
        # Decrypting keystores runs scrypt: keep it off the event loop.
        setup = await asyncio.to_thread(load_setup, settings)
    except (SettingsError, KeystoreError, FeedError) as exc:
        print(f"xon node run: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
    log.info("node.config %s", " ".join(f"{k}={v}" for k, v in describe(settings).items()))
    try:
        async with (
            feeds_source(setup) as source,
            node_from_setup(setup, source) as node,
        ):
            log.info(
                "node.running node=%s frost_id=%d",
                node.node_id,
                setup.config.by_node[node.node_id].frost_id,
            )
            await stop.wait()
            log.info("node.stopping reason=signal")
    except StoreError as exc:
        # Opening the store failed (permissions, a newer schema): nothing ran yet.
        print(f"xon node run: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception:
        log.exception("node.crashed")
        return EXIT_FAILED
    finally:
        for sig in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
    return EXIT_OK
