"""The ``xon`` command line.

Each package that offers commands exposes ``register(subparsers)``; this module only
collects them, so ``oracle`` stays the single place that wires packages together.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xon", description="XON oracle network for GPU compute")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrars():
        register(sub)
    return parser


def _registrars() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    # Imported lazily so `xon --help` stays fast and one broken package cannot hide the others.
    registrars: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []
    import importlib

    for module_name in (
        "feeds.cli",
        "oracle.contracts_cli",
        "oracle.keys_cli",
        "oracle.dkg_cli",
        "oracle.node_cli",
        "oracle.relay_cli",
        "oracle.devnet_cli",
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        registrars.append(module.register)
    return registrars


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
