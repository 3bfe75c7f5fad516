"""Raw-response snapshots: the one on-disk format for the audit store and record/replay.

A snapshot directory ``DIR`` holds::

    DIR/manifest.json            {"format": "xon-replay/1", "entries": [ENTRY, ...]}
    DIR/bodies/<sha256>.gz       gzip of the exact response body bytes (content-addressed)

and every ``ENTRY`` is::

    {"source": "vastai",                 the source id from the feed configuration
     "method": "GET",
     "url": "https://...",               the URL the adapter built (API keys redacted)
     "request_body_sha256": "..." | null,
     "status": 200,
     "headers": {"content-type": "..."}, only content-type and retry-after, lower-cased
     "body_sha256": "...",               SHA-256 of the exact (uncompressed) body bytes
     "fetched_at": "2026-10-07T12:00:00Z",
     "seq": 0}                           recording order, 0, 1, 2, ...

Auditing an observation: every hash an observation lists names a body file here; gunzip
it, check its SHA-256, and replay the directory (``xon feeds check --replay DIR``).

Replaying: a request is matched on (source, method, url, request_body_sha256); several
recordings of the same request are served in ``seq`` order (so a recorded 429 followed by
a 200 replays as exactly that). A request with no recording left is a
``FetchError(reason="not_recorded")``.

API keys never reach the disk: before a URL or a request body is stored or matched,
every configured secret in it is replaced by :data:`REDACTED`. In replay mode the key env
vars are set to :data:`REDACTED`, so key-requiring sources build the very same URLs
without anyone holding the key.

Writes are atomic (temp file + ``os.replace`` in the same directory): a crash leaves the
previous manifest, never a torn one; a body file is written before the manifest names it.
The store is synchronous and thread-safe; async code calls it via ``asyncio.to_thread``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from feeds.errors import FeedError, FetchError
from feeds.model import HttpRequest, RawResponse, SourceId

__all__ = [
    "MANIFEST",
    "REDACTED",
    "REPLAY_FORMAT",
    "STORED_HEADERS",
    "ReplayBook",
    "SnapshotEntry",
    "SnapshotError",
    "SnapshotStore",
    "format_time",
    "load_manifest",
    "parse_time",
    "read_body",
    "redact",
    "sha256_hex",
    "verify_dir",
]

log = logging.getLogger(__name__)

REPLAY_FORMAT = "xon-replay/1"
MANIFEST = "manifest.json"
BODIES = "bodies"
STORED_HEADERS = ("content-type", "retry-after")
REDACTED = "XON-REDACTED"
# Secrets shorter than this are not redacted: replacing "1" everywhere would corrupt URLs.
_MIN_SECRET_LEN = 4


class SnapshotError(FeedError):
    """A snapshot directory that is missing, of another format, or fails its hashes."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_time(t: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` (microseconds only when non-zero)."""
    if t.tzinfo is None:
        raise SnapshotError(f"naive datetime {t!r}: times must be timezone-aware")
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SnapshotError(f"bad timestamp {text!r}") from exc
    if t.tzinfo is None:
        raise SnapshotError(f"timestamp without a zone: {text!r}")
    return t.astimezone(UTC)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_LEN:
            text = text.replace(secret, REDACTED)
    return text


def _redact_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_LEN:
            data = data.replace(secret.encode(), REDACTED.encode())
    return data


@dataclass(frozen=True)
class SnapshotEntry:
    source: SourceId
    method: str
    url: str
    request_body_sha256: str | None
    status: int
    headers: Mapping[str, str]
    body_sha256: str
    fetched_at: datetime
    seq: int

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        return (self.source, self.method, self.url, self.request_body_sha256)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "method": self.method,
            "url": self.url,
            "request_body_sha256": self.request_body_sha256,
            "status": self.status,
            "headers": dict(sorted(self.headers.items())),
            "body_sha256": self.body_sha256,
            "fetched_at": format_time(self.fetched_at),
            "seq": self.seq,
        }

    @classmethod
    def from_json(cls, obj: object) -> SnapshotEntry:
        if not isinstance(obj, dict):
            raise SnapshotError(f"manifest entry is not an object: {obj!r}")
        try:
            headers = obj["headers"]
            rb = obj["request_body_sha256"]
            entry = cls(
                source=SourceId(_str(obj["source"])),
                method=_str(obj["method"]),
                url=_str(obj["url"]),
                request_body_sha256=None if rb is None else _hash(rb),
                status=_int(obj["status"]),
                headers=MappingProxyType(
                    {_str(k).lower(): _str(v) for k, v in _dict(headers).items()}
                ),
                body_sha256=_hash(obj["body_sha256"]),
                fetched_at=parse_time(_str(obj["fetched_at"])),
                seq=_int(obj["seq"]),
            )
        except KeyError as exc:
            raise SnapshotError(f"manifest entry lacks {exc.args[0]!r}: {obj!r}") from None
        return entry


def _str(v: object) -> str:
    if not isinstance(v, str):
        raise SnapshotError(f"expected a string, got {v!r}")
    return v


def _int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise SnapshotError(f"expected an integer, got {v!r}")
    return v


def _dict(v: object) -> dict[object, object]:
    if not isinstance(v, dict):
        raise SnapshotError(f"expected an object, got {v!r}")
    return v


def _hash(v: object) -> str:
    s = _str(v)
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise SnapshotError(f"not a lower-case SHA-256 hex digest: {s!r}")
    return s


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _manifest_bytes(entries: Sequence[SnapshotEntry]) -> bytes:
    doc = {"format": REPLAY_FORMAT, "entries": [e.to_json() for e in entries]}
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode()


def load_manifest(root: Path) -> tuple[SnapshotEntry, ...]:
    """The entries of ``root/manifest.json``, in ``seq`` order."""
    path = Path(root) / MANIFEST
    try:
        doc: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise SnapshotError(f"no {MANIFEST} in {root}") from None
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"unreadable {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != REPLAY_FORMAT:
        raise SnapshotError(f"{path}: not in format {REPLAY_FORMAT}")
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, list):
        raise SnapshotError(f"{path}: 'entries' is not a list")
    entries = sorted((SnapshotEntry.from_json(e) for e in raw_entries), key=lambda e: e.seq)
    seqs = [e.seq for e in entries]
    if len(set(seqs)) != len(seqs):
        raise SnapshotError(f"{path}: duplicate seq numbers")
    return tuple(entries)


def read_body(root: Path, body_sha256: str) -> bytes:
    """The exact body bytes, after checking they hash to ``body_sha256``."""
    path = Path(root) / BODIES / f"{_hash(body_sha256)}.gz"
    try:
        body = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise SnapshotError(f"missing body {path}") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SnapshotError(f"corrupt body {path}: {exc}") from exc
    if sha256_hex(body) != body_sha256:
        raise SnapshotError(f"body {path} does not hash to its name")
    return body


def verify_dir(root: Path) -> tuple[SnapshotEntry, ...]:
    """Check the manifest and every body hash; raises ``SnapshotError`` on the first problem."""
    entries = load_manifest(root)
    for digest in sorted({e.body_sha256 for e in entries}):
        read_body(root, digest)
    return entries


def _request_body_hash(request: HttpRequest, secrets: Iterable[str]) -> str | None:
    if request.body is None:
        return None
    return sha256_hex(_redact_bytes(request.body, secrets))


@dataclass
class SnapshotStore:
    """Append-only snapshot directory (the audit store, and ``xon feeds record``'s output).

    Opening an existing directory continues its ``seq`` numbering. Bodies are
    content-addressed, so identical responses are stored once.
    """

    root: Path
    secrets: tuple[str, ...] = ()
    _entries: list[SnapshotEntry] = field(default_factory=list, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / BODIES).mkdir(parents=True, exist_ok=True)
        if (self.root / MANIFEST).exists():
            self._entries = list(load_manifest(self.root))

    @property
    def entries(self) -> tuple[SnapshotEntry, ...]:
        with self._lock:
            return tuple(self._entries)

    def add(self, source: SourceId, response: RawResponse) -> SnapshotEntry:
        if response.fetched_at.tzinfo is None:
            raise SnapshotError(f"naive fetched_at {response.fetched_at!r}: must be aware")
        digest = sha256_hex(response.body)
        body_path = self.root / BODIES / f"{digest}.gz"
        with self._lock:
            if not body_path.exists():
                # mtime=0: the same bytes always give the same file (reproducible builds).
                _atomic_write(body_path, gzip.compress(response.body, mtime=0))
            headers = {
                k.lower(): v for k, v in response.headers.items() if k.lower() in STORED_HEADERS
            }
            entry = SnapshotEntry(
                source=source,
                method=response.request.method.upper(),
                url=redact(response.request.url, self.secrets),
                request_body_sha256=_request_body_hash(response.request, self.secrets),
                status=response.status,
                headers=MappingProxyType(dict(sorted(headers.items()))),
                body_sha256=digest,
                fetched_at=response.fetched_at.astimezone(UTC),
                seq=(self._entries[-1].seq + 1) if self._entries else 0,
            )
            self._entries.append(entry)
            _atomic_write(self.root / MANIFEST, _manifest_bytes(self._entries))
        log.debug("snapshot.stored source=%s seq=%d sha256=%s", source, entry.seq, digest)
        return entry


class ReplayBook:
    """Serves recorded responses for requests, in recording order per request.

    ``secrets``: the same redaction the recording applied (normally none are needed,
    because replay mode sets every key env var to :data:`REDACTED`).
    """

    def __init__(self, root: Path, secrets: Sequence[str] = ()) -> None:
        self.root = Path(root)
        self.entries = load_manifest(self.root)
        self._secrets = tuple(secrets)
        self._queues: dict[tuple[str, str, str, str | None], deque[SnapshotEntry]] = defaultdict(
            deque
        )
        for entry in self.entries:
            self._queues[entry.key].append(entry)
        self._lock = threading.Lock()

    @property
    def recorded_until(self) -> datetime | None:
        """The latest ``fetched_at`` in the recording: "now" for staleness when replaying."""
        return max((e.fetched_at for e in self.entries), default=None)

    def next_response(self, source: SourceId, request: HttpRequest) -> RawResponse:
        key = (
            source,
            request.method.upper(),
            redact(request.url, self._secrets),
            _request_body_hash(request, self._secrets),
        )
        with self._lock:
            queue = self._queues.get(key)
            if not queue:
                raise FetchError(source, "not_recorded", f"{request.method} {request.url}")
            entry = queue.popleft()
        try:
            body = read_body(self.root, entry.body_sha256)
        except SnapshotError as exc:
            raise FetchError(source, "replay_corrupt", str(exc)) from exc
        return RawResponse(
            request=request,
            status=entry.status,
            headers=entry.headers,
            body=body,
            fetched_at=entry.fetched_at,
        )
