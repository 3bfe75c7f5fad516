"""``xon contracts deploy``: deploy the whole contract suite and write a deployment JSON.

::

    xon contracts deploy --rpc URL --key-file OWNER.json --password-env NAME
                         --committee committee.json [--feeds feeds.toml] --out deployment.json

The owner key is an Ethereum keystore v3 file (``xon keys new`` writes one); the committee
file is what ``xon keys dealer`` or ``xon dkg --committee-out`` writes; the feeds to
register come from a feeds TOML (default: the shipped ``feeds/default.toml``). Lives in
``oracle`` because it wires three packages together (contracts, feeds, keys).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3

from aggregation.errors import XonError
from contracts.deploy import (
    DEFAULT_MAX_REPORT_AGE,
    DEFAULT_UPTIME_CAPACITY,
    CommitteeSpec,
    FeedSpec,
    deploy_all,
)
from feeds.config import FeedsConfig, load_config, load_default_config
from oracle.keystore import Committee, Passphrase, read_committee, read_identity_keystore

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("contracts", help="deploy and inspect the XON contracts")
    commands = parser.add_subparsers(dest="contracts_command", metavar="COMMAND")
    commands.required = True
    deploy = commands.add_parser("deploy", help="deploy the whole suite, write deployment JSON")
    deploy.add_argument("--rpc", required=True, metavar="URL", help="JSON-RPC endpoint")
    deploy.add_argument("--key-file", required=True, type=Path, help="owner keystore (v3)")
    group = deploy.add_mutually_exclusive_group(required=True)
    group.add_argument("--password-env", metavar="NAME", help="owner passphrase from $NAME")
    group.add_argument("--password-file", type=Path, metavar="PATH", help="passphrase file")
    deploy.add_argument("--committee", required=True, type=Path, help="committee.json")
    deploy.add_argument("--feeds", type=Path, help="feeds TOML (default: shipped config)")
    deploy.add_argument("--max-report-age", type=int, default=DEFAULT_MAX_REPORT_AGE)
    deploy.add_argument("--uptime-capacity", type=int, default=DEFAULT_UPTIME_CAPACITY)
    deploy.add_argument("--stablecoin", help="stablecoin address (default: deploy a mock)")
    deploy.add_argument("--out", required=True, type=Path, help="deployment JSON to write")
    deploy.add_argument("--force", action="store_true", help="overwrite --out")
    deploy.set_defaults(handler=main_deploy)


def committee_spec(committee: Committee) -> CommitteeSpec:
    key = committee.chain_key
    members = tuple(committee.node_ids[i] for i in sorted(committee.node_ids))
    return CommitteeSpec(key.x, key.parity, committee.params.t, members)


def feed_specs(config: FeedsConfig) -> list[FeedSpec]:
    return [
        FeedSpec(
            name=feed.id,
            decimals=feed.decimals,
            description=f"{feed.model} {feed.kind.name.lower().replace('_', ' ')} ({feed.id})",
            deviation_bps=feed.deviation_bps,
            heartbeat=feed.heartbeat_s,
        )
        for feed in config.feeds
    ]


def main_deploy(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.force:
        print(f"xon contracts deploy: {args.out} exists (use --force)", file=sys.stderr)
        return 2
    try:
        passphrase = (
            Passphrase.from_env(args.password_env)
            if args.password_env
            else Passphrase.from_file(args.password_file)
        )
        owner = Account.from_key(read_identity_keystore(args.key_file, passphrase).secret_bytes())
        committee = read_committee(args.committee)
        feeds = load_config(args.feeds) if args.feeds else load_default_config()
        w3 = Web3(Web3.HTTPProvider(args.rpc, request_kwargs={"timeout": 30}))
        if not w3.is_connected():
            print(f"xon contracts deploy: no JSON-RPC answer at {args.rpc}", file=sys.stderr)
            return 2
        deployment = deploy_all(
            w3,
            owner,
            committee_spec(committee),
            feed_specs(feeds),
            max_report_age=args.max_report_age,
            uptime_capacity=args.uptime_capacity,
            stablecoin=args.stablecoin,
            progress=lambda step: print(f"deploying: {step}", file=sys.stderr, flush=True),
        )
    except XonError as exc:
        print(f"xon contracts deploy: {exc}", file=sys.stderr)
        return 2
    deployment.write(args.out)
    print(deployment.to_json(), end="")
    return 0
