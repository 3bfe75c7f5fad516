"""``xon relay``: run a permissionless relayer (see :mod:`oracle.relay`).

::

    xon relay --broker HOST:PORT --network NAME --rpc URL [--rpc URL ...]
              --deployment deployment.json --committee committee.json
              --key-file KEY.json (--password-env NAME | --password-file PATH)
              [--max-fee-gwei 200] [--min-tip-gwei 0.1] [--delay 0] [--journal PATH]
              [--report-interval 60]

The key file is an Ethereum keystore v3 (``xon keys new`` writes one) of the account
that pays for the transactions. Several ``--rpc`` URLs are tried in order with failover.
The nonce journal (default ``xon-relay-<chain id>-<address>.json`` in the working
directory) lets a restarted relayer pick up a transaction it had in flight instead of
paying for the report twice. Ctrl-C (or SIGTERM) stops it cleanly and prints the gas
summary; exit status 0, or 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from aggregation.errors import XonError
from contracts.deploy import Deployment
from contracts.errors import DeployError
from oracle.chain import (
    ChainError,
    FeePolicy,
    RpcTimeouts,
    Transmitter,
    Web3ChainClient,
    address,
    gwei,
)
from oracle.chain.types import CallRequest
from oracle.identity import Roster
from oracle.keystore import Committee, Passphrase, read_committee, read_identity_keystore
from oracle.metrics import NodeMetrics
from oracle.relay import DEFAULT_REPORT_INTERVAL, FinalVerifier, Relayer
from oracle.transport.mqtt import MqttSettings, MqttTransport
from oracle.transport.topics import Channel, validate_network

log = logging.getLogger("xon.relay")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "relay",
        help="relay the committee's signed reports to the chain (permissionless)",
        description=(
            "Follow the reports topic read-only, verify each FINAL's FROST signature under "
            "the committee's group key, and submit reports that are not on-chain yet "
            "(checked and simulated first: nothing already posted or superseded is sent). "
            "Ctrl-C stops it and prints the gas spent."
        ),
    )
    parser.add_argument("--broker", required=True, metavar="HOST:PORT", help="MQTT broker")
    parser.add_argument("--broker-username", help="MQTT username")
    parser.add_argument("--broker-password-env", metavar="NAME", help="MQTT password from $NAME")
    parser.add_argument("--broker-tls", action="store_true", help="TLS to the broker")
    parser.add_argument("--network", required=True, help="network id (topics xon/NAME/...)")
    parser.add_argument(
        "--rpc", required=True, action="append", metavar="URL", help="JSON-RPC URL (repeatable)"
    )
    parser.add_argument("--deployment", required=True, type=Path, help="deployment JSON")
    parser.add_argument("--committee", required=True, type=Path, help="committee.json")
    parser.add_argument("--key-file", required=True, type=Path, help="sender keystore (v3)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--password-env", metavar="NAME", help="keystore passphrase from $NAME")
    group.add_argument("--password-file", type=Path, metavar="PATH", help="passphrase file")
    parser.add_argument("--max-fee-gwei", default="200", help="max fee per gas cap (gwei)")
    parser.add_argument("--min-tip-gwei", default="0.1", help="minimum priority fee (gwei)")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds to wait before sending a report"
    )
    parser.add_argument("--journal", type=Path, help="nonce journal file (see above)")
    parser.add_argument(
        "--report-interval",
        type=float,
        default=DEFAULT_REPORT_INTERVAL,
        help="seconds between gas-spend log lines",
    )
    parser.add_argument("--rpc-timeout", type=float, default=10.0, help="seconds per request")
    parser.set_defaults(handler=main_relay)


@dataclass(frozen=True)
class RelaySetup:
    network: str
    mqtt: MqttSettings
    rpc: tuple[str, ...]
    rpc_timeout: float
    deployment: Deployment
    committee: Committee
    account: LocalAccount
    fee_policy: FeePolicy
    delay: float
    journal: Path
    report_interval: float


def _broker(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--broker must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def load_setup(args: argparse.Namespace) -> RelaySetup:
    """Read and check every file and option (raises XonError / ValueError)."""
    import os

    network = validate_network(args.network)
    host, port = _broker(args.broker)
    password = None
    if args.broker_password_env:
        password = os.environ.get(args.broker_password_env)
        if password is None:
            raise ValueError(f"environment variable {args.broker_password_env} is not set")
    mqtt = MqttSettings(
        host=host,
        port=port,
        username=args.broker_username,
        password=password,
        tls_context=ssl.create_default_context() if args.broker_tls else None,
    )
    try:
        deployment = Deployment.from_json(args.deployment.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {args.deployment}: {exc.strerror}") from None
    committee = read_committee(args.committee)
    if committee.network != network:
        raise ValueError(f"{args.committee} is for network {committee.network!r}, not {network!r}")
    passphrase = (
        Passphrase.from_env(args.password_env)
        if args.password_env
        else Passphrase.from_file(args.password_file)
    )
    account = Account.from_key(read_identity_keystore(args.key_file, passphrase).secret_bytes())
    policy = FeePolicy(
        max_fee_cap=gwei(args.max_fee_gwei), min_priority_fee=gwei(args.min_tip_gwei)
    )
    if args.delay < 0 or args.report_interval <= 0 or args.rpc_timeout <= 0:
        raise ValueError("--delay must be >= 0, --report-interval and --rpc-timeout > 0")
    journal = args.journal or Path(
        f"xon-relay-{deployment.chain_id}-{account.address.lower()}.json"
    )
    return RelaySetup(
        network=network,
        mqtt=mqtt,
        rpc=tuple(args.rpc),
        rpc_timeout=args.rpc_timeout,
        deployment=deployment,
        committee=committee,
        account=account,
        fee_policy=policy,
        delay=args.delay,
        journal=journal,
        report_interval=args.report_interval,
    )


def main_relay(args: argparse.Namespace) -> int:
    try:
        setup = load_setup(args)
    except (XonError, ValueError, DeployError) as exc:
        print(f"xon relay: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_relay(setup))
    except ChainError as exc:
        print(f"xon relay: {exc}", file=sys.stderr)
        return 2


async def _check_group_key(client: Web3ChainClient, setup: RelaySetup) -> None:
    """Warn when committee.json's key is not the one on-chain: every report would then be
    refused by the contracts (after the verification here accepted it, or vice versa)."""
    key = setup.committee.chain_key
    committee = address(setup.deployment.committee)
    try:
        data = await client.call(
            CallRequest(address(setup.account.address), committee, keccak(b"groupKey()")[:4])
        )
    except ChainError as exc:
        log.warning("relay.group_key_unchecked: %s", exc)
        return
    try:
        x, parity = abi_decode(["uint256", "uint8"], data)
    except DecodingError:
        log.error("relay.no_committee_contract %s has no XonCommittee code", committee)
        return
    if (int(x), int(parity)) != (key.x, key.parity):
        log.error(
            "relay.group_key_mismatch committee.json has %#x, XonCommittee has %#x: "
            "reports signed by one are refused by the other",
            key.x,
            int(x),
        )


async def run_relay(setup: RelaySetup, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set, for tests). Returns the exit code."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    metrics = NodeMetrics()
    deployment = setup.deployment
    roster = Roster(m.identity_public_key for m in setup.committee.members)
    log.info(
        "relay.start account=%s network=%s chain_id=%d rpc_endpoints=%d delay=%.1fs journal=%s",
        setup.account.address,
        setup.network,
        deployment.chain_id,
        len(setup.rpc),
        setup.delay,
        setup.journal,
    )
    client = Web3ChainClient(
        setup.rpc,
        chain_id=deployment.chain_id,
        timeouts=RpcTimeouts(request=setup.rpc_timeout),
        metrics=metrics,
    )
    transmitter = Transmitter(
        client,
        setup.account,
        chain_id=deployment.chain_id,
        receivers=deployment.receiver_for_kind(),
        group_key_x=setup.committee.chain_key.x,
        fee_policy=setup.fee_policy,
        journal_path=setup.journal,
        metrics=metrics,
    )
    transport = MqttTransport(
        setup.mqtt,
        network=setup.network,
        roster=roster,
        identity=None,  # read-only: subscribes to reports, cannot publish
        metrics=metrics,
        channels={Channel.REPORTS},
    )
    verifier = FinalVerifier.create(
        deployment.chain_id, deployment.receiver_for_kind(), setup.committee.group_key
    )
    try:
        async with client:
            await _check_group_key(client, setup)
            async with (
                transmitter,
                transport,
                Relayer(
                    transport,
                    transmitter,
                    verifier,
                    delay=setup.delay,
                    report_interval=setup.report_interval,
                    metrics=metrics,
                ) as relayer,
            ):
                runner = asyncio.create_task(relayer.run(), name="relay-run")
                stopper = asyncio.create_task(stop.wait(), name="relay-stop")
                try:
                    await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (runner, stopper):
                        task.cancel()
                    for task in (runner, stopper):
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    print(f"xon relay: stopped; {transmitter.spend.describe()}", file=sys.stderr, flush=True)
    return 0
