"""``xon feeds ...``: check the configured feeds, record provider responses, verify a recording.

``xon feeds check [--config FILE] [--replay DIR] [--json] [--now ISO] [--store DIR]``
    Fetch every used source once — live, or from a recording (``--replay``) — and print
    per feed the value, the sources used, the sources dropped with their reason and the
    dispersion. Exit 0 when every feed has a value, 1 otherwise, 2 on a configuration or
    recording error. With ``--json``: an object keyed by feed id, each with ``value``
    (decimal string with ``decimals`` places, or null), ``value_fixed`` (the fixed-point
    integer), ``decimals``, ``sources_used``, ``sources_dropped`` ([{source, reason,
    detail}]), ``dispersion`` (decimal string), ``snapshots`` (SHA-256 hex of the raw
    bodies), ``source_values`` (per-source medians) and ``reason`` (why no value, or null).

    Replay mode serves each request from DIR (matched on source + method + URL + request
    body hash, in recording order; unrecorded → the source fails ``not_recorded``). Sources
    that need an API key are replayed without one: their key env vars are set to the
    redaction placeholder the recording stored in place of the key. "Now" for staleness
    is the end of the recording (its latest ``fetched_at``) unless ``--now`` is given, so
    an old recording replays the same way forever.

``xon feeds record DIR [--config FILE] [--json]``
    A live check that also stores every raw response in DIR in the replay format
    (``feeds.snapshots``); API keys are redacted from the stored URLs. DIR must not hold a
    recording already. Same exit codes as ``check``.

``xon feeds verify DIR``
    Check a recording: the manifest parses and every body hashes to its name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from feeds.config import FeedsConfig, load_config, load_default_config
from feeds.errors import FeedError
from feeds.fetch import Fetcher, Timeouts, env_secrets, http_transport
from feeds.observe import Observation, observe, secret_env_vars
from feeds.snapshots import MANIFEST, REDACTED, ReplayBook, SnapshotStore, parse_time, verify_dir

__all__ = ["main_check", "main_record", "main_verify", "register"]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_ERROR = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feeds = subparsers.add_parser("feeds", help="GPU price feeds: check, record, verify")
    sub = feeds.add_subparsers(dest="feeds_command", metavar="SUBCOMMAND")
    sub.required = True

    check = sub.add_parser("check", help="fetch every source once and show each feed's value")
    _common_args(check)
    check.add_argument("--replay", type=Path, metavar="DIR", help="serve responses from DIR")
    check.add_argument(
        "--now",
        metavar="ISO8601",
        help="the time staleness is judged at (default: wall clock; in replay, the end "
        "of the recording)",
    )
    check.add_argument("--store", type=Path, metavar="DIR", help="also store raw responses")
    check.set_defaults(handler=main_check)

    record = sub.add_parser("record", help="live check that saves every raw response to DIR")
    record.add_argument("dir", type=Path, metavar="DIR")
    _common_args(record)
    record.set_defaults(handler=main_record)

    verify = sub.add_parser("verify", help="check a recording's manifest and body hashes")
    verify.add_argument("dir", type=Path, metavar="DIR")
    verify.set_defaults(handler=main_verify)


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="feed config TOML")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="per-request timeout (live)"
    )


def _load(args: argparse.Namespace) -> FeedsConfig:
    path: Path | None = args.config
    return load_default_config() if path is None else load_config(path)


def main_check(args: argparse.Namespace) -> int:
    try:
        config = _load(args)
        now = None if args.now is None else parse_time(args.now)
        if args.replay is not None:
            # Re-storing a replay: nothing secret is left to redact.
            store = None if args.store is None else SnapshotStore(args.store)
            result = asyncio.run(_replay(config, args.replay, now, store))
        else:
            store = _store(args.store, config, os.environ)
            result = asyncio.run(_live(config, os.environ, args.timeout, store, now))
    except FeedError as exc:
        print(f"xon feeds check: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _report(result, args.json, sys.stdout)


def main_record(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        config = _load(args)
        if (directory / MANIFEST).exists():
            print(f"xon feeds record: {directory} already holds a recording", file=sys.stderr)
            return EXIT_ERROR
        store = SnapshotStore(directory, secrets=env_secrets(os.environ, secret_env_vars(config)))
        result = asyncio.run(_live(config, os.environ, args.timeout, store, None))
    except FeedError as exc:
        print(f"xon feeds record: {exc}", file=sys.stderr)
        return EXIT_ERROR
    log.info("feeds.recorded dir=%s responses=%d", directory, len(store.entries))
    return _report(result, args.json, sys.stdout)


def main_verify(args: argparse.Namespace) -> int:
    try:
        entries = verify_dir(args.dir)
    except FeedError as exc:
        print(f"xon feeds verify: {exc}", file=sys.stderr)
        return EXIT_ERROR
    bodies = len({e.body_sha256 for e in entries})
    print(f"{args.dir}: {len(entries)} responses, {bodies} bodies, all hashes match")
    return EXIT_OK


def _store(
    directory: Path | None, config: FeedsConfig, env: Mapping[str, str]
) -> SnapshotStore | None:
    if directory is None:
        return None
    return SnapshotStore(directory, secrets=env_secrets(env, secret_env_vars(config)))


async def _live(
    config: FeedsConfig,
    env: Mapping[str, str],
    request_timeout: float,
    store: SnapshotStore | None,
    now: datetime | None,
) -> Observation:
    timeouts = Timeouts(total=request_timeout, connect=min(request_timeout, Timeouts.connect))
    async with http_transport(timeouts) as transport:
        secrets = env_secrets(env, secret_env_vars(config))
        fetcher = Fetcher(transport, timeouts=timeouts, store=store, secrets=secrets)
        return await observe(config, fetcher, env, now)


async def _replay(
    config: FeedsConfig, directory: Path, now: datetime | None, store: SnapshotStore | None
) -> Observation:
    book = await asyncio.to_thread(ReplayBook, directory)
    # Keys are never needed to replay: the recording holds REDACTED where a key was.
    env = {**os.environ, **dict.fromkeys(secret_env_vars(config), REDACTED)}
    fetcher = Fetcher.for_replay(book, store=store)
    if now is None:
        now = book.recorded_until or datetime.now(UTC)
    return await observe(config, fetcher, env, now)


def _report(result: Observation, as_json: bool, out: TextIO) -> int:
    if as_json:
        json.dump(result.to_json(), out, indent=2)
        out.write("\n")
    else:
        _print_table(result, out)
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


def _print_table(result: Observation, out: TextIO) -> None:
    rows: list[tuple[str, ...]] = [("FEED", "VALUE", "USED", "DROPPED", "DISPERSION")]
    for obs in result.feeds:
        r = obs.result
        rows.append(
            (
                obs.feed.id,
                "-" if obs.value is None else f"{obs.value:f}",
                str(len(r.sources_used)),
                str(len(r.sources_dropped)),
                "-" if r.dispersion is None else f"{r.dispersion:f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out.write(f"observed at {result.now.isoformat()}\n")
    for n, row in enumerate(rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
        if n == 0:
            continue
        obs = result.feeds[n - 1]
        r = obs.result
        if r.reason:
            out.write(f"    no value: {r.reason}\n")
        if r.sources_used:
            values = dict(r.source_values)
            used = ", ".join(f"{s}={values[s]:f}" for s in r.sources_used)
            out.write(f"    used: {used}\n")
        for d in r.sources_dropped:
            detail = f" ({d.detail})" if d.detail else ""
            out.write(f"    dropped: {d.source}: {d.reason}{detail}\n")
