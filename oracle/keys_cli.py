"""``xon keys ...``: create and inspect identity keystores and FROST key shares.

``xon keys new --out FILE (--password-env NAME | --password-file PATH)``
    A fresh identity key in an Ethereum keystore v3 file; prints the NodeId.

``xon keys dealer [--n 7] [--t T] [--f F] --out DIR [--network NAME] [--key-epoch E] (...)``
    A trusted dealer for test networks and devnets. Writes, for each member i (identifiers
    in roster order), ``DIR/node-<i>/identity.json`` and ``DIR/node-<i>/frost-share.json``,
    all under the one passphrase given, and the public ``DIR/committee.json``. Defaults:
    f = floor((n - 1) / 3), t = 2f + 1. Refuses n > 31, 3f >= n, t < f + 1, t > n.
    A real committee runs the DKG instead: a dealer knows every share.

``xon keys show FILE [--password-env NAME | --password-file PATH]``
    The public facts of a keystore or share file as JSON (never a secret). With a
    passphrase it also decrypts the file and checks the key against its public data.

Common flags: ``--insecure-fast-kdf`` (scrypt n = 2^10 instead of 2^18: tests and devnets
only) and ``--force`` (overwrite the files the command writes; it deletes nothing else, so
a smaller committee dealt over a bigger one leaves the old extra ``node-*`` directories).
Exit codes: 0 done, 2 refused (bad
arguments, wrong passphrase, existing output, unreadable file).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from oracle.errors import KeystoreError
from oracle.identity import IdentityKey
from oracle.keystore import (
    INSECURE_FAST_KDF,
    SECURE_KDF,
    FrostShareInfo,
    KdfParams,
    KeystoreExists,
    Passphrase,
    PassphraseUnavailable,
    committee_params,
    deal_committee,
    inspect_keystore,
    read_frost_share,
    read_identity_keystore,
    write_committee,
    write_frost_share,
    write_identity_keystore,
)

__all__ = ["main_dealer", "main_new", "main_show", "register"]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 2
COMMITTEE_FILE = "committee.json"
IDENTITY_FILE = "identity.json"
SHARE_FILE = "frost-share.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser("keys", help="identity keystores and FROST key shares")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    sub.required = True

    new = sub.add_parser("new", help="create an identity key; prints its NodeId")
    new.add_argument("--out", type=Path, required=True, metavar="FILE")
    _password_args(new, required=True)
    _write_args(new)
    new.set_defaults(handler=main_new)

    dealer = sub.add_parser("dealer", help="trusted dealer for a test committee")
    dealer.add_argument("--n", type=int, default=7, help="committee size (default 7)")
    dealer.add_argument("--t", type=int, help="signing threshold (default 2f + 1)")
    dealer.add_argument("--f", type=int, help="faulty members tolerated (default (n-1)//3)")
    dealer.add_argument("--out", type=Path, required=True, metavar="DIR")
    dealer.add_argument("--network", default="devnet", metavar="NAME")
    dealer.add_argument("--key-epoch", type=int, default=0, metavar="E")
    _password_args(dealer, required=True)
    _write_args(dealer)
    dealer.set_defaults(handler=main_dealer)

    show = sub.add_parser("show", help="public facts of a key file (JSON)")
    show.add_argument("file", type=Path, metavar="FILE")
    _password_args(show, required=False)
    show.set_defaults(handler=main_show)


def _password_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
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


def _required_passphrase(args: argparse.Namespace) -> Passphrase:
    passphrase = _passphrase(args)
    if passphrase is None:
        raise PassphraseUnavailable("give --password-env NAME or --password-file PATH")
    return passphrase


def _passphrase(args: argparse.Namespace) -> Passphrase | None:
    if args.password_env is not None:
        return Passphrase.from_env(args.password_env)
    if args.password_file is not None:
        return Passphrase.from_file(args.password_file)
    return None


def _kdf(args: argparse.Namespace) -> KdfParams:
    if args.insecure_fast_kdf:
        log.warning("keys.insecure_kdf: keystores use cheap scrypt parameters (n = 2^10)")
        return INSECURE_FAST_KDF
    return SECURE_KDF


def _fail(command: str, exc: KeystoreError) -> int:
    print(f"xon keys {command}: {exc}", file=sys.stderr)
    return EXIT_ERROR


def main_new(args: argparse.Namespace) -> int:
    try:
        passphrase = _required_passphrase(args)
        key = IdentityKey.generate()
        write_identity_keystore(args.out, key, passphrase, kdf=_kdf(args), overwrite=args.force)
    except KeystoreError as exc:
        return _fail("new", exc)
    print(key.node_id)
    return EXIT_OK


def main_dealer(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        params = committee_params(args.n, t=args.t, f=args.f)
        passphrase = _required_passphrase(args)
        if out.exists() and not out.is_dir():
            raise KeystoreError(f"{out} exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not args.force:
            raise KeystoreExists(f"{out} is not empty; not overwriting it (use --force)")
        kdf = _kdf(args)
        dealt = deal_committee(params, network=args.network, key_epoch=args.key_epoch)
        out.mkdir(parents=True, exist_ok=True)
        for member in dealt.members:
            directory = out / f"node-{member.share.metadata.identifier}"
            directory.mkdir(mode=0o700, exist_ok=True)
            write_identity_keystore(
                directory / IDENTITY_FILE,
                member.identity,
                passphrase,
                kdf=kdf,
                overwrite=args.force,
            )
            write_frost_share(
                directory / SHARE_FILE, member.share, passphrase, kdf=kdf, overwrite=args.force
            )
        # Written last: its presence means every member's files are complete.
        write_committee(out / COMMITTEE_FILE, dealt.committee, overwrite=args.force)
    except KeystoreError as exc:
        return _fail("dealer", exc)
    except OSError as exc:
        return _fail("dealer", KeystoreError(f"cannot create {out}: {exc.strerror}"))
    committee = dealt.committee
    chain = committee.chain_key
    print(
        f"committee: network={committee.network} key_epoch={committee.key_epoch} "
        f"n={params.n} f={params.f} t={params.t}"
    )
    print(f"group key: 0x{chain.compressed.hex()} (x=0x{chain.x:064x}, parity={chain.parity})")
    for m in committee.members:
        print(f"  node-{m.identifier}: {m.node_id}")
    print(f"wrote {out / COMMITTEE_FILE} and {params.n} member directories")
    return EXIT_OK


def main_show(args: argparse.Namespace) -> int:
    try:
        info = inspect_keystore(args.file)
        document = info.to_json()
        passphrase = _passphrase(args)
        if passphrase is not None:
            # Decrypting re-checks the secret against the public data; the result says so.
            if isinstance(info, FrostShareInfo):
                read_frost_share(args.file, passphrase)
            else:
                read_identity_keystore(args.file, passphrase)
            document["decrypts"] = True
    except KeystoreError as exc:
        return _fail("show", exc)
    print(json.dumps(document, indent=2))
    return EXIT_OK
