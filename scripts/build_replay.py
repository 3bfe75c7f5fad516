#!/usr/bin/env python3
"""Build the committed replay directory ``feeds/replay/default/`` from recorded bodies.

For every source the default feed configuration uses, the adapter is built exactly as
``xon feeds check`` builds it (API keys replaced by the redaction placeholder), and its
pagination is driven over the recorded page files
``tests/fixtures/prices/<dir>/page-01.*, page-02.*, ...`` — page N+1 answers the
``next_request`` that page N produced — where ``<dir>`` is the source id if such a
directory exists, else the adapter kind. Each page is stored in the replay format
(``feeds.snapshots``) with the URL the adapter built, so a replay serves exactly the
requests the adapter makes.

Reproducible: ``fetched_at`` is fixed (``--fetched-at``, default 2026-10-12T12:00:00Z, the
instant the recorded bodies stand for, plus one second per recorded response), gzip
carries no timestamp, and the output directory is rebuilt from scratch; running the
script twice gives identical bytes.

Usage: ``.venv/bin/python scripts/build_replay.py [--out DIR] [--config FILE]``
"""

from __future__ import annotations

import argparse
import mimetypes
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds.config import FeedsConfig, load_config, load_default_config  # noqa: E402
from feeds.model import HttpRequest, RawResponse, SourceId  # noqa: E402
from feeds.observe import secret_env_vars  # noqa: E402
from feeds.snapshots import REDACTED, SnapshotStore, verify_dir  # noqa: E402
from feeds.sources import build_source  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "prices"
DEFAULT_OUT = ROOT / "feeds" / "replay" / "default"
DEFAULT_FETCHED_AT = datetime(2026, 10, 12, 12, 0, 0, tzinfo=UTC)
MAX_PAGES = 50


class BuildError(Exception):
    pass


def _pages(directory: Path) -> list[Path]:
    pages = sorted(p for p in directory.glob("page-*") if p.is_file())
    if not pages:
        raise BuildError(f"{directory}: no page-NN files")
    return pages


def _fixture_dir(source_id: str, kind: str) -> Path:
    for name in (source_id, kind):
        candidate = FIXTURES / name
        if candidate.is_dir():
            return candidate
    raise BuildError(f"source {source_id!r} (kind {kind}): no fixture directory in {FIXTURES}")


def build(config: FeedsConfig, out: Path, fetched_at: datetime) -> int:
    env = dict.fromkeys(secret_env_vars(config), REDACTED)
    if out.exists():
        shutil.rmtree(out)
    store = SnapshotStore(out)
    clock = fetched_at
    for sid, src in config.used_sources().items():
        adapter = build_source(src.kind, sid, src.options, env)
        pages = _pages(_fixture_dir(sid, src.kind))
        request: HttpRequest | None = adapter.first_request()
        served = 0
        while request is not None:
            if served >= len(pages):
                raise BuildError(f"{sid}: adapter asks for page {served + 1}, none recorded")
            if served >= MAX_PAGES:
                raise BuildError(f"{sid}: more than {MAX_PAGES} pages")
            page = pages[served]
            content_type = mimetypes.guess_type(page.name)[0] or "application/octet-stream"
            response = RawResponse(
                request=request,
                status=200,
                headers={"content-type": content_type},
                body=page.read_bytes(),
                fetched_at=clock,
            )
            # Parse as the fetcher will, so a page that does not parse fails the build.
            result = adapter.parse(response, clock)
            store.add(SourceId(sid), response)
            served += 1
            clock += timedelta(seconds=1)
            request = result.next_request
        if served != len(pages):
            raise BuildError(f"{sid}: {len(pages)} pages recorded, adapter used {served}")
        print(f"{sid:<16} {src.kind:<18} {served} page(s) from {pages[0].parent.name}/")
    return len(verify_dir(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--config", type=Path, help="feed config (default: feeds/default.toml)")
    parser.add_argument(
        "--fetched-at",
        type=datetime.fromisoformat,
        default=DEFAULT_FETCHED_AT,
        help="fetch time of the first response (ISO-8601 with zone)",
    )
    args = parser.parse_args(argv)
    config = load_default_config() if args.config is None else load_config(args.config)
    try:
        count = build(config, args.out, args.fetched_at)
    except BuildError as exc:
        print(f"build_replay: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {count} responses to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
