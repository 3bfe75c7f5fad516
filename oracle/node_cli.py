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
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from feeds.errors import FeedError
from oracle.api import ApiError
from oracle.errors import ChainError, KeystoreError, StoreError
from oracle.settings import SettingsError, describe, load_settings

if TYPE_CHECKING:
    from oracle.chain import Transmitter
    from oracle.metrics import NodeMetrics
    from oracle.node import NodeSetup, OracleNode
    from oracle.node_view import OnChainCache
    from oracle.protocol.actions import ReportFinalized
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
    from oracle.node import load_setup

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
    code = EXIT_OK
    try:
        async with contextlib.AsyncExitStack() as stack:
            node, view_chain = await _start_node(setup, stack)
            log.info(
                "node.running node=%s frost_id=%d transmit=%s",
                node.node_id,
                setup.config.by_node[node.node_id].frost_id,
                "on" if settings.chain.rpc_urls else "off",
            )
            async with asyncio.TaskGroup() as tasks:
                cache_task = None
                if view_chain is not None:
                    cache_task = tasks.create_task(view_chain.run(), name="onchain-cache")
                if settings.api.enabled:
                    await _start_api(setup, node, view_chain, stack)
                await stop.wait()
                log.info("node.stopping reason=signal")
                if cache_task is not None:  # the cache loop runs until the node stops
                    cache_task.cancel()
    except* (StoreError, ChainError, ApiError) as group:
        # Opening the store, the chain client or the API port failed: refuse, say why.
        for error in group.exceptions:
            print(f"xon node run: {error}", file=sys.stderr)
        code = EXIT_REFUSED
    except* Exception:
        log.exception("node.crashed")
        code = EXIT_FAILED
    finally:
        for sig in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
    return code


async def _start_node(
    setup: NodeSetup, stack: contextlib.AsyncExitStack
) -> tuple[OracleNode, OnChainCache | None]:
    """The node, and (when ``[chain] rpc_urls`` is set) its transmitter and on-chain cache.

    The transmitter opens first, on its own connection to the node's store, so a report
    finalized in the node's first round already has somewhere to go; at start it reloads
    every report the store still holds as not transmitted (nothing lost across restarts).
    """
    from oracle.chain import TransmitRequest
    from oracle.metrics import NodeMetrics
    from oracle.node import feeds_source, node_from_setup

    settings = setup.settings
    metrics = NodeMetrics()
    on_finalized = None
    cache: OnChainCache | None = None
    if settings.chain.rpc_urls:
        transmitter, cache = await _start_transmitter(setup, metrics, stack)

        def on_finalized(action: ReportFinalized) -> None:
            transmitter.submit(TransmitRequest.from_finalized(action))

    source = await stack.enter_async_context(feeds_source(setup, metrics_registry=metrics.registry))
    node = await stack.enter_async_context(
        node_from_setup(setup, source, metrics=metrics, on_finalized=on_finalized)
    )
    return node, cache


async def _start_transmitter(
    setup: NodeSetup, metrics: NodeMetrics, stack: contextlib.AsyncExitStack
) -> tuple[Transmitter, OnChainCache]:
    from eth_account import Account

    from contracts.deploy import Deployment
    from oracle.chain import FeePolicy, Transmitter, Web3ChainClient, gwei
    from oracle.keystore import read_identity_keystore
    from oracle.node import _passphrase
    from oracle.node_view import OnChainCache
    from oracle.store import AsyncNodeStore, NodeStore

    settings = setup.settings
    chain = settings.chain
    assert chain.deployment is not None  # the settings refuse rpc_urls without it
    deployment = Deployment.from_json(chain.deployment.read_text(encoding="utf-8"))
    if chain.transmitter_key is not None:
        key = await asyncio.to_thread(
            read_identity_keystore, chain.transmitter_key, _passphrase(settings, os.environ)
        )
        account = Account.from_key(key.secret_bytes())
    else:
        account = Account.from_key(setup.keys.identity.secret_bytes())
    client = await stack.enter_async_context(
        Web3ChainClient(list(chain.rpc_urls), chain_id=deployment.chain_id, metrics=metrics)
    )
    store = AsyncNodeStore(stack.enter_context(NodeStore(settings.store.path)))
    me = setup.keys.identity.node_id
    config = setup.config
    transmitter = await stack.enter_async_context(
        Transmitter(
            client,
            account,
            chain_id=deployment.chain_id,
            receivers=deployment.receiver_for_kind(),
            group_key_x=setup.committee.chain_key.x,
            fee_policy=FeePolicy(max_fee_cap=gwei(chain.max_fee_gwei)),
            store=store,
            journal_path=settings.store.path.with_name(settings.store.path.name + ".tx.json"),
            metrics=metrics,
            restart_delay=lambda r: config.stage_position(r.epoch, me) * config.timing.delta_stage,
        )
    )
    cache = OnChainCache(chain.rpc_urls[0], deployment.feed_proxies)
    return transmitter, cache


async def _start_api(
    setup: NodeSetup,
    node: OracleNode,
    cache: OnChainCache | None,
    stack: contextlib.AsyncExitStack,
) -> None:
    from oracle.api import ApiConfig, ApiServer
    from oracle.node_view import OracleNodeView

    settings = setup.settings
    view = OracleNodeView(node, cache, max_observation_age_s=settings.timing.max_observation_age)
    server = await stack.enter_async_context(
        ApiServer(view, ApiConfig(host=settings.api.host, port=settings.api.port))
    )
    log.info("node.api url=%s", server.url)
