"""``xon dkg``: run the committee's distributed key generation over MQTT.

``xon dkg --identity FILE --committee ROSTER.json --broker HOST:PORT --network NAME
--threshold T --session ID --out FILE (--password-env NAME | --password-file PATH)``
    Every member runs this at about the same time (within ``--timeout``, default 300 s, of
    each other) with the same roster, network, threshold, session id and key epoch. It
    connects to the broker as this member (its identity key signs every message), runs the
    ceremony of :mod:`oracle.dkg_session` and writes this member's FROST share keystore
    (``xon-frost-share/1``, encrypted under the same passphrase as the identity keystore)
    to ``--out``; it prints the group key. ``--committee-out FILE`` also writes the public
    ``committee.json`` (the format ``xon keys dealer`` writes, so a node does not care which
    path produced its key). ``--key-epoch E`` (default 0) is recorded in both files; ``--f``
    overrides the default f = floor((n - 1) / 3) recorded in committee.json (n, f and t are
    checked as for the dealer). ``--mqtt-username`` / ``--mqtt-password-env`` / ``--mqtt-tls``
    reach a broker with per-node credentials.

``xon dkg roster --out ROSTER.json [--identity FILE ...] [--public-key HEX ...]``
    Build the roster file from identity keystores (decrypted with the one passphrase given)
    and/or identity public keys that other operators sent (each prints its own with
    ``xon dkg roster --identity mine.json --out mine.json``). Prints ``node_id public_key``
    per member.

Roster file (public)::

    {"format": "xon-roster/1",
     "members": [{"node_id": "0x…", "identity_public_key": "0x02…"}, …]}

Members are listed, and get FROST identifiers, in roster order (node ids sorted
case-insensitively), exactly as ``xon keys dealer`` assigns them. ``--committee`` also
accepts an existing ``xon-committee/1`` file (to re-key the same members).

The session id every message carries is derived from network, roster, threshold, the
``--session`` text and the key epoch, so members that disagree on any of them never mix;
choose a fresh ``--session`` text for each ceremony.

Exit codes: 0 done; 1 the ceremony failed (a timeout naming the silent members, or a
member's misbehaviour naming it); 2 refused (bad arguments, unreadable or existing files,
wrong passphrase); 130 interrupted. Nothing is written unless the ceremony completed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import ssl
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aggregation.errors import CryptoError
from oracle.dkg_runner import run_dkg
from oracle.dkg_session import (
    DkgMisbehaviour,
    DkgResult,
    DkgSession,
    DkgSessionConfig,
    DkgSessionError,
    DkgTimeout,
)
from oracle.errors import KeystoreError, OracleError
from oracle.identity import IdentityKey, Roster, address_of, parse_node_id
from oracle.keystore import (
    INSECURE_FAST_KDF,
    MAX_MEMBERS,
    SECURE_KDF,
    Committee,
    CommitteeMember,
    CommitteeParams,
    FrostKeyShare,
    FrostShareMetadata,
    KdfParams,
    KeystoreExists,
    Passphrase,
    PassphraseUnavailable,
    committee_params,
    read_identity_keystore,
    write_committee,
    write_frost_share,
)
from oracle.transport.mqtt import MqttSettings, MqttTransport
from oracle.transport.topics import validate_network

__all__ = [
    "ROSTER_FORMAT",
    "DkgCliError",
    "committee_of",
    "main_dkg",
    "main_roster",
    "read_roster",
    "register",
    "roster_to_json",
    "share_of",
    "write_roster",
]

log = logging.getLogger("xon.dkg.cli")

ROSTER_FORMAT: Final = "xon-roster/1"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
DEFAULT_TIMEOUT = 300.0


class DkgCliError(OracleError):
    """A refused ``xon dkg`` invocation (bad argument or file); exit code 2."""


# -- roster file ----------------------------------------------------------------------------
def roster_to_json(roster: Roster) -> dict[str, Any]:
    return {
        "format": ROSTER_FORMAT,
        "members": [
            {"node_id": node_id, "identity_public_key": "0x" + roster[node_id].hex()}
            for node_id in roster.node_ids
        ],
    }


def write_roster(path: Path, roster: Roster, *, overwrite: bool = False) -> None:
    """Write a roster file atomically (public data, mode 0644)."""
    if not overwrite and path.exists():
        raise KeystoreExists(f"{path} exists; not overwriting it (use --force)")
    data = (json.dumps(roster_to_json(roster), indent=2) + "\n").encode()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise DkgCliError(f"cannot write in {path.parent}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise DkgCliError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_roster(path: Path) -> Roster:
    """The members of an ``xon-roster/1`` or ``xon-committee/1`` file, each node id checked
    against its public key."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DkgCliError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DkgCliError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") not in (
        ROSTER_FORMAT,
        "xon-committee/1",
    ):
        raise DkgCliError(f"{path} is neither an {ROSTER_FORMAT} nor an xon-committee/1 file")
    members = document.get("members")
    if not isinstance(members, list):
        raise DkgCliError(f"{path}: members must be a list")
    keys: list[bytes] = []
    for k, member in enumerate(members):
        if not isinstance(member, dict):
            raise DkgCliError(f"{path}: members[{k}] must be an object")
        public_key = _public_key(member.get("identity_public_key"), f"{path}: members[{k}]")
        claimed = member.get("node_id")
        try:
            node_id = parse_node_id(claimed) if isinstance(claimed, str) else None
        except ValueError as exc:
            raise DkgCliError(f"{path}: members[{k}].node_id: {exc}") from None
        if node_id != address_of(public_key):
            raise DkgCliError(
                f"{path}: members[{k}].node_id is not the address of its identity public key"
            )
        keys.append(public_key)
    roster = _roster(keys, str(path))
    if len(roster) < 2:
        raise DkgCliError(f"{path}: a committee needs at least 2 members")
    return roster


def _public_key(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise DkgCliError(f"{what}: identity public key must be a hex string")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
        address_of(raw)  # validates the point
    except (ValueError, CryptoError):
        raise DkgCliError(f"{what}: {value[:80]!r} is not a secp256k1 public key") from None
    return raw


def _roster(keys: Sequence[bytes], what: str) -> Roster:
    try:
        roster = Roster(keys)
    except CryptoError as exc:
        raise DkgCliError(f"{what}: {exc}") from None
    if len(roster) != len(keys):
        raise DkgCliError(f"{what}: a member is listed twice")
    if len(roster) > MAX_MEMBERS:
        raise DkgCliError(f"{what}: {len(roster)} members exceed the maximum of {MAX_MEMBERS}")
    return roster


# -- arguments ------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dkg = subparsers.add_parser(
        "dkg",
        help="distributed key generation among the committee (over MQTT)",
        description="Run this member's side of the committee's DKG ceremony.",
    )
    # Not argparse-required: `xon dkg roster ...` shares this parser. main_dkg checks them.
    dkg.add_argument("--identity", type=Path, metavar="FILE", help="this node's identity keystore")
    dkg.add_argument(
        "--committee",
        "--roster",
        dest="roster",
        type=Path,
        metavar="ROSTER.json",
        help="the members (xon-roster/1, or an xon-committee/1 file)",
    )
    dkg.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT")
    dkg.add_argument("--network", metavar="NAME", help="network id (topics and signatures)")
    dkg.add_argument("--threshold", type=int, metavar="T", help="signing threshold t")
    dkg.add_argument("--f", type=int, metavar="F", help="faults tolerated (default (n-1)//3)")
    dkg.add_argument("--session", metavar="ID", help="the ceremony's name, same for everyone")
    dkg.add_argument("--key-epoch", type=int, default=0, metavar="E")
    dkg.add_argument("--out", type=Path, metavar="FILE", help="FROST share keystore to write")
    dkg.add_argument("--committee-out", type=Path, metavar="FILE", help="also write committee.json")
    dkg.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for the whole ceremony (default {DEFAULT_TIMEOUT:g})",
    )
    dkg.add_argument("--mqtt-username", metavar="USER")
    dkg.add_argument("--mqtt-password-env", metavar="NAME", help="broker password from $NAME")
    dkg.add_argument("--mqtt-tls", action="store_true", help="TLS to the broker (system CAs)")
    _password_args(dkg)
    _write_args(dkg)
    dkg.set_defaults(handler=main_dkg)

    sub = dkg.add_subparsers(dest="dkg_command", metavar="SUBCOMMAND")
    roster = sub.add_parser("roster", help="build a roster file from identity keys")
    roster.add_argument("--out", dest="roster_out", type=Path, required=True, metavar="FILE")
    roster.add_argument(
        "--identity",
        dest="roster_identities",
        type=Path,
        nargs="+",
        default=[],
        metavar="FILE",
        help="identity keystores (decrypted with the passphrase given)",
    )
    roster.add_argument(
        "--public-key",
        dest="roster_public_keys",
        nargs="+",
        default=[],
        metavar="HEX",
        help="identity public keys (0x-hex, compressed or not)",
    )
    _password_args(roster)
    roster.add_argument("--force", action="store_true", help="overwrite an existing file")
    roster.set_defaults(handler=main_roster)


def _password_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-env", metavar="NAME", help="read the passphrase from $NAME")
    group.add_argument(
        "--password-file", type=Path, metavar="PATH", help="read the passphrase from PATH"
    )


def _write_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-fast-kdf",
        action="store_true",
        help="cheap scrypt parameters (tests and throwaway devnets only)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing output")


def _passphrase(args: argparse.Namespace) -> Passphrase:
    if args.password_env is not None:
        return Passphrase.from_env(args.password_env)
    if args.password_file is not None:
        return Passphrase.from_file(args.password_file)
    raise PassphraseUnavailable("give --password-env NAME or --password-file PATH")


def _kdf(args: argparse.Namespace) -> KdfParams:
    if args.insecure_fast_kdf:
        log.warning("dkg.insecure_kdf: the share keystore uses cheap scrypt parameters")
        return INSECURE_FAST_KDF
    return SECURE_KDF


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DkgCliError(f"--broker {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _fail(exc: Exception) -> int:
    print(f"xon dkg: {exc}", file=sys.stderr)
    return EXIT_ERROR


# -- xon dkg --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Everything checked before the ceremony, so a completed ceremony is never lost to
    a bad argument afterwards."""

    identity: IdentityKey
    roster: Roster
    params: CommitteeParams
    network: str
    key_epoch: int
    label: bytes
    settings: MqttSettings
    passphrase: Passphrase
    kdf: KdfParams
    out: Path
    committee_out: Path | None
    overwrite: bool
    timeout: float


def _plan(args: argparse.Namespace) -> _Plan:
    missing = [
        flag
        for flag, value in (
            ("--identity", args.identity),
            ("--committee", args.roster),
            ("--network", args.network),
            ("--threshold", args.threshold),
            ("--session", args.session),
            ("--out", args.out),
        )
        if value is None
    ]
    if missing:
        raise DkgCliError(f"missing {', '.join(missing)} (see xon dkg --help)")
    try:
        network = validate_network(args.network)
    except ValueError as exc:
        raise DkgCliError(str(exc)) from None
    if not 0 <= args.key_epoch < 2**32:
        raise DkgCliError("--key-epoch must be in [0, 2^32)")
    if not args.session or len(args.session.encode()) > 200:
        raise DkgCliError("--session must be 1 to 200 bytes")
    if not args.timeout > 0:
        raise DkgCliError("--timeout must be positive")
    host, port = _broker(args.broker)
    outputs = [args.out, *([args.committee_out] if args.committee_out else [])]
    for path in outputs:
        if not path.parent.is_dir():
            raise DkgCliError(f"directory {path.parent} does not exist")
        if path.exists() and not args.force:
            raise KeystoreExists(f"{path} exists; not overwriting it (use --force)")
    roster = read_roster(args.roster)
    params = committee_params(len(roster), t=args.threshold, f=args.f)
    passphrase = _passphrase(args)
    identity = read_identity_keystore(args.identity, passphrase)
    if identity.node_id not in roster:
        raise DkgCliError(f"{identity.node_id} ({args.identity}) is not in the roster")
    mqtt_password = None
    if args.mqtt_password_env is not None:
        mqtt_password = os.environ.get(args.mqtt_password_env)
        if not mqtt_password:
            raise DkgCliError(f"environment variable {args.mqtt_password_env} is not set")
    settings = MqttSettings(
        host=host,
        port=port,
        username=args.mqtt_username,
        password=mqtt_password,
        tls_context=ssl.create_default_context() if args.mqtt_tls else None,
    )
    return _Plan(
        identity=identity,
        roster=roster,
        params=params,
        network=network,
        key_epoch=args.key_epoch,
        # The key epoch is written into every member's files, so it is part of what they
        # agree on: bind it into the session id with the operator's label.
        label=f"{args.session}\0key_epoch={args.key_epoch}".encode(),
        settings=settings,
        passphrase=passphrase,
        kdf=_kdf(args),
        out=args.out,
        committee_out=args.committee_out,
        overwrite=args.force,
        timeout=args.timeout,
    )


async def _ceremony(plan: _Plan) -> DkgResult:
    config = DkgSessionConfig(
        network=plan.network,
        roster=plan.roster,
        threshold=plan.params.t,
        label=plan.label,
        timeout=plan.timeout,
    )
    session = DkgSession(config, plan.identity.node_id, secrets.token_bytes)
    transport = MqttTransport(
        plan.settings, network=plan.network, roster=plan.roster, identity=plan.identity
    )
    async with transport:
        # One overall bound: the operator's --timeout covers the connection and any re-run.
        return await run_dkg(transport, session, time_limit=plan.timeout)


def share_of(result: DkgResult, key_epoch: int) -> FrostKeyShare:
    metadata = FrostShareMetadata(
        network=result.network,
        key_epoch=key_epoch,
        identifier=result.identifier,
        public=result.public_key_package,
        node_ids=result.node_ids,
    )
    return FrostKeyShare(metadata=metadata, key_package=result.key_package)


def committee_of(
    result: DkgResult, roster: Roster, params: CommitteeParams, key_epoch: int
) -> Committee:
    public = result.public_key_package
    return Committee(
        network=result.network,
        key_epoch=key_epoch,
        params=params,
        group_key=public.group_key,
        members=tuple(
            CommitteeMember(i, node_id, roster[node_id], public.verifying_shares[i])
            for i, node_id in sorted(result.node_ids.items())
        ),
    )


def main_dkg(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except (KeystoreError, DkgCliError) as exc:
        return _fail(exc)
    print(
        f"dkg: {plan.identity.node_id} joins session {args.session!r} on {plan.network} "
        f"(n={plan.params.n}, t={plan.params.t}) via {args.broker}",
        file=sys.stderr,
    )
    try:
        result = asyncio.run(_ceremony(plan))
    except KeyboardInterrupt:
        print("xon dkg: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DkgSessionError as exc:
        print(f"xon dkg: the ceremony failed: {exc}", file=sys.stderr)
        if isinstance(exc, DkgMisbehaviour):
            how = "proven" if exc.proven else f"reported by {exc.accuser}"
            print(f"  culprit(s): {', '.join(exc.culprits)} ({how})", file=sys.stderr)
        elif isinstance(exc, DkgTimeout) and exc.silent:
            print(f"  silent: {', '.join(exc.silent)}", file=sys.stderr)
        return EXIT_FAILED
    try:
        write_frost_share(
            plan.out,
            share_of(result, plan.key_epoch),
            plan.passphrase,
            kdf=plan.kdf,
            overwrite=plan.overwrite,
        )
        if plan.committee_out is not None:
            committee = committee_of(result, plan.roster, plan.params, plan.key_epoch)
            write_committee(plan.committee_out, committee, overwrite=plan.overwrite)
    except (KeystoreError, DkgCliError) as exc:
        return _fail(exc)
    chain = result.chain_key
    print(f"group key: 0x{chain.compressed.hex()} (x=0x{chain.x:064x}, parity={chain.parity})")
    print(f"identifier: {result.identifier} of {plan.params.n} (t={plan.params.t})")
    print(f"wrote {plan.out}" + (f" and {plan.committee_out}" if plan.committee_out else ""))
    return EXIT_OK


# -- xon dkg roster -------------------------------------------------------------------------
def _identity_keys(paths: Iterable[Path], args: argparse.Namespace) -> list[bytes]:
    paths = list(paths)
    if not paths:
        return []
    passphrase = _passphrase(args)
    return [read_identity_keystore(path, passphrase).public_key for path in paths]


def main_roster(args: argparse.Namespace) -> int:
    try:
        keys = _identity_keys(args.roster_identities, args)
        keys += [_public_key(text, "--public-key") for text in args.roster_public_keys]
        if not keys:
            raise DkgCliError("give --identity FILE... and/or --public-key HEX...")
        roster = _roster(keys, "roster")
        write_roster(args.roster_out, roster, overwrite=args.force)
    except (KeystoreError, DkgCliError) as exc:
        return _fail(exc)
    for node_id in roster.node_ids:
        print(f"{node_id} 0x{roster[node_id].hex()}")
    print(f"wrote {args.roster_out} ({len(roster)} members)", file=sys.stderr)
    return EXIT_OK
